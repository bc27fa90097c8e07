"""Regions of spherical boxes: areas, corners, outlines (on the sphere and cut at the ERP seam)
and pixel masks.

Convention: see :mod:`pano360.geometry.boxes` (regions, corner order) and
:mod:`pano360.geometry.conventions`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..._core import ShapeError, check_choice, check_hw, check_positive_int
from ..coords import lonlat_to_pixel, wrap_lon, xyz_to_lonlat
from ..sampling import shared_erp_directions
from ._formats import BOX_FORMATS, _check_xyxy, _rbfov_to_xyxy, box_convert
from ._frames import _as_rbfov, _check_tensor, _corners_xyz, _inward_normals

__all__ = [
    "box_corners",
    "box_outline",
    "box_outline_pixels",
    "sph_box_area",
    "sph_box_mask",
]


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
    dirs = shared_erp_directions((h, w), torch.float64, boxes.device)
    # Only the rows of each box's tight ERP rectangle can be inside it.
    rows = _rbfov_to_xyxy(b5, (h, w))[:, 1::2]
    first = rows[:, 0].floor().clamp(0, h - 1).long().tolist()
    last = rows[:, 1].ceil().clamp(0, h - 1).long().tolist()
    mask = torch.zeros(len(b5), h, w, dtype=torch.bool, device=boxes.device)
    for i in range(len(b5)):
        band = dirs[first[i] : last[i] + 1]
        mask[i, first[i] : last[i] + 1] = (band @ normals[i].T >= 0).all(-1)
    return mask
