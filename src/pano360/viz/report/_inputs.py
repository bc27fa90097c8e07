"""What a report shows, read from files: boxes (faces JSON, detections JSON). Saliency maps are
read by :func:`pano360.io.read_saliency_maps` (every format ``pano360 saliency`` writes).

Convention: see :mod:`pano360.geometry.conventions`. Files hold degrees; what is read is in
radians. The JSON formats are described in :func:`read_boxes_json`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ...errors import DatasetFormatError, ImageIOError, ShapeError

__all__ = ["BOX_LISTS", "ReportBoxes", "read_boxes_json"]

#: The lists :func:`read_boxes_json` reads: ``faces`` (``pano360 faces``) and ``detections``.
BOX_LISTS: tuple[str, ...] = ("faces", "detections")


@dataclass(frozen=True)
class ReportBoxes:
    """Spherical boxes to show in a report, with a score and a label each.

    Attributes:
        boxes: (N, 5) float64 RBFoV (lon, lat, fov_x, fov_y, roll) in radians
            (:mod:`pano360.geometry.boxes`); a BFoV has roll 0.
        scores: N scores (None where a box has none).
        labels: N labels shown on hover and in the list ("face" for faces).
    """

    boxes: torch.Tensor
    scores: tuple[float | None, ...]
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.boxes.ndim != 2 or self.boxes.shape[1] != 5:
            raise ShapeError(f"boxes must be (N, 5) RBFoV, got {tuple(self.boxes.shape)}")
        n = len(self.boxes)
        if len(self.scores) != n or len(self.labels) != n:
            raise ShapeError(
                f"scores and labels must hold one entry per box ({n}), got {len(self.scores)} "
                f"and {len(self.labels)}"
            )

    @classmethod
    def from_boxes(
        cls,
        boxes: torch.Tensor,
        scores: Sequence[float | None] | None = None,
        labels: Sequence[str] | str = "face",
    ) -> ReportBoxes:
        """From (N, 4) BFoV or (N, 5) RBFoV in radians, with optional scores and labels.

        Example:
            >>> b = ReportBoxes.from_boxes(torch.tensor([[0.5, 0.1, 0.3, 0.4]]), [0.9])
            >>> b.boxes.shape, b.scores, b.labels
            (torch.Size([1, 5]), (0.9,), ('face',))
        """
        boxes = torch.as_tensor(boxes, dtype=torch.float64)
        if boxes.ndim != 2 or boxes.shape[1] not in (4, 5):
            raise ShapeError(f"boxes must be (N, 4) BFoV or (N, 5) RBFoV, got {tuple(boxes.shape)}")
        if boxes.shape[1] == 4:
            boxes = torch.cat((boxes, boxes.new_zeros(len(boxes), 1)), 1)
        n = len(boxes)
        scores = tuple(scores) if scores is not None else (None,) * n
        labels = (labels,) * n if isinstance(labels, str) else tuple(labels)
        return cls(boxes, scores, labels)


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DatasetFormatError(f"{where} must be a finite number, got {json.dumps(value)}")
    return float(value)


def _box(item: dict, where: str) -> list[float]:
    has = [k for k in ("bfov", "rbfov") if k in item]
    if len(has) != 1:
        raise DatasetFormatError(
            f"{where} must have exactly one of 'bfov' [lon, lat, fov_x, fov_y] or 'rbfov' "
            f"[lon, lat, fov_x, fov_y, roll] (degrees), got keys {sorted(item)}"
        )
    key = has[0]
    values = item[key]
    n = 4 if key == "bfov" else 5
    if not isinstance(values, list) or len(values) != n:
        raise DatasetFormatError(f"{where}.{key} must be a list of {n} numbers (degrees)")
    lon, lat, fx, fy, *roll = (_number(v, f"{where}.{key}[{i}]") for i, v in enumerate(values))
    if not -90 <= lat <= 90:
        raise DatasetFormatError(f"{where}.{key}: lat must be in [-90, 90] degrees, got {lat:g}")
    for name, fov in (("fov_x", fx), ("fov_y", fy)):
        if not 0 < fov < 180:
            raise DatasetFormatError(
                f"{where}.{key}: {name} must be in (0, 180) degrees, got {fov:g}"
            )
    return [math.radians(v) for v in (lon, lat, fx, fy, roll[0] if roll else 0.0)]


def read_boxes_json(path: str | os.PathLike[str], key: str = "faces") -> ReportBoxes:
    """Read spherical boxes from a JSON file: ``pano360 faces`` output, or detections.

    Args:
        path: a JSON object whose list ``key`` holds one object per box, with
            ``"bfov": [lon, lat, fov_x, fov_y]`` or ``"rbfov": [lon, lat, fov_x, fov_y, roll]``
            in degrees, an optional ``"score"`` (a number) and an optional ``"label"`` (text;
            the default is ``key`` without its plural s). Other keys are ignored, so the JSON
            ``pano360 faces`` writes is read as it is.
        key: ``"faces"`` or ``"detections"`` (:data:`BOX_LISTS`).

    Returns:
        The boxes in radians (:class:`ReportBoxes`).

    Raises:
        ImageIOError: the file cannot be read.
        DatasetFormatError: not JSON, or not in this format (the message names the file and
            the entry).
        ValueError: ``key`` not in :data:`BOX_LISTS`.

    Convention:
        Degrees in the file: lon right (east), lat up, roll clockwise, fovs edge to edge
        (:mod:`pano360.geometry.boxes`); radians in the result.

    Example:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "faces.json"
        >>> _ = f.write_text('{"faces": [{"bfov": [180, 15, 10, 12], "score": 0.9}]}')
        >>> b = read_boxes_json(f)
        >>> [round(math.degrees(v)) for v in b.boxes[0].tolist()], b.labels
        ([180, 15, 10, 12, 0], ('face',))
    """
    if key not in BOX_LISTS:
        raise ValueError(f"key must be one of {', '.join(BOX_LISTS)}, got {key!r}")
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ImageIOError(f"cannot read '{path}': {e.strerror or e}") from e
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise DatasetFormatError(f"{path}: not JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as e:
        raise DatasetFormatError(f"{path}: not JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
        got = f"keys {sorted(doc)}" if isinstance(doc, dict) else f"a {type(doc).__name__}"
        raise DatasetFormatError(
            f"{path}: expected a JSON object with a list '{key}' of boxes (as 'pano360 faces' "
            f"writes), got {got}"
        )
    boxes, scores, labels = [], [], []
    for i, item in enumerate(doc[key]):
        where = f"{path}: {key}[{i}]"
        if not isinstance(item, dict):
            raise DatasetFormatError(f"{where} must be an object, got {json.dumps(item)[:40]}")
        boxes.append(_box(item, where))
        score = item.get("score")
        scores.append(None if score is None else _number(score, f"{where}.score"))
        label = item.get("label", key[:-1])
        if not isinstance(label, str):
            raise DatasetFormatError(f"{where}.label must be text, got {json.dumps(label)}")
        labels.append(label)
    tensor = torch.tensor(boxes, dtype=torch.float64).reshape(-1, 5)
    return ReportBoxes(tensor, tuple(scores), tuple(labels))
