r"""The detection result: what every detector returns for one image, as a dict of tensors.

A detector given a batch of B images returns a list of B results (like torchvision's detection
models); each is a :data:`Detections`, a dict with the keys of :data:`DETECTION_KEYS`:

``"boxes"``: (N, 4) or (N, 5), floating point
    BFoV (lon, lat, fov_x, fov_y) or RBFoV (lon, lat, fov_x, fov_y, roll) in radians
    (:mod:`pano360.geometry.boxes`). One result uses one of the two.
``"scores"``: (N,), floating point
    Higher is better (a probability for the shipped detectors); finite.
``"labels"``: (N,), int64
    Class index of each detection, >= 0 (faces: 0).
``"keypoints"``: (N, K, 2), floating point; optional
    K points per detection as (lon, lat) in radians (faces: the five MTCNN landmarks). Absent
    when the detector has none.

Row i of every tensor describes detection i. Rows are usually by decreasing score (what NMS
returns) but the contract does not require it.

Convention:
    Radians everywhere, see :mod:`pano360.geometry.conventions`: lon in [-pi, pi] (wrap with
    :func:`~pano360.geometry.wrap_lon`), lat in [-pi/2, pi/2], fov_x and fov_y in (0, pi), roll
    in [-pi, pi]. Degrees only in file formats (:meth:`FaceDetection.to_dict`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from .._core import ShapeError, ValueRangeError, check_positive_int
from ..geometry import check_sph_boxes

__all__ = [
    "DETECTION_KEYS",
    "Detections",
    "cat_detections",
    "check_detections",
    "empty_detections",
    "select_detections",
]

#: One image's detections: ``{"boxes", "scores", "labels"[, "keypoints"]}`` (module docstring).
Detections = dict[str, torch.Tensor]

#: The keys of a detection result; "keypoints" is optional.
DETECTION_KEYS: tuple[str, ...] = ("boxes", "scores", "labels", "keypoints")

_REQUIRED = ("boxes", "scores", "labels")
# Angles this far outside their range are rounding, not a user error.
_TOL = 1e-6


def _structure(result: Mapping[str, torch.Tensor], name: str) -> tuple[int, int, int | None]:
    """Check keys, types, shapes and dtypes (no values, no device sync); return (N, 4|5, K)."""
    if not isinstance(result, Mapping):
        raise TypeError(f"{name} must be a dict of tensors, got {type(result).__name__}")
    missing = [k for k in _REQUIRED if k not in result]
    unknown = sorted(str(k) for k in result if k not in DETECTION_KEYS)
    if missing or unknown:
        raise ShapeError(
            f"{name} must have the keys 'boxes', 'scores', 'labels' and optionally 'keypoints'; "
            f"missing {missing}, unknown {unknown}"
        )
    for key, value in result.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name}[{key!r}] must be a torch.Tensor, got {type(value).__name__}")
    boxes, scores, labels = result["boxes"], result["scores"], result["labels"]
    if boxes.ndim != 2 or boxes.shape[1] not in (4, 5):
        raise ShapeError(
            f"{name}['boxes'] must be (N, 4) BFoV or (N, 5) RBFoV, got {tuple(boxes.shape)}"
        )
    n = boxes.shape[0]
    for key, t in (("scores", scores), ("labels", labels)):
        if t.shape != (n,):
            raise ShapeError(f"{name}[{key!r}] must be ({n},) like the boxes, got {tuple(t.shape)}")
    k = None
    if "keypoints" in result:
        points = result["keypoints"]
        if points.ndim != 3 or points.shape[0] != n or points.shape[2] != 2:
            raise ShapeError(
                f"{name}['keypoints'] must be ({n}, K, 2) (lon, lat), got {tuple(points.shape)}"
            )
        k = points.shape[1]
    for key in ("boxes", "scores", "keypoints"):
        if key in result and not result[key].dtype.is_floating_point:
            raise TypeError(
                f"{name}[{key!r}] must be a floating-point tensor, got {result[key].dtype}"
            )
    if labels.dtype != torch.long:
        raise TypeError(f"{name}['labels'] must be an int64 tensor, got {labels.dtype}")
    return n, boxes.shape[1], k


def _check_angle(values: torch.Tensor, bound: float, what: str) -> None:
    bad = values.abs() > bound + _TOL
    if bad.any():
        raise ValueRangeError(f"{what} radians, got {values[bad][:4].tolist()}")


def check_detections(
    result: Mapping[str, torch.Tensor],
    name: str = "result",
    *,
    box_dim: int | None = None,
    num_keypoints: int | None = None,
) -> Detections:
    """Check that ``result`` is one image's detections as the contract says; return it.

    Args:
        result: ``{"boxes", "scores", "labels"[, "keypoints"]}`` (module docstring).
        name: how the error messages call ``result`` (e.g. ``"detections[3]"``).
        box_dim: 4 or 5 to require BFoV or RBFoV boxes; None accepts either.
        num_keypoints: K to require (N, K, 2) keypoints; None accepts any K or none.

    Returns:
        ``result`` itself (a dict of tensors), unchanged.

    Raises:
        TypeError: ``result`` is not a mapping, a value is not a tensor, "boxes", "scores" or
            "keypoints" is not floating point, or "labels" is not int64.
        ShapeError: a required key is missing or an unknown key present; "boxes" is not (N, 4)
            or (N, 5) (or not ``box_dim`` wide); "scores" or "labels" is not (N,);
            "keypoints" is not (N, K, 2), or missing, or with K != ``num_keypoints``.
        ValueRangeError: a value is not finite; a box's lon or roll is outside [-pi, pi],
            its lat outside [-pi/2, pi/2] or a fov outside (0, pi); a label is negative; a
            keypoint's lon is outside [-pi, pi] or its lat outside [-pi/2, pi/2].

    Convention:
        Radians (module docstring); angles may overshoot their range by 1e-6 (rounding).

    Example:
        >>> result = {"boxes": torch.tensor([[0.5, 0.1, 0.2, 0.2]]),
        ...           "scores": torch.tensor([0.9]), "labels": torch.tensor([0])}
        >>> sorted(check_detections(result, box_dim=4))
        ['boxes', 'labels', 'scores']
        >>> result["boxes"] = torch.tensor([[30.0, 6.0, 11.0, 11.0]])  # degrees by mistake
        >>> try:
        ...     check_detections(result)
        ... except ValueRangeError as err:
        ...     print(err)
        result['boxes'] fov_x and fov_y must be in (0, pi) radians, got [11.0, 11.0]
    """
    n, dim, k = _structure(result, name)
    if box_dim is not None and dim != box_dim:
        raise ShapeError(
            f"{name}['boxes'] must be (N, {box_dim}), got {tuple(result['boxes'].shape)}"
        )
    if num_keypoints is not None and k != num_keypoints:
        got = "no keypoints" if k is None else f"{tuple(result['keypoints'].shape)}"
        raise ShapeError(f"{name}['keypoints'] must be ({n}, {num_keypoints}, 2), got {got}")
    boxes = result["boxes"].detach()
    check_sph_boxes(boxes, f"{name}['boxes']")
    _check_angle(boxes[:, 0], math.pi, f"{name}['boxes'] lon must be in [-pi, pi]")
    if dim == 5:
        _check_angle(boxes[:, 4], math.pi, f"{name}['boxes'] roll must be in [-pi, pi]")
    if not torch.isfinite(result["scores"].detach()).all():
        raise ValueRangeError(f"{name}['scores'] must be finite, got non-finite values")
    labels = result["labels"]
    if (labels < 0).any():
        bad = labels[labels < 0][:4].tolist()
        raise ValueRangeError(f"{name}['labels'] must be >= 0, got {bad}")
    if k is not None:
        points = result["keypoints"].detach()
        if not torch.isfinite(points).all():
            raise ValueRangeError(f"{name}['keypoints'] must be finite, got non-finite values")
        _check_angle(points[..., 0], math.pi, f"{name}['keypoints'] lon must be in [-pi, pi]")
        _check_angle(
            points[..., 1], math.pi / 2, f"{name}['keypoints'] lat must be in [-pi/2, pi/2]"
        )
    return result  # type: ignore[return-value]


def empty_detections(
    box_dim: int = 4,
    num_keypoints: int | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Detections:
    """A result with no detections: what a detector returns for an image without any.

    Args:
        box_dim: 4 (BFoV) or 5 (RBFoV).
        num_keypoints: K for a (0, K, 2) "keypoints" entry; None leaves the key out.
        dtype: floating-point dtype of boxes, scores and keypoints (labels are int64).
        device: where the tensors live.

    Returns:
        ``{"boxes": (0, box_dim), "scores": (0,), "labels": (0,) int64[, "keypoints":
        (0, K, 2)]}``.

    Raises:
        ValueRangeError: ``box_dim`` is not 4 or 5, or ``num_keypoints`` is not a positive
            integer.
        TypeError: ``dtype`` is not a floating-point dtype.

    Example:
        >>> {k: tuple(v.shape) for k, v in empty_detections(num_keypoints=5).items()}
        {'boxes': (0, 4), 'scores': (0,), 'labels': (0,), 'keypoints': (0, 5, 2)}
    """
    if box_dim not in (4, 5) or isinstance(box_dim, bool):
        raise ValueRangeError(f"box_dim must be 4 (BFoV) or 5 (RBFoV), got {box_dim!r}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    opts = {"dtype": dtype, "device": device}
    out = {
        "boxes": torch.zeros(0, box_dim, **opts),
        "scores": torch.zeros(0, **opts),
        "labels": torch.zeros(0, dtype=torch.long, device=device),
    }
    if num_keypoints is not None:
        k = check_positive_int(num_keypoints, "num_keypoints")
        out["keypoints"] = torch.zeros(0, k, 2, **opts)
    return out


def cat_detections(results: Sequence[Mapping[str, torch.Tensor]]) -> Detections:
    """Concatenate the rows of several results of one image (e.g. of several views or levels).

    Args:
        results: one or more results with the same keys, box width and K.

    Returns:
        One result with their rows in order. Values are not checked
        (:func:`check_detections` does that).

    Raises:
        ValueRangeError: ``results`` is empty.
        TypeError, ShapeError: a result's structure breaks the contract (as
            :func:`check_detections`), or the results differ in keys, box width or K.

    Example:
        >>> a = {"boxes": torch.tensor([[0.5, 0.1, 0.2, 0.2]]),
        ...      "scores": torch.tensor([0.75]), "labels": torch.tensor([0])}
        >>> cat_detections([a, empty_detections(), a])["scores"].tolist()
        [0.75, 0.75]
    """
    if isinstance(results, Mapping) or not isinstance(results, Sequence) or len(results) == 0:
        raise ValueRangeError(
            f"results must be a non-empty sequence of detection results, got {results!r:.80}"
        )
    first = None
    for i, result in enumerate(results):
        _, dim, k = _structure(result, f"results[{i}]")
        layout = (sorted(result), dim, k)
        if first is None:
            first = layout
        elif layout != first:
            raise ShapeError(
                f"results[{i}] must have the keys, box width and keypoints of results[0] "
                f"({first[0]}, (N, {first[1]}), K = {first[2]}), got ({layout[0]}, "
                f"(N, {dim}), K = {k})"
            )
    return {key: torch.cat([r[key] for r in results]) for key in results[0]}


def select_detections(result: Mapping[str, torch.Tensor], index: torch.Tensor) -> Detections:
    """The rows ``index`` of a result (e.g. the indices NMS keeps, or a score mask).

    Args:
        result: one image's detections.
        index: (K,) integer indices (any order, repeats allowed) or an (N,) bool mask.

    Returns:
        A result of the selected rows, in the order of ``index``.

    Raises:
        TypeError, ShapeError: ``result``'s structure breaks the contract (as
            :func:`check_detections`).
        TypeError: ``index`` is not an integer or bool tensor.
        ShapeError: ``index`` is not 1-D, or a mask's length is not N.

    Example:
        >>> r = {"boxes": torch.tensor([[0.5, 0.125, 0.25, 0.25], [1.5, 0.0, 0.5, 0.5]]),
        ...      "scores": torch.tensor([0.6, 0.9]), "labels": torch.tensor([0, 0])}
        >>> select_detections(r, r["scores"] > 0.7)["boxes"].tolist()
        [[1.5, 0.0, 0.5, 0.5]]
    """
    n, _, _ = _structure(result, "result")
    if not isinstance(index, torch.Tensor) or index.dtype.is_floating_point or index.is_complex():
        kind = index.dtype if isinstance(index, torch.Tensor) else type(index).__name__
        raise TypeError(f"index must be an integer or bool tensor, got {kind}")
    if index.ndim != 1 or (index.dtype == torch.bool and index.shape[0] != n):
        want = f"({n},) bool" if index.dtype == torch.bool else "(K,)"
        raise ShapeError(f"index must be {want}, got {tuple(index.shape)}")
    return {key: value[index.to(value.device)] for key, value in result.items()}
