"""Face detection on 360° (ERP) images: MTCNN run with any transfer strategy, boxes on the sphere.

Strategies (:data:`FACE_STRATEGIES`), each run as its user would run it:

- ``direct``: the planar detector on the ERP image (every stage on the ERP and axis-aligned
  crops of it); pixel boxes are converted to BFoV with :func:`~pano360.geometry.box_convert`.
- ``cubemap`` / ``multiview``: the unchanged planar detector on each view; view boxes are mapped
  to the sphere and merged with spherical NMS (seam- and pole-safe).
- ``spherical`` / ``exact`` / ``distilled``: stage 1 (P-Net) runs on an ERP pyramid, with
  spherical convolutions, exact tangent-plane evaluation or distilled row-untied layers; its
  windows are tangent-plane squares around ERP cells. Stages 2 and 3 (R-Net, O-Net) run on
  tangent-plane crops of each candidate (:func:`~pano360.geometry.erp_to_perspective`), which
  are undistorted by construction; boxes are refined in the crop's tangent plane.

Convention:
    Boxes are BFoV (lon, lat, fov_x, fov_y) in radians (:mod:`pano360.geometry.boxes`): the view
    aimed at the face centre, fov_x (fov_y) the angle between the rays through the midpoints of
    the box's left and right (top and bottom) edges. Landmarks are (lon, lat) in radians. The
    JSON form (:meth:`FaceDetection.to_dict`) uses degrees.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .._core import (
    ShapeError,
    ValueRangeError,
    check_angle,
    check_choice,
    check_erp,
    check_hw,
)
from ..geometry import (
    ViewRig,
    angle_between,
    box_convert,
    erp_pyramid,
    erp_to_perspective,
    pixel_to_lonlat,
    render_views,
    rotation_matrix,
    view_pixel_rays,
    xyz_to_lonlat,
)
from ..models.mtcnn import MTCNNOutput, mtcnn_normalize
from ..transfer import STRATEGIES, TransferredModel, load_student, model_stack
from ._mtcnn import ONET_SIZE, PNET_WINDOW, RNET_SIZE, _pretrained_nets, detect_faces_planar
from ._nms import sph_nms
from ._ops import apply_box_deltas
from ._result import Detections, check_detections, empty_detections

__all__ = [
    "FACE_STRATEGIES",
    "FaceDetection",
    "detect_faces",
    "distilled_pnet_on_erp",
    "erp_pyramid_levels",
    "face_detection_memory",
    "face_detections",
    "load_pnet_students",
    "pnet_on_erp",
    "tangent_crops",
    "view_boxes_to_bfov",
]

#: Strategies of :func:`detect_faces`: those of :func:`pano360.transfer.apply`, and
#: ``distilled`` (row-untied P-Net students trained by ``pano360 distill``).
FACE_STRATEGIES: tuple[str, ...] = (*STRATEGIES, "distilled")

# NMS overlaps of MTCNN: per pyramid level, across levels, after R-Net (IoU), after O-Net (min).
_NMS_LEVEL, _NMS_STAGE1, _NMS_STAGE2, _NMS_STAGE3 = 0.5, 0.7, 0.7, 0.7
# Detections of overlapping views (cube map, multiview) are the same face above this overlap.
_NMS_VIEWS = 0.5
# Crops are rendered at up to this many samples per crop pixel and side, then averaged.
_MAX_SUPERSAMPLE = 4
# Shares of the work reported to detect_faces' progress: building the pyramid, then stage 1
# (by pixels), then stages 2 and 3 (the rest); roughly what they take on an 8K panorama.
_SHARE_PYRAMID, _SHARE_STAGE1 = 0.15, 0.75
#: Peak bytes per pixel of the largest pyramid level during stage 1 (P-Net's spherical pass:
#: its input copies and the 10-channel first layer before pooling dominate); measured, with
#: margin, by benchmarks/bench_faces_hires.py.
_PNET_BYTES_PER_PIXEL = 128
# What face_detection_memory adds whatever the sizes: the crops of stages 2 and 3 (bounded by
# _CROP_SAMPLES), the networks, sampling tables.
_FIXED_BYTES = 400 * 2**20
# Crop samples (pixels before averaging) rendered per call: about 200 MB of float32 crops,
# rays and grids together.
_CROP_SAMPLES = 1 << 22


@dataclass(frozen=True)
class FaceDetection:
    """One face on the sphere: a view of one row of a detection result
    (:mod:`pano360.detection`'s contract; :func:`face_detections` makes them).

    Attributes:
        box: BFoV (lon, lat, fov_x, fov_y) in radians.
        score: the last stage's face probability.
        landmarks: five (lon, lat) in radians: the eye on the image's left, the other eye, the
            nose, the mouth corner on the image's left, the other one (as seen facing the face);
            empty when the result had no keypoints.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...]

    def to_dict(self) -> dict:
        """Degrees, for JSON: ``{"bfov": [lon, lat, fov_x, fov_y], "score", "landmarks"}``."""
        deg = math.degrees
        return {
            "bfov": [round(deg(v), 4) for v in self.box],
            "score": round(self.score, 5),
            "landmarks": [[round(deg(lon), 4), round(deg(lat), 4)] for lon, lat in self.landmarks],
        }


def face_detections(result: Detections) -> list[FaceDetection]:
    """One :class:`FaceDetection` per row of one image's detection result, in its order.

    Args:
        result: ``{"boxes": (N, 4) BFoV, "scores": (N,), "labels": (N,)[, "keypoints":
            (N, K, 2)]}`` (:func:`check_detections`); keypoints become the landmarks (none when
            absent); labels are not kept.

    Returns:
        N :class:`FaceDetection`, radians as in ``result``.

    Raises:
        TypeError, ShapeError, ValueRangeError: ``result`` breaks the contract
            (:func:`check_detections`); ShapeError also for RBFoV boxes (N, 5).

    Example:
        >>> result = {"boxes": torch.tensor([[0.5, 0.125, 0.25, 0.25]]),
        ...           "scores": torch.tensor([0.75]), "labels": torch.tensor([0])}
        >>> face_detections(result)[0].to_dict()
        {'bfov': [28.6479, 7.162, 14.3239, 14.3239], 'score': 0.75, 'landmarks': []}
    """
    check_detections(result, box_dim=4)
    marks = result.get("keypoints")
    n = result["boxes"].shape[0]
    marks = [()] * n if marks is None else marks.tolist()
    return [
        FaceDetection(
            tuple(float(v) for v in box),
            float(score),
            tuple((float(lon), float(lat)) for lon, lat in m),
        )
        for box, score, m in zip(
            result["boxes"].tolist(), result["scores"].tolist(), marks, strict=True
        )
    ]


# --- boxes in views and tangent planes -> the sphere -------------------------------------------


def view_boxes_to_bfov(
    boxes: torch.Tensor, view_hw: tuple[int, int], fov: torch.Tensor, rot: torch.Tensor
) -> torch.Tensor:
    """BFoV of pixel boxes (K, 4) xyxy seen in views (fov (K,) radians, camera-to-world rot
    (K, 3, 3)); warns (AngleUnitWarning) for a fov beyond 2 pi (degrees by mistake)."""
    check_angle(fov, "fov")
    x1, y1, x2, y2 = boxes.unbind(-1)
    xc, yc = (x1 + x2) / 2, (y1 + y2) / 2
    pts = torch.stack(
        [torch.stack(p, dim=-1) for p in ((xc, yc), (x1, yc), (x2, yc), (xc, y1), (xc, y2))],
        dim=1,
    )  # (K, 5, 2): centre, left, right, top, bottom edge midpoints
    rays = view_pixel_rays(pts, view_hw, torch.tan(fov / 2))
    world = torch.einsum("kij,kpj->kpi", rot, rays)
    lonlat = xyz_to_lonlat(world[:, 0])
    fov_x = angle_between(world[:, 1], world[:, 2])
    fov_y = angle_between(world[:, 3], world[:, 4])
    return torch.stack((lonlat[:, 0], lonlat[:, 1], fov_x, fov_y), dim=-1)


def _view_points_to_lonlat(points, view_hw, fov, rot) -> torch.Tensor:
    rays = view_pixel_rays(points, view_hw, torch.tan(fov / 2))
    return xyz_to_lonlat(torch.einsum("kij,kpj->kpi", rot, rays))


def _square(bfov: torch.Tensor) -> torch.Tensor:
    side = torch.maximum(bfov[:, 2], bfov[:, 3]).clamp(max=math.radians(170))
    return torch.stack((bfov[:, 0], bfov[:, 1], side, side), dim=-1)


def _camera(bfov: torch.Tensor) -> torch.Tensor:
    return rotation_matrix(bfov[:, 0], bfov[:, 1], torch.zeros_like(bfov[:, 0]))


# --- stage 1 on the sphere ---------------------------------------------------------------------


def erp_pyramid_levels(
    min_face_deg: float = 8.0, max_face_deg: float = 60.0, factor: float = 0.709
) -> list[tuple[int, int]]:
    """(H, W) of the ERP levels stage 1 runs on, for the ERP strategies of :func:`detect_faces`.

    P-Net's 12-pixel window spans ``min_face_deg`` (at the equator) on the first level and at
    most ``max_face_deg`` on the last; levels shrink by ``factor``. They do not depend on the
    input's size, so a ``distilled`` P-Net needs one student per level (``pano360 distill
    --erp-size WxH`` for each).

    Example:
        >>> erp_pyramid_levels()[:2]
        [(270, 540), (192, 384)]
    """
    _check_settings(min_face_deg, max_face_deg, (0.5, 0.5, 0.5), factor)
    return _erp_levels(min_face_deg, max_face_deg, factor)


def face_detection_memory(
    erp_hw: Sequence[int],
    min_face_deg: float = 8.0,
    max_face_deg: float = 60.0,
    factor: float = 0.709,
) -> int:
    """Estimated peak memory, in bytes, that :func:`detect_faces` adds to a float32 panorama
    of size ``erp_hw`` with an ERP strategy (``spherical``, ``exact``, ``distilled``).

    An upper bound measured on the shipped MTCNN (``benchmarks/bench_faces_hires.py`` prints
    it beside the peak resident memory it measures), for refusing a run up front rather than
    letting it run out of memory. It is dominated by stage 1 on the largest pyramid level
    (:func:`erp_pyramid_levels`), whose size depends on ``min_face_deg`` only: about 128
    bytes per pixel of that level, a quarter as much per doubling of ``min_face_deg``. The
    panorama's own size adds its 2 x 2 halvings (a third of it) and the copies the levels are
    resized from. Stages 2 and 3 render their crops in chunks of bounded size, whatever the
    number of candidates.

    Args:
        erp_hw: (H, W) of the panorama, W == 2H.
        min_face_deg, max_face_deg, factor: as :func:`detect_faces`.

    Returns:
        Bytes, not counting the panorama itself.

    Raises:
        ShapeError: ``erp_hw`` is not a 2:1 size.
        ValueRangeError: settings out of range.

    Example:
        >>> [round(face_detection_memory((4096, 8192), d) / 2**30, 1) for d in (8, 1, 0.5)]  # GB
        [0.5, 1.8, 6.1]
    """
    h, w = check_hw(erp_hw, "erp_hw", erp=True)
    _check_settings(min_face_deg, max_face_deg, (0.5, 0.5, 0.5), factor)
    sizes = _erp_levels(min_face_deg, max_face_deg, factor)
    h0, w0 = sizes[0]
    floats = 4 * 3  # bytes per RGB pixel
    # The 2 x 2 halvings (mipmaps for stages 2 and 3), the levels, and the image a level is
    # resized from (one resampling pass holds it at the level's width).
    halvings = floats * h * w // 3 if w // 2 >= w0 else 0
    levels = floats * sum(a * b for a, b in sizes)
    resize = floats * min(h, max(h0, h // 2)) * w0
    return int(halvings + levels + resize + _PNET_BYTES_PER_PIXEL * h0 * w0 + _FIXED_BYTES)


def _erp_levels(min_face_deg: float, max_face_deg: float, factor: float) -> list[tuple[int, int]]:
    levels = []
    width = PNET_WINDOW * 360 / min_face_deg
    while PNET_WINDOW * 360 / width <= max_face_deg * (1 + 1e-9):
        h = max(PNET_WINDOW, 2 * round(width / 4))  # even, so the 2 x 2 pool tiles it
        if not levels or levels[-1][0] != h:
            levels.append((h, 2 * h))
        width *= factor
    return levels


def _stage1_sphere(
    pnet_on_erp: Callable[[torch.Tensor], MTCNNOutput],
    pyramid: Sequence[torch.Tensor],
    threshold: float,
    level_done: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Square candidate BFoVs (K, 4) and their P-Net scores from P-Net maps on ERP levels;
    ``level_done(pixels)`` after each level."""
    found_boxes, found_scores, found_deltas = [], [], []
    for level in pyramid:
        w = level.shape[-1]
        out = pnet_on_erp(level)
        if level_done is not None:
            level_done(level.shape[-2] * w)
        prob = out.face_prob[0]  # (h / 2, w / 2) for a level (h, w)
        ho, wo = prob.shape
        rows, cols = torch.nonzero(prob >= threshold, as_tuple=True)
        if rows.numel() == 0:
            continue
        # Cell (i, j) is the pixel centre of the (h / 2, w / 2) ERP grid; its window is the
        # 12 x 12 tangent patch with one level pixel (at the equator) between samples.
        cells = torch.stack((cols, rows), -1).to(level.dtype)
        lon, lat = pixel_to_lonlat(cells, (ho, wo)).unbind(-1)
        fov = 2 * math.atan(PNET_WINDOW / 2 * math.tan(2 * math.pi / w))
        windows = torch.stack((lon, lat, torch.full_like(lon, fov), torch.full_like(lon, fov)), -1)
        scores = prob[rows, cols]
        deltas = out.box_deltas[0][:, rows, cols].t()
        keep = sph_nms(windows, scores, _NMS_LEVEL, method="fov")
        found_boxes.append(windows[keep])
        found_scores.append(scores[keep])
        found_deltas.append(deltas[keep])
    if not found_boxes:
        return pyramid[0].new_zeros(0, 4), pyramid[0].new_zeros(0)
    windows, scores, deltas = (torch.cat(t) for t in (found_boxes, found_scores, found_deltas))
    keep = sph_nms(windows, scores, _NMS_STAGE1, method="fov")
    windows, scores, deltas = windows[keep], scores[keep], deltas[keep]
    side = float(PNET_WINDOW)
    window_px = windows.new_tensor([-0.5, -0.5, side - 0.5, side - 0.5]).expand(len(keep), 4)
    refined = view_boxes_to_bfov(
        apply_box_deltas(window_px, deltas), (PNET_WINDOW, PNET_WINDOW), windows[:, 2],
        _camera(windows),
    )  # fmt: skip
    return _square(refined), scores


# --- stages 2 and 3 on tangent crops -----------------------------------------------------------


def tangent_crops(
    erp: torch.Tensor, boxes: torch.Tensor, size: int, pyramid: Sequence[torch.Tensor] = ()
) -> torch.Tensor:
    """Square ``size`` x ``size`` views of square BFoV boxes (K, 4) from one ERP (antialiased).

    Args:
        erp: (1, C, H, W) ERP image.
        boxes: (K, 4) square BFoV boxes, radians.
        size: crop side in pixels.
        pyramid: smaller copies of ``erp`` (each (1, C, h, 2h), e.g. area-downsampled), used
            as mipmaps: each crop is sampled from the smallest image on which its box still
            spans ``size`` pixels (at the equator), so far fewer samples are needed.

    Returns:
        (K, C, size, size). Each crop is rendered at up to 4 x 4 samples per pixel (enough that
        no pixel of the image it is sampled from is skipped) and averaged.

    Raises:
        ShapeError: a pyramid image is not (1, C, h, 2h) with ``erp``'s C.
    """
    for level in pyramid:
        if (
            level.ndim != 4
            or level.shape[:2] != erp.shape[:2]
            or level.shape[-1] != 2 * level.shape[-2]
        ):
            raise ShapeError(
                f"pyramid images must be (1, {erp.shape[1]}, h, 2h) ERPs, got {tuple(level.shape)}"
            )
    images = sorted([erp, *pyramid], key=lambda im: -im.shape[-1])  # finest first
    widths = boxes.new_tensor([im.shape[-1] for im in images])
    box_px = boxes[:, 2:3] * widths / (2 * math.pi)  # (K, levels) box side in pixels (equator)
    # The smallest image where the box spans >= size pixels (the full ERP when it never does).
    level = ((box_px >= size).sum(1) - 1).clamp(min=0)
    px = box_px.gather(1, level[:, None])[:, 0]
    factors = torch.ceil(px / size).clamp(1, _MAX_SUPERSAMPLE).long()
    out = erp.new_zeros(boxes.shape[0], erp.shape[1], size, size)
    for lv, ss in torch.unique(torch.stack((level, factors), 1), dim=0).tolist():
        members = torch.nonzero((level == lv) & (factors == ss), as_tuple=True)[0]
        # A few thousand candidates (a large panorama, a small minimum face) in chunks: the
        # supersampled crops and their sampling grids stay within a fixed budget.
        for idx in members.split(max(1, _CROP_SAMPLES // (size * ss) ** 2)):
            b = boxes[idx]
            crops = erp_to_perspective(
                images[lv], b[:, 2], (size * ss, size * ss), yaw=b[:, 0], pitch=b[:, 1]
            )
            out[idx] = F.avg_pool2d(crops, ss) if ss > 1 else crops
    return out


def _refine(boxes, deltas, size) -> torch.Tensor:
    crop_px = boxes.new_tensor([-0.5, -0.5, size - 0.5, size - 0.5]).expand(boxes.shape[0], 4)
    return view_boxes_to_bfov(
        apply_box_deltas(crop_px, deltas), (size, size), boxes[:, 2], _camera(boxes)
    )


def _stages23(
    images: Sequence[torch.Tensor],
    boxes: torch.Tensor,
    thresholds: Sequence[float],
    rnet: nn.Module,
    onet: nn.Module,
) -> Detections:
    erp, mipmaps = images[0], images[1:]
    if boxes.shape[0] == 0:
        return _none(erp)  # the ERP, then smaller copies of it
    out = rnet(tangent_crops(erp, boxes, RNET_SIZE, mipmaps))
    passed = out.face_prob >= thresholds[1]
    boxes, scores, deltas = boxes[passed], out.face_prob[passed], out.box_deltas[passed]
    keep = sph_nms(boxes, scores, _NMS_STAGE2, method="fov")
    boxes = _square(_refine(boxes[keep], deltas[keep], RNET_SIZE))
    if boxes.shape[0] == 0:
        return _none(erp)
    out = onet(tangent_crops(erp, boxes, ONET_SIZE, mipmaps))
    passed = out.face_prob >= thresholds[2]
    crop_boxes, scores = boxes[passed], out.face_prob[passed]
    final = _refine(crop_boxes, out.box_deltas[passed], ONET_SIZE)
    points = -0.5 + out.landmarks[passed] * ONET_SIZE  # (K, 5, 2) crop pixels
    marks = _view_points_to_lonlat(
        points, (ONET_SIZE, ONET_SIZE), crop_boxes[:, 2], _camera(crop_boxes)
    )
    keep = sph_nms(final, scores, _NMS_STAGE3, denominator="min")
    return _result(final[keep], scores[keep], marks[keep])


def _result(boxes: torch.Tensor, scores: torch.Tensor, marks: torch.Tensor) -> Detections:
    """The detection result (:data:`Detections`) of faces: label 0, five landmarks each."""
    labels = torch.zeros(boxes.shape[0], dtype=torch.long, device=boxes.device)
    return {"boxes": boxes, "scores": scores, "labels": labels, "keypoints": marks}


def _none(erp: torch.Tensor) -> Detections:
    return empty_detections(4, num_keypoints=5, dtype=erp.dtype, device=erp.device)


# --- strategies ---------------------------------------------------------------------------------


def _direct(erp, min_face_deg, thresholds, factor, nets) -> Detections:
    h, w = erp.shape[-2:]
    found = detect_faces_planar(erp, min_face_deg * w / 360, thresholds, factor, nets)[0]
    if found.boxes.shape[0] == 0:
        return _none(erp)
    boxes = found.boxes.clone()
    boxes[:, 0::2] = boxes[:, 0::2].clamp(-0.5, w - 0.5)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(-0.5, h - 0.5)
    bfov = box_convert(boxes, "erp_xyxy", "bfov", erp_hw=(h, w))
    marks = pixel_to_lonlat(found.landmarks, (h, w))
    return _result(bfov, found.scores, marks)


def _views(erp, rig: ViewRig, min_face_deg, thresholds, factor, nets) -> Detections:
    view_hw = rig.view_hw(erp.shape[-1])
    views = render_views(erp, rig).clamp(0, 1)
    rotations = rig.rotations(dtype=erp.dtype, device=erp.device)
    all_boxes, all_scores, all_marks = [], [], []
    # MTCNN's smallest face is in pixels: views of one fov share it.
    for fov_value in sorted(set(rig.fov)):
        ks = [k for k, f in enumerate(rig.fov) if f == fov_value]
        min_face_px = min_face_deg / math.degrees(fov_value) * view_hw[1]
        found_all = detect_faces_planar(views[ks], min_face_px, thresholds, factor, nets)
        for k, found in zip(ks, found_all, strict=True):
            n = found.boxes.shape[0]
            if n == 0:
                continue
            fov = found.boxes.new_full((n,), fov_value)
            rot = rotations[k].expand(n, 3, 3)
            all_boxes.append(view_boxes_to_bfov(found.boxes, view_hw, fov, rot))
            all_marks.append(_view_points_to_lonlat(found.landmarks, view_hw, fov, rot))
            all_scores.append(found.scores)
    if not all_boxes:
        return _none(erp)
    boxes, scores, marks = (torch.cat(t) for t in (all_boxes, all_scores, all_marks))
    keep = sph_nms(boxes, scores, _NMS_VIEWS, denominator="min")
    return _result(boxes[keep], scores[keep], marks[keep])


def pnet_on_erp(pnet: nn.Module, strategy: str) -> Callable[[torch.Tensor], MTCNNOutput]:
    """Stage 1 of an ERP strategy: P-Net's output maps at (h / 2, w / 2) for an ERP level.

    P-Net's convolutions (``pnet.features``) run on the level with
    :func:`pano360.transfer.apply`'s ``spherical`` strategy (tangent-tap spherical convolutions
    and spherical pooling, built once per level size) or ``exact`` (every cell evaluated on its
    own tangent-plane patch); its 1 x 1 heads read the result.
    """
    check_choice(strategy, "strategy", ("spherical", "exact"))
    features = TransferredModel(pnet.features, strategy)

    def run(erp: torch.Tensor) -> MTCNNOutput:
        x = mtcnn_normalize(erp)
        if strategy == "spherical":
            # Channels-last flows through the spherical convolutions and pooling (faster).
            x = x.contiguous(memory_format=torch.channels_last)
        f = features(x)
        return MTCNNOutput(pnet.face(f), pnet.box(f))

    return run


def detector_precision(device: torch.device, half: bool):
    """The context the detector's networks run in: float16 autocast on ``device`` if ``half``
    (for GPUs; geometry, boxes and blur keep the input's float32), else nothing."""
    if half:
        return torch.autocast(device.type, dtype=torch.float16)
    return contextlib.nullcontext()


@functools.lru_cache(maxsize=8)
def _shipped_stage1(device: torch.device, dtype: torch.dtype, strategy: str):
    # The shipped P-Net never changes, so its spherical levels are built once per process.
    return pnet_on_erp(_pretrained_nets(device, dtype)[0], strategy)


def distilled_pnet_on_erp(
    pnet: nn.Module, students: str | os.PathLike[str] | Mapping[tuple[int, int], nn.Module]
) -> Callable[[torch.Tensor], MTCNNOutput]:
    """Stage 1 of the ``distilled`` strategy: row-untied P-Net students, one per ERP level.

    Args:
        pnet: the P-Net whose 1 x 1 heads read the students' features.
        students: (H, W) -> a student of ``model_stack("mtcnn_pnet")`` trained at that size, or
            a folder whose subfolders are finished ``pano360 distill --model mtcnn_pnet`` runs
            (any names; each run's ERP size is read from it).

    Raises:
        ValueRangeError: a level of the pyramid has no student (the message lists the sizes to
            train) or the folder holds no run.
    """
    if not isinstance(students, Mapping):
        students = load_pnet_students(students)
    students = dict(students)

    def run(erp: torch.Tensor) -> MTCNNOutput:
        hw = tuple(erp.shape[-2:])
        if hw not in students:
            have = ", ".join(f"{w}x{h}" for h, w in sorted(students)) or "none"
            raise ValueRangeError(
                f"no distilled P-Net student for the {hw[1]}x{hw[0]} pyramid level (have: "
                f"{have}); train one with 'pano360 distill --model mtcnn_pnet --erp-size "
                f"{hw[1]}x{hw[0]}' (levels: erp_pyramid_levels())"
            )
        # Channels-last: the wide polar kernels convolve several times faster in it.
        f = students[hw](erp.contiguous(memory_format=torch.channels_last))
        return MTCNNOutput(pnet.face(f), pnet.box(f))

    return run


def load_pnet_students(folder: str | os.PathLike[str]) -> dict[tuple[int, int], nn.Module]:
    """Every finished ``pano360 distill --model mtcnn_pnet`` run in the subfolders of ``folder``,
    by the ERP size it was trained for."""
    folder = Path(folder)
    stack = model_stack("mtcnn_pnet")
    found = {}
    runs = (
        sorted(p for p in folder.iterdir() if (p / "student.safetensors").is_file())
        if (folder.is_dir())
        else []
    )
    for run in runs:
        student = load_student(stack, run)
        hw = next(m.erp_hw for m in student.modules() if hasattr(m, "erp_hw"))
        found[tuple(hw)] = student
    if not found:
        raise ValueRangeError(
            f"'{folder}' holds no finished distill run (subfolders with student.safetensors)"
        )
    return found


def _check_settings(min_face_deg, max_face_deg, thresholds, factor) -> None:
    if not 0 < min_face_deg <= max_face_deg < 180:
        raise ValueRangeError(
            "min_face_deg and max_face_deg must satisfy 0 < min_face_deg <= max_face_deg < 180, "
            f"got {min_face_deg} and {max_face_deg}"
        )
    if len(thresholds) != 3 or any(not 0 <= t <= 1 for t in thresholds):
        raise ValueRangeError(f"thresholds must be three values in [0, 1], got {thresholds}")
    if not 0 < factor < 1:
        raise ValueRangeError(f"factor must be in (0, 1), got {factor}")


@torch.no_grad()
def detect_faces(
    erp: torch.Tensor,
    strategy: str = "spherical",
    min_face_deg: float = 8.0,
    max_face_deg: float = 60.0,
    thresholds: Sequence[float] = (0.6, 0.7, 0.7),
    factor: float = 0.709,
    *,
    rig: ViewRig | None = None,
    stage1: Callable[[torch.Tensor], MTCNNOutput] | None = None,
    students: str | os.PathLike[str] | Mapping[tuple[int, int], nn.Module] | None = None,
    nets: Sequence[nn.Module] | None = None,
    progress: Callable[[float], None] | None = None,
) -> list[Detections]:
    """Find faces in ERP panoramas with MTCNN, run with one of the transfer strategies.

    Args:
        erp: (B, 3, H, W) or (3, H, W) RGB in [0, 1], W == 2H.
        strategy: one of :data:`FACE_STRATEGIES` (module docstring); ``distilled``
            needs ``students``.
        min_face_deg, max_face_deg: range of face sizes (angular width) to look for, degrees.
        thresholds: face probability thresholds of P-Net, R-Net and O-Net.
        factor: pyramid step, in (0, 1).
        rig: the views of the ``multiview`` strategy (default
            :meth:`ViewRig.ring() <pano360.geometry.ViewRig.ring>`: 16 views of 45° with 50%
            overlap around the horizon, as common tools run detectors on panoramas).
        stage1: stage 1 of the ERP strategies: a function from an ERP level (1, 3, h, w) to
            P-Net's output maps at (h / 2, w / 2) (default: :func:`pnet_on_erp` for
            ``spherical`` and ``exact``, :func:`distilled_pnet_on_erp` for ``distilled``).
        students: the ``distilled`` strategy's P-Net students (see
            :func:`distilled_pnet_on_erp`).
        nets: (pnet, rnet, onet); default the pretrained ``mtcnn_*`` models.
        progress: called with the share of the work done, in (0, 1], as it goes: for the ERP
            strategies after the pyramid, after each of its levels (weighted by pixels) and
            after stages 2 and 3; for the others after each image (a progress bar on a large
            panorama).

    Returns:
        One detection result per image (:data:`Detections`, the contract every pano360
        detector keeps): ``"boxes"`` (N, 4) BFoV, ``"scores"`` (N,) the last stage's face
        probability, ``"labels"`` (N,) zeros, ``"keypoints"`` (N, 5, 2) the landmarks as
        (lon, lat) (module docstring), radians, by decreasing score. :func:`face_detections`
        turns one into :class:`FaceDetection` objects.

    Raises:
        ShapeError: ``erp`` is not (B, 3, H, W) or (3, H, W) with W == 2H.
        ValueRangeError: settings out of range.
        ValueError: unknown strategy, or ``distilled`` without ``students``.

    Example:
        >>> (found,) = detect_faces(torch.zeros(3, 64, 128))  # a blank panorama
        >>> found["boxes"].shape, found["keypoints"].shape
        (torch.Size([0, 4]), torch.Size([0, 5, 2]))
    """
    check_choice(strategy, "strategy", FACE_STRATEGIES)
    if isinstance(erp, torch.Tensor) and erp.ndim == 3:
        erp = erp[None]
    check_erp(erp)
    if erp.shape[1] != 3:
        raise ShapeError(f"erp must be RGB images (B, 3, H, W), got {tuple(erp.shape)}")
    _check_settings(min_face_deg, max_face_deg, thresholds, factor)
    shipped = nets is None
    if shipped:
        nets = _pretrained_nets(erp.device, erp.dtype)
    pnet, rnet, onet = nets
    if strategy in ("cubemap", "multiview"):
        rig = ViewRig.cube() if strategy == "cubemap" else (rig or ViewRig.ring())
    if stage1 is None and strategy not in ("direct", "cubemap", "multiview"):
        if strategy == "distilled":
            if students is None:
                raise ValueError(
                    "strategy 'distilled' needs students (pano360 distill runs, one per "
                    "pyramid level: erp_pyramid_levels()) or stage1"
                )
            stage1 = distilled_pnet_on_erp(pnet, students)
        elif shipped:
            stage1 = _shipped_stage1(erp.device, erp.dtype, strategy)
        else:
            stage1 = pnet_on_erp(pnet, strategy)
    found = []
    batch = erp.shape[0]

    def report(i: int, share: float) -> None:
        if progress is not None:
            progress((i + share) / batch)

    for i, image in enumerate(erp.split(1)):
        if strategy == "direct":
            found.append(_direct(image, min_face_deg, thresholds, factor, nets))
        elif strategy in ("cubemap", "multiview"):
            found.append(_views(image, rig, min_face_deg, thresholds, factor, nets))
        else:
            sizes = _erp_levels(min_face_deg, max_face_deg, factor)
            levels, halvings = erp_pyramid(image, sizes, with_halvings=True)
            report(i, _SHARE_PYRAMID)
            total, done = sum(h * w for h, w in sizes), [0]

            def level_done(pixels: int, i: int = i, total: int = total, done=done) -> None:
                done[0] += pixels
                report(i, _SHARE_PYRAMID + _SHARE_STAGE1 * done[0] / total)

            boxes, _ = _stage1_sphere(stage1, levels, thresholds[0], level_done)
            # The ERP, its halvings and the levels double as mipmaps for stages 2 and 3's crops.
            found.append(_stages23([*halvings, *levels], boxes, thresholds, rnet, onet))
        report(i, 1.0)
    return found
