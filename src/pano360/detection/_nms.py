"""Greedy non-maximum suppression: one core for planar and spherical boxes, with class groups.

Every NMS here is the same greedy rule over a pairwise overlap: boxes are visited by decreasing
score (ties: lower index first), and a box is kept unless a kept box of the same class (group)
overlaps it by more than ``iou_threshold``. Only the overlap differs:

- :func:`nms`, :func:`batched_nms`: planar (N, 4) xyxy boxes, :func:`~pano360.detection.box_iou`
  (intersection over union or over the smaller area).
- :func:`sph_nms`, :func:`batched_sph_nms`: spherical (N, 4) BFoV / (N, 5) RBFoV boxes,
  :func:`~pano360.geometry.sph_iou_exact` or :func:`~pano360.geometry.sph_iou_fov`, so the seam
  and the poles are not special.

Classes never suppress each other: the result equals running the single-class NMS on each class
and merging the kept boxes by score (torchvision's ``batched_nms``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .._core import ShapeError, check_choice, check_number
from ..geometry import check_sph_boxes, sph_iou_exact, sph_iou_fov
from ._ops import IOU_DENOMINATORS, _check_boxes, _overlap

__all__ = [
    "SPH_NMS_METHODS",
    "batched_nms",
    "batched_sph_nms",
    "nms",
    "sph_nms",
]

#: ``sph_nms``'s overlaps: exact spherical IoU, or the faster FoV-IoU.
SPH_NMS_METHODS: tuple[str, ...] = ("exact", "fov")

# Overlaps computed at once: rows (boxes in rank order) x columns (boxes not yet suppressed).
# Up to 2048 boxes the whole matrix is one block; past that the rows are cut into blocks so
# memory stays bounded.
_PAIRS_PER_BLOCK = 2048 * 2048

_Overlap = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_inputs(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    classes: torch.Tensor | None,
    iou_threshold: float,
    *,
    spherical: bool,
    classes_name: str = "classes",
) -> float:
    """Validate NMS inputs; return the threshold as a float."""
    if spherical:
        if isinstance(boxes, torch.Tensor) and (boxes.ndim != 2 or boxes.shape[1] not in (4, 5)):
            raise ShapeError(f"boxes must be (N, 4) BFoV or (N, 5) RBFoV, got {tuple(boxes.shape)}")
        check_sph_boxes(boxes, "boxes")
    else:
        _check_boxes(boxes)
    n = boxes.shape[0]
    if not isinstance(scores, torch.Tensor) or scores.shape != (n,):
        raise ShapeError(f"scores must be ({n},), got {tuple(getattr(scores, 'shape', ()))}")
    if scores.dtype.is_complex or scores.dtype == torch.bool:
        raise TypeError(f"scores must be a real tensor, got {scores.dtype}")
    if classes is not None:
        if not isinstance(classes, torch.Tensor) or classes.shape != (n,):
            got = tuple(getattr(classes, "shape", ()))
            raise ShapeError(f"{classes_name} must be ({n},), got {got}")
        if not _is_integer(classes.dtype):
            raise TypeError(f"{classes_name} must be an integer tensor, got {classes.dtype}")
    return check_number(iou_threshold, "iou_threshold", lo=0, hi=1)  # type: ignore[return-value]


def _is_integer(dtype: torch.dtype) -> bool:
    return not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)


def _greedy_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    classes: torch.Tensor | None,
    threshold: float,
    overlap: _Overlap,
) -> torch.Tensor:
    """The one greedy NMS: rank by score, then suppress within each class; (K,) int64."""
    order = torch.sort(scores.detach().to(boxes.device), descending=True, stable=True).indices
    ranked = boxes.detach()[order]
    if classes is None:
        return order[_greedy_ranked(ranked, threshold, overlap)]
    ranked_classes = classes.to(boxes.device)[order]
    # Positions (in rank order) grouped by class, rank order kept within each class.
    by_class = torch.sort(ranked_classes, stable=True).indices
    counts = torch.unique_consecutive(ranked_classes[by_class], return_counts=True)[1].tolist()
    kept, start = [], 0
    for count in counts:
        members = by_class[start : start + count]
        start += count
        if count > 1:
            members = members[_greedy_ranked(ranked[members], threshold, overlap)]
        kept.append(members)
    if not kept:
        return order
    return order[torch.sort(torch.cat(kept)).values]


def _greedy_ranked(ranked: torch.Tensor, threshold: float, overlap: _Overlap) -> torch.Tensor:
    """Greedy NMS of one class of boxes already in rank order; (K,) int64 positions kept.

    Rows are taken in blocks of the first not-yet-suppressed boxes; each block's overlaps with
    every box not yet suppressed from the block on are computed at once, then walked in order.
    """
    n = ranked.shape[0]
    removed = torch.zeros(n, dtype=torch.bool)
    keep: list[int] = []
    start = 0
    while start < n:
        alive = torch.nonzero(~removed[start:]).flatten() + start
        if alive.numel() == 0:
            break
        rows = max(1, min(alive.numel(), _PAIRS_PER_BLOCK // alive.numel()))
        cols = alive.to(ranked.device)
        hits = (overlap(ranked[cols[:rows]], ranked[cols]) > threshold).cpu().numpy()
        positions = alive[:rows].tolist()
        gone = np.zeros(alive.numel(), dtype=bool)
        for r in range(rows):
            if not gone[r]:
                keep.append(positions[r])
                gone[r + 1 :] |= hits[r, r + 1 :]
        removed[alive] = torch.from_numpy(gone)
        start = positions[-1] + 1
    return torch.tensor(keep, dtype=torch.long, device=ranked.device)


def nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float,
    groups: torch.Tensor | None = None,
    denominator: str = "union",
) -> torch.Tensor:
    """Greedy non-maximum suppression of planar boxes, optionally independent per group.

    Boxes are visited by decreasing score (ties: lower index first); a box is kept unless a kept
    box of the same group overlaps it by more than ``iou_threshold``.

    Args:
        boxes: (N, 4) xyxy boxes.
        scores: (N,) scores, higher is better.
        iou_threshold: in [0, 1]; overlaps strictly above it suppress.
        groups: (N,) integer group of each box (e.g. the image index), or None for one group.
        denominator: "union" (IoU) or "min" (intersection over the smaller area).

    Returns:
        (K,) int64 indices of the kept boxes, by decreasing score, on the boxes' device. Not
        differentiable.

    Raises:
        ShapeError: ``boxes`` is not (N, 4), or ``scores`` / ``groups`` are not (N,).
        TypeError: ``groups`` is not an integer tensor, or ``scores`` not a real one.
        ValueRangeError: ``iou_threshold`` is not a number in [0, 1].
        ValueError: unknown ``denominator``.

    Convention:
        xyxy boxes, pixel centres at integers (:mod:`pano360.detection`'s box operations).

    Example:
        >>> boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]])
        >>> nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
        tensor([0, 2])
    """
    threshold = _check_inputs(
        boxes, scores, groups, iou_threshold, spherical=False, classes_name="groups"
    )
    check_choice(denominator, "denominator", IOU_DENOMINATORS)
    return _greedy_nms(boxes, scores, groups, threshold, _planar_overlap(denominator))


def batched_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    classes: torch.Tensor,
    iou_threshold: float,
    *,
    denominator: str = "union",
) -> torch.Tensor:
    """Greedy NMS of planar boxes within each class: boxes of different classes never suppress
    each other (torchvision's ``batched_nms``).

    Args:
        boxes: (N, 4) xyxy boxes.
        scores: (N,) scores.
        classes: (N,) integer class (or image, or any group) of each box.
        iou_threshold: in [0, 1]; overlaps strictly above it suppress.
        denominator: "union" (IoU) or "min" (intersection over the smaller area).

    Returns:
        (K,) int64 indices of the kept boxes, by decreasing score: the kept boxes of
        :func:`nms` run on each class alone, merged.

    Raises:
        ShapeError: ``boxes`` is not (N, 4), or ``scores`` / ``classes`` are not (N,).
        TypeError: ``classes`` is not an integer tensor, or ``scores`` not a real one.
        ValueRangeError: ``iou_threshold`` is not a number in [0, 1].
        ValueError: unknown ``denominator``.

    Example:
        >>> boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11]])
        >>> scores = torch.tensor([0.9, 0.8])
        >>> batched_nms(boxes, scores, torch.tensor([0, 0]), 0.5).tolist()
        [0]
        >>> batched_nms(boxes, scores, torch.tensor([0, 1]), 0.5).tolist()  # a face, a person
        [0, 1]
    """
    threshold = _check_inputs(boxes, scores, classes, iou_threshold, spherical=False)
    check_choice(denominator, "denominator", IOU_DENOMINATORS)
    return _greedy_nms(boxes, scores, classes, threshold, _planar_overlap(denominator))


def _planar_overlap(denominator: str) -> _Overlap:
    return lambda a, b: _overlap(a, b, denominator)


def _sph_overlap(boxes: torch.Tensor, method: str, denominator: str):
    """The boxes to rank (float64 for the exact IoU) and their pairwise overlap."""
    check_choice(method, "method", SPH_NMS_METHODS)
    check_choice(denominator, "denominator", IOU_DENOMINATORS)
    if method == "fov":
        if denominator == "min":
            raise ValueError(
                'denominator="min" needs method="exact" (FoV-IoU is not an area ratio)'
            )
        if boxes.shape[-1] == 5:
            raise ShapeError(
                f'boxes must be (N, 4) BFoV with method="fov" (FoV-IoU has no roll), got '
                f"{tuple(boxes.shape)}"
            )
        return boxes, sph_iou_fov
    return boxes.to(torch.float64), lambda a, b: sph_iou_exact(a, b, denominator)


def sph_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float,
    *,
    method: str = "exact",
    denominator: str = "union",
) -> torch.Tensor:
    """Greedy non-maximum suppression of spherical boxes, seam- and pole-safe.

    Args:
        boxes: (N, 4) BFoV or (N, 5) RBFoV, radians (RBFoV needs ``method="exact"``).
        scores: (N,) scores, higher is better.
        iou_threshold: in [0, 1]; a box is dropped when its overlap with a kept,
            higher-scoring box is greater than this.
        method: "exact" (:func:`~pano360.geometry.sph_iou_exact`) or "fov"
            (:func:`~pano360.geometry.sph_iou_fov`, faster).
        denominator: "union" (IoU) or, with ``method="exact"``, "min": the intersection's area
            over the smaller box's (MTCNN's last stage), which also drops a small box lying
            inside a better one.

    Returns:
        (K,) int64 indices of the kept boxes, sorted by decreasing score (ties keep the input
        order), like ``torchvision.ops.nms``. Not differentiable.

    Raises:
        ShapeError: ``boxes`` not (N, 4) / (N, 5), ``scores`` not (N,), or RBFoV with "fov".
        TypeError: ``boxes`` not a floating-point tensor, or ``scores`` not a real one.
        ValueRangeError: invalid box values (see :func:`~pano360.geometry.check_sph_boxes`), or
            ``iou_threshold`` not a number in [0, 1].
        ValueError: unknown ``method`` or ``denominator``, or "min" with "fov".

    Convention:
        Overlaps on the sphere, so a face detected twice, at lon +179.5 and -179.5 degrees (at
        both ends of the ERP), is one detection; the exact IoU is computed in float64.

    Example:
        >>> import math
        >>> boxes = torch.tensor([[math.radians(179.5), 0.0, 0.2, 0.2],
        ...                       [math.radians(-179.5), 0.0, 0.2, 0.2],
        ...                       [0.0, 0.0, 0.2, 0.2]])
        >>> sph_nms(boxes, torch.tensor([0.8, 0.9, 0.7]), 0.5).tolist()
        [1, 2]
    """
    threshold = _check_inputs(boxes, scores, None, iou_threshold, spherical=True)
    boxes, overlap = _sph_overlap(boxes, method, denominator)
    return _greedy_nms(boxes, scores, None, threshold, overlap)


def batched_sph_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    classes: torch.Tensor,
    iou_threshold: float,
    *,
    method: str = "exact",
    denominator: str = "union",
) -> torch.Tensor:
    """Greedy NMS of spherical boxes within each class: boxes of different classes never
    suppress each other.

    Args:
        boxes: (N, 4) BFoV or (N, 5) RBFoV, radians (RBFoV needs ``method="exact"``).
        scores: (N,) scores.
        classes: (N,) integer class (or image, or any group) of each box.
        iou_threshold: in [0, 1]; overlaps strictly above it suppress.
        method: "exact" or "fov", as for :func:`sph_nms`.
        denominator: "union" or, with "exact", "min", as for :func:`sph_nms`.

    Returns:
        (K,) int64 indices of the kept boxes, by decreasing score: the kept boxes of
        :func:`sph_nms` run on each class alone, merged. Not differentiable.

    Raises:
        ShapeError: ``boxes`` not (N, 4) / (N, 5), ``scores`` / ``classes`` not (N,), or RBFoV
            with "fov".
        TypeError: ``boxes`` not a floating-point tensor, ``classes`` not an integer one, or
            ``scores`` not a real one.
        ValueRangeError: invalid box values, or ``iou_threshold`` not a number in [0, 1].
        ValueError: unknown ``method`` or ``denominator``, or "min" with "fov".

    Convention:
        As :func:`sph_nms`: overlaps on the sphere, seam- and pole-safe.

    Example:
        >>> import math
        >>> a = torch.tensor([[math.radians(179.5), 0.0, 0.2, 0.2],
        ...                   [math.radians(-179.5), 0.0, 0.2, 0.2]])
        >>> scores = torch.tensor([0.8, 0.9])
        >>> batched_sph_nms(a, scores, torch.tensor([3, 3]), 0.5).tolist()
        [1]
        >>> batched_sph_nms(a, scores, torch.tensor([3, 7]), 0.5).tolist()
        [1, 0]
    """
    threshold = _check_inputs(boxes, scores, classes, iou_threshold, spherical=True)
    boxes, overlap = _sph_overlap(boxes, method, denominator)
    return _greedy_nms(boxes, scores, classes, threshold, overlap)
