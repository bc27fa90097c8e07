r"""Spherical boxes: BFoV and RBFoV regions, formats and conversions, outlines, areas and IoU.

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
differentiable with respect to the box parameters except where noted (ERP pixel boxes from
``erp_xyxy``).

Layout: formats and conversions (``_formats``), regions: areas, corners, outlines and masks
(``_regions``), the spherical polygon clipper and polygon areas (``_clip``), IoU (``_iou``);
validation and camera frames (``_frames``). Non-maximum suppression of spherical boxes is
:func:`pano360.detection.sph_nms` (one greedy NMS for planar and spherical boxes).
"""

from ._formats import BOX_FORMATS, box_convert
from ._frames import check_sph_boxes
from ._iou import sph_iou_exact, sph_iou_fov
from ._regions import box_corners, box_outline, box_outline_pixels, sph_box_area, sph_box_mask

__all__ = [
    "BOX_FORMATS",
    "box_convert",
    "box_corners",
    "box_outline",
    "box_outline_pixels",
    "check_sph_boxes",
    "sph_box_area",
    "sph_box_mask",
    "sph_iou_exact",
    "sph_iou_fov",
]
