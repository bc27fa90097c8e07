r"""Spherical boxes: BFoV and RBFoV regions, conversions, outlines, areas, IoU and NMS.

Convention: see :mod:`pano360.geometry.conventions`. Box formats (:data:`BOX_FORMATS`):

``"bfov"``: ``(..., 4)`` = (lon, lat, fov_x, fov_y) in radians
    The region a pinhole camera aimed at (lon, lat) sees with those fields of view (edge to
    edge): the directions ``R @ (u, v, 1)`` with ``|u| <= tan(fov_x / 2)``,
    ``|v| <= tan(fov_y / 2)``, where ``R = rotation_matrix(yaw=lon, pitch=lat, roll)``. Its edges
    are great-circle arcs (the frustum's planes through the centre of the sphere), so the region
    is a convex spherical quadrilateral. fov_x and fov_y lie in (0, pi), lat in [-pi/2, pi/2];
    lon may be any value (it wraps).
``"rbfov"``: ``(..., 5)`` = (lon, lat, fov_x, fov_y, roll)
    The same camera rolled clockwise by ``roll`` radians (its up vector turns to its right, as
    for :func:`~pano360.geometry.erp_to_perspective`): seen by an unrolled viewer aimed at the
    box, the region is the unrolled rectangle turned clockwise about its centre (its top edge
    moves right). A roll of pi/2 swaps the fields of view.
``"erp_xyxy"``: ``(..., 4)`` = (x1, y1, x2, y2) in ERP pixels, for display only
    Continuous pixel coordinates with pixel centres at integers, so an image spans
    [-0.5, W - 0.5] x [-0.5, H - 0.5]. ``x1`` lies in [-0.5, W - 0.5) and
    ``x1 <= x2 <= x1 + W``: a box across the seam has ``x2 > W - 0.5`` and continues at columns
    ``x - W``. ``-0.5 <= y1 <= y2 <= H - 0.5``; ``y1 = -0.5`` touches the north pole. A box
    containing a pole spans the full width, ``x1 = -0.5, x2 = W - 0.5``.

Corners are listed top-left, top-right, bottom-right, bottom-left as seen in a view aimed at the
box (camera-plane corners (-tx, ty), (tx, ty), (tx, -ty), (-tx, -ty) with t = tan(fov / 2)),
i.e. clockwise for that viewer. Everything here is batched, works in float32 and float64, and is
differentiable with respect to the box parameters except where noted (NMS, ERP pixel boxes from
``erp_xyxy``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .._core import ShapeError, ValueRangeError, check_choice, check_hw, check_positive_int
from .coords import lonlat_to_pixel, wrap_lon, xyz_to_lonlat
from .rotation import rotation_matrix
from .sampling import erp_directions

__all__ = [
    "BOX_FORMATS",
    "box_convert",
    "box_corners",
    "box_outline",
    "box_outline_pixels",
    "sph_box_area",
    "sph_box_mask",
    "sph_iou_exact",
    "sph_iou_fov",
    "sph_nms",
]

#: Names of the box formats :func:`box_convert` understands.
BOX_FORMATS: tuple[str, ...] = ("bfov", "rbfov", "erp_xyxy")

# Largest fov a converted box may get: a pinhole view of pi radians does not exist.
_FOV_MAX = math.pi - 1e-6
_FOV_MIN = 1e-7
# Pairs of boxes whose exact IoU is computed in one go (bounds the memory of clipping).
_PAIR_CHUNK = 16384


# ---------------------------------------------------------------------------------------------
# Validation and frames
# ---------------------------------------------------------------------------------------------


def _check_tensor(boxes: torch.Tensor, name: str) -> None:
    if not isinstance(boxes, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(boxes).__name__}")
    if not boxes.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point tensor, got {boxes.dtype}")


def _as_rbfov(boxes: torch.Tensor, name: str = "boxes") -> torch.Tensor:
    """Validate (..., 4) BFoV or (..., 5) RBFoV boxes; return (..., 5) RBFoV."""
    _check_tensor(boxes, name)
    if boxes.ndim < 1 or boxes.shape[-1] not in (4, 5):
        raise ShapeError(
            f"{name} must be (..., 4) BFoV (lon, lat, fov_x, fov_y) or (..., 5) RBFoV "
            f"(lon, lat, fov_x, fov_y, roll), got {tuple(boxes.shape)}"
        )
    values = boxes.detach()
    if not torch.isfinite(values).all():
        raise ValueRangeError(f"{name} must be finite, got non-finite values")
    fov = values[..., 2:4]
    if ((fov <= 0) | (fov >= math.pi)).any():
        bad = fov[(fov <= 0) | (fov >= math.pi)][:4].tolist()
        raise ValueRangeError(f"{name} fov_x and fov_y must be in (0, pi) radians, got {bad}")
    lat = values[..., 1]
    if (lat.abs() > math.pi / 2 + 1e-6).any():
        bad = lat[lat.abs() > math.pi / 2 + 1e-6][:4].tolist()
        raise ValueRangeError(f"{name} lat must be in [-pi/2, pi/2] radians, got {bad}")
    if boxes.shape[-1] == 4:
        boxes = torch.cat((boxes, torch.zeros_like(boxes[..., :1])), dim=-1)
    return boxes


def _frames(b5: torch.Tensor):
    """Camera-to-world rotations (..., 3, 3) and tan half fovs (...,), (...,) of RBFoV boxes."""
    lon, lat, fx, fy, roll = b5.unbind(-1)
    return rotation_matrix(lon, lat, roll), torch.tan(fx / 2), torch.tan(fy / 2)


def _corners_xyz(b5: torch.Tensor) -> torch.Tensor:
    """(..., 4, 3) unit corner directions: top-left, top-right, bottom-right, bottom-left."""
    R, tx, ty = _frames(b5)
    one = torch.ones_like(tx)
    cam = torch.stack(
        (
            torch.stack((-tx, ty, one), -1),
            torch.stack((tx, ty, one), -1),
            torch.stack((tx, -ty, one), -1),
            torch.stack((-tx, -ty, one), -1),
        ),
        dim=-2,
    )
    world = torch.einsum("...ij,...kj->...ki", R, cam)
    return world / world.norm(dim=-1, keepdim=True)


def _inward_normals(b5: torch.Tensor) -> torch.Tensor:
    """(..., 4, 3) unit normals n of the top, right, bottom, left edge planes; inside: n.d >= 0.

    In camera coordinates the region is |x| <= tx z, |y| <= ty z, i.e. the four half-spaces
    (-1, 0, tx), (1, 0, tx), (0, -1, ty), (0, 1, ty) . c >= 0 (they also imply z > 0).
    """
    R, tx, ty = _frames(b5)
    one, zero = torch.ones_like(tx), torch.zeros_like(tx)
    cam = torch.stack(
        (
            torch.stack((zero, -one, ty), -1),  # top: y <= ty z
            torch.stack((-one, zero, tx), -1),  # right: x <= tx z
            torch.stack((zero, one, ty), -1),  # bottom: y >= -ty z
            torch.stack((one, zero, tx), -1),  # left: x >= -tx z
        ),
        dim=-2,
    )
    cam = cam / cam.norm(dim=-1, keepdim=True)
    return torch.einsum("...ij,...kj->...ki", R, cam)


def _slerp_edges(corners: torch.Tensor, n: int) -> torch.Tensor:
    """(..., 4 n, 3) points along the closed polygon, ``n`` per edge, evenly spaced in angle."""
    a = corners
    b = torch.roll(corners, -1, dims=-2)
    t = torch.arange(n, dtype=corners.dtype, device=corners.device) / n
    cos = (a * b).sum(-1, keepdim=True).clamp(-1.0, 1.0)  # (..., 4, 1)
    omega = torch.acos(cos)
    # sin(omega) > 0: an edge is shorter than pi and longer than 0 for fov in (0, pi).
    sin = torch.sin(omega).clamp_min(1e-30)
    wa = torch.sin((1 - t) * omega) / sin  # (..., 4, n)
    wb = torch.sin(t * omega) / sin
    pts = wa[..., None] * a[..., None, :] + wb[..., None] * b[..., None, :]
    return pts.flatten(-3, -2)


# ---------------------------------------------------------------------------------------------
# Areas, corners, outlines, masks
# ---------------------------------------------------------------------------------------------


def sph_box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Solid angle of spherical boxes, in steradians.

    Args:
        boxes: (..., 4) BFoV or (..., 5) RBFoV.

    Returns:
        (...,) areas ``4 asin(sin(fov_x / 2) sin(fov_y / 2))`` (exact for a pinhole frustum; roll
        does not change it). Differentiable.

    Raises:
        ShapeError: ``boxes`` is not (..., 4) or (..., 5).
        ValueRangeError: a fov is outside (0, pi), a lat outside [-pi/2, pi/2], or a value is
            not finite.

    Example:
        >>> face = torch.tensor([0.0, 0.0, math.pi / 2, math.pi / 2])  # one cube face
        >>> round(float(sph_box_area(face) / (4 * math.pi)), 6)
        0.166667
    """
    b5 = _as_rbfov(boxes)
    return 4 * torch.asin(torch.sin(b5[..., 2] / 2) * torch.sin(b5[..., 3] / 2))


def box_corners(boxes: torch.Tensor) -> torch.Tensor:
    """Corners of spherical boxes as (lon, lat).

    Args:
        boxes: (..., 4) BFoV or (..., 5) RBFoV.

    Returns:
        (..., 4, 2) (lon, lat) in radians of the top-left, top-right, bottom-right and
        bottom-left corners, lon in [-pi, pi).

    Raises:
        ShapeError, ValueRangeError: as :func:`sph_box_area`.

    Convention:
        Corners as seen by the camera aimed at the box (module docstring): the top-left corner of
        an unrolled box is left of and above its centre unless the box reaches past a pole.

    Example:
        >>> c = box_corners(torch.tensor([0.0, 0.0, math.pi / 2, math.pi / 2], dtype=torch.float64))
        >>> [[round(math.degrees(v), 2) for v in p] for p in c.tolist()]
        [[-45.0, 35.26], [45.0, 35.26], [45.0, -35.26], [-45.0, -35.26]]
    """
    return xyz_to_lonlat(_corners_xyz(_as_rbfov(boxes)))


def box_outline(boxes: torch.Tensor, n_per_edge: int = 16) -> torch.Tensor:
    """Outlines of spherical boxes as closed (lon, lat) polylines.

    Args:
        boxes: (..., 4) BFoV or (..., 5) RBFoV.
        n_per_edge: points per edge, evenly spaced in angle along its great-circle arc.

    Returns:
        (..., 4 n_per_edge, 2) (lon, lat) in radians, lon in [-pi, pi). Starts at the top-left
        corner and runs clockwise (as seen by the camera aimed at the box): top edge, right,
        bottom, left. Each corner is the first point of its edge; the polyline is closed (its
        last point connects back to the first). Consecutive points may lie on both sides of the
        seam; :func:`box_outline_pixels` splits it there for drawing.

    Raises:
        ShapeError, ValueRangeError: as :func:`sph_box_area`; ValueRangeError also for
            ``n_per_edge`` < 1.

    Example:
        >>> box_outline(torch.tensor([[0.3, 0.1, 0.5, 0.4]]), n_per_edge=8).shape
        torch.Size([1, 32, 2])
    """
    n = check_positive_int(n_per_edge, "n_per_edge")
    return xyz_to_lonlat(_slerp_edges(_corners_xyz(_as_rbfov(boxes)), n))


def _unwrapped_pixel_loop(lonlat: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """(K, 2) closed lon/lat loop -> (K + 1, 2) pixel polyline with continuous (unwrapped) x.

    The last point repeats the first, shifted by W times the loop's winding around the pole.
    """
    lon, lat = lonlat.unbind(-1)
    step = wrap_lon(torch.diff(lon, append=lon[:1]))
    lon_u = torch.cat((lon[:1], lon[0] + torch.cumsum(step, 0)))
    lat_u = torch.cat((lat, lat[:1]))
    return lonlat_to_pixel(torch.stack((lon_u, lat_u), -1), hw)


def _split_at_seam(xy: torch.Tensor, w: int) -> list[torch.Tensor]:
    """Cut a pixel polyline with unwrapped x into pieces with x in [-0.5, W - 0.5].

    Where the polyline crosses the seam both pieces get the crossing point (interpolated), one at
    x = W - 0.5 and one at x = -0.5. The polyline is closed (last point == first point, up to a
    shift of whole widths), so the last piece is joined to the first.
    """
    sheet = torch.floor((xy[:, 0] + 0.5) / w)
    pieces, start = [], 0
    cur = [xy[0:1] - torch.stack((sheet[0] * w, sheet.new_zeros(())))]
    crossings = torch.nonzero(sheet[1:] != sheet[:-1]).flatten().tolist()
    for i in crossings:
        a, b = xy[i], xy[i + 1]
        s_a, s_b = sheet[i], sheet[i + 1]
        # The boundary between the sheets, in unwrapped pixels (steps are shorter than W).
        xb = torch.maximum(s_a, s_b) * w - 0.5
        f = (xb - a[0]) / (b[0] - a[0])
        yb = a[1] + f * (b[1] - a[1])
        cur.append(xy[start + 1 : i + 1] - torch.stack((s_a * w, s_a.new_zeros(()))))
        cur.append(torch.stack((xb - s_a * w, yb))[None])
        pieces.append(torch.cat(cur))
        cur = [torch.stack((xb - s_b * w, yb))[None]]
        start = i
    cur.append(xy[start + 1 :] - torch.stack((sheet[-1] * w, sheet.new_zeros(()))))
    last = torch.cat(cur)
    if pieces:
        # The loop's end is its start: continue the last piece into the first one.
        pieces[0] = torch.cat((last[:-1], pieces[0]))
    else:
        pieces.append(last)
    return pieces


def box_outline_pixels(
    boxes: torch.Tensor,
    erp_hw: Sequence[int],
    n_per_edge: int | None = None,
    fmt: str = "bfov",
) -> list[list[torch.Tensor]]:
    """Outlines of boxes as ERP pixel polylines, cut at the seam, ready for drawing.

    Args:
        boxes: (N, 4) or (N, 5) boxes in format ``fmt``.
        erp_hw: (H, W) of the ERP image, W == 2H.
        n_per_edge: points per edge before cutting; default: about one per ERP pixel of arc
            (at least 8).
        fmt: "bfov", "rbfov" or "erp_xyxy" (a pixel rectangle: its four straight edges).

    Returns:
        For each box a list of (K_i, 2) pixel polylines (x, y), x in [-0.5, W - 0.5], y in
        [-0.5, H - 0.5]. Drawn one after another they trace the whole closed outline: a box
        across the seam gives a piece ending at x = W - 0.5 and one starting at x = -0.5 (with
        the crossing point interpolated onto both), a box around a pole a curve across the
        full width.

    Raises:
        ShapeError: bad ``boxes`` shape or ``erp_hw`` not (H, 2H).
        ValueRangeError: invalid box values (see :func:`box_convert`).
        ValueError: unknown ``fmt``.

    Example:
        >>> seam = torch.tensor([[math.pi, 0.0, 0.5, 0.5]])  # centred on the seam
        >>> [len(p) > 1 for p in box_outline_pixels(seam, (32, 64))[0]]
        [True, True]
    """
    check_choice(fmt, "fmt", BOX_FORMATS)
    h, w = check_hw(erp_hw, "erp_hw", erp=True)
    _check_tensor(boxes, "boxes")
    if boxes.ndim != 2:
        raise ShapeError(f"boxes must be (N, 4) or (N, 5), got {tuple(boxes.shape)}")
    if fmt == "erp_xyxy":
        xyxy = _check_xyxy(boxes, (h, w))
        out = []
        for x1, y1, x2, y2 in xyxy.unbind(0):
            loop = torch.stack(
                (torch.stack((x1, x2, x2, x1, x1)), torch.stack((y1, y1, y2, y2, y1))), -1
            )
            out.append(_split_at_seam(loop, w))
        return out
    b5 = _as_rbfov(box_convert(boxes, fmt, "rbfov"))
    if n_per_edge is None:
        edge = torch.maximum(b5[:, 2], b5[:, 3]).max() if len(b5) else b5.new_zeros(())
        n_per_edge = max(8, min(4096, math.ceil(float(edge) / (math.pi / h))))
    outline = box_outline(b5, n_per_edge)
    return [_split_at_seam(_unwrapped_pixel_loop(loop, (h, w)), w) for loop in outline]


def sph_box_mask(boxes: torch.Tensor, erp_hw: Sequence[int]) -> torch.Tensor:
    """Which ERP pixel centres lie inside each spherical box.

    Args:
        boxes: (N, 4) BFoV or (N, 5) RBFoV.
        erp_hw: (H, W) of the ERP image, W == 2H.

    Returns:
        (N, H, W) bool; a pixel is inside when its centre's direction is in the box (edges
        included). Seam and poles need no special care: the test is done on unit vectors.

    Raises:
        ShapeError: ``boxes`` not (N, 4) / (N, 5) or ``erp_hw`` not (H, 2H).
        ValueRangeError: invalid box values.

    Example:
        >>> from pano360.geometry import pixel_solid_angle
        >>> m = sph_box_mask(torch.tensor([[0.0, 0.0, math.pi / 2, math.pi / 2]]), (64, 128))
        >>> round(float((m[0] * pixel_solid_angle((64, 128))).sum() / (4 * math.pi)), 2)
        0.17
    """
    h, w = check_hw(erp_hw, "erp_hw", erp=True)
    _check_tensor(boxes, "boxes")
    if boxes.ndim != 2:
        raise ShapeError(f"boxes must be (N, 4) or (N, 5), got {tuple(boxes.shape)}")
    b5 = _as_rbfov(boxes).detach().to(torch.float64)
    normals = _inward_normals(b5)  # (N, 4, 3)
    dirs = erp_directions((h, w), dtype=torch.float64, device=boxes.device)
    # Only the rows of each box's tight ERP rectangle can be inside it.
    rows = _rbfov_to_xyxy(b5, (h, w))[:, 1::2]
    first = rows[:, 0].floor().clamp(0, h - 1).long().tolist()
    last = rows[:, 1].ceil().clamp(0, h - 1).long().tolist()
    mask = torch.zeros(len(b5), h, w, dtype=torch.bool, device=boxes.device)
    for i in range(len(b5)):
        band = dirs[first[i] : last[i] + 1]
        mask[i, first[i] : last[i] + 1] = (band @ normals[i].T >= 0).all(-1)
    return mask


# ---------------------------------------------------------------------------------------------
# Conversions
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# IoU and NMS
# ---------------------------------------------------------------------------------------------


def _clip_polygons(
    verts: torch.Tensor, edges: torch.Tensor, planes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clip convex spherical polygons by half-spaces n . d >= 0 (Sutherland-Hodgman).

    Args:
        verts: (P, 4, 3) unit vertices of convex quadrilaterals, in the order of
            :func:`_corners_xyz` (edge i runs from vertex i to vertex i + 1 in direction v x e_i).
        edges: (P, 4, 3) inward unit normals of the planes of those edges.
        planes: (P, J, 3) inward unit normals of the clipping planes.

    Returns:
        ``(verts, edges, count)``: (P, K, 3) vertices and the inward normals of their outgoing
        edges (the first ``count`` valid, K <= 12), and (P,) counts.

    A new vertex is the intersection of the edge's plane with the clipping plane,
    +-(e x n) / |e x n|, on the side of the edge's middle: unlike interpolating between the
    edge's ends this stays accurate for edges of nearly 180 degrees (boxes with fov near pi).
    """
    n_pairs = verts.shape[0]
    poly, edge = verts, edges
    count = torch.full((n_pairs,), 4, dtype=torch.long, device=verts.device)
    for j in range(planes.shape[1]):
        k = poly.shape[1]
        idx = torch.arange(k, device=verts.device)
        n = planes[:, j : j + 1].expand(-1, k, -1)
        d = (poly * n).sum(-1)  # (P, K)
        valid = idx[None] < count[:, None]
        nxt = torch.remainder(idx[None] + 1, count.clamp_min(1)[:, None])
        v_next = torch.gather(poly, 1, nxt[..., None].expand(-1, -1, 3))
        # Towards the edge's middle: a + b, or, where a and b are nearly antipodal and a + b
        # is too short to trust, the midpoint found from the edge's plane (rare: fov near pi).
        mid = poly + v_next
        short = (mid.norm(dim=-1) <= 1e-6).detach()
        if short.any():
            rows = torch.nonzero(short.any(1)).flatten()
            _, _, exact_mid = _arcs(poly[rows], edge[rows], nxt[rows])
            mid = mid.index_put((rows,), torch.where(short[rows, :, None], exact_mid, mid[rows]))
        d_next = torch.gather(d, 1, nxt)
        inside = (d >= 0).detach()
        crosses = inside != (d_next >= 0).detach()
        line = torch.linalg.cross(edge, n)
        norm = line.norm(dim=-1)
        parallel = (norm < 1e-12).detach()
        line = line / torch.where(parallel, torch.ones_like(norm), norm)[..., None]
        sign = torch.where((line * mid).sum(-1) >= 0, 1.0, -1.0).to(poly.dtype)
        hit = line * sign[..., None]
        # The edge lies in the clipping plane (up to rounding): either end is on both planes.
        end = torch.where((d.abs() <= d_next.abs())[..., None], poly, v_next)
        hit = torch.where(parallel[..., None], end, hit)
        # Outgoing edges: a kept vertex keeps its edge; an exit point starts an edge along the
        # clipping plane, an entry point continues along the crossed edge.
        hit_edge = torch.where(inside[..., None], n, edge)
        cand = torch.stack((poly, hit), dim=2).flatten(1, 2)  # (P, 2K, 3)
        cand_edge = torch.stack((edge, hit_edge), dim=2).flatten(1, 2)
        keep = torch.stack((inside & valid, crosses & valid), dim=2).flatten(1, 2)
        # Stable compaction: kept entries first, in order. A convex quadrilateral clipped by
        # four planes has at most 8 vertices; 12 leaves room for repeats from rounding.
        count = keep.sum(1).clamp(max=12)
        width = max(1, int(count.max()))
        order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices[:, :width, None]
        poly = torch.gather(cand, 1, order.expand(-1, -1, 3))
        edge = torch.gather(cand_edge, 1, order.expand(-1, -1, 3))
    return poly, edge, count


def _arcs(poly: torch.Tensor, edge: torch.Tensor, nxt: torch.Tensor):
    """Next vertex, angle and midpoint of each polygon edge (travel direction v x e)."""
    v_next = torch.gather(poly, 1, nxt[..., None].expand(-1, -1, 3))
    travel = torch.linalg.cross(poly, edge)
    phi = torch.atan2((v_next * travel).sum(-1), (v_next * poly).sum(-1))
    mid = poly * torch.cos(phi / 2)[..., None] + travel * torch.sin(phi / 2)[..., None]
    return v_next, phi, mid


def _polygon_area(poly: torch.Tensor, edge: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Solid angle of convex spherical polygons: a fan of signed triangles from an inner point.

    Each triangle (r, a, b) has tan(omega / 2) = r . (a x b) / (1 + r.a + a.b + b.r)
    (Van Oosterom and Strackee). Every edge is split at its midpoint (found from the edge's
    plane), so no triangle side comes near 180 degrees: a side between nearly antipodal
    vertices would be defined by them only to rounding over their distance from antipodal.
    The point r is the direction of the boundary's integral of the position vector (sum over
    edges of 2 sin(phi / 2) times the arc midpoint), which ignores repeated vertices and stays
    central in lune-like polygons. Triple products are taken of differences for precision on
    tiny triangles.
    """
    k = poly.shape[1]
    idx = torch.arange(k, device=poly.device)
    valid = (idx[None] < count[:, None]) & (count[:, None] >= 3)
    nxt = torch.remainder(idx[None] + 1, count.clamp_min(1)[:, None])
    b, phi, mid = _arcs(poly, edge, nxt)
    weight = torch.where(valid, 2 * torch.sin(phi / 2), torch.zeros_like(phi))
    r = (mid * weight[..., None]).sum(1, keepdim=True)
    r = r / r.norm(dim=-1, keepdim=True).clamp_min(1e-300)

    def triangle(a, c):
        triple = (r * torch.linalg.cross(a - r, c - r)).sum(-1)
        denom = 1 + (r * a).sum(-1) + (a * c).sum(-1) + (c * r).sum(-1)
        return 2 * torch.atan2(triple, denom)

    tri = triangle(poly, mid) + triangle(mid, b)
    return torch.where(valid, tri, torch.zeros_like(tri)).sum(-1).abs()


def _check_pair(boxes1: torch.Tensor, boxes2: torch.Tensor):
    for name, b in (("boxes1", boxes1), ("boxes2", boxes2)):
        _check_tensor(b, name)
        if b.ndim != 2:
            raise ShapeError(f"{name} must be (N, 4) or (N, 5), got {tuple(b.shape)}")


def sph_iou_exact(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Exact spherical IoU of every pair of boxes, by spherical polygon clipping.

    Args:
        boxes1: (N, 4) BFoV or (N, 5) RBFoV.
        boxes2: (M, 4) BFoV or (M, 5) RBFoV.

    Returns:
        (N, M) IoU = area(A n B) / area(A u B) on the unit sphere, in [0, 1], dtype of the
        boxes. Differentiable with respect to both sets of boxes.

    Raises:
        ShapeError: a set of boxes is not (N, 4) or (N, 5).
        ValueRangeError: a fov outside (0, pi), a lat outside [-pi/2, pi/2], or a non-finite
            value.

    Convention:
        Regions as in the module docstring; everything is done on unit vectors, so the seam and
        the poles are not special (boxes at lon +179 and -179 degrees overlap). How: box A is
        clipped by the four planes of box B (Sutherland-Hodgman on the sphere), the
        intersection's area is the sum of its fan triangles' spherical excess, and the union is
        area(A) + area(B) - area(A n B). Computed in float64; pairs whose bounding caps do not
        meet are skipped (IoU 0). Checked against :func:`pano360.testing.sph_iou_sampled`.

    Example:
        >>> a = torch.tensor([[math.radians(179), 0.0, 0.2, 0.2]])
        >>> b = torch.tensor([[math.radians(-179), 0.0, 0.2, 0.2]])
        >>> round(float(sph_iou_exact(a, b)), 3)  # 2 degrees apart across the seam
        0.702
    """
    _check_pair(boxes1, boxes2)
    dtype = torch.promote_types(boxes1.dtype, boxes2.dtype)
    a5 = _as_rbfov(boxes1, "boxes1").to(torch.float64)
    b5 = _as_rbfov(boxes2, "boxes2").to(torch.float64)
    n, m = a5.shape[0], b5.shape[0]
    out = a5.new_zeros(n, m)
    if n == 0 or m == 0:
        return out.to(dtype)
    ga, gb = _BoxGeometry(a5), _BoxGeometry(b5)
    with torch.no_grad():
        ii, jj = torch.nonzero(ga.caps_meet(gb), as_tuple=True)
    if ii.numel():
        out = out.index_put((ii, jj), _pair_iou(ga, gb, ii, jj))
    return out.to(dtype)


class _BoxGeometry:
    """What the exact IoU needs of a set of (N, 5) float64 RBFoV boxes."""

    def __init__(self, b5: torch.Tensor):
        self.corners = _corners_xyz(b5)
        self.normals = _inward_normals(b5)
        self.area = sph_box_area(b5)
        with torch.no_grad():
            # Bounding cap: centre = view axis, radius = angle to a corner.
            self.centre = rotation_matrix(b5[:, 0], b5[:, 1])[..., 2]
            self.radius = torch.atan(torch.hypot(torch.tan(b5[:, 2] / 2), torch.tan(b5[:, 3] / 2)))

    def caps_meet(self, other: _BoxGeometry, i: torch.Tensor | None = None) -> torch.Tensor:
        """(N, M) bool (or (M,) for row ``i``): may the boxes overlap at all?"""
        ca, ra = (self.centre, self.radius) if i is None else (self.centre[i], self.radius[i])
        dist = torch.acos((ca @ other.centre.T).clamp(-1, 1))
        return dist <= ra[..., None] + other.radius + 1e-9


def _pair_iou(ga: _BoxGeometry, gb: _BoxGeometry, ii: torch.Tensor, jj: torch.Tensor):
    """IoU of the pairs (ga[ii[k]], gb[jj[k]]), in chunks that bound the memory used."""
    values = []
    for s in range(0, ii.numel(), _PAIR_CHUNK):
        i, j = ii[s : s + _PAIR_CHUNK], jj[s : s + _PAIR_CHUNK]
        poly, edge, count = _clip_polygons(ga.corners[i], ga.normals[i], gb.normals[j])
        inter = _polygon_area(poly, edge, count)
        inter = torch.minimum(inter, torch.minimum(ga.area[i], gb.area[j]))
        union = ga.area[i] + gb.area[j] - inter
        values.append((inter / union.clamp_min(1e-300)).clamp(0.0, 1.0))
    return torch.cat(values)


def sph_iou_fov(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """FoV-IoU of every pair of BFoV boxes: a fast approximation of the spherical IoU.

    Args:
        boxes1: (N, 4) BFoV.
        boxes2: (M, 4) BFoV.

    Returns:
        (N, M) FoV-IoU in [0, 1], dtype of the boxes. Differentiable (almost everywhere).

    Raises:
        ShapeError: a set of boxes is not (N, 4) (rolled boxes have no FoV-IoU).
        ValueRangeError: a fov outside (0, pi), a lat outside [-pi/2, pi/2], or a non-finite
            value.

    Convention:
        FoV-IoU (Cao, Ikehata and Aizawa, "Field-of-View IoU for Object Detection in 360°
        Images", 2022): box areas are fov_x fov_y; box 2 is placed beside box 1 at horizontal
        offset ``wrap(lon2 - lon1) cos((lat1 + lat2) / 2)`` (the longitude difference is wrapped
        into [-pi, pi), so boxes at lon +179 and -179 degrees are 2 degrees apart) and vertical
        offset lat2 - lat1; the intersection is that of the two fov_x x fov_y rectangles in
        this plane. Close to :func:`sph_iou_exact` for boxes near the equator, rougher near
        the poles.

    Example:
        >>> a = torch.tensor([[math.radians(179), 0.0, 0.2, 0.2]])
        >>> b = torch.tensor([[math.radians(-179), 0.0, 0.2, 0.2]])
        >>> round(float(sph_iou_fov(a, b)), 3)
        0.703
    """
    _check_pair(boxes1, boxes2)
    for name, b in (("boxes1", boxes1), ("boxes2", boxes2)):
        if b.shape[-1] != 4:
            raise ShapeError(
                f"{name} must be (N, 4) BFoV for FoV-IoU (no roll), got {tuple(b.shape)}"
            )
        _as_rbfov(b, name)
    dtype = torch.promote_types(boxes1.dtype, boxes2.dtype)
    lon1, lat1, a1, b1 = (v[:, None] for v in boxes1.to(dtype).unbind(-1))
    lon2, lat2, a2, b2 = (v[None, :] for v in boxes2.to(dtype).unbind(-1))
    dx = wrap_lon(lon2 - lon1) * torch.cos((lat1 + lat2) / 2)
    dy = lat2 - lat1

    def overlap(size1, size2, offset):
        # Overlap of two intervals of those sizes with centres `offset` apart, written without
        # subtracting end points (exact for identical boxes, symmetric in its arguments).
        both = torch.minimum(torch.minimum(size1, size2), (size1 + size2) / 2 - offset.abs())
        return both.clamp_min(0)

    inter = overlap(a1, a2, dx) * overlap(b1, b2, dy)
    union = a1 * b1 + a2 * b2 - inter
    return (inter / union).clamp(0.0, 1.0)


_NMS_METHODS = ("exact", "fov")


def sph_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float,
    *,
    method: str = "exact",
    denominator: str = "union",
) -> torch.Tensor:
    """Greedy non-maximum suppression of spherical boxes, seam- and pole-safe.

    Args:
        boxes: (N, 4) BFoV or (N, 5) RBFoV (RBFoV needs ``method="exact"``).
        scores: (N,) scores, higher is better.
        iou_threshold: a box is dropped when its IoU with a kept, higher-scoring box is
            greater than this.
        method: "exact" (:func:`sph_iou_exact`) or "fov" (:func:`sph_iou_fov`, faster).
        denominator: "union" (IoU) or, with ``method="exact"``, "min": the intersection's area
            over the smaller box's (MTCNN's last stage), which also drops a small box lying
            inside a better one.

    Returns:
        (K,) int64 indices of the kept boxes, sorted by decreasing score (ties keep the input
        order), like ``torchvision.ops.nms``. Not differentiable.

    Raises:
        ShapeError: ``boxes`` not (N, 4) / (N, 5), ``scores`` not (N,), or RBFoV with "fov".
        ValueRangeError: invalid box values or a non-finite ``iou_threshold``.
        ValueError: unknown ``method``.

    Convention:
        IoU on the sphere, so a face detected twice, at lon +179.5 and -179.5 degrees (at both
        ends of the ERP), is one detection.

    Example:
        >>> boxes = torch.tensor([[math.radians(179.5), 0.0, 0.2, 0.2],
        ...                       [math.radians(-179.5), 0.0, 0.2, 0.2],
        ...                       [0.0, 0.0, 0.2, 0.2]])
        >>> sph_nms(boxes, torch.tensor([0.8, 0.9, 0.7]), 0.5).tolist()
        [1, 2]
    """
    check_choice(method, "method", _NMS_METHODS)
    check_choice(denominator, "denominator", ("union", "min"))
    if denominator == "min" and method != "exact":
        raise ValueError('denominator="min" needs method="exact" (FoV-IoU is not an area ratio)')
    _check_tensor(boxes, "boxes")
    if boxes.ndim != 2:
        raise ShapeError(f"boxes must be (N, 4) or (N, 5), got {tuple(boxes.shape)}")
    if not isinstance(scores, torch.Tensor) or scores.shape != (boxes.shape[0],):
        raise ShapeError(
            f"scores must be a ({boxes.shape[0]},) tensor, got "
            f"{tuple(getattr(scores, 'shape', ()))}"
        )
    if not math.isfinite(float(iou_threshold)):
        raise ValueRangeError(f"iou_threshold must be finite, got {iou_threshold!r}")
    boxes = boxes.detach()
    order = torch.sort(scores.detach(), descending=True, stable=True).indices
    if order.numel() == 0:
        return order
    ranked = boxes[order]
    n = len(order)
    # Pairs (i, j), i ranked above j, that overlap by more than the threshold.
    if method == "fov":
        ii, jj = torch.nonzero(
            torch.triu(sph_iou_fov(ranked, ranked) > iou_threshold, 1), as_tuple=True
        )
    else:
        geom = _BoxGeometry(_as_rbfov(ranked).to(torch.float64))
        ii, jj = torch.nonzero(torch.triu(geom.caps_meet(geom), 1), as_tuple=True)
        if ii.numel():
            overlap = _pair_iou(geom, geom, ii, jj)
            if denominator == "min":
                area = sph_box_area(ranked.to(torch.float64))
                # inter = IoU (a1 + a2) / (1 + IoU), since union = a1 + a2 - inter.
                inter = overlap * (area[ii] + area[jj]) / (1 + overlap)
                overlap = inter / torch.minimum(area[ii], area[jj]).clamp_min(1e-300)
            over = overlap > iou_threshold
            ii, jj = ii[over], jj[over]
    # Greedy pass over rows in rank order (nonzero lists them row by row).
    ii, jj = ii.cpu(), jj.cpu()
    starts = torch.searchsorted(ii, torch.arange(n + 1)).tolist()
    suppressed = [False] * n
    keep = []
    for i in range(n):
        if not suppressed[i]:
            keep.append(i)
            for j in jj[starts[i] : starts[i + 1]].tolist():
                suppressed[j] = True
    return order[torch.tensor(keep, dtype=torch.long, device=order.device)]
