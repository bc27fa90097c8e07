"""Spherical padding of ERP images and feature maps: wrap at the seam, continue over the poles.

Convention: see :mod:`pano360.geometry.conventions`. Columns wrap (column -1 is column W-1); a
row past a pole continues on the mirrored row shifted by W/2 columns (row -1-k at column c is
row k at column c + W/2), again and again when the padding exceeds H
(:func:`~pano360.geometry.coords.fold_rows` is the rule). Nothing is zero-padded or clamped.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch

from .._core import ShapeError, ValueRangeError, memory_format_of
from ._cache import grid_cache
from .coords import fold_rows

__all__ = ["check_feature_map", "spherical_pad", "spherical_pad_index"]


def as_padding(pad: int | Sequence[int], name: str = "pad") -> tuple[int, int, int, int]:
    """Validate ``pad`` (an int or a 4-tuple) and return (left, right, top, bottom)."""
    values = (pad,) * 4 if isinstance(pad, int) else pad
    try:
        values = tuple(values)
    except TypeError:
        values = ()
    if len(values) != 4 or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueRangeError(
            f"{name} must be an int or a 4-tuple (left, right, top, bottom) of ints, got {pad!r}"
        )
    if min(values) < 0:
        raise ValueRangeError(f"{name} must be non-negative, got {pad!r}")
    return values  # type: ignore[return-value]


def check_feature_map(x: torch.Tensor, name: str = "x") -> tuple[int, int, int, int]:
    """Raise ShapeError unless ``x`` is a (B, C, H, W) tensor with H >= 1 and W even (>= 2)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[-2] < 1 or x.shape[-1] < 2 or x.shape[-1] % 2:
        raise ShapeError(
            f"{name} must be (B, C, H, W) with H >= 1 and W even (the pole rule shifts by W/2), "
            f"got {tuple(x.shape)}"
        )
    return tuple(x.shape)  # type: ignore[return-value]


@functools.lru_cache(maxsize=64)
def _row_runs(h: int, w: int, top: int, bottom: int) -> tuple[tuple[int, int, int, int, bool], ...]:
    """Padded rows grouped into runs read from consecutive source rows.

    Returns ``(first padded row, count, first source row, step, shifted)`` per run, padded rows
    counted from 0 at the top of the padded image, ``step`` +1 or -1 (a mirrored run reads
    upwards), ``shifted`` when the run reads its rows half a turn of longitude away.
    """
    rows, cols = fold_rows(
        torch.arange(-top, h + bottom), torch.zeros((), dtype=torch.long), (h, w)
    )
    src, shifted = rows.tolist(), (cols != 0).tolist()
    runs: list[list] = []  # [first, count, first source row, step, shifted]
    for i, (r, s) in enumerate(zip(src, shifted, strict=True)):
        if runs and runs[-1][4] == s:
            run = runs[-1]
            step = r - (run[2] + run[3] * (run[1] - 1))
            if run[1] == 1 and abs(r - run[2]) == 1:
                run[3] = r - run[2]  # a run's second row sets its direction
                step = run[3]
            if step == run[3] and abs(step) == 1:
                run[1] += 1
                continue
        runs.append([i, 1, r, 1, s])
    return tuple(tuple(run) for run in runs)


def spherical_pad(x: torch.Tensor, pad: int | Sequence[int]) -> torch.Tensor:
    """Pad an ERP image or feature map with the seam and pole rules instead of zeros.

    Args:
        x: (B, C, H, W) with H >= 1 and W even. W == 2H is not required: feature maps of any
            even width are padded as full panoramas.
        pad: pixels added on every side (an int) or ``(left, right, top, bottom)`` as in
            ``torch.nn.functional.pad``. Any non-negative size, also larger than H or W.

    Returns:
        (B, C, H + top + bottom, W + left + right), differentiable with respect to ``x``; any
        dtype (an integer tensor of flat indices pads into the index map of the padding).
        Channels-last input gives channels-last output.

    Raises:
        ShapeError: ``x`` is not (B, C, H, W) with W even.
        ValueRangeError: ``pad`` is not an int or a 4-tuple of ints, or is negative.

    Convention:
        Padded pixel (r, c), with r in [-top, H + bottom) and c in [-left, W + right), holds
        ``x`` at :func:`~pano360.geometry.coords.fold_rows` (r, c): column -1 is column W-1 and
        row -1 is row 0 turned by half a turn of longitude. Padding then cropping gives ``x``
        back: ``spherical_pad(x, p)[..., top:top + H, left:left + W] == x``.

    Example:
        >>> x = torch.arange(8.0).reshape(1, 1, 2, 4)
        >>> spherical_pad(x, (1, 1, 1, 0))[0, 0]
        tensor([[1., 2., 3., 0., 1., 2.],
                [3., 0., 1., 2., 3., 0.],
                [7., 4., 5., 6., 7., 4.]])
    """
    b, c, h, w = check_feature_map(x)
    left, right, top, bottom = as_padding(pad)
    # One allocation filled by slice copies: a gather index would be slower and larger.
    out = torch.empty(
        (b, c, h + top + bottom, w + left + right),
        dtype=x.dtype,
        device=x.device,
        memory_format=memory_format_of(x),
    )
    half = w // 2
    inner = out[..., left : left + w]
    for first, n, src, step, shifted in _row_runs(h, w, top, bottom):
        lo = src if step == 1 else src - n + 1  # a mirrored run reads upwards from src
        block = x[:, :, lo : lo + n] if step == 1 else x[:, :, lo : lo + n].flip(-2)
        dst = inner[:, :, first : first + n]
        if shifted:  # half a turn of longitude: the two halves swap
            dst[..., :half] = block[..., half:]
            dst[..., half:] = block[..., :half]
        else:
            dst.copy_(block)
    # Columns wrap, copied from columns already filled (chunks of at most W when pad > W).
    start = left
    while start > 0:
        n = min(w, start)
        out[..., start - n : start] = out[..., start - n + w : start + w]
        start -= n
    stop, total = left + w, left + w + right
    while stop < total:
        n = min(w, total - stop)
        out[..., stop : stop + n] = out[..., stop - w : stop - w + n]
        stop += n
    return out


@grid_cache("spherical padding index maps")
def spherical_pad_index(h: int, w: int, pad: int, device: torch.device) -> torch.Tensor:
    """Flat indices (row * W + column) that pad an (H, W) ERP image by ``pad`` on every side.

    Returns an (H + 2 pad, W + 2 pad) long tensor: ``x.flatten(-2)[..., index]`` equals
    :func:`spherical_pad` (x, pad).
    """
    rows, cols = fold_rows(
        torch.arange(-pad, h + pad, device=device)[:, None],
        torch.arange(-pad, w + pad, device=device)[None, :],
        (h, w),
    )
    return rows * w + cols
