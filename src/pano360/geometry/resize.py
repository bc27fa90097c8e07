"""Resizing ERP images and feature maps on the sphere, and ERP pyramids.

Planar resizing (``F.interpolate``) treats the panorama's left and right edges and its top and
bottom rows as borders: bilinear upsampling clamps at the seam and at the poles, so column 0 and
column W-1 stop being neighbours. Here the seam wraps and a row past a pole continues on the
mirrored row half a turn away (:func:`~pano360.geometry.coords.fold_rows`), as everywhere in
pano360.

How: separable resampling, columns then rows, each output pixel a weighted sum of a few input
pixels (a gather per tap): exact area averages where an axis shrinks (every input pixel counts
with the fraction of it that the output pixel covers), bilinear interpolation where it grows.
Shrinking by a whole factor on both axes is a plain ``avg_pool2d``, the same numbers, faster.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .._core import ShapeError, as_image, check_choice, check_hw
from .coords import fold_rows
from .padding import check_feature_map, spherical_pad

__all__ = ["RESIZE_MODES", "erp_pyramid", "resize_erp"]

#: Modes of :func:`resize_erp`.
RESIZE_MODES: tuple[str, ...] = ("bilinear", "area", "nearest")


@functools.lru_cache(maxsize=64)
def _axis_taps(n_in: int, n_out: int, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Input indices (n_out, T) and float64 weights (n_out, T) of one axis.

    Indices may be -1 or n_in (bilinear growth reads one pixel past either end); the caller
    wraps columns and pads rows over the poles.
    """
    scale = n_in / n_out
    out = torch.arange(n_out, dtype=torch.float64)
    if mode == "nearest":
        # The input pixel whose area holds the output pixel's centre.
        index = torch.floor((out + 0.5) * scale).long().clamp(0, n_in - 1)
        return index[:, None], torch.ones(n_out, 1, dtype=torch.float64)
    if mode == "bilinear" and n_out > n_in:
        x = (out + 0.5) * scale - 0.5  # the output centre in input pixel coordinates
        x0 = torch.floor(x)
        frac = x - x0
        return torch.stack((x0, x0 + 1), -1).long(), torch.stack((1 - frac, frac), -1)
    # Exact area: output pixel j covers input edges [j s, (j + 1) s); input pixel i covers
    # [i, i + 1). Weight = the overlap / s.
    lo, hi = out * scale, (out + 1) * scale
    taps = math.ceil(scale) + 1
    first = torch.floor(lo).long()
    index = first[:, None] + torch.arange(taps)
    left = torch.maximum(index.to(torch.float64), lo[:, None])
    right = torch.minimum(index.to(torch.float64) + 1, hi[:, None])
    weight = (right - left).clamp_min(0) / scale
    return index.clamp(0, n_in - 1), weight  # clamped taps have weight 0


def _resample(x: torch.Tensor, dim: int, index: torch.Tensor, weight: torch.Tensor):
    """Sum over taps t of ``x`` at ``index[:, t]`` along ``dim`` (-1 or -2) by ``weight[:, t]``."""
    weight = weight.to(device=x.device, dtype=x.dtype)
    index = index.to(x.device)
    out = None
    for t in range(index.shape[1]):
        if dim == -1:  # gather is several times faster than index_select along the last dim
            term = torch.gather(x, -1, index[:, t].expand(*x.shape[:-1], -1))
            w = weight[:, t]
        else:  # whole rows: index_select copies them as blocks
            term = x.index_select(-2, index[:, t])
            w = weight[:, t, None]
        if out is None:
            out = term.mul_(w)
        else:
            out.addcmul_(term, w)
    return out


def resize_erp(erp: torch.Tensor, hw: Sequence[int], mode: str = "bilinear") -> torch.Tensor:
    """Resize ERP images or feature maps on the sphere.

    Args:
        erp: (B, C, H, W), W even (W == 2H for images; any even width is resized as a full
            turn of longitude): a floating-point or uint8 tensor, or a numpy array (H, W, C) or
            (H, W) (:mod:`pano360.geometry.conventions`, Images).
        hw: (h, w) of the output, w even.
        mode: ``"bilinear"`` (default): exact area averages along an axis that shrinks
            (antialiased), bilinear interpolation along one that grows. ``"area"``: exact area
            averages along both (growing repeats pixels, blending where output pixels straddle
            two). ``"nearest"``: the input pixel whose area holds each output pixel's centre
            (label maps).

    Returns:
        (B, C, h, w) in ``erp``'s form (dtype; numpy (h, w, C) or (h, w)), differentiable with
        respect to a floating-point ``erp``. Returns a floating-point ``erp`` itself when the
        size is unchanged.

    Raises:
        ShapeError: ``erp`` is not (B, C, H, W) with W even, or ``hw`` not a pair of positive
            integers with w even.
        TypeError: ``erp`` is not an image (a path names itself), or neither floating point
            nor uint8 (numpy: uint16 too).
        ValueError: unknown ``mode``.

    Convention:
        Pixel centres of :mod:`pano360.geometry.conventions` at both sizes: output pixel (i, j)
        is centred at input coordinate ((j + 0.5) W / w - 0.5, (i + 0.5) H / h - 0.5). The seam
        wraps and the poles continue over the mirrored row half a turn away, so the output is
        as continuous across column 0 / column w-1 as anywhere else. Area averages of a constant
        are that constant; the integral over the sphere is kept to first order.

    Example:
        >>> x = torch.zeros(1, 1, 4, 8)
        >>> x[..., 0] = 1.0  # the column just right of the seam
        >>> up = resize_erp(x, (8, 16))
        >>> up[0, 0, 4, [0, 15]].tolist()  # both sides of the seam see it
        [0.75, 0.25]
    """
    erp, spec = as_image(erp, "erp")
    check_feature_map(erp, "erp")
    h, w = check_hw(hw, "hw")
    if w % 2:
        raise ShapeError(f"hw must have an even width (the pole rule shifts by W/2), got {(h, w)}")
    check_choice(mode, "mode", RESIZE_MODES)
    return spec.restore(_resize(erp, (h, w), mode))


def _resize(erp: torch.Tensor, hw: tuple[int, int], mode: str) -> torch.Tensor:
    """:func:`resize_erp` of a checked floating-point tensor."""
    h_in, w_in = erp.shape[-2:]
    h, w = hw
    if (h, w) == (h_in, w_in):
        return erp
    if mode != "nearest" and h_in % h == 0 and w_in % w == 0:
        return F.avg_pool2d(erp, (h_in // h, w_in // w))  # whole-factor shrink: exact area
    if mode == "bilinear" and h >= h_in and w >= w_in:
        return _grow_bilinear(erp, (h, w))
    return _separable(erp, (h, w), mode)


def _separable(erp: torch.Tensor, hw: tuple[int, int], mode: str) -> torch.Tensor:
    """Columns (wrapping at the seam) and rows (continuing over the poles), the axis that
    shrinks first, so the second pass runs on fewer pixels."""
    h_in, w_in = erp.shape[-2:]
    h, w = hw

    def rows(x: torch.Tensor) -> torch.Tensor:
        index, weight = _axis_taps(h_in, h, mode)
        if bool(((index < 0) | (index >= h_in)).any()):
            # Rows -1 and H are the rows across the poles: pad one row each way, half a turn on.
            return _resample(spherical_pad(x, (0, 0, 1, 1)), -2, index + 1, weight)
        return _resample(x, -2, index, weight)

    def cols(x: torch.Tensor) -> torch.Tensor:
        index, weight = _axis_taps(w_in, w, mode)
        return _resample(x, -1, torch.remainder(index, w_in), weight)

    x = erp
    if h < h_in:
        x = rows(x)
    if w != w_in:
        x = cols(x)
    if h > h_in:
        x = rows(x)
    return x


def _grow_bilinear(erp: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Bilinear growth. ``F.interpolate`` samples exactly our pixel centres and is exact
    wherever it reads no pixel past an edge; the few output columns and rows next to the seam
    and the poles, where it would clamp, are recomputed with the seam and pole rules."""
    h_in, w_in = erp.shape[-2:]
    h, w = hw
    out = F.interpolate(erp, size=hw, mode="bilinear", align_corners=False)
    col_index, col_weight = _axis_taps(w_in, w, "bilinear")
    row_index, row_weight = _axis_taps(h_in, h, "bilinear")
    # Output j reads input (j + 0.5) in / out - 0.5: taps -1 and in only near either end.
    cols = torch.nonzero((col_index < 0).any(1) | (col_index >= w_in).any(1)).flatten()
    rows = torch.nonzero((row_index < 0).any(1) | (row_index >= h_in).any(1)).flatten()
    if len(cols):
        part = _resample(erp, -1, torch.remainder(col_index[cols], w_in), col_weight[cols])
        # Rows next to a pole read clamped rows here: they are all redone just below.
        out[..., cols] = _resample(part, -2, row_index.clamp(0, h_in - 1), row_weight)
    if len(rows):
        # The input rows they read, -1 and H_in included, brought onto the sphere.
        src = torch.unique(row_index[rows])
        folded, turned = fold_rows(src, torch.zeros((), dtype=torch.long), (h_in, w_in))
        band = erp.index_select(-2, folded.to(erp.device))
        band[..., turned != 0, :] = band[..., turned != 0, :].roll(w_in // 2, -1)
        band = _resample(band, -1, torch.remainder(col_index, w_in), col_weight)
        local = torch.searchsorted(src, row_index[rows])
        out[..., rows, :] = _resample(band, -2, local, row_weight[rows])
    return out


def _halvings(erp: torch.Tensor, min_width: int) -> list[torch.Tensor]:
    """``erp`` and its 2 x 2 box-filtered halvings down to ``min_width`` columns or more."""
    images = [erp]
    while images[-1].shape[-1] // 2 >= min_width and images[-1].shape[-2] % 2 == 0:
        images.append(_halve(images[-1]))
    return images


def _halve(x: torch.Tensor) -> torch.Tensor:
    """``avg_pool2d(x, 2)`` of an even-sized image as the sum of its four strided 2 x 2 taps:
    the same averages (to rounding), several times faster on the CPU for few channels (a
    video frame's halvings in the detection pyramid)."""
    out = x[..., ::2, ::2] + x[..., 1::2, ::2]
    out += x[..., ::2, 1::2]
    out += x[..., 1::2, 1::2]
    return out.mul_(0.25)


def erp_pyramid(
    erp: torch.Tensor,
    sizes: Sequence[Sequence[int]],
    mode: str = "bilinear",
    *,
    with_halvings: bool = False,
) -> list[torch.Tensor] | tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The ERP at several sizes (a detection or feature pyramid), resized on the sphere.

    Each level is :func:`resize_erp` of the smallest 2 x 2 halving of ``erp`` that is at least
    as wide as the level (a large panorama is read once, not once per level; a level larger
    than ``erp`` is upsampled from it).

    Args:
        erp: (B, C, H, W), W even.
        sizes: the (h, w) of each level, any order.
        mode: as :func:`resize_erp`.
        with_halvings: also return the halvings (``erp`` first): smaller copies that serve as
            mipmaps.

    Returns:
        The levels, in the order of ``sizes``; with ``with_halvings``, ``(levels, halvings)``.

    Raises:
        ShapeError, TypeError, ValueError: as :func:`resize_erp`; ``sizes`` empty.

    Example:
        >>> levels = erp_pyramid(torch.rand(1, 3, 64, 128), [(32, 64), (23, 46)])
        >>> [tuple(t.shape[-2:]) for t in levels]
        [(32, 64), (23, 46)]
    """
    check_feature_map(erp, "erp")
    sizes = [check_hw(hw, "sizes") for hw in sizes]
    if not sizes:
        raise ShapeError("sizes must name at least one level, got none")
    halvings = _halvings(erp, max(w for _, w in sizes))
    levels = []
    for h, w in sizes:
        larger = [im for im in halvings if im.shape[-1] >= w]
        levels.append(resize_erp(larger[-1] if larger else erp, (h, w), mode))
    return (levels, halvings) if with_halvings else levels
