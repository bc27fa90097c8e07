r"""The sphere convention of pano360: the single source of truth.

Every geometry function in pano360 refers back to this page. It matches py360convert >= 1.0.4 and
PanorAi, so users can move between libraries; the two places where py360convert's *pixel grids*
differ from ours are spelled out at the end.

Units
    Radians in every Python API; a Python parameter takes degrees only when its name ends in
    ``_deg``. Degrees otherwise only at the command line and in file formats that use degrees.
    An angle in radians beyond 2 pi in magnitude (``yaw=90``) warns with
    :class:`~pano360.errors.AngleUnitWarning`.

3D frame
    x right, y up, z forward. The viewer sits at the centre of the unit sphere and looks along +z
    at lon = lat = 0. This frame is **left-handed** (x cross y = -z): "clockwise" below means
    clockwise as seen by that viewer.

Longitude and latitude
    lon = atan2(x, z) in [-pi, pi), positive to the right (east).
    lat = atan2(y, hypot(x, z)) in [-pi/2, pi/2], positive up.
    xyz = (cos lat sin lon, sin lat, cos lat cos lon).

ERP pixels
    An equirectangular (ERP) image has H rows and W == 2H columns. Continuous pixel coordinates
    (x, y) = (column, row) have pixel centres at integers::

        x = (lon / 2pi + 0.5) * W - 0.5        lon = ((x + 0.5) / W - 0.5) * 2pi
        y = (-lat / pi + 0.5) * H - 0.5        lat = (0.5 - (y + 0.5) / H) * pi

    Column 0 is at lon = -pi (its left edge), row 0 is next to the north pole, straight ahead
    (lon = 0) is at x = W/2 - 0.5, the boundary between columns W/2 - 1 and W/2.
    With ``torch.nn.functional.grid_sample(align_corners=False)`` the normalised grid is
    gx = lon / pi, gy = -2 lat / pi.

Seam and poles
    Columns wrap: x is taken modulo W. A row past the top (bottom) continues on the mirrored row
    shifted by W/2 columns: row -1-k at column c is row k at column c + W/2 (mod W), and
    likewise below row H-1. Samplers never pad with zeros and never clamp at the seam or the poles.

Rotations and views
    A perspective camera is aimed by (yaw, pitch, roll): yaw > 0 looks right, pitch > 0 looks up,
    roll > 0 rolls the camera clockwise (its up vector turns towards its right), so the scene
    appears turned counter-clockwise in the picture. These are py360convert's ``u_deg``,
    ``v_deg`` and ``in_rot_deg``. The camera-to-world rotation is::

        R = R_yaw @ R_pitch @ R_roll
        R_yaw   = [[cos y, 0, sin y], [0, 1, 0], [-sin y, 0, cos y]]      (about +y)
        R_pitch = [[1, 0, 0], [0, cos p, sin p], [0, -sin p, cos p]]      (about +x)
        R_roll  = [[cos r, sin r, 0], [-sin r, cos r, 0], [0, 0, 1]]      (about +z)

    so R @ (0, 0, 1) = xyz(lon=yaw, lat=pitch). A point with camera coordinates c is at world
    direction R @ c. Turning a whole ERP: ``rotate_erp(erp, yaw=, pitch=, roll=)`` brings what
    that camera sees to the front (the matrix form ``rotate_erp(erp, R)`` moves content from d to
    R d, so the camera form is ``rotate_erp(erp, R.T)``).

Pinhole views
    A view of w x h pixels with horizontal field of view ``fov`` (measured edge to edge) has
    fx = fy = (w / 2) / tan(fov / 2) and principal point ((w - 1) / 2, (h - 1) / 2) in pixel-centre
    coordinates. Pixel (u, v) looks along camera direction ((u - cx) / fx, -(v - cy) / fy, 1).
    The vertical field of view follows from the square pixels: tan(fov_y / 2) = tan(fov / 2) h / w.

Cube maps
    Faces F R B L U D (front, right, back, left, up, down), each a 90-degree pinhole view of
    face_w x face_w pixels with our pixel-centre rule, oriented as in py360convert. With face
    coordinates (a, b) in [-1, 1] (a to the right along the columns, b downwards along the rows)
    the face pixel (a, b) looks along::

        F: ( a, -b,  1)   R: ( 1, -b, -a)   B: (-a, -b, -1)
        L: (-1, -b,  a)   U: ( a,  1,  b)   D: ( a, -1, -b)

    i.e. the side faces are upright views at yaw 0, 90, 180, -90 degrees; U is seen looking up with
    the front face below it; D is seen looking down with the front face above it. Layouts:
    ``dice`` ((B, C, 3w, 4w), U above F, then L F R B on the middle row, D below F; the default
    everywhere, as at the CLI and in py360convert), ``dict`` ({"F": ..., ...}), ``list`` (six
    tensors in F R B L U D order) and ``horizon`` (one (B, C, w, 6w) strip in that order).

Images, boxes, saliency
    Images are tensors (B, C, H, W), float in [0, 1] inside the library; uint8 only at I/O.
    The public image functions also take uint8 tensors and numpy arrays (H, W, C) or (H, W) and
    give results back in that form (:mod:`pano360.geometry.conventions`, Images).
    Spherical boxes are BFoV = (lon, lat, fov_x, fov_y) in radians: the view of a pinhole camera
    aimed at (lon, lat) with those fields of view; RBFoV adds roll. Saliency maps are (B, 1, H, W),
    non-negative; fixations are (lon, lat) in radians.

Conversion to py360convert's pixel grids
    py360convert puts the *outermost pixel centres* of a perspective view on +-fov/2 (its grid is
    ``linspace(-tan(fov/2), tan(fov/2), w)``), while we measure fov edge to edge. A view of ours
    with horizontal fov ``f`` on w x h pixels equals ``py360convert.e2p`` called with
    ``fov_deg=(2 atan(tan(f/2) (w-1)/w), 2 atan(tan(f/2) (h-1)/w))`` in degrees, the same
    ``out_hw`` and ``u_deg=yaw``, ``v_deg=pitch``, ``in_rot_deg=roll``
    (:func:`py360convert_fov` computes it). Its cube faces (``e2c``) are views with the same
    outermost-centre rule, so our face of width w equals its face of width 2w + 1 at the odd
    rows and columns. Its ``c2e`` reads face pixel i at face coordinate 2i/w - 1 (half a pixel
    off its own ``e2c``) and writes an ERP grid of ``linspace(-pi, pi, W)`` by
    ``linspace(pi/2, -pi/2, H)``, which is not the pixel-centre rule above.
"""

from __future__ import annotations

import math

__all__ = ["CUBE_FACES", "py360convert_fov"]

#: Cube-map face names in their canonical order.
CUBE_FACES: tuple[str, ...] = ("F", "R", "B", "L", "U", "D")


def py360convert_fov(fov: float, out_hw: tuple[int, int]) -> tuple[float, float]:
    """Convert our edge-to-edge horizontal fov to py360convert's ``(h_fov_deg, v_fov_deg)``.

    Args:
        fov: horizontal field of view in radians, measured edge to edge (our convention).
        out_hw: the view's (h, w) in pixels.

    Returns:
        ``(h_fov_deg, v_fov_deg)`` in degrees: py360convert's fields of view between the
        outermost pixel centres, which make ``py360convert.e2p`` sample the same rays.

    Example:
        >>> [round(v, 4) for v in py360convert_fov(math.pi / 2, (2, 2))]
        [53.1301, 53.1301]
    """
    h, w = out_hw
    t = math.tan(fov / 2)
    return (
        math.degrees(2 * math.atan(t * (w - 1) / w)),
        math.degrees(2 * math.atan(t * (h - 1) / w)),
    )
