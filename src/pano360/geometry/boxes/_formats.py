"""Box formats and the conversions between them (:data:`BOX_FORMATS`, :func:`box_convert`).

Convention: see :mod:`pano360.geometry.boxes` (the formats) and
:mod:`pano360.geometry.conventions`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..._core import ShapeError, ValueRangeError, check_choice, check_hw
from ..coords import wrap_lon, xyz_to_lonlat
from ._frames import _as_rbfov, _check_tensor, _corners_xyz, _inward_normals

__all__ = ["BOX_FORMATS", "box_convert"]

#: Names of the box formats :func:`box_convert` understands.
BOX_FORMATS: tuple[str, ...] = ("bfov", "rbfov", "erp_xyxy")

# Largest fov a converted box may get: a pinhole view of pi radians does not exist.
_FOV_MAX = math.pi - 1e-6
_FOV_MIN = 1e-7


def _check_xyxy(boxes: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Validate (..., 4) ERP pixel boxes; return them with x1 moved into [-0.5, W - 0.5)."""
    h, w = hw
    if boxes.ndim < 1 or boxes.shape[-1] != 4:
        raise ShapeError(f"erp_xyxy boxes must be (..., 4), got {tuple(boxes.shape)}")
    v = boxes.detach()
    if not torch.isfinite(v).all():
        raise ValueRangeError("erp_xyxy boxes must be finite, got non-finite values")
    x1, y1, x2, y2 = v.unbind(-1)
    tol = 1e-4
    if ((x2 < x1) | (x2 - x1 > w + tol)).any():
        raise ValueRangeError(
            f"erp_xyxy boxes need x1 <= x2 <= x1 + W (W = {w}), got widths "
            f"{(x2 - x1)[(x2 < x1) | (x2 - x1 > w + tol)][:4].tolist()}"
        )
    if ((y2 < y1) | (y1 < -0.5 - tol) | (y2 > h - 0.5 + tol)).any():
        raise ValueRangeError(
            f"erp_xyxy boxes need -0.5 <= y1 <= y2 <= H - 0.5 (H = {h}), got "
            f"{v[(y2 < y1) | (y1 < -0.5 - tol) | (y2 > h - 0.5 + tol)][:4].tolist()}"
        )
    shift = torch.floor((boxes[..., 0].detach() + 0.5) / w) * w
    return boxes - torch.stack((shift, torch.zeros_like(shift)) * 2, dim=-1)


def _rbfov_to_xyxy(b5: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Tight ERP pixel box of RBFoV boxes (lon/lat extremes of the region)."""
    h, w = hw
    corners = _corners_xyz(b5)  # (..., 4, 3)
    normals = _inward_normals(b5)  # (..., 4, 3)
    ny = normals[..., 1]
    # A pole is inside when it is on the inner side of all four planes (on the boundary: inside).
    north = (ny >= -1e-12).all(-1)
    south = (ny <= 1e-12).all(-1)
    lat_c = torch.asin(corners[..., 1].clamp(-1, 1))
    # Each edge's great circle peaks at q = e_y - n_y n (lat = acos |n_y|); count it when the
    # peak (or the trough, -q) lies on the edge's arc between its two corners.
    a, b = corners, torch.roll(corners, -1, dims=-2)
    e_y = torch.zeros_like(normals)
    e_y[..., 1] = 1
    q = e_y - ny[..., None] * normals
    m = torch.linalg.cross(a, b)

    def on_arc(p):
        return ((torch.linalg.cross(a, p) * m).sum(-1) >= 0) & (
            (torch.linalg.cross(p, b) * m).sum(-1) >= 0
        )

    peak = torch.acos(ny.abs().clamp(max=1.0))
    neg_inf = torch.full_like(peak, -math.inf)
    top = torch.maximum(lat_c.amax(-1), torch.where(on_arc(q), peak, neg_inf).amax(-1))
    bottom = torch.minimum(lat_c.amin(-1), torch.where(on_arc(-q), -peak, -neg_inf).amin(-1))
    top = torch.where(north, torch.full_like(top, math.pi / 2), top)
    bottom = torch.where(south, torch.full_like(bottom, -math.pi / 2), bottom)
    # Longitude is monotonic along every edge (a great circle through no pole), so the extremes
    # are corners; relative to the centre they lie within (-pi/2, pi/2) for a pole-free box.
    lon_centre = wrap_lon(b5[..., 0])
    rel = wrap_lon(xyz_to_lonlat(corners)[..., 0] - lon_centre[..., None])
    left = lon_centre + rel.amin(-1)
    width = rel.amax(-1) - rel.amin(-1)
    polar = north | south
    left = torch.where(polar, torch.full_like(left, -math.pi), left)
    width = torch.where(polar, torch.full_like(width, 2 * math.pi), width)
    x1 = (left / (2 * math.pi) + 0.5) * w - 0.5
    x1 = torch.remainder(x1 + 0.5, w) - 0.5
    x2 = x1 + width * (w / (2 * math.pi))
    y1 = (-top / math.pi + 0.5) * h - 0.5
    y2 = (-bottom / math.pi + 0.5) * h - 0.5
    return torch.stack((x1, y1, x2, y2), -1)


def _xyxy_to_bfov(xyxy: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """The BFoV whose tight ERP box is ``xyxy`` (see :func:`box_convert` for the cases)."""
    h, w = hw
    x1, y1, x2, y2 = xyxy.unbind(-1)
    lon = wrap_lon(((x1 + x2) / 2 + 0.5) / w * (2 * math.pi) - math.pi)
    half = (x2 - x1) * (math.pi / w)  # half the longitude extent
    hi = (0.5 - (y1 + 0.5) / h) * math.pi
    lo = (0.5 - (y2 + 0.5) / h) * math.pi
    tol = 1e-6 * h
    full = (x2 - x1) >= w - 1e-6 * w
    north = full & (y1 <= -0.5 + tol)
    south = full & (y2 >= h - 0.5 - tol)

    # Mirror so the box's middle latitude is >= 0; the solution is mirrored back at the end.
    sgn = torch.where(hi + lo >= 0, 1.0, -1.0).to(xyxy.dtype)
    hi_m = torch.where(sgn > 0, hi, -lo)
    lo_m = torch.where(sgn > 0, lo, -hi)
    tan_half = torch.tan(half.clamp(max=math.pi / 2 - 1e-9))
    # Straddling the equator: top edge at p + b/2 = hi, bottom at p - b/2 = lo (edge midpoints),
    # and the widest points, the top corners, give tan(half) = tx / (cos p - ty sin p).
    p_st = (hi_m + lo_m) / 2
    b_st = hi_m - lo_m
    tx_st = tan_half * torch.cos(hi_m) / torch.cos(b_st / 2)
    # Wholly above the equator: the lowest points are the bottom corners; with s = p - b/2,
    # tan(lo) = sin s / sqrt(k^2 + cos^2 s), k = tan(half) cos(hi), solved for cos s.
    one_sided = lo_m > 0
    t = torch.tan(lo_m)
    k = tan_half * torch.cos(hi_m)
    solvable = one_sided & (t * k < 1)
    # Harmless stand-ins where there is no solution keep acos and sqrt (and their gradients)
    # finite in the branch torch.where discards.
    t = torch.where(solvable, t, torch.full_like(t, 0.5))
    k = torch.where(solvable, k, torch.full_like(k, 0.5))
    s = torch.acos(((1 - (t * k) ** 2) / (1 + t**2)).sqrt())
    b_up = hi_m - s
    p_up = (hi_m + s) / 2
    tx_up = tan_half * torch.cos(hi_m) / torch.cos(b_up / 2)
    reachable = (half < math.pi / 2 - 1e-9) & (hi_m < math.pi / 2 - 1e-9)
    reachable = reachable & (~one_sided | (solvable & (s <= hi_m)))
    p = torch.where(one_sided, p_up, p_st) * sgn
    fov_y = torch.where(one_sided, b_up, b_st)
    fov_x = 2 * torch.atan(torch.where(one_sided, tx_up, tx_st))
    # No BFoV has this tight box (too wide for its latitudes): use the box's angular extents.
    p_fb = (hi + lo) / 2
    p = torch.where(reachable, p, p_fb)
    fov_y = torch.where(reachable, fov_y, hi - lo)
    fov_x = torch.where(reachable, fov_x, 2 * half * torch.cos(p_fb))
    # Full width and touching a pole (mirrored to the north): the square box aimed at the pole,
    # whose corners (its lowest points) are at the other latitude, tan(lat_corner) =
    # 1 / (sqrt 2 tan(fov / 2)). Past the equator that box would need fov >= pi; there the
    # lowest point is the bottom edge's midpoint, p - b/2 = lat_lo, and the pole is put halfway
    # between the top edge and pi/2 + lat_lo.
    other = torch.where(north, lo, -hi)
    fov_cap = 2 * torch.atan2(torch.ones_like(other), math.sqrt(2) * torch.tan(other))
    fov_deep = 0.75 * math.pi - other / 2
    deep = other <= 0
    fov_pole = torch.where(deep, fov_deep, fov_cap)
    p_pole = torch.where(deep, other + fov_deep / 2, torch.full_like(other, math.pi / 2))
    polar = north | south
    p = torch.where(north, p_pole, torch.where(south, -p_pole, p))
    fov_x = torch.where(polar, fov_pole, fov_x)
    fov_y = torch.where(polar, fov_pole, fov_y)
    fov_x = fov_x.clamp(_FOV_MIN, _FOV_MAX)
    fov_y = fov_y.clamp(_FOV_MIN, _FOV_MAX)
    return torch.stack((lon, p, fov_x, fov_y), -1)


def _rbfov_to_bfov(b5: torch.Tensor) -> torch.Tensor:
    """Smallest unrolled box with the same centre containing a rolled one."""
    lon, lat, fx, fy, roll = b5.unbind(-1)
    tx, ty = torch.tan(fx / 2), torch.tan(fy / 2)
    c, s = torch.cos(roll).abs(), torch.sin(roll).abs()
    # Both boxes are rectangles in the same tangent plane; take the rotated one's bounding box.
    fx2 = 2 * torch.atan(c * tx + s * ty)
    fy2 = 2 * torch.atan(s * tx + c * ty)
    return torch.stack((lon, lat, fx2, fy2), -1)


def box_convert(
    boxes: torch.Tensor,
    in_fmt: str,
    out_fmt: str,
    erp_hw: Sequence[int] | None = None,
) -> torch.Tensor:
    """Convert boxes between the formats of :data:`BOX_FORMATS`.

    Args:
        boxes: (..., 4) or (..., 5) boxes in format ``in_fmt``.
        in_fmt, out_fmt: "bfov", "rbfov" or "erp_xyxy" (module docstring).
        erp_hw: (H, W) of the ERP image; needed when either format is "erp_xyxy".

    Returns:
        (..., 4) or (..., 5) boxes in ``out_fmt``, same dtype and device. Conversions:

        - bfov -> rbfov: roll 0 appended (the same region).
        - rbfov -> bfov: the smallest unrolled box with the same centre that contains the rolled
          one (exact when roll is 0 or a multiple of pi; at pi/2 the fovs swap).
        - bfov / rbfov -> erp_xyxy: the tight ERP rectangle around the region (its lon/lat
          extremes), x1 moved into [-0.5, W - 0.5); full width for a box containing a pole.
        - erp_xyxy -> bfov / rbfov: the box whose tight ERP rectangle this is, in closed form
          (the exact inverse of the previous item). A full-width rectangle touching a pole gives
          a square box around that pole with the same tight rectangle: aimed at the pole, or,
          for rectangles reaching past the equator, aimed between the pole and the far edge
          (whose midpoint is then the lowest point). ERP rectangles that are the tight box of
          no BFoV (too wide for their latitudes: a box's lower edge sags towards the equator)
          get the rectangle's angular extents: centred on it, fov_y = lat extent, fov_x = lon
          extent times cos of the middle latitude (clamped to (0, pi)).

        Differentiable except through the case choices of "erp_xyxy".

    Raises:
        ValueError: unknown format (the message lists the valid ones), or ``erp_hw`` missing
            for "erp_xyxy".
        ShapeError: wrong last dimension, or ``erp_hw`` not (H, 2H).
        ValueRangeError: invalid values (fov outside (0, pi), lat outside [-pi/2, pi/2],
            non-finite values; for "erp_xyxy" x2 < x1, x2 > x1 + W, y outside [-0.5, H - 0.5]
            or y2 < y1).

    Convention:
        A spherical box's region never depends on its format; boxes containing a pole do not
        round-trip through "erp_xyxy" (their ERP box keeps only the latitude they reach),
        other BFoVs do.

    Example:
        >>> seam = torch.tensor([math.pi, 0.0, math.pi / 4, math.pi / 4], dtype=torch.float64)
        >>> box_convert(seam, "bfov", "erp_xyxy", erp_hw=(64, 128)).round(decimals=2).tolist()
        [119.5, 23.5, 135.5, 39.5]
    """
    check_choice(in_fmt, "in_fmt", BOX_FORMATS)
    check_choice(out_fmt, "out_fmt", BOX_FORMATS)
    _check_tensor(boxes, "boxes")
    hw = None
    if "erp_xyxy" in (in_fmt, out_fmt):
        if erp_hw is None:
            raise ValueError("erp_hw (H, W) is needed to convert from or to 'erp_xyxy'")
        hw = check_hw(erp_hw, "erp_hw", erp=True)
    want = {"bfov": 4, "rbfov": 5, "erp_xyxy": 4}[in_fmt]
    if boxes.ndim < 1 or boxes.shape[-1] != want:
        raise ShapeError(f"{in_fmt} boxes must be (..., {want}), got {tuple(boxes.shape)}")
    if in_fmt == "erp_xyxy":
        xyxy = _check_xyxy(boxes, hw)
        if out_fmt == "erp_xyxy":
            return xyxy
        bfov = _xyxy_to_bfov(xyxy, hw)
        return bfov if out_fmt == "bfov" else _as_rbfov(bfov)
    b5 = _as_rbfov(boxes)
    if out_fmt == "erp_xyxy":
        return _rbfov_to_xyxy(b5, hw)
    if out_fmt == "rbfov":
        return b5
    return boxes if in_fmt == "bfov" else _rbfov_to_bfov(b5)
