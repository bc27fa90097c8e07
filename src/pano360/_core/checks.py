"""Validators of user input: one home for every check, each raising a typed error that names the
parameter and shows what was expected and what was given.

Numbers are checked as numbers: ``bool`` is refused where a number is expected (``True`` is an
int to Python, never a size or a rate to a user), numpy scalars are accepted.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .errors import AngleUnitWarning, ChoiceError, ShapeError, ValueRangeError

__all__ = [
    "as_batch_param",
    "check_angle",
    "check_bool",
    "check_choice",
    "check_erp",
    "check_hw",
    "check_int",
    "check_interval",
    "check_number",
    "check_positive_int",
    "check_seed",
    "is_number",
]


def check_erp(erp: torch.Tensor, name: str = "erp") -> None:
    """Raise ShapeError unless ``erp`` is a (B, C, H, W) tensor with W == 2H."""
    if not isinstance(erp, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(erp).__name__}")
    if erp.ndim != 4 or erp.shape[-1] != 2 * erp.shape[-2] or erp.shape[-2] < 1:
        raise ShapeError(f"{name} must be (B, C, H, W) with W == 2H, got {tuple(erp.shape)}")


def check_hw(hw: Sequence[int], name: str, *, erp: bool = False) -> tuple[int, int]:
    """Validate an (H, W) size; with ``erp=True`` also require W == 2H."""
    try:
        h, w = (int(v) for v in hw)
    except (TypeError, ValueError):
        raise ShapeError(f"{name} must be a pair (H, W) of integers, got {hw!r}") from None
    if h < 1 or w < 1 or (h, w) != tuple(hw):
        raise ShapeError(f"{name} must be a pair (H, W) of positive integers, got {tuple(hw)}")
    if erp and w != 2 * h:
        raise ShapeError(f"{name} must satisfy W == 2H for an ERP image, got (H, W) = {(h, w)}")
    return h, w


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """Raise ChoiceError listing the valid choices unless ``value`` is one of them."""
    if not isinstance(value, str) or value not in choices:
        raise ChoiceError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def is_number(value: Any) -> bool:
    """A real number that is not a bool (ints, floats, numpy scalars)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _bounds(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    left = "(-inf" if lo is None else f"{'(' if lo_open else '['}{lo:.6g}"
    right = "inf)" if hi is None else f"{hi:.6g}{')' if hi_open else ']'}"
    return f"{left}, {right}"


def _in_range(v: float, lo, hi, lo_open: bool, hi_open: bool) -> bool:
    above = lo is None or (v > lo if lo_open else v >= lo)
    below = hi is None or (v < hi if hi_open else v <= hi)
    return above and below


def check_number(
    value: Any,
    name: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    optional: bool = False,
) -> float | None:
    """A finite number within [lo, hi] (an end excluded with ``lo_open`` / ``hi_open``).

    Returns it as a float (None passes through when ``optional``).

    Raises:
        ValueRangeError: not a finite number (bools refused) or out of range.

    Example:
        >>> check_number(0.5, "rate", lo=0, hi=1)
        0.5
    """
    if optional and value is None:
        return None
    if not is_number(value) or not math.isfinite(value):
        raise ValueRangeError(f"{name} must be a finite number, got {value!r}")
    if not _in_range(value, lo, hi, lo_open, hi_open):
        bounds = _bounds(lo, hi, lo_open, hi_open)
        raise ValueRangeError(f"{name} must be a finite number in {bounds}, got {value!r}")
    return float(value)


def check_int(
    value: Any,
    name: str,
    *,
    lo: int | None = None,
    hi: int | None = None,
    optional: bool = False,
) -> int | None:
    """An integer (bools refused, numpy integers accepted) within [lo, hi].

    Raises:
        ValueRangeError: not an integer, or out of range.

    Example:
        >>> check_int(3, "epochs", lo=0)
        3
    """
    if optional and value is None:
        return None
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ValueRangeError(f"{name} must be an integer, got {value!r}")
    if not _in_range(value, lo, hi, False, False):
        if hi is None and lo in (0, 1):
            kind = "a positive" if lo == 1 else "a non-negative"
            raise ValueRangeError(f"{name} must be {kind} integer, got {value!r}")
        raise ValueRangeError(
            f"{name} must be an integer in {_bounds(lo, hi, False, False)}, got {value!r}"
        )
    return int(value)


def check_positive_int(value: Any, name: str) -> int:
    """An integer >= 1 (see :func:`check_int`)."""
    return check_int(value, name, lo=1)  # type: ignore[return-value]


def check_bool(value: Any, name: str) -> bool:
    """True or False, nothing else (numpy bools accepted)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueRangeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_interval(
    value: Any,
    name: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    integer: bool = False,
    unit: str = "",
) -> tuple[float, float] | tuple[int, int]:
    """A pair (min, max) with lo <= min <= max <= hi (lo < min with ``lo_open``).

    Args:
        integer: require integers (returned as ints).
        unit: appended to the bounds in the message (e.g. " radians").

    Raises:
        ValueRangeError: not a pair of finite numbers (integers), min > max, or out of range.

    Example:
        >>> check_interval((1, 3), "count", lo=0, integer=True)
        (1, 3)
    """
    kind = "integers" if integer else "finite numbers"
    try:
        a, b = value
    except (TypeError, ValueError):
        raise ValueRangeError(
            f"{name} must be a pair (min, max) of {kind}, got {value!r}"
        ) from None
    if integer:
        ok = all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in (a, b))
    else:
        ok = all(is_number(v) and math.isfinite(v) for v in (a, b))
    inside = ok and a <= b and all(_in_range(v, lo, hi, lo_open, False) for v in (a, b))
    if not inside:
        bounds = _bounds(lo, hi, lo_open, False) + unit
        raise ValueRangeError(
            f"{name} must be (min, max) {kind} with min <= max in {bounds}, got {value!r}"
        )
    cast = int if integer else float
    return cast(a), cast(b)


def check_seed(seed: Any, name: str = "seed", *, sequence: bool = False) -> int | tuple[int, ...]:
    """A non-negative integer seed; with ``sequence=True`` also a non-empty sequence of them
    (a SeedSequence's entropy and spawn key)."""

    def ok(v: Any) -> bool:
        return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0

    if ok(seed):
        return int(seed)
    listed = isinstance(seed, Sequence) and not isinstance(seed, str) and len(seed) > 0
    if sequence and listed and all(map(ok, seed)):
        return tuple(int(v) for v in seed)
    also = " or a non-empty sequence of them" if sequence else ""
    raise ValueRangeError(f"{name} must be a non-negative integer{also}, got {seed!r}")


#: Largest magnitude of an angle in radians that passes :func:`check_angle` silently.
ANGLE_LIMIT = 2 * math.pi

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _user_stacklevel() -> int:
    """The stacklevel of the innermost frame outside pano360 (the user's call), for
    ``warnings.warn`` called from a function of this module."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        level += 1
        frame = frame.f_back
    return level


def check_angle(value: Any, name: str) -> Any:
    """Warn (:class:`~pano360.errors.AngleUnitWarning`) when an angle in radians is larger than
    2 pi in magnitude, which is almost always degrees given by mistake (``yaw=90``).

    The one home of pano360's unit rule: angles are radians in Python, and a parameter takes
    degrees only when its name ends in ``_deg``. Every public function that takes angle
    parameters (yaw, pitch, roll, fov, radii, gaps, per-view or per-image values) passes them
    here. Coordinate tensors (lon/lat grids, boxes) are data, not parameters: boxes are checked
    by their ranges (:func:`pano360.geometry.check_sph_boxes`), grids are not checked.

    Args:
        value: a number, a tensor or a numpy array of angles (radians); other values (None)
            pass silently, their type is checked elsewhere.
        name: the parameter's name, for the message.

    Returns:
        ``value`` unchanged.

    Warns:
        AngleUnitWarning: ``|value| > 2 pi`` (any element of a CPU tensor; tensors on other
        devices are not read back), pointing at the caller's line outside pano360.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     _ = check_angle(90, "yaw")
        >>> print(caught[0].message)
        yaw = 90 is larger than 2 pi: angles are radians in pano360 (math.radians(90) = 1.5708)
    """
    if isinstance(value, torch.Tensor):
        if value.numel() == 0 or value.dtype == torch.bool or value.is_complex():
            return value
        if value.device.type != "cpu":
            # Reading the largest value back would synchronise the device on every call (a
            # random camera per sample in training); angles on a GPU are not checked.
            return value
        largest = float(value.detach().abs().max())
    elif isinstance(value, np.ndarray):
        if value.size == 0 or not np.issubdtype(value.dtype, np.number):
            return value
        largest = float(np.abs(value).max())
    elif is_number(value):
        largest = abs(float(value))
    else:
        return value
    if largest > ANGLE_LIMIT:
        shown = f"{float(value):g}" if is_number(value) else f"{largest:g} (largest magnitude)"
        deg = float(value) if is_number(value) else largest
        message = (
            f"{name} = {shown} is larger than 2 pi: angles are radians in pano360 "
            f"(math.radians({deg:g}) = {math.radians(deg):.5g})"
        )
        warnings.warn(message, AngleUnitWarning, stacklevel=_user_stacklevel())
    return value


def as_batch_param(
    value: float | torch.Tensor,
    name: str,
    batch: int,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """Turn a float or a (B,) / (1,) tensor into a (B,) tensor, keeping autograd history.

    The returned tensor may broadcast (it is expanded, not copied).
    """
    t = torch.as_tensor(value, dtype=dtype, device=device)
    if t.ndim == 0:
        t = t.reshape(1)
    if t.ndim != 1 or t.shape[0] not in (1, batch):
        raise ShapeError(
            f"{name} must be a float or a tensor of shape ({batch},), got {tuple(t.shape)}"
        )
    if not torch.isfinite(t.detach()).all():
        raise ValueRangeError(f"{name} must be finite, got {t.detach().tolist()}")
    return t.expand(batch)
