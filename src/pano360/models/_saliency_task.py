"""The ``"saliency"`` task and its output contract, registered here so that the learned saliency
models of :mod:`pano360.models` and the training-free ones of :mod:`pano360.saliency` (which
imports this package) are held to the same contract."""

from __future__ import annotations

from typing import Any

import torch

from .._core import ShapeError, ValueRangeError
from .._core.registry import register_task

__all__ = ["SALIENCY_CONTRACT", "check_saliency_output"]

#: The saliency task's contract in words.
SALIENCY_CONTRACT = (
    "ERP images (B, C, H, W) -> saliency maps (B, 1, H, W) on the same grid, non-negative, each "
    "summing to 1 over its pixels"
)


def check_saliency_output(output: Any, inputs: torch.Tensor) -> None:
    """Raise unless ``output`` keeps :data:`SALIENCY_CONTRACT` for the batch ``inputs``.

    Raises:
        ShapeError: ``output`` is not a (B, 1, H, W) tensor on the grid of ``inputs``.
        ValueRangeError: a value is negative or not finite, or a map does not sum to 1.
    """
    b, _, h, w = inputs.shape
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != (b, 1, h, w):
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ShapeError(f"a saliency model must return (B, 1, H, W) = {(b, 1, h, w)}, got {got}")
    if not bool(torch.isfinite(output).all()) or bool((output < 0).any()):
        raise ValueRangeError("a saliency model must return finite, non-negative maps")
    totals = output.sum(dim=(-2, -1))
    if not torch.allclose(totals, torch.ones_like(totals), atol=1e-4):
        raise ValueRangeError(
            f"saliency maps must each sum to 1, got sums {totals.flatten().tolist()}"
        )


register_task("saliency", SALIENCY_CONTRACT, check_saliency_output)
