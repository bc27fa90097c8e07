"""Seeds of synthetic scenes: an integer, or an integer and a spawn key for dataset items."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._core import check_seed


def scene_rng(seed: Any) -> tuple[int | tuple[int, ...], np.random.Generator]:
    """Check ``seed`` and return it with its generator.

    An int is a ``numpy.random.SeedSequence``'s entropy; (s, i, ...) is the child of
    SeedSequence(s) with spawn key (i, ...), i.e. ``SeedSequence(s).spawn(n)[i]``, so item ``i``
    of a dataset depends neither on the items made before it nor on the dataset's length.

    Raises:
        ValueRangeError: not a non-negative integer or a non-empty sequence of them.
    """
    seed = check_seed(seed, sequence=True)
    if isinstance(seed, int):
        return seed, np.random.default_rng(np.random.SeedSequence(seed))
    return seed, np.random.default_rng(np.random.SeedSequence(seed[0], spawn_key=seed[1:]))
