"""MTCNN face detection on planar (perspective) images, as separable stages.

The pipeline of Zhang et al. (2016), with the networks of :mod:`pano360.models.mtcnn`:

1. :func:`mtcnn_stage1`: P-Net runs on an image pyramid (:func:`mtcnn_pyramid_scales`); every
   output cell with face probability >= ``thresholds[0]`` is a 12 x 12 window in the resized
   image (:func:`pnet_map_to_boxes`); NMS at IoU 0.5 per scale, then 0.7 across scales; the
   windows are moved by P-Net's box regression and made square.
2. :func:`mtcnn_stage2`: R-Net scores 24 x 24 crops of the candidates; >= ``thresholds[1]``
   survive; NMS at IoU 0.7; regression; squares again.
3. :func:`mtcnn_stage3`: O-Net scores 48 x 48 crops; >= ``thresholds[2]`` survive; five
   landmarks relative to the crop; regression; NMS at 0.7 intersection over the *smaller* box.

Stages 2 and 3 take the crops as an argument (:func:`crop_candidates` makes them for planar
images), so a pipeline that samples its crops elsewhere (e.g. perspective views of an ERP image)
reuses them unchanged. :func:`detect_faces_planar` runs the three stages.

This follows facenet-pytorch 2.6.0 (thresholds, pyramid, NMS, crop sizes, normalisation) with
these deliberate differences: boxes use continuous pixel coordinates (no MATLAB 1-based "+ 1"
widths and no rounding to integers), the pyramid's exact per-axis scale maps windows back,
crops outside the image are zero padded as in the original MTCNN (facenet-pytorch clips the box
to the image and stretches the rest), and every threshold test is ``>=``.

Convention:
    Boxes are (x1, y1, x2, y2) and landmarks (x, y) in continuous pixel coordinates of the input
    image with pixel centres at integers (x = column to the right, y = row down; the image
    covers [-0.5, W - 0.5] x [-0.5, H - 0.5]), see :mod:`pano360.detection._ops`. Add 0.5 for
    coordinates with pixel edges at integers (torchvision, PIL drawing).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .._core import ShapeError, ValueRangeError, create_model
from ._nms import nms
from ._ops import apply_box_deltas, crop_boxes, square_boxes

__all__ = [
    "FaceCandidates",
    "FaceDetections",
    "MTCNNFaceDetector",
    "PNetWindows",
    "crop_candidates",
    "detect_faces_planar",
    "mtcnn_pyramid_scales",
    "mtcnn_stage1",
    "mtcnn_stage2",
    "mtcnn_stage3",
    "pnet_map_to_boxes",
]

#: P-Net's output stride and window size in pixels of the image it runs on.
PNET_STRIDE = 2
PNET_WINDOW = 12
#: Crop sizes of R-Net and O-Net.
RNET_SIZE = 24
ONET_SIZE = 48
# NMS overlaps of the original MTCNN: per scale, across scales, after R-Net, after O-Net (min).
_NMS_PER_SCALE, _NMS_STAGE1, _NMS_STAGE2, _NMS_STAGE3 = 0.5, 0.7, 0.7, 0.7
# Images may leave [0, 1] by this much (bicubic resampling overshoots); they are clamped.
_RANGE_SLACK = 0.1


class PNetWindows(NamedTuple):
    """P-Net windows above threshold at one scale (see :func:`pnet_map_to_boxes`).

    Attributes:
        boxes: (K, 4) xyxy windows in input-image pixel coordinates (regression not applied).
        scores: (K,) face probabilities.
        deltas: (K, 4) P-Net's box regression (dx1, dy1, dx2, dy2) for each window.
        batch_idx: (K,) int64 image index.
    """

    boxes: torch.Tensor
    scores: torch.Tensor
    deltas: torch.Tensor
    batch_idx: torch.Tensor


class FaceCandidates(NamedTuple):
    """Face boxes flowing between the stages (all images of a batch together).

    Attributes:
        boxes: (K, 4) xyxy in input-image pixel coordinates.
        scores: (K,) face probability of the last stage.
        batch_idx: (K,) int64 image index.
        landmarks: (K, 5, 2) (x, y) after stage 3, None before.
    """

    boxes: torch.Tensor
    scores: torch.Tensor
    batch_idx: torch.Tensor
    landmarks: torch.Tensor | None = None


class FaceDetections(NamedTuple):
    """Faces found in one image, by decreasing score.

    Attributes:
        boxes: (n, 4) xyxy, continuous pixel coordinates with pixel centres at integers.
        scores: (n,) O-Net face probability.
        landmarks: (n, 5, 2) (x, y): the eye on the image's left, the other eye, the nose, the
            mouth corner on the image's left, the other mouth corner.
    """

    boxes: torch.Tensor
    scores: torch.Tensor
    landmarks: torch.Tensor


def mtcnn_pyramid_scales(
    hw: Sequence[int], min_face_px: float = 20.0, factor: float = 0.709
) -> list[float]:
    """Scales of MTCNN's image pyramid: 12 / min_face_px times factor**k while min(H, W) s >= 12.

    At scale s a face of 12 / s pixels fills P-Net's 12 x 12 window, so the first scale finds
    faces of ``min_face_px`` and each next one faces 1 / factor times larger.

    Raises:
        ValueRangeError: ``min_face_px`` not positive, or ``factor`` outside (0, 1).

    Example:
        >>> [round(s, 3) for s in mtcnn_pyramid_scales((60, 80), 20)]
        [0.6, 0.425, 0.302, 0.214]
    """
    _check_pyramid(min_face_px, factor)
    scale = PNET_WINDOW / float(min_face_px)
    side = min(int(v) for v in hw) * scale
    scales = []
    while side >= PNET_WINDOW:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


def _check_pyramid(min_face_px: float, factor: float) -> None:
    if not (math.isfinite(float(min_face_px)) and min_face_px > 0):
        raise ValueRangeError(f"min_face_px must be a positive number, got {min_face_px!r}")
    if not 0.0 < float(factor) < 1.0:
        raise ValueRangeError(f"factor must be in (0, 1), got {factor!r}")


def pnet_map_to_boxes(
    face_prob: torch.Tensor,
    box_deltas: torch.Tensor,
    scale: float | tuple[float, float],
    threshold: float,
) -> PNetWindows:
    """Turn P-Net's output maps at one scale into windows in the original image.

    Args:
        face_prob: (B, h, w) face probability of each cell (:attr:`MTCNNOutput.face_prob`).
        box_deltas: (B, 4, h, w) P-Net's box regression.
        scale: size of the image P-Net ran on over the original's size, one number or
            (scale_x, scale_y).
        threshold: cells with probability >= threshold become windows.

    Returns:
        :class:`PNetWindows` in the order of ``nonzero`` (image, row, column).

    Raises:
        ShapeError: the maps' shapes disagree.
        ValueRangeError: a scale is not positive.

    Convention:
        Cell (i, j) covers pixels 2i .. 2i + 11 and 2j .. 2j + 11 of the resized image, i.e. the
        edges [2j, 2j + 12] / scale_x on the original (pixel edges at integers); minus 0.5 for
        our pixel-centre coordinates: x1 = 2j / scale_x - 0.5, x2 = (2j + 12) / scale_x - 0.5.
    """
    if face_prob.ndim != 3 or box_deltas.shape != (face_prob.shape[0], 4, *face_prob.shape[1:]):
        raise ShapeError(
            f"face_prob must be (B, h, w) and box_deltas (B, 4, h, w), got "
            f"{tuple(face_prob.shape)} and {tuple(box_deltas.shape)}"
        )
    sx, sy = (scale, scale) if isinstance(scale, (int, float)) else scale
    if not (sx > 0 and sy > 0):
        raise ValueRangeError(f"scale must be positive, got {scale!r}")
    mask = face_prob >= threshold
    idx = torch.nonzero(mask)
    corner = idx[:, 1:].flip(1).to(face_prob.dtype) * PNET_STRIDE  # (x, y) in resized pixels
    inv = torch.tensor([1.0 / sx, 1.0 / sy], dtype=face_prob.dtype, device=face_prob.device)
    boxes = torch.cat((corner * inv, (corner + PNET_WINDOW) * inv), dim=1) - 0.5
    deltas = box_deltas.permute(0, 2, 3, 1)[mask]
    return PNetWindows(boxes, face_prob[mask], deltas, idx[:, 0])


def _resize(images: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    # Planar on purpose: this is the planar detector, for photos and views; run on an ERP it is
    # the `direct` strategy, which by definition treats the panorama as a flat photo.
    if hw[0] <= images.shape[-2] and hw[1] <= images.shape[-1]:
        return F.interpolate(images, size=hw, mode="area")  # MTCNN's INTER_AREA downsampling
    return F.interpolate(images, size=hw, mode="bilinear", align_corners=False, antialias=True)


def _valid(boxes: torch.Tensor) -> torch.Tensor:
    """Boxes with finite coordinates and positive width and height."""
    size = boxes[:, 2:] - boxes[:, :2]
    return torch.isfinite(boxes).all(dim=1) & (size > 0).all(dim=1)


def _select(c: FaceCandidates, keep: torch.Tensor) -> FaceCandidates:
    return FaceCandidates(
        c.boxes[keep],
        c.scores[keep],
        c.batch_idx[keep],
        None if c.landmarks is None else c.landmarks[keep],
    )


def mtcnn_stage1(
    pnet: nn.Module,
    images: torch.Tensor,
    min_face_px: float = 20.0,
    threshold: float = 0.6,
    factor: float = 0.709,
) -> FaceCandidates:
    """MTCNN stage 1: P-Net over the image pyramid, NMS, regression, squares.

    Args:
        pnet: a :class:`~pano360.models.PNet` (or any module with its contract).
        images: (B, 3, H, W) RGB in [0, 1].
        min_face_px: smallest face side to look for, in pixels.
        threshold: P-Net face probability threshold.
        factor: pyramid scale step, in (0, 1).

    Returns:
        :class:`FaceCandidates` of square boxes (regressed), ``landmarks`` None.
    """
    big_h, big_w = images.shape[-2:]
    found = []
    for scale in mtcnn_pyramid_scales((big_h, big_w), min_face_px, factor):
        hw = (math.ceil(big_h * scale), math.ceil(big_w * scale))
        out = pnet(_resize(images, hw))
        win = pnet_map_to_boxes(
            out.face_prob, out.box_deltas, (hw[1] / big_w, hw[0] / big_h), threshold
        )
        keep = nms(win.boxes, win.scores, _NMS_PER_SCALE, groups=win.batch_idx)
        found.append(PNetWindows(*(t[keep] for t in win)))
    if not found:
        return _empty_candidates(images)
    win = PNetWindows(*(torch.cat(parts) for parts in zip(*found, strict=True)))
    keep = nms(win.boxes, win.scores, _NMS_STAGE1, groups=win.batch_idx)
    boxes = square_boxes(apply_box_deltas(win.boxes[keep], win.deltas[keep]))
    cand = FaceCandidates(boxes, win.scores[keep], win.batch_idx[keep])
    return _select(cand, _valid(cand.boxes))


def _empty_candidates(images: torch.Tensor) -> FaceCandidates:
    z = images.new_zeros
    return FaceCandidates(z(0, 4), z(0), torch.zeros(0, dtype=torch.long, device=images.device))


def crop_candidates(images: torch.Tensor, candidates: FaceCandidates, size: int) -> torch.Tensor:
    """Square ``size`` x ``size`` crops of the candidates' boxes (zero outside the image).

    Returns:
        (K, 3, size, size), see :func:`~pano360.detection.crop_boxes`.
    """
    return crop_boxes(images, candidates.boxes, (size, size), candidates.batch_idx)


def _check_crops(crops: torch.Tensor, candidates: FaceCandidates, size: int) -> None:
    n = candidates.boxes.shape[0]
    if crops.shape != (n, 3, size, size):
        raise ShapeError(f"crops must be ({n}, 3, {size}, {size}), got {tuple(crops.shape)}")


def mtcnn_stage2(
    rnet: nn.Module, crops: torch.Tensor, candidates: FaceCandidates, threshold: float = 0.7
) -> FaceCandidates:
    """MTCNN stage 2: R-Net on 24 x 24 crops, threshold, NMS (IoU 0.7), regression, squares.

    Args:
        rnet: an :class:`~pano360.models.RNet`.
        crops: (K, 3, 24, 24) crops of ``candidates.boxes`` (:func:`crop_candidates`).
        candidates: the output of stage 1.
        threshold: R-Net face probability threshold.

    Returns:
        :class:`FaceCandidates` of square boxes with R-Net's scores.

    Raises:
        ShapeError: ``crops`` is not (K, 3, 24, 24) for K candidates.
    """
    _check_crops(crops, candidates, RNET_SIZE)
    if crops.shape[0] == 0:
        return candidates
    out = rnet(crops)
    prob = out.face_prob
    cand = FaceCandidates(candidates.boxes, prob, candidates.batch_idx)
    passed = torch.nonzero(prob >= threshold).flatten()
    cand, deltas = _select(cand, passed), out.box_deltas[passed]
    keep = nms(cand.boxes, cand.scores, _NMS_STAGE2, groups=cand.batch_idx)
    cand, deltas = _select(cand, keep), deltas[keep]
    cand = cand._replace(boxes=square_boxes(apply_box_deltas(cand.boxes, deltas)))
    return _select(cand, _valid(cand.boxes))


def mtcnn_stage3(
    onet: nn.Module, crops: torch.Tensor, candidates: FaceCandidates, threshold: float = 0.7
) -> FaceCandidates:
    """MTCNN stage 3: O-Net on 48 x 48 crops, threshold, landmarks, regression, NMS (min, 0.7).

    Args:
        onet: an :class:`~pano360.models.ONet`.
        crops: (K, 3, 48, 48) crops of ``candidates.boxes`` (:func:`crop_candidates`).
        candidates: the output of stage 2.
        threshold: O-Net face probability threshold.

    Returns:
        :class:`FaceCandidates` with final boxes (not squared), O-Net's scores and landmarks
        (K', 5, 2), by decreasing score within each image.

    Raises:
        ShapeError: ``crops`` is not (K, 3, 48, 48) for K candidates.

    Convention:
        Landmarks are placed in the box the crop was taken from (before regression):
        x = x1 + fx (x2 - x1), y = y1 + fy (y2 - y1) with O-Net's fractions (fx, fy).
    """
    _check_crops(crops, candidates, ONET_SIZE)
    if crops.shape[0] == 0:
        return candidates._replace(landmarks=crops.new_zeros(0, 5, 2))
    out = onet(crops)
    boxes = candidates.boxes
    size = boxes[:, 2:] - boxes[:, :2]
    points = boxes[:, None, :2] + out.landmarks * size[:, None, :]
    cand = FaceCandidates(
        apply_box_deltas(boxes, out.box_deltas), out.face_prob, candidates.batch_idx, points
    )
    cand = _select(cand, torch.nonzero(out.face_prob >= threshold).flatten())
    cand = _select(cand, _valid(cand.boxes))
    keep = nms(cand.boxes, cand.scores, _NMS_STAGE3, groups=cand.batch_idx, denominator="min")
    return _select(cand, keep)


def _check_images(images) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        raise ShapeError(
            f"images must be (B, 3, H, W) RGB, got {tuple(getattr(images, 'shape', ()))}"
        )
    if not images.is_floating_point():
        raise ValueRangeError(
            f"images must be float in [0, 1], got dtype {images.dtype} (divide 8-bit images by 255)"
        )
    if images.numel():
        lo, hi = images.min().item(), images.max().item()
        if lo < -_RANGE_SLACK or hi > 1 + _RANGE_SLACK or not math.isfinite(lo + hi):
            raise ValueRangeError(f"images must be float in [0, 1], got values in [{lo}, {hi}]")


def _check_settings(min_face_px, thresholds, factor) -> None:
    _check_pyramid(min_face_px, factor)
    if len(thresholds) != 3 or not all(0.0 <= float(t) <= 1.0 for t in thresholds):
        raise ValueRangeError(
            f"thresholds must be three probabilities in [0, 1], got {tuple(thresholds)!r}"
        )


@functools.lru_cache(maxsize=4)
def _pretrained_nets(device: torch.device, dtype: torch.dtype) -> tuple[nn.Module, ...]:
    return tuple(
        create_model(name, pretrained=True).to(device=device, dtype=dtype).eval()
        for name in ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet")
    )


def detect_faces_planar(
    images: torch.Tensor,
    min_face_px: float = 20.0,
    thresholds: Sequence[float] = (0.6, 0.7, 0.7),
    factor: float = 0.709,
    nets: Sequence[nn.Module] | None = None,
) -> list[FaceDetections]:
    """Find faces in ordinary (perspective) images with MTCNN.

    Args:
        images: (B, 3, H, W) RGB float in [0, 1] (values up to 0.1 outside are clamped).
        min_face_px: smallest face side to look for, in pixels (> 0).
        thresholds: face probability thresholds of P-Net, R-Net and O-Net.
        factor: image pyramid step, in (0, 1).
        nets: (pnet, rnet, onet); None uses the pretrained ``mtcnn_*`` models (loaded once,
            cached per device and dtype).

    Returns:
        One :class:`FaceDetections` per image: boxes (n, 4) xyxy, scores (n,) and landmarks
        (n, 5, 2), by decreasing score. Images smaller than ``min_face_px`` give no faces.
        Runs without gradients.

    Raises:
        ShapeError: ``images`` is not (B, 3, H, W).
        ValueRangeError: ``images`` is not float in [0, 1]; ``min_face_px``, ``thresholds`` or
            ``factor`` out of range.

    Convention:
        Boxes and landmarks in continuous pixel coordinates with pixel centres at integers
        (module docstring).

    Example:
        >>> found = detect_faces_planar(torch.zeros(2, 3, 64, 64))
        >>> len(found), found[0].boxes.shape, found[0].landmarks.shape
        (2, torch.Size([0, 4]), torch.Size([0, 5, 2]))
    """
    _check_images(images)
    _check_settings(min_face_px, thresholds, factor)
    if nets is None:
        dtype = images.dtype if images.dtype in (torch.float32, torch.float64) else torch.float32
        nets = _pretrained_nets(images.device, dtype)
    pnet, rnet, onet = nets
    dtype = next(pnet.parameters()).dtype
    images = images.to(dtype).clamp(0, 1)
    t1, t2, t3 = (float(t) for t in thresholds)
    with torch.no_grad():
        cand = mtcnn_stage1(pnet, images, min_face_px, t1, factor)
        cand = mtcnn_stage2(rnet, crop_candidates(images, cand, RNET_SIZE), cand, t2)
        cand = mtcnn_stage3(onet, crop_candidates(images, cand, ONET_SIZE), cand, t3)
    return [
        FaceDetections(cand.boxes[sel], cand.scores[sel], cand.landmarks[sel])
        for sel in (cand.batch_idx == b for b in range(images.shape[0]))
    ]


class MTCNNFaceDetector(nn.Module):
    """:func:`detect_faces_planar` with its networks and settings stored.

    Args:
        min_face_px, thresholds, factor: as in :func:`detect_faces_planar`.
        pretrained: build the networks with the shipped weights (True) or random ones.

    Raises:
        ValueRangeError: ``min_face_px``, ``thresholds`` or ``factor`` out of range.

    Example:
        >>> detector = MTCNNFaceDetector(min_face_px=30)
        >>> detector
        MTCNNFaceDetector(min_face_px=30.0, thresholds=(0.6, 0.7, 0.7), factor=0.709)
    """

    def __init__(
        self,
        min_face_px: float = 20.0,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        _check_settings(min_face_px, thresholds, factor)
        self.min_face_px = float(min_face_px)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = float(factor)
        self.pnet = create_model("mtcnn_pnet", pretrained=pretrained).eval()
        self.rnet = create_model("mtcnn_rnet", pretrained=pretrained).eval()
        self.onet = create_model("mtcnn_onet", pretrained=pretrained).eval()

    def forward(self, images: torch.Tensor) -> list[FaceDetections]:
        return detect_faces_planar(
            images,
            self.min_face_px,
            self.thresholds,
            self.factor,
            (self.pnet, self.rnet, self.onet),
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(min_face_px={self.min_face_px}, "
            f"thresholds={self.thresholds}, factor={self.factor})"
        )
