"""Spherical boxes: conventions, conversions, outlines, masks, exact and FoV IoU (NMS:
tests/detection/test_nms.py)."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.autograd import gradcheck

from pano360.errors import ShapeError, ValueRangeError
from pano360.geometry import (
    BOX_FORMATS,
    box_convert,
    box_corners,
    box_outline,
    box_outline_pixels,
    check_sph_boxes,
    cube_face_directions,
    erp_directions,
    lonlat_to_pixel,
    lonlat_to_xyz,
    pixel_solid_angle,
    rotation_matrix,
    sph_box_area,
    sph_box_mask,
    sph_iou_exact,
    sph_iou_fov,
    wrap_lon,
)
from pano360.testing import sph_iou_sampled

D = torch.float64
deg = math.radians
FRONT = torch.tensor([0.0, 0.0, math.pi / 2, math.pi / 2], dtype=D)


def random_boxes(n, seed, *, roll=True, min_fov=0.05, max_fov=2.8, lat_max=math.pi / 2):
    gen = torch.Generator().manual_seed(seed)

    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=D)

    cols = [u(-math.pi, math.pi), u(-lat_max, lat_max), u(min_fov, max_fov), u(min_fov, max_fov)]
    if roll:
        cols.append(u(-math.pi, math.pi))
    return torch.stack(cols, -1)


def camera_coords(boxes, d):
    """Directions d (..., 3) in each box's camera frame: (N, ..., 3), straight from R^T d."""
    b = boxes if boxes.shape[-1] == 5 else torch.cat((boxes, torch.zeros_like(boxes[:, :1])), 1)
    R = rotation_matrix(b[:, 0], b[:, 1], b[:, 4])
    return torch.einsum("nji,...j->n...i", R, d)


def pinhole_inside(boxes, d):
    """The definition of a box: the pinhole camera sees d (z > 0, |x| <= tx z, |y| <= ty z)."""
    c = camera_coords(boxes, d)
    shape = (-1,) + (1,) * (c.ndim - 2)
    tx = torch.tan(boxes[:, 2] / 2).view(shape)
    ty = torch.tan(boxes[:, 3] / 2).view(shape)
    x, y, z = c.unbind(-1)
    return (z > 0) & (x.abs() <= tx * z) & (y.abs() <= ty * z)


# --------------------------------------------------------------------------------------------
# Conventions
# --------------------------------------------------------------------------------------------


def test_convention_front_bfov_is_exactly_the_front_cube_face():
    corners = box_corners(FRONT)
    c = math.atan(1 / math.sqrt(2))
    expected = torch.tensor([[-1, 1], [1, 1], [1, -1], [-1, -1]], dtype=D) * torch.tensor(
        [math.pi / 4, c], dtype=D
    )
    torch.testing.assert_close(corners, expected)
    d = erp_directions((32, 64), dtype=D)
    x, y, z = d.unbind(-1)
    face = (z > 0) & (x.abs() <= z) & (y.abs() <= z)
    assert torch.equal(sph_box_mask(FRONT[None], (32, 64))[0], face)
    # The cube map's own front face: all of its pixel centres in the box, no other face's.
    cube = cube_face_directions(6, dtype=D)
    inside = pinhole_inside(FRONT[None], cube)[0]  # (6, 6, 6)
    assert inside[0].all() and not inside[1:].any()
    assert sph_box_area(FRONT).item() == pytest.approx(4 * math.pi / 6, rel=1e-12)
    # Tight ERP box: lon +-45 degrees; the top edge peaks at lat 45 degrees at its middle.
    xyxy = box_convert(FRONT, "bfov", "erp_xyxy", erp_hw=(32, 64))
    torch.testing.assert_close(xyxy, torch.tensor([23.5, 7.5, 39.5, 23.5], dtype=D))


def test_convention_lon_right_lat_up():
    right = box_corners(torch.tensor([math.pi / 2, 0.0, 0.2, 0.2], dtype=D))
    assert (right[:, 0] - math.pi / 2).abs().max() < 0.11  # around +x, the viewer's right
    up = box_corners(torch.tensor([0.0, math.pi / 4, 0.2, 0.2], dtype=D))
    assert (up[:, 1] > math.pi / 4 - 0.11).all() and (up[:, 1] < math.pi / 4 + 0.11).all()
    # Top-left corner: left of (lon smaller) and above (lat larger) the bottom-right one.
    tl, _, br, _ = box_corners(torch.tensor([0.3, 0.2, 0.4, 0.4], dtype=D))
    assert tl[0] < br[0] and tl[1] > br[1]
    m = sph_box_mask(torch.tensor([[math.pi / 2, 0.0, 0.2, 0.2]], dtype=D), (32, 64))[0]
    assert m[15:17, 47:49].all() and m.sum() == 4  # pixels around x = 3W/4 - 0.5, the equator


def test_convention_roll_turns_the_camera_clockwise():
    tall = torch.tensor([0.0, 0.0, 0.2, 1.0, 0.3], dtype=D)
    tl, tr, _, _ = lonlat_to_xyz(box_corners(tall)).unbind(-2)
    top_mid = tl + tr
    assert top_mid[0] > 0.1  # the camera's up vector turned towards its right (+x)
    # Rolling by a quarter turn swaps the extents: the same region.
    quarter = torch.tensor([[0.4, 0.3, 0.5, 0.9, math.pi / 2]], dtype=D)
    swapped = torch.tensor([[0.4, 0.3, 0.9, 0.5]], dtype=D)
    assert torch.equal(sph_box_mask(quarter, (64, 128)), sph_box_mask(swapped, (64, 128)))
    assert sph_iou_exact(quarter, swapped).item() == pytest.approx(1.0, abs=1e-9)


def test_convention_erp_xyxy_across_the_seam_and_around_a_pole():
    hw = (64, 128)
    seam = box_convert(torch.tensor([math.pi, 0.0, 0.5, 0.5], dtype=D), "bfov", "erp_xyxy", hw)
    x1, y1, x2, y2 = seam.tolist()
    assert -0.5 <= x1 < 127.5 < x2 <= x1 + 128
    assert (x1 + x2) / 2 == pytest.approx(127.5)  # centred on the seam (lon = pi = -pi)
    assert y1 < 31.5 < y2
    pole = box_convert(
        torch.tensor([1.0, deg(80), deg(40), deg(40)], dtype=D), "bfov", "erp_xyxy", hw
    )
    assert pole[:3].tolist() == [-0.5, -0.5, 127.5]
    south = box_convert(
        torch.tensor([1.0, deg(-80), deg(40), deg(40)], dtype=D), "bfov", "erp_xyxy", hw
    )
    assert south[3].item() == 63.5 and south[0].item() == -0.5 and south[2].item() == 127.5
    # erp_xyxy inputs are normalised: x1 moved into [-0.5, W - 0.5).
    moved = box_convert(torch.tensor([130.0, 1.0, 140.0, 2.0]), "erp_xyxy", "erp_xyxy", hw)
    assert moved.tolist() == [2.0, 1.0, 12.0, 2.0]


# --------------------------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------------------------


def dense_extent(boxes, n_per_edge=3000):
    """Oracle for the tight ERP box: lon/lat extremes of a densely sampled outline."""
    outline = box_outline(boxes, n_per_edge)
    lon, lat = outline.unbind(-1)
    rel = wrap_lon(lon - boxes[:, :1])
    return rel.amin(-1), rel.amax(-1), lat.amin(-1), lat.amax(-1)


def test_tight_erp_box_matches_the_extremes_of_a_dense_outline():
    boxes = random_boxes(200, seed=1, max_fov=2.0)
    hw = (90, 180)
    xyxy = box_convert(boxes, "rbfov", "erp_xyxy", hw)
    polar = (xyxy[:, 2] - xyxy[:, 0]) >= 180 - 1e-9
    lo_rel, hi_rel, lat_lo, lat_hi = dense_extent(boxes)
    px = 180 / (2 * math.pi)
    width = (xyxy[:, 2] - xyxy[:, 0]) / px
    assert (width[~polar] - (hi_rel - lo_rel)[~polar]).abs().max() < 1e-5
    left = lonlat_to_pixel(torch.stack((boxes[:, 0] + lo_rel, lat_lo), -1), hw)[:, 0]
    assert (torch.remainder(left - xyxy[:, 0] + 90, 180) - 90)[~polar].abs().max() < 1e-5 * px
    # Latitudes: the outline's extremes, or a pole when the box contains it.
    y_top = lonlat_to_pixel(torch.stack((boxes[:, 0], lat_hi), -1), hw)[:, 1]
    y_bot = lonlat_to_pixel(torch.stack((boxes[:, 0], lat_lo), -1), hw)[:, 1]
    north = polar & (xyxy[:, 1] == -0.5)
    south = polar & (xyxy[:, 3] == 89.5)
    assert bool((north | south)[polar].all()) and polar.sum() > 10
    # (The dense outline is least accurate near a pole, where lat bends sharply along an edge.)
    assert (xyxy[:, 1] - y_top)[~north].abs().max() < 2e-3
    assert (xyxy[:, 3] - y_bot)[~south].abs().max() < 2e-3
    # A pole is inside exactly when the dense mask says so.
    pole_dirs = torch.tensor([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]], dtype=D)
    inside = pinhole_inside(boxes, pole_dirs)
    assert torch.equal(inside[:, 0], north) and torch.equal(inside[:, 1], south)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bfov_round_trips_through_erp_xyxy(dtype):
    boxes = random_boxes(500, seed=2, roll=False).to(dtype)
    hw = (128, 256)
    xyxy = box_convert(boxes, "bfov", "erp_xyxy", hw)
    back = box_convert(xyxy, "erp_xyxy", "bfov", hw)
    assert back.dtype == dtype
    polar = (xyxy[:, 2] - xyxy[:, 0]) >= 256 - 1e-3
    err = back - boxes
    err[:, 0] = wrap_lon(err[:, 0])
    tol = 1e-9 if dtype == D else 2e-3
    assert err[~polar].abs().max() < tol
    # Boxes containing a pole keep only their ERP box: that one round-trips.
    again = box_convert(back, "bfov", "erp_xyxy", hw)
    assert (again - xyxy)[polar].abs().max() < (1e-7 if dtype == D else 2e-2)
    assert polar.sum() > 10


def test_erp_xyxy_to_bfov_special_cases():
    hw = (90, 180)
    # Full width, touching the north pole, reaching 30 degrees: the square box aimed at the pole.
    cap = torch.tensor([-0.5, -0.5, 179.5, 29.5], dtype=D)  # row 29.5 is lat 30 degrees
    b = box_convert(cap, "erp_xyxy", "bfov", hw)
    assert b[1].item() == pytest.approx(math.pi / 2) and b[2].item() == pytest.approx(b[3].item())
    corner_lat = box_corners(b)[:, 1]
    torch.testing.assert_close(corner_lat, torch.full((4,), deg(30), dtype=D))
    # Past the equator (north pole down to lat -30): still a box with that tight rectangle.
    for deep in ([-0.5, -0.5, 179.5, 59.5], [-0.5, 29.5, 179.5, 89.5]):
        deep = torch.tensor(deep, dtype=D)
        b = box_convert(deep, "erp_xyxy", "bfov", hw)
        torch.testing.assert_close(box_convert(b, "bfov", "erp_xyxy", hw), deep)
    # Too wide for its latitudes (a box's lower edge sags): the angular-extent fallback. With
    # 2 degrees per pixel this spans lat 39..49 and 140 degrees of lon around lon -89.
    wide = torch.tensor([10.0, 20.0, 80.0, 25.0], dtype=D)
    lon, lat, fx, fy = box_convert(wide, "erp_xyxy", "bfov", hw).tolist()
    assert lat == pytest.approx(deg(44)) and fy == pytest.approx(deg(10))
    assert fx == pytest.approx(deg(140) * math.cos(deg(44))) and lon == pytest.approx(deg(-89))


def test_rbfov_to_bfov_is_the_tight_unrolled_box():
    rolled = random_boxes(50, seed=3, max_fov=1.5)
    bfov = box_convert(rolled, "rbfov", "bfov")
    corners = lonlat_to_xyz(box_corners(rolled))  # (N, 4, 3)
    c = camera_coords(bfov, corners.transpose(0, 1))  # (N, 4, 3) in the unrolled camera
    c = torch.stack([c[i, :, i] for i in range(len(rolled))])  # each box in its own frame
    ratio_x = (c[..., 0] / c[..., 2]).abs().amax(-1) / torch.tan(bfov[:, 2] / 2)
    ratio_y = (c[..., 1] / c[..., 2]).abs().amax(-1) / torch.tan(bfov[:, 3] / 2)
    torch.testing.assert_close(ratio_x, torch.ones_like(ratio_x))  # corners touch its edges
    torch.testing.assert_close(ratio_y, torch.ones_like(ratio_y))
    unrolled = torch.cat((bfov, torch.zeros_like(bfov[:, :1])), 1)
    assert torch.equal(box_convert(bfov, "bfov", "rbfov"), unrolled)
    torch.testing.assert_close(box_convert(unrolled, "rbfov", "bfov"), bfov)


def test_box_convert_errors():
    b = FRONT[None]
    with pytest.raises(ValueError, match="'bfov', 'rbfov', 'erp_xyxy'"):
        box_convert(b, "xywh", "bfov")
    with pytest.raises(ValueError, match="out_fmt must be one of"):
        box_convert(b, "bfov", "cxcywh")
    with pytest.raises(ValueError, match="erp_hw"):
        box_convert(b, "bfov", "erp_xyxy")
    with pytest.raises(ShapeError, match="W == 2H"):
        box_convert(b, "bfov", "erp_xyxy", erp_hw=(10, 30))
    with pytest.raises(ShapeError, match=r"rbfov boxes must be \(\.\.\., 5\)"):
        box_convert(b, "rbfov", "bfov")
    with pytest.raises(ValueRangeError, match=r"fov_x and fov_y must be in \(0, pi\)"):
        box_convert(torch.tensor([[0.0, 0.0, math.pi, 1.0]]), "bfov", "rbfov")
    with pytest.raises(ValueRangeError, match=r"lat must be in \[-pi/2, pi/2\]"):
        box_convert(torch.tensor([[0.0, 2.0, 1.0, 1.0]]), "bfov", "rbfov")
    with pytest.raises(ValueRangeError, match="finite"):
        box_convert(torch.tensor([[math.nan, 0.0, 1.0, 1.0]]), "bfov", "rbfov")
    with pytest.raises(ValueRangeError, match="x1 <= x2"):
        box_convert(torch.tensor([5.0, 1.0, 4.0, 2.0]), "erp_xyxy", "bfov", erp_hw=(8, 16))
    with pytest.raises(ValueRangeError, match="y1 <= y2"):
        box_convert(torch.tensor([1.0, 1.0, 4.0, 9.0]), "erp_xyxy", "bfov", erp_hw=(8, 16))
    with pytest.raises(TypeError, match="floating-point"):
        box_convert(torch.tensor([[0, 0, 1, 1]]), "bfov", "rbfov")
    assert BOX_FORMATS == ("bfov", "rbfov", "erp_xyxy")


# --------------------------------------------------------------------------------------------
# Outlines, masks, areas
# --------------------------------------------------------------------------------------------


def test_outline_lies_on_the_box_boundary_and_starts_at_the_corners():
    boxes = random_boxes(20, seed=4)
    outline = box_outline(boxes, n_per_edge=7)
    assert outline.shape == (20, 28, 2)
    torch.testing.assert_close(outline[:, ::7], box_corners(boxes))
    c = camera_coords(boxes, lonlat_to_xyz(outline).transpose(0, 1))
    c = torch.stack([c[i, :, i] for i in range(20)])
    assert (c[..., 2] > 0).all()
    edge = torch.maximum(
        (c[..., 0] / c[..., 2]).abs() / torch.tan(boxes[:, 2:3] / 2),
        (c[..., 1] / c[..., 2]).abs() / torch.tan(boxes[:, 3:4] / 2),
    )
    torch.testing.assert_close(edge, torch.ones_like(edge))
    with pytest.raises(ValueRangeError, match="n_per_edge"):
        box_outline(boxes, 0)


def test_outline_pixels_cut_at_the_seam_and_go_around_poles():
    hw = (64, 128)
    boxes = torch.tensor(
        [[math.pi, 0.0, 0.6, 0.4], [0.0, 0.0, 0.6, 0.4], [1.0, deg(75), deg(60), deg(60)]], dtype=D
    )
    seam, inner, pole = box_outline_pixels(boxes, hw)
    assert len(seam) == 2 and len(inner) == 1 and len(pole) == 1
    ends = sorted(
        [seam[0][0, 0].item(), seam[0][-1, 0].item(), seam[1][0, 0].item(), seam[1][-1, 0].item()]
    )
    assert ends == pytest.approx([-0.5, -0.5, 127.5, 127.5])
    torch.testing.assert_close(inner[0][0], inner[0][-1])  # closed
    x = pole[0][:, 0]
    assert x.min().item() == pytest.approx(-0.5) and x.max().item() == pytest.approx(127.5)
    for pieces in (seam, inner, pole):
        for p in pieces:
            assert (p[:, 0] >= -0.5 - 1e-9).all() and (p[:, 0] <= 127.5 + 1e-9).all()
            assert (p[1:] - p[:-1]).norm(dim=-1).max() < 128 / 8  # no jump across the image
    rect = box_outline_pixels(torch.tensor([[120.0, 5.0, 135.0, 9.0]]), hw, fmt="erp_xyxy")[0]
    assert len(rect) == 2
    with pytest.raises(ValueError, match="fmt must be one of"):
        box_outline_pixels(boxes, hw, fmt="xyxy")
    with pytest.raises(ShapeError, match=r"\(N, 4\) or \(N, 5\)"):
        box_outline_pixels(boxes[0], hw)


def test_mask_matches_the_pinhole_definition_and_the_area():
    boxes = random_boxes(6, seed=5, min_fov=0.6, max_fov=2.0)
    hw = (96, 192)
    d = erp_directions(hw, dtype=D)
    assert torch.equal(sph_box_mask(boxes, hw), pinhole_inside(boxes, d))
    area = (sph_box_mask(boxes, hw) * pixel_solid_angle(hw, dtype=D)).sum((1, 2))
    torch.testing.assert_close(area, sph_box_area(boxes), rtol=0.03, atol=0.0)
    with pytest.raises(ShapeError, match=r"\(N, 4\) or \(N, 5\)"):
        sph_box_mask(boxes[0], hw)


def test_area_errors_and_shapes():
    assert sph_box_area(random_boxes(6, seed=0).view(2, 3, 5)).shape == (2, 3)
    with pytest.raises(ShapeError, match=r"\(\.\.\., 4\) BFoV"):
        sph_box_area(torch.zeros(3, 6, dtype=D))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        sph_box_area([0.0, 0.0, 1.0, 1.0])


# --------------------------------------------------------------------------------------------
# IoU
# --------------------------------------------------------------------------------------------


def test_exact_iou_matches_brute_force_sampling():
    a = random_boxes(3, seed=6, max_fov=2.0)
    b = a.clone()
    b[:, :2] += torch.tensor([[0.2, -0.1], [-0.3, 0.2], [0.1, 0.15]], dtype=D)
    b[:, 1] = b[:, 1].clamp(-math.pi / 2, math.pi / 2)
    b[:, 2:4] *= torch.tensor([[0.8, 1.2], [1.1, 0.7], [0.9, 0.9]], dtype=D)
    exact = sph_iou_exact(a, b)
    sampled = sph_iou_sampled(a, b, n=200_000)
    assert (exact > 0.05).sum() >= 3  # real overlaps, not only zeros
    torch.testing.assert_close(exact, sampled, atol=1e-3, rtol=0)


@pytest.mark.parametrize(
    "a, b",
    [
        # Across the seam: 2 and 15 degrees apart through lon = +-180.
        ([179.0, 10.0, 20.0, 16.0, 0.0], [-179.0, 12.0, 18.0, 20.0, 0.3]),
        ([172.0, -5.0, 40.0, 30.0, 0.0], [-173.0, 0.0, 35.0, 40.0, 0.0]),
        # Around the north pole: both contain it, seen from opposite sides.
        ([0.0, 80.0, 50.0, 40.0, 0.2], [170.0, 75.0, 60.0, 50.0, -0.4]),
        # At the south pole, one aimed straight down.
        ([30.0, -90.0, 30.0, 30.0, 0.0], [-100.0, -70.0, 40.0, 40.0, 1.0]),
        # Huge boxes and a small one inside a big one.
        ([10.0, 0.0, 170.0, 160.0, 0.0], [-60.0, 30.0, 150.0, 120.0, 0.5]),
        ([10.0, 20.0, 120.0, 100.0, 0.0], [15.0, 25.0, 40.0, 30.0, 0.7]),
    ],
)
def test_exact_iou_across_the_seam_and_around_poles(a, b):
    a, b = (torch.tensor([x], dtype=D) for x in (a, b))  # degrees, except roll in radians
    a[:, :4], b[:, :4] = torch.deg2rad(a[:, :4]), torch.deg2rad(b[:, :4])
    exact = sph_iou_exact(a, b)
    assert exact.item() > 0.02
    torch.testing.assert_close(exact, sph_iou_sampled(a, b, n=200_000), atol=1e-3, rtol=0)
    torch.testing.assert_close(sph_iou_exact(b, a), exact.T, atol=1e-12, rtol=0)


def test_exact_iou_of_far_apart_boxes_is_zero_and_shapes():
    a = torch.tensor([[0.0, 0.0, 0.5, 0.5], [math.pi, 0.0, 0.5, 0.5]])
    iou = sph_iou_exact(a, a)
    assert iou.dtype == torch.float32 and iou.shape == (2, 2)
    torch.testing.assert_close(iou, torch.eye(2))
    assert sph_iou_exact(a[:0], a).shape == (0, 2)
    assert sph_iou_exact(a, torch.zeros(0, 5)).shape == (2, 0)
    with pytest.raises(ShapeError, match=r"boxes1 must be \(N, 4\) or \(N, 5\)"):
        sph_iou_exact(a[0], a)
    with pytest.raises(ValueRangeError, match="fov_x and fov_y"):
        sph_iou_exact(a, torch.tensor([[0.0, 0.0, 0.0, 0.5]]))


def test_exact_overlap_over_the_smaller_area():
    boxes = random_boxes(12, seed=21, max_fov=1.5, lat_max=1.4)
    boxes[6:, :2] = boxes[:6, :2] + 0.2  # overlapping pairs
    iou = sph_iou_exact(boxes, boxes)
    got = sph_iou_exact(boxes, boxes, denominator="min")
    # From the IoU: inter = IoU (a1 + a2) / (1 + IoU), since union = a1 + a2 - inter.
    area = sph_box_area(boxes)
    pair = area[:, None] + area[None, :]
    want = iou * pair / (1 + iou) / torch.minimum(area[:, None], area[None, :])
    torch.testing.assert_close(got, want, atol=1e-10, rtol=0)
    assert (got >= iou).all() and (got[iou > 0] > iou[iou > 0]).any()
    # A small box inside a big one across the seam: all of it is covered.
    big = torch.tensor([[deg(178.0), deg(10.0), deg(30.0), deg(20.0)]], dtype=D)
    small = torch.tensor([[deg(-178.0), deg(12.0), deg(4.0), deg(3.0)]], dtype=D)
    assert sph_iou_exact(big, small, "min").item() == pytest.approx(1.0, abs=1e-12)
    assert sph_iou_exact(big, small).item() < 0.05
    with pytest.raises(ValueError, match="denominator must be one of 'union', 'min', got 'max'"):
        sph_iou_exact(big, small, denominator="max")


def test_check_sph_boxes_names_the_parameter():
    check_sph_boxes(random_boxes(4, seed=1).view(2, 2, 5), "views")  # any leading shape
    with pytest.raises(TypeError, match=r"faces must be a torch\.Tensor, got list"):
        check_sph_boxes([[0.0, 0.0, 1.0, 1.0]], "faces")
    with pytest.raises(TypeError, match=r"faces must be a floating-point tensor, got torch\.int64"):
        check_sph_boxes(torch.zeros(1, 4, dtype=torch.long), "faces")
    with pytest.raises(ShapeError, match=r"faces must be \(\.\.\., 4\) BFoV .* got \(2, 3\)"):
        check_sph_boxes(torch.zeros(2, 3), "faces")
    with pytest.raises(ValueRangeError, match="faces must be finite"):
        check_sph_boxes(torch.tensor([[0.0, math.nan, 1.0, 1.0]]), "faces")
    with pytest.raises(ValueRangeError, match=r"faces fov_x and fov_y must be in \(0, pi\)"):
        check_sph_boxes(torch.tensor([[0.0, 0.0, 1.0, math.pi]]), "faces")
    with pytest.raises(ValueRangeError, match=r"faces lat must be in \[-pi/2, pi/2\] radians"):
        check_sph_boxes(torch.tensor([[0.0, 1.6, 1.0, 1.0]]), "faces")
    check_sph_boxes(torch.tensor([[7.0, math.pi / 2 + 1e-7, 1.0, 1.0, -9.0]]))  # lon, roll wrap


def test_every_box_name_is_public_in_geometry_and_geometry_boxes():
    import pano360.geometry as geometry
    import pano360.geometry.boxes as boxes

    assert set(boxes.__all__) <= set(geometry.__all__)
    for name in boxes.__all__:
        assert getattr(geometry, name) is getattr(boxes, name)
    assert "sph_nms" not in geometry.__all__  # NMS lives in pano360.detection


def fov_iou_loop(a, b):
    """FoV-IoU of two boxes, written out from the paper's definition (Cao et al. 2022)."""
    lon1, lat1, a1, b1 = a
    lon2, lat2, a2, b2 = b
    dlon = (lon2 - lon1 + math.pi) % (2 * math.pi) - math.pi
    dfov = dlon * math.cos((lat1 + lat2) / 2)
    x_lo, x_hi = max(-a1 / 2, dfov - a2 / 2), min(a1 / 2, dfov + a2 / 2)
    y_lo, y_hi = max(lat1 - b1 / 2, lat2 - b2 / 2), min(lat1 + b1 / 2, lat2 + b2 / 2)
    inter = max(0.0, x_hi - x_lo) * max(0.0, y_hi - y_lo)
    return inter / (a1 * b1 + a2 * b2 - inter)


def test_fov_iou_matches_its_definition():
    a = random_boxes(7, seed=7, roll=False)
    b = a[torch.randperm(7, generator=torch.Generator().manual_seed(0))].clone()
    b[:, :2] += 0.2
    b[:, 1] = b[:, 1].clamp(-math.pi / 2, math.pi / 2)
    fast = sph_iou_fov(a, b)
    loop = torch.tensor([[fov_iou_loop(x.tolist(), y.tolist()) for y in b] for x in a], dtype=D)
    torch.testing.assert_close(fast, loop, atol=1e-12, rtol=0)
    assert (fast > 0).sum() > 5


def test_fov_iou_is_close_to_exact_near_the_equator():
    gen = torch.Generator().manual_seed(8)
    n = 100
    lon = (torch.rand(n, generator=gen, dtype=D) - 0.5) * deg(20) + math.pi  # across the seam
    lat = (torch.rand(n, generator=gen, dtype=D) - 0.5) * deg(20)
    fovs = deg(10) + torch.rand(n, 2, generator=gen, dtype=D) * deg(20)
    boxes = torch.cat((torch.stack((lon, lat), -1), fovs), -1)
    exact, fov = sph_iou_exact(boxes, boxes), sph_iou_fov(boxes, boxes)
    overlap = exact > 0.1
    assert overlap.sum() > 1000
    assert (exact - fov)[overlap].abs().max() < 0.02
    with pytest.raises(ShapeError, match="no roll"):
        sph_iou_fov(torch.zeros(1, 5), torch.zeros(1, 4))


angle = st.one_of(st.sampled_from([0.0, math.pi, -math.pi]), st.floats(-4.0, 4.0))
lat_s = st.one_of(
    st.sampled_from([math.pi / 2, -math.pi / 2, 0.0]), st.floats(-math.pi / 2, math.pi / 2)
)
fov_s = st.one_of(
    st.sampled_from([1e-6, 1e-3, math.pi / 2, math.pi - 1e-3, math.pi - 1e-6]),
    st.floats(1e-6, math.pi - 1e-6),
)
box_s = st.tuples(angle, lat_s, fov_s, fov_s, angle)


@given(box_s, box_s)
def test_exact_iou_properties(a, b):
    boxes = torch.tensor([a, b], dtype=D)
    iou = sph_iou_exact(boxes, boxes)
    assert torch.isfinite(iou).all() and (iou >= 0).all() and (iou <= 1).all()
    torch.testing.assert_close(iou.diagonal(), torch.ones(2, dtype=D), atol=1e-6, rtol=0)
    assert abs(iou[0, 1] - iou[1, 0]) < 1e-6


@given(box_s, box_s)
def test_fov_iou_properties(a, b):
    boxes = torch.tensor([a[:4], b[:4]], dtype=D)
    iou = sph_iou_fov(boxes, boxes)
    assert torch.isfinite(iou).all() and (iou >= 0).all() and (iou <= 1).all()
    torch.testing.assert_close(iou.diagonal(), torch.ones(2, dtype=D), atol=1e-12, rtol=0)
    assert abs(iou[0, 1] - iou[1, 0]) < 1e-12


@given(box_s)
def test_conversion_properties(a):
    box = torch.tensor(a[:4], dtype=D)
    xyxy = box_convert(box, "bfov", "erp_xyxy", erp_hw=(16, 32))
    assert torch.isfinite(xyxy).all()
    x1, y1, x2, y2 = xyxy.tolist()
    assert -0.5 <= x1 < 31.5 and x1 <= x2 <= x1 + 32 + 1e-9 and -0.5 <= y1 <= y2 <= 15.5
    back = box_convert(xyxy, "erp_xyxy", "bfov", erp_hw=(16, 32))
    assert torch.isfinite(back).all() and (back[2:] > 0).all() and (back[2:] < math.pi).all()


def test_iou_dtypes():
    for dtype in (torch.float32, torch.float64):
        a = random_boxes(4, seed=9, roll=False).to(dtype)
        assert sph_iou_exact(a, a).dtype == dtype and sph_iou_fov(a, a).dtype == dtype
    a32 = random_boxes(5, seed=10)
    torch.testing.assert_close(
        sph_iou_exact(a32.float(), a32.float()).double(), sph_iou_exact(a32, a32), atol=1e-4, rtol=0
    )


def test_gradcheck_exact_iou_fov_iou_area_and_conversions():
    a = torch.tensor([[0.1, 0.2, 0.8, 0.6, 0.1], [3.0, -0.3, 0.5, 0.7, 0.0]], dtype=D)
    b = torch.tensor([[0.4, 0.1, 0.7, 0.9, -0.3], [-3.1, -0.2, 0.6, 0.5, 0.2]], dtype=D)
    a.requires_grad_(), b.requires_grad_()
    assert gradcheck(sph_iou_exact, (a, b), eps=1e-6, atol=1e-6)
    a4, b4 = (x[:, :4].detach().requires_grad_() for x in (a, b))
    assert gradcheck(sph_iou_fov, (a4, b4), eps=1e-6, atol=1e-6)
    assert gradcheck(sph_box_area, (a,), eps=1e-6, atol=1e-6)
    hw = (32, 64)
    assert gradcheck(lambda x: box_convert(x, "rbfov", "erp_xyxy", hw), (a,), eps=1e-6, atol=1e-5)
    xyxy = box_convert(a4.detach()[:1], "bfov", "erp_xyxy", hw).requires_grad_()
    assert gradcheck(lambda x: box_convert(x, "erp_xyxy", "bfov", hw), (xyxy,), eps=1e-6)


# --------------------------------------------------------------------------------------------
# The oracle itself
# --------------------------------------------------------------------------------------------


def test_sampled_oracle_stratified_agrees_with_independent_draws():
    a = torch.tensor([[0.0, 0.3, 0.9, 0.7, 0.2]], dtype=D)
    b = torch.tensor([[0.3, 0.1, 0.8, 0.9, 0.0]], dtype=D)
    iid = sph_iou_sampled(a, b, n=100_000, seed=3, stratified=False).item()
    strat = sph_iou_sampled(a, b, n=100_000, seed=3).item()
    assert strat == sph_iou_sampled(a, b, n=100_000, seed=3).item()  # seeded
    assert abs(iid - strat) < 0.02  # > 4 standard errors of the independent draws
    with pytest.raises(ShapeError, match="boxes1 must be"):
        sph_iou_sampled(a[0], b)
    with pytest.raises(ValueRangeError, match="fov_x, fov_y in"):
        sph_iou_sampled(a, torch.tensor([[0.0, 0.0, 4.0, 1.0]]))
    with pytest.raises(ValueRangeError, match="n must be a positive integer"):
        sph_iou_sampled(a, b, n=0)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_devices_and_dtypes(device, dtype):
    boxes = random_boxes(6, seed=12, roll=False).to(device=device, dtype=dtype)
    for out in (
        sph_iou_exact(boxes, boxes),
        sph_iou_fov(boxes, boxes),
        box_convert(boxes, "bfov", "erp_xyxy", (16, 32)),
        box_corners(boxes),
        sph_box_area(boxes),
    ):
        assert out.device.type == device and out.dtype == dtype
    assert sph_box_mask(boxes, (16, 32)).device.type == device
    cpu = sph_iou_exact(boxes.cpu().double(), boxes.cpu().double())
    torch.testing.assert_close(sph_iou_exact(boxes, boxes).cpu().double(), cpu, atol=1e-4, rtol=0)
