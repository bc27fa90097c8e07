"""Validation of spherical boxes and their camera frames: corners and edge planes.

Convention: see :mod:`pano360.geometry.boxes` (regions, corner order) and
:mod:`pano360.geometry.conventions`.
"""

from __future__ import annotations

import math

import torch

from ..._core import ShapeError, ValueRangeError
from ..rotation import rotation_matrix

__all__ = ["check_sph_boxes"]

# Latitudes this far past a pole are rounding, not a user error.
_LAT_TOL = 1e-6


def _check_tensor(boxes: torch.Tensor, name: str) -> None:
    if not isinstance(boxes, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(boxes).__name__}")
    if not boxes.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point tensor, got {boxes.dtype}")


def check_sph_boxes(boxes: torch.Tensor, name: str = "boxes") -> None:
    """Check that ``boxes`` are valid BFoV or RBFoV boxes; raise a typed error naming ``name``.

    Args:
        boxes: (..., 4) BFoV (lon, lat, fov_x, fov_y) or (..., 5) RBFoV (lon, lat, fov_x,
            fov_y, roll), radians.
        name: how the error messages call ``boxes``.

    Raises:
        TypeError: ``boxes`` is not a floating-point tensor.
        ShapeError: ``boxes`` is not (..., 4) or (..., 5).
        ValueRangeError: a value is not finite, a fov is outside (0, pi) or a lat outside
            [-pi/2, pi/2].

    Convention:
        lon and roll may be any finite value (they wrap); see :mod:`pano360.geometry.boxes`.

    Example:
        >>> try:
        ...     check_sph_boxes(torch.tensor([[0.0, 0.0, 40.0, 10.0]]), "faces")  # degrees
        ... except ValueRangeError as err:
        ...     print(err)
        faces fov_x and fov_y must be in (0, pi) radians, got [40.0, 10.0]
    """
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
    bad = (fov <= 0) | (fov >= math.pi)
    if bad.any():
        raise ValueRangeError(
            f"{name} fov_x and fov_y must be in (0, pi) radians, got {fov[bad][:4].tolist()}"
        )
    lat = values[..., 1]
    bad = lat.abs() > math.pi / 2 + _LAT_TOL
    if bad.any():
        raise ValueRangeError(
            f"{name} lat must be in [-pi/2, pi/2] radians, got {lat[bad][:4].tolist()}"
        )


def _as_rbfov(boxes: torch.Tensor, name: str = "boxes") -> torch.Tensor:
    """Validate (..., 4) BFoV or (..., 5) RBFoV boxes; return (..., 5) RBFoV."""
    check_sph_boxes(boxes, name)
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
