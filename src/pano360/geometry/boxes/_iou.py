"""Spherical IoU of every pair of boxes: exact (by polygon clipping) and FoV-IoU.

Convention: see :mod:`pano360.geometry.boxes` (regions) and :mod:`pano360.geometry.conventions`.
"""

from __future__ import annotations

import torch

from ..._core import ShapeError, check_choice
from ..coords import wrap_lon
from ..rotation import rotation_matrix
from ._clip import _clip_polygons, _polygon_area
from ._frames import _as_rbfov, _check_tensor, _corners_xyz, _inward_normals
from ._regions import sph_box_area

__all__ = ["sph_iou_exact", "sph_iou_fov"]

#: ``sph_iou_exact``'s denominators: intersection over union, or over the smaller area.
IOU_DENOMINATORS: tuple[str, ...] = ("union", "min")
# Pairs of boxes whose exact IoU is computed in one go (bounds the memory of clipping).
_PAIR_CHUNK = 16384


def _check_pair(boxes1: torch.Tensor, boxes2: torch.Tensor):
    for name, b in (("boxes1", boxes1), ("boxes2", boxes2)):
        _check_tensor(b, name)
        if b.ndim != 2:
            raise ShapeError(f"{name} must be (N, 4) or (N, 5), got {tuple(b.shape)}")


def sph_iou_exact(
    boxes1: torch.Tensor, boxes2: torch.Tensor, denominator: str = "union"
) -> torch.Tensor:
    """Exact spherical IoU of every pair of boxes, by spherical polygon clipping.

    Args:
        boxes1: (N, 4) BFoV or (N, 5) RBFoV.
        boxes2: (M, 4) BFoV or (M, 5) RBFoV.
        denominator: "union" (IoU) or "min": area(A n B) over the smaller of area(A) and
            area(B) (MTCNN's last NMS), which is 1 for a box lying inside the other.

    Returns:
        (N, M) IoU = area(A n B) / area(A u B) on the unit sphere (or the "min" overlap), in
        [0, 1], dtype of the boxes. Differentiable with respect to both sets of boxes.

    Raises:
        ShapeError: a set of boxes is not (N, 4) or (N, 5).
        ValueRangeError: a fov outside (0, pi), a lat outside [-pi/2, pi/2], or a non-finite
            value.
        ValueError: unknown ``denominator``.

    Convention:
        Regions as in the module docstring; everything is done on unit vectors, so the seam and
        the poles are not special (boxes at lon +179 and -179 degrees overlap). How: box A is
        clipped by the four planes of box B (Sutherland-Hodgman on the sphere), the
        intersection's area is the sum of its fan triangles' spherical excess, and the union is
        area(A) + area(B) - area(A n B). Computed in float64; pairs whose bounding caps do not
        meet are skipped (IoU 0). Checked against :func:`pano360.testing.sph_iou_sampled`.

    Example:
        >>> import math
        >>> a = torch.tensor([[math.radians(179), 0.0, 0.2, 0.2]])
        >>> b = torch.tensor([[math.radians(-179), 0.0, 0.2, 0.2]])
        >>> round(float(sph_iou_exact(a, b)), 3)  # 2 degrees apart across the seam
        0.702
        >>> inner = torch.tensor([[math.radians(179.5), 0.0, 0.05, 0.05]])
        >>> sph_iou_exact(a, inner, denominator="min").tolist()
        [[1.0]]
    """
    check_choice(denominator, "denominator", IOU_DENOMINATORS)
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
        out = out.index_put((ii, jj), _pair_overlap(ga, gb, ii, jj, denominator))
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


def _pair_overlap(
    ga: _BoxGeometry, gb: _BoxGeometry, ii: torch.Tensor, jj: torch.Tensor, denominator: str
) -> torch.Tensor:
    """Overlaps of the pairs (ga[ii[k]], gb[jj[k]]), in chunks that bound the memory used."""
    values = []
    for s in range(0, ii.numel(), _PAIR_CHUNK):
        i, j = ii[s : s + _PAIR_CHUNK], jj[s : s + _PAIR_CHUNK]
        poly, edge, count = _clip_polygons(ga.corners[i], ga.normals[i], gb.normals[j])
        inter = _polygon_area(poly, edge, count)
        inter = torch.minimum(inter, torch.minimum(ga.area[i], gb.area[j]))
        if denominator == "union":
            denom = ga.area[i] + gb.area[j] - inter
        else:
            denom = torch.minimum(ga.area[i], gb.area[j])
        values.append((inter / denom.clamp_min(1e-300)).clamp(0.0, 1.0))
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
        >>> import math
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
