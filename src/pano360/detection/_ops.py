"""Planar box operations in plain torch: areas, IoU, box regression, RoI crops (NMS: ``_nms``).

Convention:
    Boxes are (N, 4) tensors ``(x1, y1, x2, y2)`` in continuous pixel coordinates of the image
    they belong to, with pixel centres at integers (x = column, to the right; y = row, down), as
    in :mod:`pano360.geometry.conventions`: an H x W image covers [-0.5, W - 0.5] x
    [-0.5, H - 0.5], and a box's width is ``x2 - x1`` (no "+ 1"). torchvision-style
    coordinates, with pixel edges at integers, are these plus 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .._core import ShapeError, ValueRangeError, check_choice, check_hw

__all__ = [
    "IOU_DENOMINATORS",
    "apply_box_deltas",
    "box_area",
    "box_iou",
    "crop_boxes",
    "square_boxes",
]

#: ``box_iou``'s denominators: intersection over union, or over the smaller of the two areas.
IOU_DENOMINATORS = ("union", "min")


def _check_boxes(boxes: torch.Tensor, name: str = "boxes") -> None:
    if not isinstance(boxes, torch.Tensor) or boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ShapeError(f"{name} must be (N, 4) xyxy, got {tuple(getattr(boxes, 'shape', ()))}")


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Areas of (N, 4) xyxy boxes, (N,); a box with x2 < x1 or y2 < y1 has area 0."""
    _check_boxes(boxes)
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor, denominator: str = "union") -> torch.Tensor:
    """Pairwise overlap of two sets of boxes.

    Args:
        boxes1: (N, 4) xyxy boxes.
        boxes2: (M, 4) xyxy boxes.
        denominator: "union" (intersection over union, IoU) or "min" (intersection over the
            smaller area, MTCNN's last NMS).

    Returns:
        (N, M) overlaps in [0, 1]; 0 where the denominator is 0. Differentiable in the boxes.

    Raises:
        ShapeError: a box set is not (N, 4).
        ValueError: unknown ``denominator``.

    Convention:
        xyxy boxes, pixel centres at integers, width x2 - x1 (module docstring).

    Example:
        >>> box_iou(torch.tensor([[0.0, 0, 2, 2]]), torch.tensor([[1.0, 0, 3, 2]]))
        tensor([[0.3333]])
    """
    _check_boxes(boxes1, "boxes1")
    _check_boxes(boxes2, "boxes2")
    check_choice(denominator, "denominator", IOU_DENOMINATORS)
    return _overlap(boxes1, boxes2, denominator)


def _overlap(boxes1: torch.Tensor, boxes2: torch.Tensor, denominator: str) -> torch.Tensor:
    a1 = (boxes1[:, 2] - boxes1[:, 0]).clamp(min=0) * (boxes1[:, 3] - boxes1[:, 1]).clamp(min=0)
    a2 = (boxes2[:, 2] - boxes2[:, 0]).clamp(min=0) * (boxes2[:, 3] - boxes2[:, 1]).clamp(min=0)
    lt = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    if denominator == "union":
        denom = a1[:, None] + a2[None, :] - inter
    else:
        denom = torch.minimum(a1[:, None], a2[None, :])
    positive = denom > 0
    return torch.where(positive, inter / torch.where(positive, denom, 1), 0)


def apply_box_deltas(boxes: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """Move each edge of (N, 4) boxes by (N, 4) deltas in units of the box's width / height.

    ``(x1 + dx1 w, y1 + dy1 h, x2 + dx2 w, y2 + dy2 h)`` with ``w = x2 - x1``, ``h = y2 - y1``:
    MTCNN's box regression. Positive dx moves an edge right, positive dy moves it down.

    Raises:
        ShapeError: ``boxes`` or ``deltas`` is not (N, 4), or their N differ.
    """
    _check_boxes(boxes)
    _check_boxes(deltas, "deltas")
    if deltas.shape != boxes.shape:
        raise ShapeError(f"deltas must be {tuple(boxes.shape)}, got {tuple(deltas.shape)}")
    size = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    return boxes + deltas * size


def square_boxes(boxes: torch.Tensor) -> torch.Tensor:
    """Squares with the same centres and side max(width, height), (N, 4) -> (N, 4).

    Raises:
        ShapeError: ``boxes`` is not (N, 4).
    """
    _check_boxes(boxes)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).amax(dim=1, keepdim=True) / 2
    return torch.cat((centre - half, centre + half), dim=1)


#: Most samples per output pixel and axis used by crop_boxes to average over its footprint.
MAX_SUPERSAMPLE = 8
# Samples per grid_sample call, to bound memory with many large boxes.
_SAMPLES_PER_CALL = 1 << 22


def crop_boxes(
    images: torch.Tensor,
    boxes: torch.Tensor,
    out_hw: Sequence[int],
    batch_idx: torch.Tensor | None = None,
    antialias: bool = True,
) -> torch.Tensor:
    """Resample the inside of each box to a fixed size; what lies outside the image is 0.

    This is MTCNN's crop: the box (square or not) is stretched to ``out_hw``; the parts of it
    outside the image read as 0 (black), the parts inside as the image, up to its very edge
    (pixels are constant over their own square, so the outer half pixel reads the edge pixel).
    With ``antialias`` each output pixel averages k x k bilinear samples spread evenly over its
    footprint in the image, k = ceil(footprint / 1 pixel) up to :data:`MAX_SUPERSAMPLE`, which
    approximates the area resampling (OpenCV INTER_AREA) MTCNN was trained with.

    Args:
        images: (B, C, H, W) images.
        boxes: (N, 4) xyxy boxes in the images' pixel coordinates.
        out_hw: (h, w) of the crops.
        batch_idx: (N,) index of the image each box belongs to; None means image 0 for all.
        antialias: average over each output pixel's footprint (True) or take one bilinear
            sample at its centre (False).

    Returns:
        (N, C, h, w) crops, same dtype as ``images``; differentiable in ``images`` and ``boxes``.

    Raises:
        ShapeError: ``images`` not 4-D, ``boxes`` not (N, 4), ``batch_idx`` not (N,), or
            ``out_hw`` not a pair of positive integers.
        ValueRangeError: a ``batch_idx`` entry is outside [0, B).

    Convention:
        xyxy boxes, pixel centres at integers (module docstring). Output pixel (i, j) of a box
        covers x in [x1 + j (x2 - x1) / w, x1 + (j + 1) (x2 - x1) / w], likewise y; so a box
        (-0.5, -0.5, W - 0.5, H - 0.5) with out_hw = (H, W) returns the image itself.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ShapeError(f"images must be (B, C, H, W), got {tuple(getattr(images, 'shape', ()))}")
    _check_boxes(boxes)
    h, w = check_hw(out_hw, "out_hw")
    n = boxes.shape[0]
    big_b, chans = images.shape[:2]
    if batch_idx is None:
        batch_idx = torch.zeros(n, dtype=torch.long, device=boxes.device)
    if not isinstance(batch_idx, torch.Tensor) or batch_idx.shape != (n,):
        raise ShapeError(f"batch_idx must be ({n},), got {tuple(getattr(batch_idx, 'shape', ()))}")
    if n and (batch_idx.min() < 0 or batch_idx.max() >= big_b):
        raise ValueRangeError(
            f"batch_idx must be in [0, {big_b}), got values in "
            f"[{int(batch_idx.min())}, {int(batch_idx.max())}]"
        )
    boxes = boxes.to(dtype=images.dtype, device=images.device)
    batch_idx = batch_idx.to(images.device)
    out = images.new_zeros(n, chans, h, w)
    if n == 0:
        return out
    if antialias:
        size = (boxes[:, 2:] - boxes[:, :2]).detach().abs()
        k = torch.ceil(torch.maximum(size[:, 0] / w, size[:, 1] / h))
        k = torch.nan_to_num(k, nan=1.0).clamp(1, MAX_SUPERSAMPLE)  # NaN boxes crop to NaN
    else:
        k = torch.ones(n, device=boxes.device)
    key = batch_idx * (MAX_SUPERSAMPLE + 1) + k.long()
    parts, index = [], []
    for group in torch.unique(key).tolist():
        b, kk = divmod(group, MAX_SUPERSAMPLE + 1)
        members = torch.nonzero(key == group).flatten()
        chunk = max(1, _SAMPLES_PER_CALL // (h * w * kk * kk))
        for sel in members.split(chunk):
            parts.append(_crop_one_image(images[b : b + 1], boxes[sel], h, w, kk))
            index.append(sel)
    index = torch.cat(index)
    return out.index_copy(0, index, torch.cat(parts))


def _crop_one_image(image: torch.Tensor, boxes: torch.Tensor, h: int, w: int, k: int):
    """Crops of one (1, C, H, W) image, k x k samples per output pixel; (n, C, h, w)."""
    big_h, big_w = image.shape[-2:]
    n = boxes.shape[0]
    opts = {"dtype": image.dtype, "device": image.device}
    # Sample centres as fractions of the box: (J + 0.5) / (w k) for J in [0, w k).
    fx = (torch.arange(w * k, **opts) + 0.5) / (w * k)
    fy = (torch.arange(h * k, **opts) + 0.5) / (h * k)
    x = boxes[:, 0:1] + fx[None] * (boxes[:, 2:3] - boxes[:, 0:1])  # (n, wk)
    y = boxes[:, 1:2] + fy[None] * (boxes[:, 3:4] - boxes[:, 1:2])  # (n, hk)
    inside_x = (x >= -0.5) & (x <= big_w - 0.5)
    inside_y = (y >= -0.5) & (y <= big_h - 0.5)
    # Pixel centre i sits at grid coordinate (2i + 1) / size - 1 (align_corners=False).
    gx = ((2 * x + 1) / big_w - 1)[:, None, :].expand(n, h * k, w * k)
    gy = ((2 * y + 1) / big_h - 1)[:, :, None].expand(n, h * k, w * k)
    grid = torch.stack((gx, gy), dim=-1).reshape(1, n * h * k, w * k, 2)
    # "border" keeps the edge pixel's value over the outer half pixel; the mask zeroes the rest.
    samples = F.grid_sample(
        image, grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    samples = samples.reshape(image.shape[1], n, h * k, w * k).transpose(0, 1)
    mask = (inside_y[:, :, None] & inside_x[:, None, :]).to(image.dtype)[:, None]
    samples = samples * mask
    return F.avg_pool2d(samples, k) if k > 1 else samples
