"""Perspective (pinhole) views of an ERP image, and pasting views back onto the sphere.

Convention: see :mod:`pano360.geometry.conventions` (fov edge to edge, principal point at the
image centre, yaw right / pitch up / roll clockwise, camera-to-world R = R_yaw R_pitch R_roll).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .._core import (
    ShapeError,
    ValueRangeError,
    as_batch_param,
    as_image,
    check_angle,
    check_choice,
    check_erp,
    check_hw,
)
from ._cache import GridCache
from .rotation import _rotation_matrix
from .sampling import (
    MODES,
    direction_grid,
    grid_dtype,
    plan_folded,
    sample_folded,
    shared_erp_directions,
)

__all__ = [
    "PastedView",
    "camera_rays",
    "erp_to_perspective",
    "perspective_to_erp",
    "view_pixel_coords",
    "view_pixel_rays",
]


class PastedView(NamedTuple):
    """What :func:`perspective_to_erp` returns: the view on the ERP grid and where it lies.

    Attributes:
        erp: (B, C, H, W) the view's content where it covers the sphere, 0 elsewhere.
        mask: (B, 1, H, W) 1 on ERP pixels whose centre the view covers, 0 elsewhere.
    """

    erp: torch.Tensor
    mask: torch.Tensor


def _view_params(fov, yaw, pitch, roll, batch: int, dtype, device):
    """Validate and batch fov and angles; return (tan(fov / 2), R) with shapes (B,), (B, 3, 3)."""
    for value, name in ((yaw, "yaw"), (pitch, "pitch"), (roll, "roll")):
        check_angle(value, name)
    fov = as_batch_param(fov, "fov", batch, dtype, device)
    bad = (fov.detach() <= 0) | (fov.detach() >= math.pi)
    if bad.any():
        raise ValueRangeError(
            f"fov must be in (0, pi) radians (0 and 180 degrees excluded), got "
            f"{fov.detach().tolist()}"
        )
    angles = [
        as_batch_param(a, n, batch, dtype, device)
        for a, n in ((yaw, "yaw"), (pitch, "pitch"), (roll, "roll"))
    ]
    return torch.tan(fov / 2), _rotation_matrix(*angles)


def _batch_size(images: torch.Tensor, *params) -> int:
    sizes = {images.shape[0]}
    for p in params:
        if isinstance(p, torch.Tensor) and p.ndim > 0:
            sizes.add(p.shape[0])
    sizes.discard(1)
    if len(sizes) > 1:
        raise ShapeError(
            f"batch sizes of the image and the fov/angles do not match: {sorted(sizes)}"
        )
    return sizes.pop() if sizes else 1


def view_pixel_rays(
    points: torch.Tensor, out_hw: Sequence[int], tan_half_fov: torch.Tensor
) -> torch.Tensor:
    """Camera-frame rays (not normalised) through pixel points of pinhole views.

    Args:
        points: (B, ..., 2) continuous pixel coordinates (x, y), pixel centres at integers.
        out_hw: (h, w) of the views.
        tan_half_fov: (B,) tan(fov / 2) of each view's horizontal field of view.

    Returns:
        (B, ..., 3) rays (x right, y up, z = 1 forward): pixel (u, v) gives
        ((2u + 1 - w) / w tan(fov/2), -(2v + 1 - h) / w tan(fov/2), 1).
    """
    h, w = out_hw
    t = tan_half_fov.view(-1, *([1] * (points.ndim - 2)))
    x = (2 * points[..., 0] + 1 - w) / w * t
    y = -(2 * points[..., 1] + 1 - h) / w * t
    return torch.stack((x, y, torch.ones_like(x)), dim=-1)


def view_pixel_coords(
    rays: torch.Tensor, out_hw: Sequence[int], tan_half_fov: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where camera-frame rays meet pinhole views: the inverse of :func:`view_pixel_rays`.

    Args:
        rays: (B, ..., 3) camera-frame directions (x right, y up, z forward), any length.
        out_hw: (h, w) of the views.
        tan_half_fov: (B,) tan(fov / 2) of each view's horizontal field of view.

    Returns:
        ``(points, inside)``: (B, ..., 2) pixel coordinates (u, v) (0 for rays not in front of
        the camera) and a (B, ...) bool, True where the ray is in front (z > 1e-6) and meets
        the image rectangle, edges included (-0.5 <= u <= w - 0.5, the same for v).
    """
    h, w = out_hw
    scale = w / tan_half_fov.view(-1, *([1] * (rays.ndim - 2)))
    x, y, z = rays.unbind(-1)
    front = z > 1e-6
    z_safe = torch.where(front, z, torch.ones_like(z))
    zero = torch.zeros_like(z)
    u = torch.where(front, ((x / z_safe) * scale + w - 1) / 2, zero)
    v = torch.where(front, ((-y / z_safe) * scale + h - 1) / 2, zero)
    with torch.no_grad():
        inside = front & (u >= -0.5) & (u <= w - 0.5) & (v >= -0.5) & (v <= h - 0.5)
    return torch.stack((u, v), dim=-1), inside


def camera_rays(out_hw: Sequence[int], tan_half_fov: torch.Tensor) -> torch.Tensor:
    """Camera-frame ray directions (not normalised) of every pixel of a pinhole view.

    Args:
        out_hw: (h, w) of the view.
        tan_half_fov: (B,) tan(fov / 2) of the horizontal field of view (edge to edge).

    Returns:
        (B, h, w, 3) rays (x right, y up, z = 1 forward); pixel (u, v) gives
        ((2u + 1 - w) / w tan(fov/2), -(2v + 1 - h) / w tan(fov/2), 1).
    """
    h, w = out_hw
    opts = {"dtype": tan_half_fov.dtype, "device": tan_half_fov.device}
    rows, cols = torch.meshgrid(torch.arange(h, **opts), torch.arange(w, **opts), indexing="ij")
    grid = torch.stack((cols, rows), dim=-1).expand(len(tan_half_fov), h, w, 2)
    return view_pixel_rays(grid, out_hw, tan_half_fov)


def erp_to_perspective(
    erp: torch.Tensor,
    fov: float | torch.Tensor,
    out_hw: Sequence[int],
    yaw: float | torch.Tensor = 0.0,
    pitch: float | torch.Tensor = 0.0,
    roll: float | torch.Tensor = 0.0,
    mode: str = "bilinear",
) -> torch.Tensor:
    """Render a pinhole view of an ERP image.

    Args:
        erp: (B, C, H, W) with W == 2H: a floating-point or uint8 tensor, or a numpy array
            (H, W, C) or (H, W) as py360convert takes it (:mod:`pano360.geometry.conventions`,
            Images).
        fov: horizontal field of view in radians, edge to edge, in (0, pi); float or (B,).
        out_hw: (h, w) of the view in pixels (square pixels, so the vertical fov follows).
        yaw, pitch, roll: camera angles in radians, float or (B,).
        mode: "nearest", "bilinear" or "bicubic".

    Returns:
        (B, C, h, w) in ``erp``'s form: a tensor of its dtype (uint8 rounded), or a numpy array
        (h, w, C) / (h, w) of its dtype. Differentiable with respect to a floating-point
        ``erp``, ``fov`` and the angles. A batch of 1 on the image or on the parameters
        broadcasts against the other.

    Raises:
        TypeError: ``erp`` is not an image (a path names itself: read it with
            :func:`pano360.io.read_image`), or of another dtype.
        ShapeError: ``erp`` is not (B, C, H, W) with W == 2H, or batch sizes disagree.
        ValueRangeError: ``fov`` is outside (0, pi).
        ValueError: unknown ``mode``.

    Warns:
        AngleUnitWarning: an angle larger than 2 pi in magnitude (degrees by mistake).

    Precision:
        Sampling coordinates are computed in the image's dtype (float32 images up to 4096
        pixels wide: within 6e-4 pixel of exact) and in float64 for wider float32 images
        (:func:`~pano360.geometry.sampling.grid_dtype`); no padded copy of the image is made.

    Convention:
        Yaw > 0 looks right, pitch > 0 looks up, roll > 0 rolls the camera clockwise
        (:mod:`pano360.geometry.conventions`); the view's centre (between the middle pixels)
        looks at (lon, lat) = (yaw, pitch). Inverse: :func:`perspective_to_erp`.

    Example:
        >>> erp = torch.rand(1, 3, 64, 128)
        >>> erp_to_perspective(erp, math.radians(90), (48, 64), yaw=0.5).shape
        torch.Size([1, 3, 48, 64])
    """
    erp, spec = as_image(erp, "erp")
    check_erp(erp)
    check_choice(mode, "mode", MODES)
    h, w = check_hw(out_hw, "out_hw")
    batch = _batch_size(erp, fov, yaw, pitch, roll)
    hw = tuple(erp.shape[-2:])
    if all(isinstance(v, (int, float)) for v in (fov, yaw, pitch, roll)):
        # Fixed geometry: reuse the sampling plan (one for the whole batch).
        _view_params(fov, yaw, pitch, roll, 1, erp.dtype, erp.device)  # checks only
        key = (float(fov), float(yaw), float(pitch), float(roll), (h, w), hw, mode, erp.dtype)
        key += (erp.device,)

        def build():
            opts = {"dtype": grid_dtype(erp.dtype, hw[1]), "device": erp.device}
            tan_half = torch.tensor([math.tan(fov / 2)], **opts)
            R = _rotation_matrix(yaw, pitch, roll, **opts)
            return plan_folded(view_grid(tan_half, R[None], (h, w)).to(erp.dtype), hw, mode)

        return spec.restore(sample_folded(erp, _VIEW_PLANS.get(key, build), mode))
    opts = (grid_dtype(erp.dtype, hw[1]), erp.device)
    tan_half, R = _view_params(fov, yaw, pitch, roll, batch, *opts)
    plan = plan_folded(view_grid(tan_half, R, (h, w)).to(erp.dtype), hw, mode)
    return spec.restore(sample_folded(erp, plan, mode))


_VIEW_PLANS = GridCache("erp_to_perspective sampling plans")


def view_grid(tan_half_fov: torch.Tensor, R: torch.Tensor, out_hw: Sequence[int]) -> torch.Tensor:
    """grid_sample coordinates, on an ERP image, of every pixel of pinhole views.

    Args:
        tan_half_fov: (B,) tan(fov / 2) of each view's horizontal field of view.
        R: (B, 3, 3) camera-to-world rotations.
        out_hw: (h, w) of the views.

    Returns:
        (B, h, w, 2) coordinates (:func:`~pano360.geometry.sampling.direction_grid`) of the
        world directions R ray of :func:`camera_rays`, in the dtype of the parameters,
        differentiable with respect to them. One fused pass: a world component is
        R[k, 0] u + (R[k, 1] v + R[k, 2]) with u along the columns and v along the rows, so
        no ray tensor is stored.
    """
    h, w = out_hw
    opts = {"dtype": tan_half_fov.dtype, "device": tan_half_fov.device}
    t = tan_half_fov.view(-1, 1, 1)
    u = (2 * torch.arange(w, **opts) + 1 - w).view(1, 1, w) / w * t
    v = -(2 * torch.arange(h, **opts) + 1 - h).view(1, h, 1) / w * t
    r = R[:, :, :, None, None]
    return direction_grid(*(r[:, k, 0] * u + (r[:, k, 1] * v + r[:, k, 2]) for k in range(3)))


def perspective_to_erp(
    img: torch.Tensor,
    fov: float | torch.Tensor,
    erp_hw: Sequence[int],
    yaw: float | torch.Tensor = 0.0,
    pitch: float | torch.Tensor = 0.0,
    roll: float | torch.Tensor = 0.0,
    mode: str = "bilinear",
) -> PastedView:
    """Paste a pinhole view onto an ERP canvas.

    Args:
        img: (B, C, h, w) perspective images: floating-point or uint8 tensors, or a numpy array
            (h, w, C) or (h, w) (:mod:`pano360.geometry.conventions`, Images).
        fov: horizontal field of view of ``img`` in radians, edge to edge, in (0, pi).
        erp_hw: (H, W) of the output ERP, W == 2H.
        yaw, pitch, roll: where the camera looked, radians, float or (B,).
        mode: "nearest", "bilinear" or "bicubic".

    Returns:
        A :class:`PastedView` ``(erp, mask)`` (a named tuple: unpack it or use ``.erp`` and
        ``.mask``): ``erp`` (B, C, H, W) is the view's content where it covers the sphere and 0
        elsewhere, in ``img``'s form (dtype; numpy (H, W, C) or (H, W)); ``mask`` (B, 1, H, W)
        is 1 on ERP pixels whose centre the view covers (its image rectangle, edges included)
        and 0 elsewhere, in ``img``'s floating dtype (float32 for uint8 input; numpy
        (H, W, 1) or (H, W)).

    Raises:
        TypeError: ``img`` is not an image (a path names itself), or of another dtype.
        ShapeError: ``img`` not 4-D, ``erp_hw`` not 2:1, or batch sizes disagree.
        ValueRangeError: ``fov`` is outside (0, pi).
        ValueError: unknown ``mode``.

    Warns:
        AngleUnitWarning: an angle larger than 2 pi in magnitude (degrees by mistake).

    Convention:
        Exact inverse mapping of :func:`erp_to_perspective` with the same parameters.

    Example:
        >>> from pano360.geometry import pixel_solid_angle
        >>> pasted = perspective_to_erp(torch.ones(1, 3, 32, 32), math.pi / 2, (64, 128))
        >>> area = (pasted.mask[0, 0] * pixel_solid_angle((64, 128))).sum() / (4 * math.pi)
        >>> round(area.item(), 2)  # a 90-degree square view is one cube face: 1/6 of the sphere
        0.17
    """
    img, spec = as_image(img, "img")
    if img.ndim != 4:
        raise ShapeError(f"img must be a (B, C, h, w) tensor, got {tuple(img.shape)}")
    check_choice(mode, "mode", MODES)
    erp_h, erp_w = check_hw(erp_hw, "erp_hw", erp=True)
    h, w = img.shape[-2:]
    batch = _batch_size(img, fov, yaw, pitch, roll)
    tan_half, R = _view_params(fov, yaw, pitch, roll, batch, img.dtype, img.device)
    dirs = shared_erp_directions((erp_h, erp_w), img.dtype, img.device)
    # World to camera: c = R^T d, i.e. d^T R for row vectors.
    cam = torch.einsum("hwi,bij->bhwj", dirs, R)
    points, inside = view_pixel_coords(cam, (h, w), tan_half)
    mask = inside[:, None].to(img.dtype)
    grid = (2 * points + 1) / points.new_tensor([w, h]) - 1
    img = img.expand(batch, *img.shape[1:])
    # Pixels in the outer half-pixel of the view read the edge value ("border"), as the view's
    # own pixels cover them.
    out = F.grid_sample(img, grid, mode=mode, padding_mode="border", align_corners=False)
    return PastedView(spec.restore(out * mask), spec.restore(mask, keep_float=True))
