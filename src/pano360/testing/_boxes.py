"""Brute-force spherical IoU by sampling the sphere: the oracle of the exact and FoV IoUs."""

from __future__ import annotations

import math

import torch

from .._core import ShapeError, ValueRangeError, check_positive_int
from ..geometry import rotation_matrix

__all__ = ["sph_iou_sampled"]

_CHUNK = 1 << 18
# 1 / golden ratio: the azimuth step of a spherical Fibonacci spiral.
_GOLDEN = (math.sqrt(5) - 1) / 2


def _parse(boxes: torch.Tensor, name: str):
    if not isinstance(boxes, torch.Tensor) or boxes.ndim != 2 or boxes.shape[-1] not in (4, 5):
        raise ShapeError(
            f"{name} must be an (N, 4) BFoV or (N, 5) RBFoV tensor, got "
            f"{tuple(getattr(boxes, 'shape', ()))}"
        )
    b = boxes.detach().to(torch.float64, copy=True)
    fov = b[:, 2:4]
    if not torch.isfinite(b).all() or ((fov <= 0) | (fov >= math.pi)).any():
        raise ValueRangeError(f"{name} must be finite with fov_x, fov_y in (0, pi)")
    roll = b[:, 4] if b.shape[1] == 5 else torch.zeros_like(b[:, 0])
    R = rotation_matrix(b[:, 0], b[:, 1], roll)  # camera to world
    return R, torch.tan(b[:, 2] / 2), torch.tan(b[:, 3] / 2)


def _inside(d: torch.Tensor, R: torch.Tensor, tx: float, ty: float) -> torch.Tensor:
    """Is each world direction (P, 3) seen by the pinhole camera R with those half-fov tangents?"""
    c = d @ R  # camera coordinates: R^T d for each row
    x, y, z = c.unbind(-1)
    return (z > 0) & (x.abs() <= tx * z) & (y.abs() <= ty * z)


def sph_iou_sampled(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    n: int = 1_000_000,
    seed: int = 0,
    *,
    stratified: bool = True,
) -> torch.Tensor:
    """Spherical IoU of every pair of boxes, estimated by sampling directions uniformly.

    A slow, obviously-correct oracle for :func:`pano360.geometry.sph_iou_exact`: for each pair,
    ``n`` directions are drawn uniformly on a spherical cap that contains both boxes (centred on
    box 1, reaching past the far corner of box 2), each is tested against the definition of a
    box (a pinhole camera sees it: z > 0, |x| <= tan(fov_x / 2) z, |y| <= tan(fov_y / 2) z in
    camera coordinates), and IoU = #(in both) / #(in either).

    Args:
        boxes1: (N, 4) BFoV or (N, 5) RBFoV, radians.
        boxes2: (M, 4) BFoV or (M, 5) RBFoV.
        n: directions per pair.
        seed: seed of the random draws (the same seed gives the same result).
        stratified: draw one direction in each of ``n`` equal-area bands of the cap, at azimuths
            of a randomly shifted Fibonacci spiral (every direction is still uniform within its
            band, so the estimate is unbiased, with far less noise: about 1e-4 with the default
            ``n`` for boxes that fill a good part of the cap). ``False`` draws ``n`` independent
            uniform directions (standard error sqrt(IoU (1 - IoU) / #union)).

    Returns:
        (N, M) float64 IoU estimates (0 where no sample falls in either box).

    Raises:
        ShapeError: a set of boxes is not (N, 4) or (N, 5).
        ValueRangeError: a fov outside (0, pi) or a non-finite value; ``n`` < 1.

    Example:
        >>> a = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
        >>> round(float(sph_iou_sampled(a, a, n=10_000)), 6)
        1.0
    """
    n = check_positive_int(n, "n")
    R1, tx1, ty1 = _parse(boxes1, "boxes1")
    R2, tx2, ty2 = _parse(boxes2, "boxes2")
    gen = torch.Generator().manual_seed(seed)
    out = torch.zeros(len(R1), len(R2), dtype=torch.float64)
    for i in range(len(R1)):
        for j in range(len(R2)):
            axis = R1[i][:, 2]
            # Cap radius: every point of box 1 is within its corner angle of its axis; box 2 is
            # within the axes' angle plus its own corner angle.
            r1 = math.atan(math.hypot(tx1[i], ty1[i]))
            r2 = math.atan(math.hypot(tx2[j], ty2[j]))
            gap = math.acos(max(-1.0, min(1.0, float(axis @ R2[j][:, 2]))))
            radius = min(math.pi, max(r1, gap + r2) + 1e-9)
            both = either = 0
            for start in range(0, n, _CHUNK):
                k = torch.arange(start, min(n, start + _CHUNK), dtype=torch.float64)
                if stratified:
                    u0, v0 = torch.rand(2, generator=gen, dtype=torch.float64).tolist()
                    u = (k + u0) / n
                    v = torch.remainder(k * _GOLDEN + v0, 1.0)
                else:
                    u = torch.rand(len(k), generator=gen, dtype=torch.float64)
                    v = torch.rand(len(k), generator=gen, dtype=torch.float64)
                # Uniform on the cap around +z: cos(polar angle) uniform in [cos r, 1].
                cz = 1 - u * (1 - math.cos(radius))
                sz = (1 - cz**2).clamp_min(0).sqrt()
                phi = 2 * math.pi * v
                local = torch.stack((sz * torch.cos(phi), sz * torch.sin(phi), cz), -1)
                d = local @ R1[i].T  # the camera frame of box 1 has its axis on the cap's axis
                a = _inside(d, R1[i], float(tx1[i]), float(ty1[i]))
                b = _inside(d, R2[j], float(tx2[j]), float(ty2[j]))
                both += int((a & b).sum())
                either += int((a | b).sum())
            out[i, j] = both / either if either else 0.0
    return out
