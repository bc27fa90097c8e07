"""Spherical caps: the directions within an angle of a centre, as bounds for things on the sphere.

A cap is a centre (lon, lat) and an angular radius rho: every direction d with
angle(d, centre) <= rho. Caps bound what a pinhole window pastes onto the sphere
(:func:`window_cap`), tell which ERP rows and columns something inside them can touch
(:func:`cap_footprint`), and keep things apart: two caps whose centres are more than the sum of
their radii apart cannot overlap (:func:`caps_apart`).

Convention: see :mod:`pano360.geometry.conventions` (lon right in [-pi, pi), lat up, the camera
frame x right / y up / z forward, camera-to-world R = R_yaw R_pitch R_roll; row i of an ERP
image spans latitudes pi/2 - pi i / H down to pi/2 - pi (i + 1) / H, column j longitudes
-pi + 2pi j / W to -pi + 2pi (j + 1) / W). Angles in radians. A cap may hold a pole or cross the
seam: nothing here treats them specially except :func:`cap_footprint`, which says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .._core import ShapeError, ValueRangeError, check_angle, check_hw, check_number
from .coords import lonlat_to_xyz, xyz_to_lonlat
from .rotation import rotation_matrix

__all__ = ["cap_footprint", "caps_apart", "window_cap"]


def _unit_rays(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(..., 3) unit camera-frame rays through the points (x, y) of the image plane z = 1."""
    r = torch.stack((x, y, torch.ones_like(x)), dim=-1)
    return r / torch.linalg.vector_norm(r, dim=-1, keepdim=True)


def _farthest_on_edges(
    centre: torch.Tensor, corners: torch.Tensor, order: Sequence[int]
) -> torch.Tensor:
    """(..., 4) the largest angle from ``centre`` (..., 3) to each edge's inner points.

    An edge of the window is an arc of the great circle through its ends; the angle to the
    centre peaks inside the arc only at the circle's point farthest from the centre (its
    other stationary point is the nearest one). 0 where that point is not inside the arc.
    """
    a = corners[..., list(order), :]
    b = a.roll(-1, dims=-2)  # each edge runs from a corner to the next one round the window
    normal = torch.linalg.cross(a, b)
    unit = normal / torch.linalg.vector_norm(normal, dim=-1, keepdim=True).clamp_min(1e-300)
    c = centre[..., None, :]
    # The farthest point of the circle: minus the centre's projection onto the circle's plane.
    far = -(c - (c * unit).sum(-1, keepdim=True) * unit)
    far = far / torch.linalg.vector_norm(far, dim=-1, keepdim=True).clamp_min(1e-300)
    within = (torch.linalg.cross(a, far) * normal).sum(-1) > 0
    within &= (torch.linalg.cross(far, b) * normal).sum(-1) > 0
    within &= torch.linalg.vector_norm(normal, dim=-1) > 0
    angle = torch.arccos((c * far).sum(-1).clamp(-1, 1))
    return torch.where(within, angle, torch.zeros_like(angle))


def window_cap(
    window: torch.Tensor,
    yaw: float | torch.Tensor = 0.0,
    pitch: float | torch.Tensor = 0.0,
    roll: float | torch.Tensor = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The cap centred on a pinhole window's centre that holds the whole window.

    The window is a rectangle of a camera's image plane (the plane z = 1 of its frame), e.g.
    what a photo taken by that camera covers; the camera is aimed by (yaw, pitch, roll). The cap
    is centred on the ray through the rectangle's centre and its radius is the largest angle
    from that ray to any point of the rectangle, so the cap holds every direction the window
    covers, and no smaller cap with that centre does.

    Args:
        window: (..., 4) floating tensor (x0, y0, x1, y1) with x0 <= x1 and y0 <= y1: the
            rectangle x0 <= x <= x1, y0 <= y <= y1 of the image plane (x right, y up; a pinhole
            view of horizontal field of view ``fov`` spans x in [-tan(fov / 2), tan(fov / 2)]).
        yaw, pitch, roll: the camera's angles in radians, floats or tensors broadcasting with
            ``window[..., 0]``.

    Returns:
        ``(centre, radius)``: centre (..., 2) (lon, lat) of the ray through
        ((x0 + x1) / 2, (y0 + y1) / 2), and radius (...) in [0, pi), both in the window's dtype.

    Raises:
        ShapeError: ``window`` is not a floating tensor of shape (..., 4).
        ValueRangeError: a bound is not finite, or x0 > x1 or y0 > y1.

    Warns:
        AngleUnitWarning: an angle larger than 2 pi in magnitude (degrees by mistake).

    Convention:
        The image-plane point (x, y) is the world direction R (x, y, 1), R =
        :func:`~pano360.geometry.rotation_matrix` (yaw, pitch, roll): the window (-t, -t, t, t)
        is centred on (lon, lat) = (yaw, pitch), and with roll > 0 its top turns clockwise. The
        farthest point is a corner while the radius is at most pi/2 (a cap that small meets the
        plane in a convex set, which holds the rectangle when it holds the corners); beyond, it
        may lie inside an edge, and the edges' farthest points are included.

    Example:
        >>> t = math.tan(math.radians(45))  # a 90 x 90 degree view, aimed right and up
        >>> centre, radius = window_cap(torch.tensor([-t, -t, t, t], dtype=torch.float64),
        ...                             yaw=math.pi / 2, pitch=0.3)
        >>> [round(v, 4) for v in centre.tolist()], round(math.degrees(radius), 2)
        ([1.5708, 0.3], 54.74)
    """
    if not isinstance(window, torch.Tensor) or window.ndim < 1 or window.shape[-1] != 4:
        shape = tuple(window.shape) if isinstance(window, torch.Tensor) else type(window).__name__
        raise ShapeError(f"window must be a (..., 4) tensor (x0, y0, x1, y1), got {shape}")
    if not window.is_floating_point():
        raise ShapeError(f"window must be a floating tensor, got {window.dtype}")
    x0, y0, x1, y1 = window.unbind(-1)
    if not (torch.isfinite(window).all() and (x0 <= x1).all() and (y0 <= y1).all()):
        raise ValueRangeError(
            f"window must hold finite (x0, y0, x1, y1) with x0 <= x1 and y0 <= y1, got "
            f"{window.tolist() if window.numel() <= 16 else 'values outside that'}"
        )
    centre = _unit_rays((x0 + x1) / 2, (y0 + y1) / 2)
    # Corners in order round the rectangle: (x0, y0), (x0, y1), (x1, y0), (x1, y1).
    corners = torch.stack(
        [_unit_rays(x, y) for x in (x0, x1) for y in (y0, y1)], dim=-2
    )  # (..., 4, 3)
    # c^T A^T row by row, not A c: the same rounding as one matrix-vector product per window.
    cos = (centre[..., None, :] @ corners.mT)[..., 0, :]
    radius = torch.arccos(cos.clamp(-1, 1)).amax(-1)
    wide = radius > math.pi / 2
    if bool(wide.any()):
        edges = _farthest_on_edges(centre, corners, (0, 1, 3, 2)).amax(-1)
        radius = torch.where(wide, torch.maximum(radius, edges), radius)
    R = rotation_matrix(yaw, pitch, roll, dtype=window.dtype, device=window.device)
    world = (centre[..., None, :] @ R.mT)[..., 0, :]
    return xyz_to_lonlat(world), radius


def cap_footprint(
    centre: Sequence[float] | torch.Tensor, radius: float, erp_hw: Sequence[int]
) -> tuple[slice, slice | torch.Tensor]:
    """The ERP rows and columns a cap can touch.

    Every pixel whose centre lies in the cap is in ``erp[..., rows, cols]``; a few more are
    (a margin of one row and one column, and whole rows near a pole), never fewer. Use it to
    evaluate something only where a cap can reach, e.g. a paste that a full-sphere pass would
    make ten times slower.

    Args:
        centre: (lon, lat) of the cap in radians (a pair of numbers or a (2,) tensor), lat in
            [-pi/2, pi/2].
        radius: angular radius in radians, >= 0.
        erp_hw: (H, W) of the ERP image, W == 2H.

    Returns:
        ``(rows, cols)``: ``rows`` a slice of rows; ``cols`` either ``slice(None)`` (every
        column: the cap holds a pole, or reaches round it, or spans the whole width) or a (n,)
        long tensor of column indices in [0, W), ordered from the cap's west edge eastwards and
        wrapped at the seam.

    Raises:
        ShapeError: ``erp_hw`` is not a 2:1 size.
        ValueRangeError: ``centre`` is not a finite (lon, lat) with |lat| <= pi/2, or ``radius``
            is negative or not finite.

    Warns:
        AngleUnitWarning: an angle larger than 2 pi in magnitude (degrees by mistake).

    Convention:
        Rows from the cap's latitude extent lat - rho to lat + rho (a cap reaches no further
        north or south); columns from its longitude extent lon +- asin(sin rho / cos lat), the
        widest a cap that holds no pole reaches (at latitude asin(sin lat / cos rho)). A cap
        holds a pole when lat + rho >= pi/2 or lat - rho <= -pi/2; then, and when sin rho >=
        cos lat, every column.

    Example:
        >>> rows, cols = cap_footprint((math.pi, 0.0), math.radians(10), (18, 36))
        >>> rows, cols.tolist()  # 10 degrees round the seam at the equator
        (slice(7, 11, None), [34, 35, 0, 1])
    """
    h, w = check_hw(erp_hw, "erp_hw", erp=True)
    if isinstance(centre, torch.Tensor):
        centre = centre.tolist()
    try:
        lon, lat = centre
    except (TypeError, ValueError):
        raise ValueRangeError(f"centre must be a pair (lon, lat), got {centre!r}") from None
    lon = check_angle(check_number(lon, "centre lon"), "centre lon")
    lat = check_number(lat, "centre lat", lo=-math.pi / 2, hi=math.pi / 2)
    rho = check_angle(check_number(radius, "radius", lo=0.0), "radius")
    top, bottom = lat + rho, lat - rho
    # Row r spans latitudes pi/2 - pi r / h down to pi/2 - pi (r + 1) / h.
    r0 = max(0, math.floor((math.pi / 2 - top) / math.pi * h) - 1)
    r1 = min(h, math.ceil((math.pi / 2 - bottom) / math.pi * h) + 1)
    rows = slice(r0, r1)
    if top >= math.pi / 2 or bottom <= -math.pi / 2 or math.sin(rho) >= math.cos(lat):
        return rows, slice(None)  # the cap holds a pole or reaches round it: every column
    half = math.asin(math.sin(rho) / math.cos(lat))
    c0 = math.floor(((lon - half) / (2 * math.pi) + 0.5) * w) - 1
    c1 = math.ceil(((lon + half) / (2 * math.pi) + 0.5) * w) + 1
    if c1 - c0 >= w:
        return rows, slice(None)
    return rows, torch.remainder(torch.arange(c0, c1), w)


def caps_apart(
    centres1: torch.Tensor,
    radii1: torch.Tensor,
    centres2: torch.Tensor,
    radii2: torch.Tensor,
    gap: float = 0.0,
) -> torch.Tensor:
    """Which pairs of caps keep more than ``gap`` apart (so never overlap).

    Args:
        centres1: (N, 2) (lon, lat) of the first caps, radians.
        radii1: (N,) their angular radii.
        centres2: (M, 2) (lon, lat) of the second caps.
        radii2: (M,) their radii.
        gap: least angle required between the two caps, radians (negative: that much overlap
            is allowed).

    Returns:
        (N, M) bool: True where angle(centre1_i, centre2_j) > radius1_i + radius2_j + gap, i.e.
        every direction of one cap is more than ``gap`` from every direction of the other.

    Raises:
        ShapeError: shapes other than the above.
        ValueRangeError: ``gap`` is not a finite number.

    Warns:
        AngleUnitWarning: an angle larger than 2 pi in magnitude (degrees by mistake).

    Convention:
        Angles between centres as arccos of their unit vectors' dot product (in the inputs'
        dtype; use float64 for caps a few microradians apart). The seam and the poles are not
        special: caps at lon 179 and -179 degrees are 2 degrees apart.

    Example:
        >>> c = torch.tensor([[math.radians(179), 0.0]], dtype=torch.float64)
        >>> d = torch.tensor([[math.radians(-179), 0.0], [0.0, 0.0]], dtype=torch.float64)
        >>> r = torch.tensor([math.radians(0.9)], dtype=torch.float64)
        >>> caps_apart(c, r, d, torch.cat((r, r))).tolist()  # across the seam: 2 degrees apart
        [[True, True]]
        >>> caps_apart(c, r, d, torch.cat((r, r)), gap=math.radians(0.5)).tolist()
        [[False, True]]
    """
    for name, t, n in (("centres1", centres1, 2), ("centres2", centres2, 2)):
        if not isinstance(t, torch.Tensor) or t.ndim != 2 or t.shape[-1] != n:
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ShapeError(f"{name} must be an (N, 2) tensor of (lon, lat), got {got}")
    for name, r, c in (("radii1", radii1, centres1), ("radii2", radii2, centres2)):
        if not isinstance(r, torch.Tensor) or r.shape != c.shape[:1]:
            got = tuple(r.shape) if isinstance(r, torch.Tensor) else type(r).__name__
            raise ShapeError(f"{name} must be a ({c.shape[0]},) tensor, got {got}")
    gap = check_angle(check_number(gap, "gap"), "gap")
    check_angle(radii1, "radii1")
    check_angle(radii2, "radii2")
    xyz1, xyz2 = lonlat_to_xyz(centres1), lonlat_to_xyz(centres2)
    # x1 x2^T: for one first cap, the same rounding as one matrix-vector product.
    angles = torch.arccos((xyz1 @ xyz2.T).clamp(-1, 1))
    return angles > radii2[None, :] + radii1[:, None] + gap
