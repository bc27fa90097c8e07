"""Spherical max, average and area-weighted pooling: errors, shapes, oracles, symmetry, grads."""

import math

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck

from pano360.errors import ShapeError, ValueRangeError
from pano360.geometry import pixel_solid_angle
from pano360.nn import (
    SphericalAreaAvgPool2d,
    SphericalAvgPool2d,
    SphericalMaxPool2d,
    spherical_area_avg_pool2d,
    spherical_avg_pool2d,
    spherical_max_pool2d,
    spherical_pad,
)
from pano360.testing import assert_yaw_equivariant

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
D = torch.float64
SIZES = [1, 2, 3, 4, 8, 31]
# (kernel_size, stride, padding, ceil_mode): the usual ones, and some that read past the poles.
CONFIGS = [(2, 2, 0, False), (3, 1, 1, False), (3, 2, 1, False), (2, 2, 0, True), (3, 2, 0, True)]


def rand(*shape, seed=0, dtype=D):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=gen, dtype=dtype)


def out_size(size, k, s, p, d=1, ceil_mode=False):
    """torch's pooling output size (from the nn.MaxPool2d documentation)."""
    span = (size + 2 * p - d * (k - 1) - 1) / s
    out = (math.ceil(span) if ceil_mode else math.floor(span)) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def full_pad(h, w, k, s, p, ceil_mode):
    """Explicit (left, right, top, bottom) so that every window lies inside the padded map."""
    ho, wo = out_size(h, k, s, p, 1, ceil_mode), out_size(w, k, s, p, 1, ceil_mode)
    extra_h = max(0, (ho - 1) * s + k - h - 2 * p)
    extra_w = max(0, (wo - 1) * s + k - w - 2 * p)
    return (p, p + extra_w, p, p + extra_h)


def area_pool_oracle(x, k, s, p, ceil_mode=False):
    """Loop oracle: sum(x a) / sum(a) over each window of the spherically padded map."""
    _, _, h, w = x.shape
    pad = full_pad(h, w, k, s, p, ceil_mode)
    area = pixel_solid_angle((h, w), dtype=D).expand(h, w)[None, None]
    xp, ap = spherical_pad(x, pad), spherical_pad(area, pad)
    ho, wo = out_size(h, k, s, p, 1, ceil_mode), out_size(w, k, s, p, 1, ceil_mode)
    out = x.new_empty(*x.shape[:2], ho, wo)
    for i in range(ho):
        for j in range(wo):
            win = (..., slice(i * s, i * s + k), slice(j * s, j * s + k))
            out[..., i, j] = (xp[win] * ap[win]).sum((-2, -1)) / ap[win].sum((-2, -1))
    return out


# Smoke, modules and repr.


def test_smoke_modules_agree_with_functions():
    x = rand(2, 3, 8, 16)
    torch.testing.assert_close(
        SphericalMaxPool2d(3, 2, 1)(x), spherical_max_pool2d(x, 3, 2, 1), rtol=0, atol=0
    )
    torch.testing.assert_close(
        SphericalAvgPool2d(3, 2, 1)(x), spherical_avg_pool2d(x, 3, 2, 1), rtol=0, atol=0
    )
    torch.testing.assert_close(
        SphericalAreaAvgPool2d(2)(x), spherical_area_avg_pool2d(x, 2), rtol=0, atol=0
    )
    values, indices = SphericalMaxPool2d(2, return_indices=True)(x)
    torch.testing.assert_close(values, spherical_max_pool2d(x, 2), rtol=0, atol=0)
    assert indices.shape == values.shape
    assert repr(SphericalMaxPool2d(3, 2, 1)) == (
        "SphericalMaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)"
    )
    assert repr(SphericalMaxPool2d(2, return_indices=True)).endswith("return_indices=True)")
    assert repr(SphericalAvgPool2d((2, 4), ceil_mode=True)) == (
        "SphericalAvgPool2d(kernel_size=(2, 4), stride=(2, 4), padding=0, ceil_mode=True)"
    )
    assert repr(SphericalAreaAvgPool2d(2, 1, 1)) == (
        "SphericalAreaAvgPool2d(kernel_size=2, stride=1, padding=1, ceil_mode=False)"
    )


# Every documented error.


@pytest.mark.parametrize(
    "fn", [spherical_max_pool2d, spherical_avg_pool2d, spherical_area_avg_pool2d]
)
def test_errors(fn):
    x = torch.rand(1, 1, 4, 8)
    with pytest.raises(ShapeError, match=r"x must be \(B, C, H, W\) with H >= 1 and W even"):
        fn(torch.rand(1, 1, 4, 9), 2)
    with pytest.raises(ShapeError, match="x must be"):
        fn(torch.rand(4, 8), 2)
    with pytest.raises(
        ShapeError, match=r"x of \(H, W\) = \(4, 8\) is too small for kernel_size 5"
    ):
        fn(x, 5)
    for bad in (0, -1, (2, 0), (1, 2, 3), 1.5, True, None):
        with pytest.raises(ValueRangeError, match="kernel_size must be a positive int or a pair"):
            fn(x, bad)
    with pytest.raises(ValueRangeError, match="stride must be a positive int or a pair"):
        fn(x, 2, 0)
    with pytest.raises(ValueRangeError, match="padding must be a non-negative int or a pair"):
        fn(x, 2, 2, -1)
    with pytest.raises(ValueRangeError, match="padding must be a non-negative int"):
        fn(x, 2, 2, (1, -1))


def test_errors_dilation_and_constructors():
    x = torch.rand(1, 1, 4, 8)
    with pytest.raises(ValueRangeError, match="dilation must be a positive int or a pair"):
        spherical_max_pool2d(x, 2, dilation=0)
    with pytest.raises(ValueRangeError, match="kernel_size must be"):
        SphericalMaxPool2d(0)
    with pytest.raises(ValueRangeError, match="stride must be"):
        SphericalAvgPool2d(2, stride=-2)
    with pytest.raises(ValueRangeError, match="padding must be"):
        SphericalAreaAvgPool2d(2, padding=-1)


# Shapes: torch's output sizes, also in ceil mode; dtypes and devices.


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("config", CONFIGS)
def test_shapes_match_torch(device, dtype, config):
    k, s, p, ceil_mode = config
    x = torch.rand(2, 3, 7, 10, dtype=dtype, device=device)
    expected = nn.MaxPool2d(k, s, p, ceil_mode=ceil_mode)(x).shape
    for out in (
        spherical_max_pool2d(x, k, s, p, ceil_mode=ceil_mode),
        spherical_avg_pool2d(x, k, s, p, ceil_mode),
        spherical_area_avg_pool2d(x, k, s, p, ceil_mode),
    ):
        assert out.shape == expected and out.dtype == dtype and out.device.type == device


# Against oracles: torch's pooling of an explicitly padded map, and loops for the area pool.


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("h", [2, 3, 8])
def test_max_and_avg_equal_torch_on_explicitly_padded_input(config, h):
    k, s, p, ceil_mode = config
    x = rand(2, 3, h, 2 * h)
    padded = spherical_pad(x, full_pad(h, 2 * h, k, s, p, ceil_mode))
    torch.testing.assert_close(
        spherical_max_pool2d(x, k, s, p, ceil_mode=ceil_mode), nn.MaxPool2d(k, s)(padded)
    )
    torch.testing.assert_close(
        spherical_avg_pool2d(x, k, s, p, ceil_mode), nn.AvgPool2d(k, s)(padded)
    )


def test_max_pool_dilation_and_rectangular_kernels():
    x = rand(1, 2, 6, 12)
    out = spherical_max_pool2d(x, (3, 2), (1, 2), (2, 1), dilation=2)
    expected = nn.MaxPool2d((3, 2), (1, 2), dilation=2)(spherical_pad(x, (1, 1, 2, 2)))
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_padding_is_spherical_not_zero():
    # All-negative input: zero padding would put zeros at the border, -inf padding would ignore it.
    x = -rand(1, 1, 4, 8) - 1
    out = spherical_avg_pool2d(x, 3, 1, 1)
    assert (out < -1).all()
    assert not torch.allclose(out, nn.AvgPool2d(3, 1, 1)(x))


def test_max_pool_indices_point_into_the_unpadded_input():
    x = rand(2, 3, 4, 8)
    values, indices = spherical_max_pool2d(x, 3, 2, 1, return_indices=True)
    assert indices.dtype == torch.long and indices.min() >= 0 and indices.max() < 32
    torch.testing.assert_close(
        values, x.flatten(-2).gather(-1, indices.flatten(-2)).view_as(values)
    )
    # A pole window's winner can come from the other side of the pole.
    x = torch.zeros(1, 1, 4, 8)
    x[0, 0, 0, 4] = 1.0
    values, indices = spherical_max_pool2d(x, 3, 1, 1, return_indices=True)
    assert values[0, 0, 0, 0] == 1 and indices[0, 0, 0, 0] == 4


@pytest.mark.parametrize(
    ("config", "h"),
    [
        (c, h)
        for c in [*CONFIGS, (4, 4, 0, False), (3, 1, 4, False)]
        for h in (1, 3, 4)
        if out_size(h, c[0], c[1], c[2], 1, c[3]) >= 1
    ],
)
def test_area_pool_matches_loop_oracle(config, h):
    k, s, p, ceil_mode = config
    x = rand(1, 2, h, 2 * h)
    torch.testing.assert_close(
        spherical_area_avg_pool2d(x, k, s, p, ceil_mode), area_pool_oracle(x, k, s, p, ceil_mode)
    )


@pytest.mark.parametrize("s", [2, 4])
def test_area_pool_preserves_the_sphere_integral(s):
    h, w = 8, 16
    x = rand(2, 3, h, w)
    out = spherical_area_avg_pool2d(x, s)
    assert out.shape == (2, 3, h // s, w // s)
    before = (x * pixel_solid_angle((h, w), dtype=D)).sum((-2, -1))
    after = (out * pixel_solid_angle((h // s, w // s), dtype=D)).sum((-2, -1))
    torch.testing.assert_close(after, before, rtol=1e-12, atol=0)
    # The unweighted average pool does not: it over-counts the small polar pixels.
    plain = spherical_avg_pool2d(x, s)
    assert not torch.allclose(
        (plain * pixel_solid_angle((h // s, w // s), dtype=D)).sum(), before.sum()
    )


def test_area_pool_of_constant_is_constant():
    x = torch.full((1, 2, 6, 12), 0.7, dtype=D)
    for k, s, p, ceil_mode in CONFIGS:
        out = spherical_area_avg_pool2d(x, k, s, p, ceil_mode)
        torch.testing.assert_close(out, torch.full_like(out, 0.7))


# Symmetries: yaw (columns roll with the stride) and north-south mirroring.


@pytest.mark.parametrize(
    "fn", [spherical_max_pool2d, spherical_avg_pool2d, spherical_area_avg_pool2d]
)
def test_yaw_equivariance(fn):
    x = rand(1, 2, 8, 16)
    assert_yaw_equivariant(lambda t: fn(t, 3, 1, 1), x, shifts=(1, 5, 15))
    for k, s, p in [(2, 2, 0), (3, 2, 1), (4, 4, 0)]:
        out = fn(x, k, s, p)
        for m in (1, 3):
            rolled = fn(torch.roll(x, m * s, dims=-1), k, s, p)
            torch.testing.assert_close(rolled, torch.roll(out, m, dims=-1), rtol=0, atol=1e-15)


@pytest.mark.parametrize(
    "fn", [spherical_max_pool2d, spherical_avg_pool2d, spherical_area_avg_pool2d]
)
def test_north_south_mirror_commutes(fn):
    # Holds whenever the windows sit symmetrically about the equator.
    x = rand(1, 2, 8, 16)
    for k, s, p in [(2, 2, 0), (3, 1, 1), (3, 1, 4), (5, 3, 0)]:
        torch.testing.assert_close(fn(x.flip(-2), k, s, p), fn(x, k, s, p).flip(-2))


def test_convention_output_centres_of_stride_two():
    # k = s = 2: output (i, j) pools input rows 2i, 2i+1 and columns 2j, 2j+1, the ERP grid of
    # (H/2, W/2); k = 3, s = 2, p = 1 centres output i on input pixel 2i (half a pixel north-west).
    x = torch.zeros(1, 1, 8, 16)
    x[0, 0, 3, 5] = 1.0
    assert spherical_max_pool2d(x, 2).nonzero().tolist() == [[0, 0, 1, 2]]
    # Output i pools rows 2i-1 .. 2i+1: row 3 is in windows 1 and 2, column 5 in windows 2 and 3.
    hit = spherical_max_pool2d(x, 3, 2, 1).nonzero().tolist()
    assert hit == [[0, 0, 1, 2], [0, 0, 1, 3], [0, 0, 2, 2], [0, 0, 2, 3]]
    x = torch.zeros(1, 1, 8, 16)
    x[0, 0, 4, 6] = 1.0  # the centre pixel of output (2, 3) only
    assert spherical_max_pool2d(x, 3, 2, 1).nonzero().tolist() == [[0, 0, 2, 3]]


# No NaN or inf, ever; gradients.


@pytest.mark.parametrize("h", SIZES)
@pytest.mark.parametrize("config", [*CONFIGS, (3, 1, 5, False)])
def test_no_nan_or_inf(h, config):
    k, s, p, ceil_mode = config
    if out_size(h, k, s, p, 1, ceil_mode) < 1:
        with pytest.raises(ShapeError, match="too small"):
            spherical_avg_pool2d(torch.rand(1, 1, h, 2 * h), k, s, p, ceil_mode)
        return
    for dtype in (torch.float32, torch.float64):
        x = rand(1, 2, h, 2 * h, dtype=dtype).requires_grad_()
        outs = [
            spherical_max_pool2d(x, k, s, p, ceil_mode=ceil_mode),
            spherical_avg_pool2d(x, k, s, p, ceil_mode),
            spherical_area_avg_pool2d(x, k, s, p, ceil_mode),
        ]
        sum(o.sum() for o in outs).backward()
        assert all(torch.isfinite(o).all() for o in outs)
        assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("config", [(3, 2, 1, False), (2, 2, 0, True), (3, 1, 4, False)])
def test_gradcheck(config):
    k, s, p, ceil_mode = config
    x = rand(1, 2, 3, 6).requires_grad_()
    for fn in (spherical_avg_pool2d, spherical_area_avg_pool2d):
        assert gradcheck(lambda t, fn=fn: fn(t, k, s, p, ceil_mode), (x,), eps=1e-6, atol=1e-5)
    # Max pooling: distinct values keep the winners stable under the finite differences.
    y = torch.randperm(36, generator=torch.Generator().manual_seed(1)).to(D).view(1, 2, 3, 6)
    y = y.requires_grad_()
    assert gradcheck(lambda t: spherical_max_pool2d(t, k, s, p, ceil_mode=ceil_mode), (y,))
