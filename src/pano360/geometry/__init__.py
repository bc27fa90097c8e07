"""Sphere geometry: coordinates, rotations, projections and sampling of ERP images.

Everything here follows the one sphere convention written in :mod:`pano360.geometry.conventions`.
Functions are batched, device-agnostic, work in float32 and float64 and are differentiable with
respect to images and angles.
"""

from .area import pixel_solid_angle
from .boxes import (
    BOX_FORMATS,
    box_convert,
    box_corners,
    box_outline,
    box_outline_pixels,
    check_sph_boxes,
    sph_box_area,
    sph_box_mask,
    sph_iou_exact,
    sph_iou_fov,
)
from .caps import cap_footprint, caps_apart, window_cap
from .conventions import CUBE_FACES, py360convert_fov
from .coords import (
    MAP_GRIDS,
    angle_between,
    erp_lonlat_grid,
    fold_rows,
    lonlat_to_pixel,
    lonlat_to_pixel_index,
    lonlat_to_xyz,
    pixel_to_lonlat,
    strided_lonlat_grid,
    wrap_lon,
    xyz_to_lonlat,
)
from .cubemap import (
    CUBE_LAYOUTS,
    cube_face_directions,
    cubemap_from_faces,
    cubemap_to_erp,
    cubemap_to_faces,
    erp_to_cubemap,
    sample_cube_faces,
)
from .padding import spherical_pad
from .perspective import (
    PastedView,
    camera_rays,
    erp_to_perspective,
    perspective_to_erp,
    view_pixel_coords,
    view_pixel_rays,
)
from .resize import RESIZE_MODES, erp_pyramid, resize_erp
from .rotation import rotation_matrix
from .sampling import MODES, erp_directions, rotate_erp, sample_erp
from .views import BLENDS, ViewRig, merge_views, render_views, view_coverage

__all__ = [
    "BLENDS",
    "BOX_FORMATS",
    "CUBE_FACES",
    "CUBE_LAYOUTS",
    "MAP_GRIDS",
    "MODES",
    "RESIZE_MODES",
    "PastedView",
    "ViewRig",
    "angle_between",
    "box_convert",
    "box_corners",
    "box_outline",
    "box_outline_pixels",
    "camera_rays",
    "cap_footprint",
    "caps_apart",
    "check_sph_boxes",
    "cube_face_directions",
    "cubemap_from_faces",
    "cubemap_to_erp",
    "cubemap_to_faces",
    "erp_directions",
    "erp_lonlat_grid",
    "erp_pyramid",
    "erp_to_cubemap",
    "erp_to_perspective",
    "fold_rows",
    "lonlat_to_pixel",
    "lonlat_to_pixel_index",
    "lonlat_to_xyz",
    "merge_views",
    "perspective_to_erp",
    "pixel_solid_angle",
    "pixel_to_lonlat",
    "py360convert_fov",
    "render_views",
    "resize_erp",
    "rotate_erp",
    "rotation_matrix",
    "sample_cube_faces",
    "sample_erp",
    "sph_box_area",
    "sph_box_mask",
    "sph_iou_exact",
    "sph_iou_fov",
    "spherical_pad",
    "strided_lonlat_grid",
    "view_coverage",
    "view_pixel_coords",
    "view_pixel_rays",
    "window_cap",
    "wrap_lon",
    "xyz_to_lonlat",
]
