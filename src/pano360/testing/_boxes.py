"""Box oracles: brute-force spherical IoU by sampling the sphere (the oracle of the exact and
FoV IoUs), planar overlap written out, and greedy NMS by its definition, one pair at a time."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from .._core import ShapeError, ValueRangeError, check_positive_int
from ..geometry import rotation_matrix

__all__ = ["box_iou_oracle", "nms_oracle", "sph_iou_sampled"]

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


def box_iou_oracle(
    box1: Sequence[float], box2: Sequence[float], denominator: str = "union"
) -> float:
    """Overlap of two planar ``(x1, y1, x2, y2)`` boxes, in plain Python.

    The oracle of :func:`pano360.detection.box_iou`: widths and heights are clamped at 0, the
    intersection is the overlap of the two x intervals times that of the y intervals, divided
    by the union (``"union"``) or by the smaller area (``"min"``); 0 where that is 0.

    Example:
        >>> box_iou_oracle((0, 0, 2, 2), (1, 0, 3, 2))
        0.3333333333333333
    """
    x1, y1, x2, y2 = (float(v) for v in box1)
    u1, v1, u2, v2 = (float(v) for v in box2)
    inter = max(0.0, min(x2, u2) - max(x1, u1)) * max(0.0, min(y2, v2) - max(y1, v1))
    area1 = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area2 = max(0.0, u2 - u1) * max(0.0, v2 - v1)
    denom = area1 + area2 - inter if denominator == "union" else min(area1, area2)
    return inter / denom if denom > 0 else 0.0


def nms_oracle(
    boxes: Sequence,
    scores: Sequence[float],
    iou_threshold: float,
    overlap: Callable[[list, list], float],
    classes: Sequence[int] | None = None,
) -> list[int]:
    """Greedy non-maximum suppression by its definition, one pair at a time (O(N^2) calls).

    The oracle of :func:`pano360.detection.nms`, ``batched_nms``, ``sph_nms`` and
    ``batched_sph_nms``: boxes are visited by decreasing score, ties by increasing index; a box
    is kept unless a box already kept, of the same class, overlaps it by more than
    ``iou_threshold``.

    Args:
        boxes: N boxes (a tensor or a sequence of rows), any format ``overlap`` understands.
        scores: N scores.
        iou_threshold: overlaps strictly above it suppress.
        overlap: ``overlap(kept_box, box) -> float``, called with rows as Python lists; the
            first argument is the higher-ranked box.
        classes: N class labels, or None for one class.

    Returns:
        The kept indices, by decreasing score.

    Example:
        >>> boxes = [[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]]
        >>> nms_oracle(boxes, [0.9, 0.8, 0.7], 0.5, box_iou_oracle)
        [0, 2]
        >>> nms_oracle(boxes, [0.9, 0.8, 0.7], 0.5, box_iou_oracle, classes=[0, 1, 0])
        [0, 1, 2]
    """
    rows = [b.tolist() if isinstance(b, torch.Tensor) else list(b) for b in boxes]
    scores = [float(v) for v in scores]
    classes = [0] * len(rows) if classes is None else [int(c) for c in classes]
    kept: list[int] = []
    for i in sorted(range(len(rows)), key=lambda i: (-scores[i], i)):
        suppressed = any(
            classes[k] == classes[i] and overlap(rows[k], rows[i]) > iou_threshold for k in kept
        )
        if not suppressed:
            kept.append(i)
    return kept
