"""Evaluation of 360° face detection per latitude band: recall, precision, AP, seconds per image.

Matching follows the PASCAL VOC protocol on the sphere: detections of an image are taken by
decreasing score; each is a true positive when its exact spherical IoU
(:func:`~pano360.geometry.sph_iou_exact`) with a not yet matched ground-truth face is at least
``iou`` (0.5), else a false positive. A ground-truth face belongs to the band of its centre's
|lat|; a true positive counts in the band of the face it matched, a false positive in the band of
its own centre. AP is the area under the interpolated precision-recall curve (all points, VOC
2010+). Recall and precision are those of every detection the detector returned.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch

from ..geometry import sph_iou_exact
from ._result import Detections, check_detections

__all__ = ["LAT_BANDS_DEG", "BandResult", "FaceEvaluation", "average_precision", "evaluate_faces"]

#: Latitude bands of the evaluation, |lat| in degrees: [low, high).
LAT_BANDS_DEG: tuple[tuple[float, float], ...] = ((0.0, 30.0), (30.0, 60.0), (60.0, 85.0))


def average_precision(scores: torch.Tensor, is_tp: torch.Tensor, n_gt: int) -> float:
    """All-point interpolated AP of detections (scores, true-positive flags) against n_gt faces.

    Returns NaN when there is no ground truth (AP is undefined), 0 when nothing was detected.
    """
    if n_gt == 0:
        return math.nan
    if scores.numel() == 0:
        return 0.0
    order = torch.argsort(scores, descending=True, stable=True)
    tp = is_tp[order].double()
    cum_tp = torch.cumsum(tp, 0)
    recall = cum_tp / n_gt
    precision = cum_tp / torch.arange(1, len(tp) + 1, dtype=torch.float64)
    # Make precision monotone (the upper envelope), then sum over the recall steps.
    envelope = torch.flip(torch.cummax(torch.flip(precision, [0]), 0).values, [0])
    steps = torch.diff(recall, prepend=recall.new_zeros(1))
    return float((steps * envelope).sum())


@dataclass
class BandResult:
    """Counts and scores of one strategy in one latitude band."""

    n_gt: int = 0
    tp: int = 0
    fp: int = 0
    scores: list[float] = field(default_factory=list)
    is_tp: list[bool] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.tp / self.n_gt if self.n_gt else math.nan

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else math.nan

    @property
    def ap(self) -> float:
        return average_precision(
            torch.tensor(self.scores, dtype=torch.float64),
            torch.tensor(self.is_tp, dtype=torch.bool),
            self.n_gt,
        )


@dataclass
class FaceEvaluation:
    """Results of :func:`evaluate_faces`: per strategy, per band, and timing."""

    bands_deg: tuple[tuple[float, float], ...]
    iou: float
    n_images: int
    results: dict[str, list[BandResult]]
    seconds: dict[str, list[float]]

    def to_dict(self) -> dict:
        """JSON-ready: recall, precision, AP (fractions) and counts per band, median seconds."""
        out = {"iou": self.iou, "n_images": self.n_images, "bands_deg": self.bands_deg}
        out["strategies"] = {
            name: {
                "seconds_per_image": _median(self.seconds[name]),
                "bands": [
                    {
                        "band_deg": list(band),
                        "n_gt": r.n_gt,
                        "tp": r.tp,
                        "fp": r.fp,
                        "recall": _finite(r.recall),
                        "precision": _finite(r.precision),
                        "ap": _finite(r.ap),
                    }
                    for band, r in zip(self.bands_deg, rows, strict=True)
                ],
            }
            for name, rows in self.results.items()
        }
        return out

    def to_markdown(self) -> str:
        """One table: a row per strategy, recall / precision / AP (percent) per band, seconds."""
        head = ["strategy"]
        for lo, hi in self.bands_deg:
            head += [f"R {lo:g}-{hi:g}", f"P {lo:g}-{hi:g}", f"AP {lo:g}-{hi:g}"]
        head.append("s / image")
        lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
        for name, rows in self.results.items():
            cells = [name]
            for r in rows:
                cells += [_pct(r.recall), _pct(r.precision), _pct(r.ap)]
            cells.append(f"{_median(self.seconds[name]):.2f}")
            lines.append("| " + " | ".join(cells) + " |")
        gt = [r.n_gt for r in next(iter(self.results.values()))] if self.results else []
        lines.append("")
        lines.append(
            f"{self.n_images} images; faces per band: "
            + ", ".join(
                f"{lo:g}-{hi:g}: {n}" for (lo, hi), n in zip(self.bands_deg, gt, strict=True)
            )
            + f"; a detection is correct at spherical IoU >= {self.iou:g}."
        )
        return "\n".join(lines)


def _median(values: Sequence[float]) -> float:
    return float(torch.tensor(values, dtype=torch.float64).median()) if values else math.nan


def _finite(v: float) -> float | None:
    return None if math.isnan(v) else round(v, 6)


def _pct(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{100 * v:.1f}"


def _band_of(lat: torch.Tensor, bands_rad: torch.Tensor) -> torch.Tensor:
    """Index of the band holding each |lat| (-1: none)."""
    a = lat.abs()[:, None]
    inside = (a >= bands_rad[None, :, 0]) & (a < bands_rad[None, :, 1])
    return torch.where(inside.any(1), inside.float().argmax(1), torch.full_like(a[:, 0], -1).long())


def _match(gt: torch.Tensor, det: torch.Tensor, scores: torch.Tensor, iou: float):
    """VOC greedy matching: (is_tp per detection, matched gt index or -1)."""
    n = det.shape[0]
    is_tp = torch.zeros(n, dtype=torch.bool)
    matched = torch.full((n,), -1, dtype=torch.long)
    if n == 0 or gt.shape[0] == 0:
        return is_tp, matched
    overlaps = sph_iou_exact(det.double(), gt.double())
    taken = torch.zeros(gt.shape[0], dtype=torch.bool)
    for i in torch.argsort(scores, descending=True, stable=True).tolist():
        candidates = overlaps[i].masked_fill(taken, -1.0)
        j = int(candidates.argmax())
        if candidates[j] >= iou:
            taken[j] = True
            is_tp[i], matched[i] = True, j
    return is_tp, matched


def evaluate_faces(
    scenes: Iterable[tuple[torch.Tensor, torch.Tensor]],
    detectors: dict[str, Callable[[torch.Tensor], Detections]],
    bands_deg: Sequence[tuple[float, float]] = LAT_BANDS_DEG,
    iou: float = 0.5,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> FaceEvaluation:
    """Run face detectors on ERP images with known faces and score them per latitude band.

    Args:
        scenes: (erp (3, H, W) or (1, 3, H, W), faces (F, 4) BFoV radians) pairs.
        detectors: name -> function from an ERP (1, 3, H, W) to its detection result
            (:data:`Detections`, e.g. ``lambda erp: detect_faces(erp, "spherical")[0]``).
        bands_deg: [low, high) bounds of |lat| in degrees.
        iou: spherical IoU at which a detection matches a face.
        progress: optional wrapper of the scene iterator (a tqdm bar).

    Returns:
        :class:`FaceEvaluation` (module docstring for the protocol). Seconds are wall-clock per
        image and detector, measured around each call.
    """
    bands = tuple((float(lo), float(hi)) for lo, hi in bands_deg)
    bands_rad = torch.tensor([[math.radians(lo), math.radians(hi)] for lo, hi in bands])
    results = {name: [BandResult() for _ in bands] for name in detectors}
    seconds: dict[str, list[float]] = {name: [] for name in detectors}
    n_images = 0
    iterator = progress(scenes) if progress is not None else scenes
    for erp, faces in iterator:
        erp = erp[None] if erp.ndim == 3 else erp
        faces = faces.reshape(-1, 4).double()
        gt_band = _band_of(faces[:, 1], bands_rad.double())
        n_images += 1
        for name, detect in detectors.items():
            start = time.perf_counter()
            found = detect(erp)
            seconds[name].append(time.perf_counter() - start)
            check_detections(found, f"the result of detector {name!r}", box_dim=4)
            det = found["boxes"].detach().to("cpu", torch.float64)
            scores = found["scores"].detach().to("cpu", torch.float64)
            is_tp, matched = _match(faces, det, scores, iou)
            det_band = _band_of(det[:, 1], bands_rad.double())
            rows = results[name]
            for b in range(len(bands)):
                rows[b].n_gt += int((gt_band == b).sum())
            for i in range(det.shape[0]):
                b = int(gt_band[matched[i]]) if is_tp[i] else int(det_band[i])
                if b < 0:
                    continue
                rows[b].tp += int(is_tp[i])
                rows[b].fp += int(not is_tp[i])
                rows[b].scores.append(float(scores[i]))
                rows[b].is_tp.append(bool(is_tp[i]))
    return FaceEvaluation(bands, iou, n_images, results, seconds)
