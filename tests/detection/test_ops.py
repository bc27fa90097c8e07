"""Planar box ops: IoU, box regression, RoI crops; against loop oracles (NMS: test_nms.py)."""

import math

import pytest
import torch
from torch.autograd import gradcheck

from pano360.detection import (
    _ops,
    apply_box_deltas,
    box_area,
    box_iou,
    crop_boxes,
    square_boxes,
)
from pano360.errors import ShapeError, ValueRangeError
from pano360.testing import box_iou_oracle

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
D = torch.float64


def random_boxes(n, seed, size=20.0, extent=50.0, dtype=D):
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=gen, dtype=dtype) * extent
    wh = torch.rand(n, 2, generator=gen, dtype=dtype) * size
    return torch.cat((xy, xy + wh), dim=1)


# Oracles: plain Python, one pixel at a time.


def point_oracle(img, x, y):
    """Image value at continuous (x, y): 0 outside the image, bilinear (edge-clamped) inside."""
    _, h, w = img.shape
    if not (-0.5 <= x <= w - 0.5 and -0.5 <= y <= h - 0.5):
        return torch.zeros(img.shape[0], dtype=img.dtype)
    x, y = min(max(x, 0.0), w - 1.0), min(max(y, 0.0), h - 1.0)
    x0, y0 = min(math.floor(x), w - 2), min(math.floor(y), h - 2)
    fx, fy = x - x0, y - y0
    top = img[:, y0, x0] * (1 - fx) + img[:, y0, x0 + 1] * fx
    bottom = img[:, y0 + 1, x0] * (1 - fx) + img[:, y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def crop_oracle(img, box, h, w, antialias=True):
    x1, y1, x2, y2 = box.tolist()
    k = 1
    if antialias:
        k = min(max(math.ceil(max(abs(x2 - x1) / w, abs(y2 - y1) / h)), 1), _ops.MAX_SUPERSAMPLE)
    out = torch.zeros(img.shape[0], h, w, dtype=img.dtype)
    for i in range(h):
        for j in range(w):
            acc = 0
            for a in range(k):
                for b in range(k):
                    x = x1 + (j + (b + 0.5) / k) * (x2 - x1) / w
                    y = y1 + (i + (a + 0.5) / k) * (y2 - y1) / h
                    acc = acc + point_oracle(img, x, y)
            out[:, i, j] = acc / (k * k)
    return out


# box_area / box_iou.


@pytest.mark.parametrize("denominator", ["union", "min"])
@pytest.mark.parametrize("device", DEVICES)
def test_box_iou_matches_oracle(denominator, device):
    a = random_boxes(7, 0)
    b = torch.cat((random_boxes(5, 1), torch.tensor([[5.0, 5, 5, 9], [3, 3, 1, 1]], dtype=D)))
    got = box_iou(a.to(device), b.to(device), denominator).cpu()
    want = torch.tensor(
        [[box_iou_oracle(p, q, denominator) for q in b.tolist()] for p in a.tolist()]
    )
    torch.testing.assert_close(got, want.to(D))
    assert got.shape == (7, 7) and (got >= 0).all() and (got <= 1).all()


def test_box_iou_values_and_degenerate_boxes_give_zero_not_nan():
    a = torch.tensor([[0.0, 0, 2, 2], [0, 0, 0, 0]])
    b = torch.tensor([[1.0, 0, 3, 2], [0, 0, 0, 0], [0, 0, 1, 1]])
    got = box_iou(a, b)
    torch.testing.assert_close(got[0], torch.tensor([1 / 3, 0.0, 0.25]))
    assert (got[1] == 0).all()
    assert box_iou(a, b, "min")[0, 2] == 1.0  # the small box lies inside the big one
    assert box_area(torch.tensor([[0.0, 0, 2, 3], [2, 0, 1, 5]])).tolist() == [6.0, 0.0]


def test_box_iou_errors():
    with pytest.raises(ShapeError, match=r"boxes1 must be \(N, 4\) xyxy, got \(3, 5\)"):
        box_iou(torch.zeros(3, 5), torch.zeros(2, 4))
    with pytest.raises(ShapeError, match=r"boxes2 must be \(N, 4\) xyxy, got \(4,\)"):
        box_iou(torch.zeros(3, 4), torch.zeros(4))
    with pytest.raises(ValueError, match="denominator must be one of 'union', 'min', got 'max'"):
        box_iou(torch.zeros(1, 4), torch.zeros(1, 4), "max")


def test_gradcheck_box_iou_float64():
    a = random_boxes(3, 2).requires_grad_()
    b = random_boxes(4, 3).requires_grad_()
    assert gradcheck(lambda p, q: box_iou(p, q), (a, b))
    assert gradcheck(lambda p, q: box_iou(p, q, "min"), (a, b))


# apply_box_deltas / square_boxes.


def test_convention_positive_deltas_move_edges_right_and_down():
    box = torch.tensor([[10.0, 20.0, 30.0, 60.0]])  # w 20, h 40
    got = apply_box_deltas(box, torch.tensor([[0.1, 0.25, -0.5, 0.5]]))
    assert got.tolist() == [[12.0, 30.0, 20.0, 80.0]]


def test_square_boxes_keep_the_centre_and_take_the_longer_side():
    got = square_boxes(torch.tensor([[10.0, 20.0, 30.0, 60.0], [0, 0, 8, 2]]))
    assert got.tolist() == [[0.0, 20.0, 40.0, 60.0], [0, -3, 8, 5]]


def test_box_delta_and_square_errors():
    with pytest.raises(ShapeError, match=r"deltas must be \(2, 4\), got \(1, 4\)"):
        apply_box_deltas(torch.zeros(2, 4), torch.zeros(1, 4))
    with pytest.raises(ShapeError, match=r"deltas must be \(N, 4\) xyxy, got \(2, 2\)"):
        apply_box_deltas(torch.zeros(2, 4), torch.zeros(2, 2))
    with pytest.raises(ShapeError, match=r"boxes must be \(N, 4\) xyxy, got \(4,\)"):
        square_boxes(torch.zeros(4))


# crop_boxes.


def test_crop_of_the_whole_image_is_the_image_and_a_2x_box_averages_2x2_blocks():
    img = torch.rand(1, 3, 6, 8, dtype=D)
    whole = torch.tensor([[-0.5, -0.5, 7.5, 5.5]], dtype=D)
    torch.testing.assert_close(crop_boxes(img, whole, (6, 8))[0], img[0])
    torch.testing.assert_close(
        crop_boxes(img, whole, (3, 4)), torch.nn.functional.avg_pool2d(img, 2)
    )


def test_crop_is_zero_outside_the_image_and_exact_inside():
    img = torch.rand(1, 2, 6, 6, dtype=D)
    outside = torch.tensor([[10.0, 10.0, 20.0, 20.0]], dtype=D)
    assert (crop_boxes(img, outside, (4, 4)) == 0).all()
    # Left half of the box outside the image: zeros there, pixels 0..2 in the right half.
    half = torch.tensor([[-3.5, -0.5, 2.5, 5.5]], dtype=D)
    got = crop_boxes(img, half, (6, 6))[0]
    assert (got[:, :, :3] == 0).all()
    torch.testing.assert_close(got[:, :, 3:], img[0, :, :, :3])


@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("device", DEVICES)
def test_crop_matches_loop_oracle(antialias, device):
    gen = torch.Generator().manual_seed(0)
    imgs = torch.rand(2, 3, 9, 13, generator=gen, dtype=D)
    boxes = torch.tensor(
        [
            [-2.3, -1.7, 14.2, 10.9],  # larger than the image: zero margins, k = 3
            [1.2, 2.6, 6.9, 5.1],  # small, inside
            [8.4, -4.0, 16.0, 3.3],  # across two borders
            [3.0, 7.5, 1.0, 2.0],  # reversed: mirrored sampling, still well defined
            [-0.5, -0.5, 12.5, 8.5],  # exactly the image
        ],
        dtype=D,
    )
    batch_idx = torch.tensor([1, 0, 1, 0, 1])
    got = crop_boxes(imgs.to(device), boxes.to(device), (4, 5), batch_idx.to(device), antialias)
    assert got.shape == (5, 3, 4, 5) and got.device.type == device
    for n in range(5):
        want = crop_oracle(imgs[batch_idx[n]], boxes[n], 4, 5, antialias)
        torch.testing.assert_close(got[n].cpu(), want)


def test_crop_memory_chunks_do_not_change_the_result(monkeypatch):
    imgs = torch.rand(1, 3, 20, 20, dtype=D)
    boxes = random_boxes(9, 4, size=30.0, extent=10.0)
    full = crop_boxes(imgs, boxes, (6, 6))
    monkeypatch.setattr(_ops, "_SAMPLES_PER_CALL", 1)
    torch.testing.assert_close(crop_boxes(imgs, boxes, (6, 6)), full, rtol=0, atol=0)


def test_crop_empty_and_float32():
    img = torch.rand(2, 3, 8, 8)
    assert crop_boxes(img, torch.zeros(0, 4), (4, 4)).shape == (0, 3, 4, 4)
    assert crop_boxes(img, torch.tensor([[0.0, 0, 4, 4]]), (2, 2)).dtype == torch.float32


def test_crop_errors():
    img = torch.rand(2, 3, 8, 8)
    box = torch.tensor([[0.0, 0, 4, 4]])
    with pytest.raises(ShapeError, match=r"images must be \(B, C, H, W\), got \(3, 8, 8\)"):
        crop_boxes(img[0], box, (4, 4))
    with pytest.raises(ShapeError, match=r"boxes must be \(N, 4\) xyxy"):
        crop_boxes(img, box[0], (4, 4))
    with pytest.raises(ShapeError, match=r"batch_idx must be \(1,\), got \(2,\)"):
        crop_boxes(img, box, (4, 4), torch.tensor([0, 1]))
    with pytest.raises(
        ValueRangeError, match=r"batch_idx must be in \[0, 2\), got values in \[2, 2\]"
    ):
        crop_boxes(img, box, (4, 4), torch.tensor([2]))
    with pytest.raises(ShapeError, match="out_hw must be a pair"):
        crop_boxes(img, box, (0, 4))


def test_gradcheck_crop_boxes_float64():
    img = torch.rand(1, 2, 7, 9, dtype=D, requires_grad=True)
    # Sizes away from multiples of the output size, so the finite differences keep k fixed.
    boxes = torch.tensor([[0.3, -1.1, 7.6, 4.2], [2.2, 1.4, 4.9, 3.3]], dtype=D, requires_grad=True)
    assert gradcheck(lambda i, b: crop_boxes(i, b, (3, 3)), (img, boxes))
