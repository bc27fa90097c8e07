"""Spherical padding of ERP feature maps: wrap at the seam, continue over the poles.

Convention: see :mod:`pano360.geometry.conventions`. Columns wrap (column -1 is column W-1); a
row past a pole continues on the mirrored row shifted by W/2 columns (row -1-k at column c is
row k at column c + W/2), again and again when the padding exceeds H. Nothing is zero-padded.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._core import ShapeError, ValueRangeError, memory_format_of
from ..geometry.sampling import spherical_pad as _symmetric_pad

__all__ = ["SphericalPad2d", "spherical_pad"]


def _as_padding(pad: int | Sequence[int], name: str = "pad") -> tuple[int, int, int, int]:
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


def spherical_pad(x: torch.Tensor, pad: int | Sequence[int]) -> torch.Tensor:
    """Pad an ERP feature map with the seam and pole rules instead of zeros.

    Args:
        x: (B, C, H, W) with H >= 1 and W even. W == 2H is not required: feature maps of any
            even width are padded as full panoramas.
        pad: pixels added on every side (an int) or ``(left, right, top, bottom)`` as in
            ``torch.nn.functional.pad``. Any non-negative size, also larger than H or W.

    Returns:
        (B, C, H + top + bottom, W + left + right), differentiable with respect to ``x``; any
        dtype (an integer tensor of flat indices pads into the index map of the padding).

    Raises:
        ShapeError: ``x`` is not (B, C, H, W) with W even.
        ValueRangeError: ``pad`` is not an int or a 4-tuple of ints, or is negative.

    Convention:
        Padded pixel (r, c), with r in [-top, H + bottom) and c in [-left, W + right), holds
        ``x[..., r', c' mod W]``: while r is outside [0, H), r becomes -1 - r above the
        image and 2H - 1 - r below it and c moves by W/2 at each reflection. So column -1 is
        column W-1 and row -1 is row 0 turned by half a turn of longitude. Padding then cropping
        gives ``x`` back: ``spherical_pad(x, p)[..., top:top + H, left:left + W] == x``.

    Example:
        >>> x = torch.arange(8.0).reshape(1, 1, 2, 4)
        >>> spherical_pad(x, (1, 1, 1, 0))[0, 0]
        tensor([[1., 2., 3., 0., 1., 2.],
                [3., 0., 1., 2., 3., 0.],
                [7., 4., 5., 6., 7., 4.]])
    """
    b, c, h, w = check_feature_map(x)
    left, right, top, bottom = _as_padding(pad)
    if left == right == top == bottom and left <= min(h, w):
        # The common symmetric case has a fast home in geometry (exact in this range).
        return _symmetric_pad(x, left)
    # One allocation filled by slice copies: a gather index would be slower and larger.
    out = torch.empty(
        (b, c, h + top + bottom, w + left + right),
        dtype=x.dtype,
        device=x.device,
        memory_format=memory_format_of(x),
    )
    half = w // 2
    inner = out[..., left : left + w]
    # Rows come in runs of period 2H: t = r mod 2H in [0, H) is row t as is; t in [H, 2H) is row
    # 2H - 1 - t, mirrored and shifted by W/2 (an even number of reflections cancels the shift).
    r, end = -top, h + bottom
    while r < end:
        t = r % (2 * h)
        if t < h:
            n = min(h - t, end - r)
            inner[:, :, r + top : r + top + n] = x[:, :, t : t + n]
        else:
            n = min(2 * h - t, end - r)
            first = 2 * h - 1 - t  # source row of padded row r; the run goes upwards from it
            src = x[:, :, first - n + 1 : first + 1].flip(-2)
            dst = inner[:, :, r + top : r + top + n]
            dst[..., :half] = src[..., half:]
            dst[..., half:] = src[..., :half]
        r += n
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


class SphericalPad2d(nn.Module):
    """Pads ERP feature maps with :func:`spherical_pad` (seam wraps, poles continue).

    Args:
        padding: an int for every side, or ``(left, right, top, bottom)``.

    Shape:
        (B, C, H, W) with W even -> (B, C, H + top + bottom, W + left + right).

    Example:
        >>> SphericalPad2d(1)
        SphericalPad2d(padding=(1, 1, 1, 1))
        >>> SphericalPad2d((1, 2, 0, 3))(torch.zeros(1, 1, 4, 8)).shape
        torch.Size([1, 1, 7, 11])
    """

    def __init__(self, padding: int | Sequence[int]) -> None:
        super().__init__()
        self.padding = _as_padding(padding, "padding")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return spherical_pad(x, self.padding)

    def extra_repr(self) -> str:
        return f"padding={self.padding}"
