"""resize_erp and erp_pyramid: oracles, the seam and pole rules, gradients and errors."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd import gradcheck

from pano360.errors import ShapeError
from pano360.geometry import (
    RESIZE_MODES,
    erp_lonlat_grid,
    erp_pyramid,
    lonlat_to_xyz,
    resize_erp,
    sample_erp,
)

D = torch.float64


def smooth_on_sphere(hw, dtype=D):
    """A function smooth on the sphere (no seam, no pole singularity) at ERP pixel centres."""
    xyz = lonlat_to_xyz(erp_lonlat_grid(hw, dtype=dtype))
    x, y, z = xyz.unbind(-1)
    return torch.stack((x + 0.5 * y * z, torch.sin(2 * x) + z**2))[None]  # (1, 2, H, W)


def area_oracle(img: torch.Tensor, hw) -> torch.Tensor:
    """Loop oracle: each output pixel is the mean of the input over its rectangle, every input
    pixel weighed by the length of its overlap along each axis."""
    _, _, h_in, w_in = img.shape
    h, w = hw

    def overlaps(n_in, n_out):
        m = torch.zeros(n_out, n_in, dtype=D)
        s = n_in / n_out
        for j in range(n_out):
            for i in range(n_in):
                m[j, i] = max(0.0, min(i + 1, (j + 1) * s) - max(i, j * s)) / s
        return m

    return torch.einsum("hi,bcij,wj->bchw", overlaps(h_in, h), img, overlaps(w_in, w))


@pytest.mark.parametrize("target", [(16, 32), (24, 48), (13, 26), (20, 30)])
def test_growth_equals_bilinear_sampling_on_the_sphere(target):
    small = torch.rand(2, 3, 8, 16, dtype=D, generator=torch.Generator().manual_seed(5))
    expected = sample_erp(small, erp_lonlat_grid(target, dtype=D)[None])
    torch.testing.assert_close(resize_erp(small, target), expected)


@pytest.mark.parametrize("target", [(8, 16), (5, 10), (3, 6), (7, 10), (1, 2)])
def test_shrinking_is_the_exact_area_average(target):
    img = torch.rand(1, 2, 12, 24, dtype=D, generator=torch.Generator().manual_seed(2))
    for mode in ("bilinear", "area"):
        torch.testing.assert_close(resize_erp(img, target, mode), area_oracle(img, target))


def test_area_growth_is_the_exact_area_average():
    img = torch.rand(1, 1, 4, 8, dtype=D, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(resize_erp(img, (6, 12), "area"), area_oracle(img, (6, 12)))


def test_nearest_picks_the_pixel_holding_each_centre():
    labels = torch.arange(32, dtype=D).reshape(1, 1, 4, 8)
    out = resize_erp(labels, (6, 12), "nearest")
    lonlat = erp_lonlat_grid((6, 12), dtype=D)
    expected = sample_erp(labels, lonlat[None], mode="nearest")
    torch.testing.assert_close(out, expected)
    assert set(out.unique().tolist()) <= set(labels.unique().tolist())


@pytest.mark.parametrize("mode", RESIZE_MODES)
@pytest.mark.parametrize("target", [(5, 10), (9, 18), (16, 32), (3, 12)])
def test_a_constant_stays_constant(mode, target):
    c = torch.full((2, 1, 8, 16), 0.7, dtype=D)
    torch.testing.assert_close(
        resize_erp(c, target, mode), torch.full((2, 1, *target), 0.7, dtype=D)
    )


def _seam_and_neighbour_steps(out):
    across = (out[..., 0] - out[..., -1]).abs().amax()
    inside = (out[..., 1:] - out[..., :-1]).abs().amax()
    return across, inside


@settings(max_examples=25, deadline=None)
@given(
    h_in=st.integers(2, 24),
    h_out=st.integers(1, 48),
    mode=st.sampled_from(["bilinear", "area"]),
)
def test_the_seam_is_no_border(h_in, h_out, mode):
    """Column 0 and column W-1 are neighbours: resizing a function smooth on the sphere never
    makes them differ more than any two neighbouring columns."""
    img = smooth_on_sphere((h_in, 2 * h_in))
    out = resize_erp(img, (h_out, 2 * h_out), mode)
    across, inside = _seam_and_neighbour_steps(out)
    assert across <= inside + 1e-12


def test_planar_interpolation_breaks_the_seam_rule():
    """The property above can fail: planar bilinear upsampling clamps at the seam."""
    img = smooth_on_sphere((4, 8))
    across, inside = _seam_and_neighbour_steps(
        F.interpolate(img, size=(32, 64), mode="bilinear", align_corners=False)
    )
    assert across > 1.5 * inside
    across, inside = _seam_and_neighbour_steps(resize_erp(img, (32, 64)))
    assert across <= inside + 1e-12


def test_upsampling_is_continuous_over_the_poles():
    """Row 0 at column c and at column c + W/2 are neighbours across the north pole."""
    img = smooth_on_sphere((6, 12))
    out = resize_erp(img, (30, 60))
    half = out.shape[-1] // 2
    across_pole = (out[..., 0, :] - out[..., 0, :].roll(half, -1)).abs().amax()
    down_rows = (out[..., 1:, :] - out[..., :-1, :]).abs().amax()
    assert across_pole <= 2 * down_rows  # two row steps apart at most
    # ... and it equals sampling the smooth function's bilinear interpolant on the sphere
    torch.testing.assert_close(out, sample_erp(img, erp_lonlat_grid((30, 60), dtype=D)[None]))


def test_same_size_returns_the_input():
    x = torch.rand(1, 1, 4, 8)
    assert resize_erp(x, (4, 8)) is x


@pytest.mark.parametrize("target", [(6, 12), (3, 6), (5, 14)])
def test_gradcheck(target):
    x = torch.rand(1, 2, 4, 8, dtype=D, requires_grad=True)
    assert gradcheck(lambda t: resize_erp(t, target), (x,))


def test_channels_last_and_float32():
    x = torch.rand(1, 3, 16, 32).contiguous(memory_format=torch.channels_last)
    y = resize_erp(x, (10, 20))
    torch.testing.assert_close(y, resize_erp(x.contiguous(), (10, 20)))
    assert y.dtype == torch.float32


def test_errors():
    x = torch.rand(1, 1, 4, 8)
    with pytest.raises(ShapeError, match="even width"):
        resize_erp(x, (4, 7))
    with pytest.raises(ShapeError, match=r"erp must be \(B, C, H, W\)"):
        resize_erp(torch.rand(1, 1, 4, 7), (4, 8))
    with pytest.raises(ShapeError, match="hw must be a pair"):
        resize_erp(x, (0, 8))
    with pytest.raises(TypeError, match="erp must be a floating-point or uint8 tensor"):
        resize_erp(torch.zeros(1, 1, 4, 8, dtype=torch.int64), (2, 4))
    with pytest.raises(ValueError, match="mode must be one of"):
        resize_erp(x, (2, 4), "cubic")


def test_pyramid_levels_come_from_the_smallest_large_enough_halving():
    x = torch.rand(1, 3, 64, 128, dtype=D, generator=torch.Generator().manual_seed(1))
    sizes = [(30, 60), (13, 26), (20, 40)]
    levels, halvings = erp_pyramid(x, sizes, with_halvings=True)
    assert [tuple(t.shape[-2:]) for t in halvings] == [(64, 128), (32, 64)]
    torch.testing.assert_close(halvings[1], F.avg_pool2d(x, 2))
    for level, hw in zip(levels, sizes, strict=True):
        torch.testing.assert_close(level, resize_erp(halvings[1], hw))
    # A level wider than the input is read from the input itself.
    (level,) = erp_pyramid(x, [(70, 140)])
    torch.testing.assert_close(level, resize_erp(x, (70, 140)))
    with pytest.raises(ShapeError, match="at least one level"):
        erp_pyramid(x, [])


def test_area_keeps_the_mean_of_a_whole_turn():
    """Area averaging keeps every row band's mean: the planar mean is preserved exactly."""
    x = torch.rand(1, 1, 12, 24, dtype=D, generator=torch.Generator().manual_seed(9))
    for target in [(5, 10), (7, 14)]:
        assert math.isclose(resize_erp(x, target).mean().item(), x.mean().item(), rel_tol=1e-12)
