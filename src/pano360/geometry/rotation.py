"""Rotation matrices for aiming cameras and turning the sphere.

Convention: see :mod:`pano360.geometry.conventions` (yaw right, pitch up, roll clockwise;
camera-to-world R = R_yaw R_pitch R_roll in the left-handed frame x right, y up, z forward).
"""

from __future__ import annotations

import torch

from .._core import check_angle

__all__ = ["rotation_matrix"]


def rotation_matrix(
    yaw: float | torch.Tensor = 0.0,
    pitch: float | torch.Tensor = 0.0,
    roll: float | torch.Tensor = 0.0,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Camera-to-world rotation of a camera aimed by (yaw, pitch, roll).

    Args:
        yaw: radians, > 0 looks right. A float or a tensor; tensors broadcast together.
        pitch: radians, > 0 looks up.
        roll: radians, > 0 rolls the camera clockwise (its up vector turns to its right).
        dtype, device: used when no angle is a tensor (default dtype: torch's default).

    Warns:
        AngleUnitWarning: an angle larger than 2 pi in magnitude (degrees by mistake).

    Returns:
        (..., 3, 3) rotation matrices, ``...`` the broadcast shape of the angles. Differentiable
        with respect to tensor angles.

    Convention:
        R = R_yaw R_pitch R_roll (formulas in :mod:`pano360.geometry.conventions`); the camera's
        forward axis R[..., :, 2] points at (lon, lat) = (yaw, pitch). The inverse rotation is
        the transpose.

    Example:
        >>> import math
        >>> forward = rotation_matrix(math.pi / 2)[:, 2]  # after yaw 90 the camera looks right
        >>> [round(v, 6) + 0.0 for v in forward.tolist()]
        [1.0, 0.0, 0.0]
    """
    for value, name in ((yaw, "yaw"), (pitch, "pitch"), (roll, "roll")):
        check_angle(value, name)
    return _rotation_matrix(yaw, pitch, roll, dtype=dtype, device=device)


def _rotation_matrix(yaw, pitch, roll, *, dtype=None, device=None) -> torch.Tensor:
    """:func:`rotation_matrix` for angles already checked."""
    tensors = [a for a in (yaw, pitch, roll) if isinstance(a, torch.Tensor)]
    if tensors:
        dtype = dtype or torch.promote_types(tensors[0].dtype, torch.get_default_dtype())
        if not dtype.is_floating_point:
            dtype = torch.get_default_dtype()
        device = device or tensors[0].device
    y, p, r = (torch.as_tensor(a, dtype=dtype, device=device) for a in (yaw, pitch, roll))
    y, p, r = torch.broadcast_tensors(y, p, r)
    one, zero = torch.ones_like(y), torch.zeros_like(y)

    def stack(rows):
        return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)

    r_yaw = stack(((y.cos(), zero, y.sin()), (zero, one, zero), (-y.sin(), zero, y.cos())))
    r_pitch = stack(((one, zero, zero), (zero, p.cos(), p.sin()), (zero, -p.sin(), p.cos())))
    r_roll = stack(((r.cos(), r.sin(), zero), (-r.sin(), r.cos(), zero), (zero, zero, one)))
    return r_yaw @ r_pitch @ r_roll
