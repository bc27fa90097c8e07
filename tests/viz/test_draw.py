"""Drawing box outlines on ERP images and blurring inside boxes, on the sphere."""

import math

import pytest
import torch

from pano360.errors import ShapeError, ValueRangeError
from pano360.geometry import box_outline, lonlat_to_pixel, sph_box_mask
from pano360.viz import blur_regions_on_sphere, draw_box_outlines

deg = math.radians
HW = (64, 128)


def painted(out, erp):
    return (out != erp).any(1)  # (B, H, W)


def outline_pixels(boxes, hw, n=4000):
    """Oracle: a very dense outline, as continuous pixel positions (x wrapped into [0, W))."""
    xy = lonlat_to_pixel(box_outline(boxes.double(), n), hw)
    return xy.reshape(-1, 2)


def wrapped_distance(pix, pts, w):
    """Distance from integer pixels (P, 2) (x, y) to the nearest point, columns wrapping."""
    dx = (pix[:, None, 0] - pts[None, :, 0]).abs()
    dx = torch.minimum(torch.remainder(dx, w), w - torch.remainder(dx, w))
    dy = pix[:, None, 1] - pts[None, :, 1]
    return (dx**2 + dy**2).sqrt().amin(1)


@pytest.mark.parametrize(
    "box",
    [
        [0.5, 0.2, 0.9, 0.6],  # plain
        [math.pi, 0.1, 0.8, 0.5],  # across the seam
        [1.0, deg(70), deg(60), deg(50)],  # around the north pole
        [-2.0, deg(-40), deg(100), deg(70)],  # big, below the equator
    ],
)
def test_outline_pixels_follow_the_true_curve(box):
    erp = torch.zeros(1, 3, *HW)
    boxes = torch.tensor([box])
    out = draw_box_outlines(erp, boxes, width_px=2)
    mask = painted(out, erp)[0]
    pts = outline_pixels(boxes, HW)
    rows, cols = torch.nonzero(mask, as_tuple=True)
    pix = torch.stack((cols, rows), -1).double()
    # Every painted pixel is near the curve ...
    assert wrapped_distance(pix, pts, HW[1]).max() <= 1.0 + 1e-6
    # ... and every point of the curve (on the image) has a painted pixel next to it.
    on_image = (pts[:, 1] >= 0) & (pts[:, 1] <= HW[0] - 1)
    sample = pts[on_image][::37]
    assert wrapped_distance(sample, pix, HW[1]).max() <= 0.75
    # The interior is not filled.
    inside = sph_box_mask(boxes, HW)[0]
    assert (mask & inside).sum() < 0.5 * inside.sum()


def test_convention_seam_box_is_drawn_at_both_ends_and_pole_box_across_the_width():
    erp = torch.zeros(1, 1, *HW)
    seam = draw_box_outlines(erp, torch.tensor([[math.pi, 0.0, 0.6, 0.4]]), color=(1.0,))
    cols = painted(seam, erp)[0].any(0)
    assert cols[:5].any() and cols[-5:].any() and not cols[40:90].any()
    pole = draw_box_outlines(erp, torch.tensor([[0.0, deg(80), deg(40), deg(40)]]), color=(1.0,))
    assert painted(pole, erp)[0].any(0).all()  # the outline goes all the way round
    assert not painted(pole, erp)[0, 0].any()  # and does not fill the cap around the pole
    right = draw_box_outlines(erp, torch.tensor([[math.pi / 2, 0.0, 0.3, 0.3]]), color=(1.0,))
    cols = torch.nonzero(painted(right, erp)[0].any(0)).flatten()
    assert cols.min() > HW[1] / 2 and cols.max() < HW[1]  # lon > 0 is drawn right of centre


def test_draw_formats_colours_batches_and_labels():
    erp = torch.rand(2, 3, *HW)
    boxes = torch.tensor([[0.0, 0.0, 0.6, 0.5], [2.0, 0.5, 0.4, 0.4]])
    colours = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    out = draw_box_outlines(erp, boxes, color=colours)
    assert out.shape == erp.shape and out.dtype == erp.dtype
    m0 = painted(draw_box_outlines(erp, boxes[:1]), erp)[0]
    m1 = painted(draw_box_outlines(erp, boxes[1:]), erp)[0]
    assert torch.equal(painted(out, erp)[0], m0 | m1)
    assert (out[:, :, m0 & ~m1] == colours[0][None, :, None]).all()
    assert (out[:, :, m1] == colours[1][None, :, None]).all()  # drawn last
    assert torch.equal(out[:, :, ~(m0 | m1)], erp[:, :, ~(m0 | m1)])
    rolled = torch.cat((boxes, torch.zeros(2, 1)), 1)
    torch.testing.assert_close(
        draw_box_outlines(erp, rolled, fmt="rbfov"), draw_box_outlines(erp, boxes)
    )
    per_image = draw_box_outlines(erp, [boxes[:1], boxes[1:]])
    torch.testing.assert_close(per_image[0], draw_box_outlines(erp[:1], boxes[:1])[0])
    torch.testing.assert_close(per_image[1], draw_box_outlines(erp[1:], boxes[1:])[0])
    # erp_xyxy: the pixel rectangle itself, across the seam.
    rect = draw_box_outlines(erp[:1], torch.tensor([[120.0, 10.0, 135.0, 20.0]]), fmt="erp_xyxy")
    m = painted(rect, erp[:1])[0]
    assert m[10, 0:7].all() and m[20, 120:128].all() and not m[15, 10:118].any()
    # Labels add pixels above the box.
    plain = draw_box_outlines(erp[:1], boxes[:1], width_px=1)
    text = draw_box_outlines(erp[:1], boxes[:1], width_px=1, labels=["face 0.9"], font_size=10)
    extra = painted(text, plain)[0]
    top_row = torch.nonzero(painted(plain, erp[:1])[0].any(1)).min()
    assert extra.sum() > 10 and torch.nonzero(extra.any(1)).max() < top_row


def test_draw_errors():
    erp = torch.zeros(1, 3, *HW)
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5]])
    with pytest.raises(ShapeError, match="W == 2H"):
        draw_box_outlines(torch.zeros(1, 3, 10, 30), boxes)
    with pytest.raises(ValueError, match="fmt must be one of"):
        draw_box_outlines(erp, boxes, fmt="xywh")
    with pytest.raises(ValueRangeError, match="width_px must be > 0"):
        draw_box_outlines(erp, boxes, width_px=0)
    with pytest.raises(ShapeError, match="color must be 3 values"):
        draw_box_outlines(erp, boxes, color=(1.0, 0.0))
    with pytest.raises(ShapeError, match="labels must hold one text per box"):
        draw_box_outlines(erp, boxes, labels=["a", "b"])
    with pytest.raises(ShapeError, match="labels need a single"):
        draw_box_outlines(erp, [boxes], labels=["a"])
    with pytest.raises(ShapeError, match="one tensor per image: expected 1, got 2"):
        draw_box_outlines(erp, [boxes, boxes])
    with pytest.raises(ShapeError, match=r"boxes must be \(N, 4\) or \(N, 5\)"):
        draw_box_outlines(erp, boxes[0])
    with pytest.raises(TypeError, match="a tensor or a sequence of tensors"):
        draw_box_outlines(erp, "boxes")


def high_frequency(img):
    """Per-pixel energy of the difference from the 4-neighbour mean (columns wrap)."""
    lap = 4 * img - img.roll(1, -1) - img.roll(-1, -1)
    lap = lap - torch.cat((img[..., :1, :], img[..., :-1, :]), -2)
    lap = lap - torch.cat((img[..., 1:, :], img[..., -1:, :]), -2)
    return (lap**2).mean(1)[0]


@pytest.mark.parametrize(
    "box",
    [
        [math.pi, 0.1, deg(50), deg(40), 0.0],  # across the seam
        [0.7, deg(75), deg(60), deg(50), 0.4],  # around the north pole, rolled
        [-1.0, -0.3, deg(30), deg(45), 0.0],
    ],
)
def test_blur_removes_detail_inside_and_nothing_outside(box):
    gen = torch.Generator().manual_seed(0)
    erp = torch.rand(1, 3, *HW, generator=gen)
    boxes = torch.tensor([box])
    out = blur_regions_on_sphere(erp, boxes, fmt="rbfov")
    inside = sph_box_mask(boxes, HW)[0]
    assert torch.equal(out[..., ~inside], erp[..., ~inside])  # outside: bit for bit
    # Away from the box edge (where the hard mask boundary is itself a step) the noise is gone.
    interior = inside.clone()
    for shift, dim in ((2, 0), (-2, 0), (2, 1), (-2, 1)):
        interior &= inside.roll(shift, dim)
    assert interior.sum() > 20
    ratio = high_frequency(out)[interior].mean() / high_frequency(erp)[interior].mean()
    assert ratio < 0.02
    # Inside, the result is a local average: it stays within the range of the image.
    assert out.min() >= 0 and out.max() <= 1


def whole_sphere_blur(erp, box, strength=0.15, max_view_px=1024):
    """Oracle: the blurred view of one RBFoV box pasted over the whole panorama
    (perspective_to_erp on every ERP pixel, sph_box_mask of the whole image)."""
    from pano360.geometry import perspective_to_erp
    from pano360.viz._draw import _blurred_view

    lon, lat, _, _, roll = box
    view, fov = _blurred_view(erp, box, strength, max_view_px)
    pasted, _ = perspective_to_erp(view, fov, erp.shape[-2:], yaw=lon, pitch=lat, roll=roll)
    inside = sph_box_mask(torch.tensor([box], dtype=torch.float64), erp.shape[-2:])[0]
    return torch.where(inside, pasted, erp)


@pytest.mark.parametrize(
    "box",
    [
        [math.pi, 0.1, deg(50), deg(40), 0.0],  # across the seam
        [-math.pi + 0.01, -0.2, deg(12), deg(14), 0.3],  # just east of the seam
        [0.7, deg(90), deg(30), deg(30), 0.4],  # on the north pole
        [-2.0, deg(-82), deg(25), deg(20), -0.6],  # reaching over the south pole
        [1.0, deg(60), deg(150), deg(40), 0.2],  # wide: its cap reaches round the sphere
        [0.3, deg(20), deg(6), deg(6), 0.0],  # a few pixels
    ],
)
def test_blur_of_each_box_neighbourhood_matches_the_whole_sphere_paste(box):
    # Each box reads and writes only its cap's footprint: the result is the paste over the whole
    # sphere, pixel for pixel (so no pixel inside the box is missed, at the seam or the poles).
    erp = torch.rand(1, 3, *HW, generator=torch.Generator().manual_seed(4))
    out = blur_regions_on_sphere(erp, torch.tensor([box]), fmt="rbfov")
    torch.testing.assert_close(out, whole_sphere_blur(erp, box), atol=1e-5, rtol=0)
    inside = sph_box_mask(torch.tensor([box]), HW)[0]
    assert inside.any() and (out != erp).any(1)[0][inside].float().mean() > 0.99


def test_blur_has_no_seam():
    gen = torch.Generator().manual_seed(1)
    erp = torch.rand(1, 3, *HW, generator=gen)
    boxes = torch.tensor([[math.pi, 0.0, deg(60), deg(50)]])
    out = blur_regions_on_sphere(erp, boxes)
    inside = sph_box_mask(boxes, HW)[0]
    rows = inside[:, 0] & inside[:, -1]
    across = (out[0, :, rows, 0] - out[0, :, rows, -1]).abs().max()
    inner = (out[0, :, rows, 1:3] - out[0, :, rows, 0:2]).abs().max()
    assert rows.sum() > 5
    assert across < 2 * inner + 1e-3  # the step across lon +-180 is like any other step


def test_blur_batches_formats_strength_and_errors():
    gen = torch.Generator().manual_seed(2)
    erp = torch.rand(2, 3, *HW, generator=gen)
    boxes = torch.tensor([[0.5, 0.0, 0.8, 0.8]])
    out = blur_regions_on_sphere(erp, boxes)
    torch.testing.assert_close(out[1], blur_regions_on_sphere(erp[1:], boxes)[0])
    per_image = blur_regions_on_sphere(erp, [boxes, boxes[:0]])
    assert torch.equal(per_image[1], erp[1]) and torch.equal(per_image[0], out[0])
    inside = sph_box_mask(boxes, HW)[0]
    weak = blur_regions_on_sphere(erp[:1], boxes, strength=0.02)
    strong = blur_regions_on_sphere(erp[:1], boxes, strength=0.3)
    assert high_frequency(strong)[inside].mean() < high_frequency(weak)[inside].mean()
    xyxy = torch.tensor([[60.0, 20.0, 80.0, 40.0]])
    from_xyxy = blur_regions_on_sphere(erp[:1], xyxy, fmt="erp_xyxy")
    assert not torch.equal(from_xyxy[..., 25:35, 65:75], erp[:1, ..., 25:35, 65:75])
    assert torch.equal(from_xyxy[..., :15, :], erp[:1, ..., :15, :])
    with pytest.raises(ValueRangeError, match="strength must be a finite number > 0"):
        blur_regions_on_sphere(erp, boxes, strength=0)
    with pytest.raises(ValueRangeError, match="max_view_px must be an integer >= 8"):
        blur_regions_on_sphere(erp, boxes, max_view_px=4)
    with pytest.raises(ValueError, match="fmt must be one of"):
        blur_regions_on_sphere(erp, boxes, fmt="xywh")
    with pytest.raises(ShapeError, match="W == 2H"):
        blur_regions_on_sphere(torch.zeros(1, 3, 8, 8), boxes)
    with pytest.raises(ValueRangeError, match="fov_x and fov_y"):
        blur_regions_on_sphere(erp, torch.tensor([[0.0, 0.0, 4.0, 0.5]]))


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_devices_and_dtypes(device, dtype):
    erp = torch.rand(1, 3, 16, 32, generator=torch.Generator().manual_seed(3)).to(device, dtype)
    boxes = torch.tensor([[math.pi, 0.2, 0.8, 0.6]], device=device)
    for out in (
        draw_box_outlines(erp, boxes, labels=["x"]),
        blur_regions_on_sphere(erp, boxes),
    ):
        assert out.device.type == device and out.dtype == dtype and out.shape == erp.shape
        assert not torch.equal(out, erp)
