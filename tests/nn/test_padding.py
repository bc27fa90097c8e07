"""spherical_pad / SphericalPad2d: errors, shapes, a loop oracle, the seam and pole conventions."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.autograd import gradcheck

from pano360.errors import ShapeError, ValueRangeError
from pano360.geometry import spherical_pad as geometry_spherical_pad
from pano360.geometry.padding import spherical_pad_index
from pano360.nn import SphericalPad2d, spherical_pad

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
D = torch.float64


def pad_oracle(x, left, right, top, bottom):
    """Loop oracle: fold each padded row back over the poles one reflection at a time."""
    _, _, h, w = x.shape
    index = []
    for r in range(-top, h + bottom):
        row = []
        for c in range(-left, w + right):
            rr, cc = r, c
            while not 0 <= rr < h:
                rr = -1 - rr if rr < 0 else 2 * h - 1 - rr
                cc += w // 2
            row.append(rr * w + cc % w)
        index.append(row)
    index = torch.tensor(index, device=x.device)
    return x.flatten(-2)[..., index]


def rand(*shape, seed=0, dtype=D):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=gen, dtype=dtype)


# Smoke, module and repr.


def test_smoke_and_module_agrees_with_function():
    x = rand(2, 3, 4, 8)
    layer = SphericalPad2d((1, 2, 3, 0))
    torch.testing.assert_close(layer(x), spherical_pad(x, (1, 2, 3, 0)), rtol=0, atol=0)
    assert repr(layer) == "SphericalPad2d(padding=(1, 2, 3, 0))"
    assert repr(SphericalPad2d(2)) == "SphericalPad2d(padding=(2, 2, 2, 2))"


# Every documented error.


def test_error_bad_shape():
    with pytest.raises(ShapeError, match=r"x must be \(B, C, H, W\) with H >= 1 and W even"):
        spherical_pad(torch.rand(1, 1, 4, 7), 1)
    with pytest.raises(ShapeError, match=r"x must be \(B, C, H, W\).*got \(3, 4, 8\)"):
        spherical_pad(torch.rand(3, 4, 8), 1)
    with pytest.raises(ShapeError, match="x must be"):
        spherical_pad(torch.rand(1, 1, 0, 8), 1)
    with pytest.raises(TypeError, match=r"x must be a torch\.Tensor"):
        spherical_pad([[1.0, 2.0]], 1)


def test_error_bad_pad():
    x = torch.rand(1, 1, 4, 8)
    with pytest.raises(ValueRangeError, match="pad must be non-negative, got -1"):
        spherical_pad(x, -1)
    with pytest.raises(ValueRangeError, match=r"pad must be non-negative, got \(1, 1, -1, 0\)"):
        spherical_pad(x, (1, 1, -1, 0))
    for bad in [(1, 1), (1, 1, 1), 1.0, True, (1, 1, 1, 1.5), "1", None]:
        with pytest.raises(ValueRangeError, match=r"pad must be an int or a 4-tuple"):
            spherical_pad(x, bad)
    with pytest.raises(ValueRangeError, match="padding must be non-negative"):
        SphericalPad2d(-2)
    with pytest.raises(ValueRangeError, match="padding must be an int or a 4-tuple"):
        SphericalPad2d((1, 2))


# Shapes, dtypes, devices.


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64])
@pytest.mark.parametrize("pad", [0, 1, 5, (0, 0, 2, 1), (3, 1, 0, 0), (9, 10, 11, 12)])
def test_shapes_dtypes_devices(device, dtype, pad):
    x = (torch.rand(2, 3, 4, 6) * 100).to(dtype=dtype, device=device)
    out = spherical_pad(x, pad)
    left, right, top, bottom = (pad,) * 4 if isinstance(pad, int) else pad
    assert out.shape == (2, 3, 4 + top + bottom, 6 + left + right)
    assert out.dtype == dtype and out.device.type == device
    torch.testing.assert_close(out, pad_oracle(x, left, right, top, bottom), rtol=0, atol=0)


# Against the oracles.


@given(
    st.sampled_from([1, 2, 3, 4, 8, 31]),
    st.sampled_from([2, 4, 6, None]),
    st.tuples(*[st.integers(0, 70)] * 4),
)
def test_matches_loop_oracle(h, w, pad):
    w = 2 * h if w is None else w
    x = rand(1, 2, h, w)
    out = spherical_pad(x, pad)
    torch.testing.assert_close(out, pad_oracle(x, *pad), rtol=0, atol=0)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("h", [1, 2, 3, 4, 8, 31])
@pytest.mark.parametrize("pad", [0, 1, 2, 3, 9, 40])
def test_symmetric_matches_geometry_pad_index(h, pad):
    x = rand(1, 1, h, 2 * h)
    index = spherical_pad_index(h, 2 * h, pad, x.device)
    torch.testing.assert_close(spherical_pad(x, pad), x.flatten(-2)[..., index], rtol=0, atol=0)
    if pad <= h:  # the range where nn's pad hands the work to geometry's
        torch.testing.assert_close(spherical_pad(x, pad), geometry_spherical_pad(x, pad))


def test_symmetric_pad_wider_than_w_is_correct():
    # Narrow maps (W < pad <= H) must not take a fast path that assumes pad <= W.
    x = rand(1, 1, 8, 2)
    torch.testing.assert_close(spherical_pad(x, 3), pad_oracle(x, 3, 3, 3, 3), rtol=0, atol=0)


# Conventions: the seam wraps, rows past a pole are mirrored and turned by W/2.


def test_convention_seam_and_poles():
    h, w = 4, 8
    x = rand(1, 1, h, w)
    out = spherical_pad(x, 2)
    inner = out[..., 2 : 2 + h, 2 : 2 + w]
    torch.testing.assert_close(inner, x, rtol=0, atol=0)
    for c in range(-2, w + 2):
        # Row -1 (-2) is row 0 (1) half a turn of longitude away; likewise below row H-1.
        assert out[0, 0, 1, c + 2] == x[0, 0, 0, (c + w // 2) % w]
        assert out[0, 0, 0, c + 2] == x[0, 0, 1, (c + w // 2) % w]
        assert out[0, 0, h + 2, c + 2] == x[0, 0, h - 1, (c + w // 2) % w]
    for r in range(h):
        assert out[0, 0, r + 2, 0] == x[0, 0, r, w - 2]  # column -2 is column W-2
        assert out[0, 0, r + 2, w + 2] == x[0, 0, r, 0]  # column W is column 0


def test_convention_past_both_poles_returns_unshifted():
    # Two reflections (down past the south pole from past the north pole) cancel the shift.
    x = rand(1, 1, 2, 4)
    out = spherical_pad(x, (0, 0, 4, 0))  # rows -4 .. -1: rows 0, 1 (as is), 1, 0 (turned)
    torch.testing.assert_close(out[0, 0, 0], x[0, 0, 0], rtol=0, atol=0)
    torch.testing.assert_close(out[0, 0, 1], x[0, 0, 1], rtol=0, atol=0)
    torch.testing.assert_close(out[0, 0, 2], x[0, 0, 1].roll(2), rtol=0, atol=0)
    torch.testing.assert_close(out[0, 0, 3], x[0, 0, 0].roll(2), rtol=0, atol=0)


def test_yaw_equivariance_and_north_south_mirror():
    x = rand(2, 3, 6, 12)
    pad = (2, 3, 4, 1)
    for k in (1, 5, 12):
        # Rolling the input right by k shows the pad of x read k columns further left.
        rolled = spherical_pad(torch.roll(x, k, dims=-1), pad)
        expected = spherical_pad(x, (2 + k, 3, 4, 1))[..., : 12 + 5]
        torch.testing.assert_close(rolled, expected, rtol=0, atol=0)
    flipped = spherical_pad(x.flip(-2), pad)
    torch.testing.assert_close(flipped, spherical_pad(x, (2, 3, 1, 4)).flip(-2), rtol=0, atol=0)


# Gradients.


@pytest.mark.parametrize("pad", [1, (0, 3, 2, 0), (5, 4, 7, 6)])
def test_gradcheck(pad):
    x = rand(1, 2, 3, 4).requires_grad_()
    assert gradcheck(lambda t: spherical_pad(t, pad), (x,), eps=1e-6, atol=1e-5)


def test_gradient_counts_copies():
    # Each input pixel receives one unit of gradient per padded position that repeats it.
    x = rand(1, 1, 2, 4).requires_grad_()
    spherical_pad(x, 3).sum().backward()
    counts = torch.bincount(spherical_pad_index(2, 4, 3, x.device).flatten(), minlength=8)
    torch.testing.assert_close(x.grad.flatten(), counts.to(D))


@pytest.mark.parametrize("pad", [2, (1, 3, 2, 0), (0, 0, 5, 5)])
def test_channels_last_input_gives_channels_last_output_with_the_same_values(pad):
    x = rand(2, 3, 8, 16)
    out = spherical_pad(x.contiguous(memory_format=torch.channels_last), pad)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, spherical_pad(x, pad), rtol=0, atol=0)
