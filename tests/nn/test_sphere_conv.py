"""SphereConv2d against the slow exact oracle, nn.Conv2d, symmetry and the documented errors."""

import math

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck

from pano360.errors import ShapeError, ValueRangeError
from pano360.geometry import lonlat_to_xyz, pixel_to_lonlat, rotation_matrix
from pano360.nn import SphereConv2d, sphere_conv2d
from pano360.testing import assert_yaw_equivariant, exact_conv2d

D = torch.float64


def rand(*shape, seed=0):
    return torch.rand(*shape, dtype=D, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("h", [16, 32])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("channels", [4, 20])  # block-conv path; compiled or im2col path
def test_tangent_equals_exact_oracle_on_every_row(h, stride, dilation, groups, channels, conv_path):
    x = rand(1, channels, h, 2 * h)
    w = rand(6, channels // groups, 3, 3, seed=1) - 0.5
    bias = rand(6, seed=2)
    expected = exact_conv2d(x, w, bias, stride, dilation, groups=groups)
    got = sphere_conv2d(x, w, bias, stride=stride, dilation=dilation, groups=groups)
    assert got.shape == expected.shape == (1, 6, -(-h // stride), -(-2 * h // stride))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("h", [2, 3, 5])
def test_tangent_equals_exact_oracle_on_tiny_maps(h, conv_path):
    x = rand(2, 10, h, 2 * h)
    w = rand(3, 10, 3, 3, seed=3)
    torch.testing.assert_close(sphere_conv2d(x, w), exact_conv2d(x, w), atol=1e-5, rtol=0)


def test_weights_load_from_conv2d():
    conv = nn.Conv2d(3, 5, 3, padding=1)
    sphere = SphereConv2d(3, 5, 3)
    assert sphere.weight.shape == conv.weight.shape
    sphere.load_state_dict(conv.state_dict())
    assert list(sphere.state_dict()) == list(conv.state_dict())


def test_agrees_with_conv2d_at_the_equator_within_the_bilinear_bound():
    """On the equator row of a 255 x 510 input the taps miss nn.Conv2d's pixels by at most
    delta pixels (computed below from the tap formulas); bilinear sampling then differs from
    the pixel value by at most delta times the largest step between neighbouring pixels, so
    |sphere - conv| <= sum_k |w_k| delta_k max|step|. The gap grows with latitude."""
    h, w = 255, 510
    x = rand(1, 1, h, w, seed=4)
    weight = rand(1, 1, 3, 3, seed=5) - 0.5
    sphere = sphere_conv2d(x, weight)[0, 0]
    # nn.Conv2d with the seam wrapped (rows near the equator never see the poles).
    wrapped = nn.functional.pad(x, (1, 1, 0, 0), mode="circular")
    planar = nn.functional.conv2d(wrapped, weight, padding=(1, 0))[0, 0]
    # Where the taps of the equator pixel land, in pixels, relative to nn.Conv2d's pixels.
    t = math.tan(2 * math.pi / w)
    worst = 0.0
    for a in range(3):
        for b in range(3):
            ray = torch.tensor([(b - 1) * t, -(a - 1) * t, 1.0], dtype=D)
            lon, lat = (ray[0].atan2(ray[2]), ray[1].atan2(ray[[0, 2]].norm()))
            dx = lon / (2 * math.pi) * w - (b - 1)
            dy = -lat / math.pi * h - (a - 1)
            worst += abs(float(weight[0, 0, a, b])) * (abs(float(dx)) + abs(float(dy)))
    step = max((x[..., 1:, :] - x[..., :-1, :]).abs().max(), (x[..., 1:] - x[..., :-1]).abs().max())
    equator = h // 2
    bound = worst * float(step)
    assert bound < 1e-3  # the taps are within a thousandth of a pixel there
    assert (sphere[equator] - planar[equator]).abs().max() <= bound + 1e-12
    gaps = [(sphere[r] - planar[r]).abs().mean().item() for r in (127, 110, 90, 70, 50, 30)]
    assert gaps == sorted(gaps), gaps  # 0, 12, 26, 40, 54, 68 degrees of latitude


def test_rolling_columns_rolls_the_output(conv_path):
    conv = SphereConv2d(10, 3, 3).double()
    assert_yaw_equivariant(conv, rand(1, 10, 16, 32), shifts=(1, 7, 16), atol=1e-12, rtol=0)
    crown = SphereConv2d(2, 3, 3, taps="crown").double()
    assert_yaw_equivariant(crown, rand(1, 2, 16, 32), shifts=(3,), atol=1e-12, rtol=0)


def test_north_south_mirroring_commutes_with_a_mirrored_kernel():
    x = rand(1, 2, 16, 32)
    w = rand(3, 2, 3, 3, seed=6)
    out = sphere_conv2d(x, w)
    mirrored = sphere_conv2d(x.flip(-2), w.flip(-2))
    torch.testing.assert_close(mirrored, out.flip(-2), atol=1e-12, rtol=0)


def _tangent_pattern_erp(h, w, lon0, lat0, pitch):
    """An ERP showing f(u, v) on the plane tangent at (lon0, lat0), u and v in units of pitch."""
    ys, xs = torch.meshgrid(torch.arange(h, dtype=D), torch.arange(w, dtype=D), indexing="ij")
    d = lonlat_to_xyz(pixel_to_lonlat(torch.stack((xs, ys), -1), (h, w)))
    cam = d @ rotation_matrix(lon0, lat0, dtype=D)  # world -> camera: R^T d
    z = cam[..., 2].clamp(min=1e-6)
    u, v = cam[..., 0] / z / pitch, cam[..., 1] / z / pitch
    f = torch.sin(1.3 * u + 0.4) * torch.cos(0.9 * v - 0.2) + 0.3 * torch.sin(0.7 * u * v)
    return torch.where(cam[..., 2] > 0, f, 0.0)[None, None]


def test_same_tangent_pattern_gives_the_same_response_at_lat0_and_lat75():
    h, w = 128, 256
    weight = rand(1, 1, 3, 3, seed=7) - 0.5
    pitch = math.tan(2 * math.pi / w)
    responses = {}
    for name, row in (("equator", 63), ("lat75", 10)):  # rows 63 and 10: lat 0.7 and 75.2 deg
        lon0, lat0 = pixel_to_lonlat(torch.tensor([100.0, float(row)], dtype=D), (h, w)).tolist()
        erp = _tangent_pattern_erp(h, w, lon0, lat0, pitch)
        sphere = sphere_conv2d(erp, weight)[0, 0, row, 100]
        planar = nn.functional.conv2d(erp, weight, padding=1)[0, 0, row, 100]
        responses[name] = (float(sphere), float(planar))
    (s0, p0), (s75, p75) = responses["equator"], responses["lat75"]
    scale = float(weight.abs().sum())
    assert abs(s0 - s75) < 0.02 * scale  # bilinear-interpolation error only
    assert abs(p0 - p75) > 0.1 * scale  # the planar kernel sees a stretched neighbourhood


def test_identity_kernels_return_the_input():
    x = rand(1, 2, 8, 16)
    w = torch.zeros(2, 2, 3, 3, dtype=D)
    w[0, 0, 1, 1] = w[1, 1, 1, 1] = 1
    torch.testing.assert_close(sphere_conv2d(x, w), x, atol=1e-12, rtol=0)
    crown = torch.zeros(2, 2, 9, dtype=D)
    crown[0, 0, 0] = crown[1, 1, 0] = 1
    torch.testing.assert_close(sphere_conv2d(x, crown, taps="crown"), x, atol=1e-12, rtol=0)


@pytest.mark.parametrize("h", [2, 3, 4, 8, 31, 64])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 2])
def test_never_nan_or_inf(h, stride, dilation, conv_path):
    x = torch.rand(1, 2, h, 2 * h)
    for taps, kwargs in (("tangent", {}), ("crown", {"crown_radius": 0.5}), ("crown", {})):
        conv = SphereConv2d(2, 2, 3, stride=stride, dilation=dilation, taps=taps, **kwargs)
        out = conv(x)
        assert out.shape == (1, 2, -(-h // stride), -(-2 * h // stride))
        assert torch.isfinite(out).all()
    big = SphereConv2d(2, 2, 3, taps="crown", crown_rings=3, crown_radius=math.pi * 0.9)
    assert torch.isfinite(big(x)).all()


@pytest.mark.parametrize("taps", ["tangent", "crown"])
@pytest.mark.parametrize("channels", [2, 10])  # block-conv path; compiled or im2col path
def test_gradcheck_input_and_weight(taps, channels, conv_path):
    conv = SphereConv2d(channels, 2, 3, stride=1, taps=taps).double()
    x = rand(1, channels, 4, 8).requires_grad_()

    def fn(inp, weight, bias):
        return sphere_conv2d(inp, weight, bias, taps=taps)

    assert gradcheck(fn, (x, conv.weight, conv.bias), eps=1e-6, atol=1e-5)


def test_module_repr_and_matches_function():
    conv = SphereConv2d(4, 6, 3, stride=2, dilation=2, groups=2, bias=False)
    assert repr(conv) == (
        "SphereConv2d(4, 6, kernel_size=(3, 3), stride=2, taps='tangent', dilation=2, "
        "groups=2, bias=False)"
    )
    x = torch.rand(1, 4, 8, 16)
    expected = sphere_conv2d(x, conv.weight, None, stride=2, dilation=2, groups=2)
    torch.testing.assert_close(conv(x), expected)
    crown = SphereConv2d(2, 2, 5, taps="crown")
    assert crown.weight.shape == (2, 2, 1 + 2 * 8)


def test_errors():
    x = torch.rand(1, 4, 8, 16)
    w = torch.rand(2, 4, 3, 3)
    with pytest.raises(ShapeError, match=r"x must be \(B, C, H, W\)"):
        sphere_conv2d(torch.rand(4, 8, 16), w)
    with pytest.raises(ShapeError, match="even width"):
        sphere_conv2d(torch.rand(1, 4, 8, 15), w)
    with pytest.raises(ShapeError, match=r"weight must be \(C_out, C_in / groups, kh, kw\)"):
        sphere_conv2d(x, torch.rand(2, 3, 3, 3))
    with pytest.raises(ShapeError, match=r"bias must be \(2,\)"):
        sphere_conv2d(x, w, torch.rand(3))
    with pytest.raises(ShapeError, match="crown"):
        sphere_conv2d(x, torch.rand(2, 4, 9), taps="crown", crown=(2, 8, 0.1))
    with pytest.raises(ValueRangeError, match="groups must divide"):
        sphere_conv2d(x, torch.rand(3, 2, 3, 3), groups=2)
    with pytest.raises(ValueRangeError, match="stride must be the same along rows and columns"):
        sphere_conv2d(x, w, stride=(1, 2))
    with pytest.raises(ValueRangeError, match=r"tap_spacing must be in \(0, pi/2\)"):
        sphere_conv2d(x, w, tap_spacing=2.0)
    with pytest.raises(ValueError, match="taps must be one of 'tangent', 'crown'"):
        SphereConv2d(4, 2, taps="hex")
    with pytest.raises(ValueRangeError, match="groups must divide"):
        SphereConv2d(4, 3, groups=2)


def test_strided_layer_is_yaw_equivariant_in_output_columns(conv_path):
    conv = SphereConv2d(10, 3, 3, stride=2).double()
    assert_yaw_equivariant(conv, rand(1, 10, 16, 32), shifts=(1, 5), stride=2, atol=1e-12, rtol=0)


def test_no_seam_in_the_output_while_nn_conv2d_has_one():
    from pano360.testing import assert_seam_continuous

    torch.manual_seed(0)
    sphere = SphereConv2d(3, 4, 3)
    planar = nn.Conv2d(3, 4, 3, padding=1)
    planar.load_state_dict(sphere.state_dict())
    assert_seam_continuous(sphere)
    with pytest.raises(AssertionError, match="seam step"):
        assert_seam_continuous(planar)  # zero padding at the seam makes a visible edge


@pytest.mark.parametrize("c_in", [2, 24])  # the block-conv path and the matrix-product path
@pytest.mark.parametrize("stride", [1, 2])
def test_both_computation_paths_equal_the_oracle(c_in, stride, conv_path):
    x = rand(1, c_in, 8, 16, seed=8)
    w = rand(3, c_in, 3, 3, seed=9) - 0.5
    expected = exact_conv2d(x, w, stride=stride)
    torch.testing.assert_close(sphere_conv2d(x, w, stride=stride), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("stride", [1, 2])
def test_float32_agrees_with_float64(stride, conv_path):
    x = rand(2, 12, 16, 32, seed=11)
    w = rand(5, 12, 3, 3, seed=12) - 0.5
    expected = sphere_conv2d(x, w, stride=stride)
    got = sphere_conv2d(x.float(), w.float(), stride=stride)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("groups", [1, 2])
def test_channels_last_input_gives_the_same_values_and_gradients(dtype, groups, conv_path):
    # The compiled kernel reads channels-last memory and keeps that layout for its output.
    x = rand(2, 8, 8, 16, seed=13).to(dtype)
    w = (rand(6, 8 // groups, 3, 3, seed=14) - 0.5).to(dtype)
    bias = rand(6, seed=15).to(dtype)
    results = []
    for layout in (torch.contiguous_format, torch.channels_last):
        xi = x.contiguous(memory_format=layout).detach().requires_grad_(True)
        wi, bi = w.clone().requires_grad_(True), bias.clone().requires_grad_(True)
        out = sphere_conv2d(xi, wi, bi, groups=groups)
        (out * torch.linspace(-1, 1, out.numel(), dtype=dtype).view_as(out)).sum().backward()
        results.append((out, xi.grad, wi.grad, bi.grad))
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)
    expected = exact_conv2d(x, w, bias, groups=groups).to(dtype)
    torch.testing.assert_close(
        results[1][0], expected, atol=1e-4 * (dtype == torch.float32) + 1e-9, rtol=1e-5
    )


def _values_and_grads(fn, *inputs):
    """fn(*inputs) and the gradients of a fixed weighting of it with respect to every input."""
    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    out = fn(*leaves)
    (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
    return [out, *(t.grad for t in leaves)]


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("multiplier", [1, 2])  # output channels per input channel
def test_depthwise_equals_the_exact_oracle(stride, multiplier, conv_path):
    # groups == channels: the compiled kernel's depthwise path (one plane at a time).
    x = rand(2, 5, 16, 32, seed=20)
    w = rand(5 * multiplier, 1, 3, 3, seed=21) - 0.5
    bias = rand(5 * multiplier, seed=22)
    expected = exact_conv2d(x, w, bias, stride=stride, groups=5)
    got = sphere_conv2d(x, w, bias, stride=stride, groups=5)
    torch.testing.assert_close(got, expected, atol=1e-9, rtol=0)


@pytest.mark.parametrize("taps", ["tangent", "crown"])
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_gradcheck(taps, stride, conv_path):
    conv = SphereConv2d(3, 6, 3, stride=stride, groups=3, taps=taps).double()
    x = rand(1, 3, 4, 8, seed=23).requires_grad_()

    def fn(inp, weight, bias):
        return sphere_conv2d(inp, weight, bias, stride=stride, groups=3, taps=taps)

    assert gradcheck(fn, (x, conv.weight, conv.bias), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("stride", [1, 2])
def test_compiled_depthwise_equals_the_pure_torch_path(layout, stride, monkeypatch):
    from pano360.nn import _sphere_conv
    from pano360.nn._fast import extension_available

    if not extension_available():
        pytest.skip("the compiled SphereConv2d kernel is unavailable here")
    x = rand(2, 4, 12, 24, seed=24).contiguous(memory_format=layout)
    w, bias = rand(4, 1, 17, seed=25) - 0.5, rand(4, seed=26)

    def fn(inp, weight, b):
        return sphere_conv2d(inp, weight, b, stride, groups=4, taps="crown", crown=(2, 8, 0.3))

    results = []
    for enabled in (True, False):
        monkeypatch.setitem(_sphere_conv._COMPILED, "enabled", enabled)
        results.append(_values_and_grads(fn, x, w, bias))
    assert results[0][0].is_contiguous(memory_format=layout)
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("stride", [1, 2])
def test_weights_first_path_in_pieces_equals_the_pure_torch_path(stride, monkeypatch):
    # Fewer output than input channels: the compiled path applies the weights before the taps,
    # a batch cut into pieces when its tap planes would be large (here: every image alone).
    from pano360.nn import _fast, _sphere_conv

    if not _fast.extension_available():
        pytest.skip("the compiled SphereConv2d kernel is unavailable here")
    monkeypatch.setattr(_fast, "_WEIGHTS_FIRST_BYTES", 1)
    x = rand(3, 12, 8, 16, seed=27)
    w, bias = rand(2, 12, 9, seed=28) - 0.5, rand(2, seed=29)

    def fn(inp, weight, b):
        return sphere_conv2d(inp, weight, b, stride, taps="crown", crown=(1, 8, 0.4))

    results = []
    for enabled in (True, False):
        monkeypatch.setitem(_sphere_conv._COMPILED, "enabled", enabled)
        results.append(_values_and_grads(fn, x, w, bias))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("channels", [4, 20])  # block-conv path; compiled or im2col path
def test_planar_output_grid_equals_the_oracle(stride, channels, conv_path):
    x = rand(1, channels, 16, 32, seed=30)
    w = rand(6, channels, 3, 3, seed=31) - 0.5
    expected = exact_conv2d(x, w, stride=stride, output_grid="planar")
    got = sphere_conv2d(x, w, stride=stride, output_grid="planar")
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    if stride == 1:  # the grids differ only for strided layers
        torch.testing.assert_close(got, sphere_conv2d(x, w), atol=0, rtol=0)


def test_planar_depthwise_equals_the_oracle(conv_path):
    x = rand(2, 5, 16, 32, seed=32)
    w = rand(5, 1, 3, 3, seed=33) - 0.5
    expected = exact_conv2d(x, w, stride=2, groups=5, output_grid="planar")
    got = sphere_conv2d(x, w, stride=2, groups=5, output_grid="planar")
    torch.testing.assert_close(got, expected, atol=1e-9, rtol=0)


def test_planar_strided_layer_reads_conv2d_pixels_at_the_equator(conv_path):
    """A stride-2 conv on the planar grid puts output (i, j) on input pixel (2i, 2j) as
    nn.Conv2d(stride=2, padding=1) does, so next to the equator it reads nn.Conv2d's pixels; the
    sphere grid puts it between four pixels and reads every tap half a pixel off (a blur)."""
    h, w = 256, 512
    x = rand(1, 1, h, w, seed=34)
    weight = rand(1, 1, 3, 3, seed=35) - 0.5
    wrapped = nn.functional.pad(x, (1, 1, 0, 0), mode="circular")
    planar = nn.functional.conv2d(wrapped, weight, stride=2, padding=(1, 0))[0, 0]
    row = h // 4  # output row 64 sits on input row 128, 0.35 degrees south of the equator
    on_planar = sphere_conv2d(x, weight, stride=2, output_grid="planar")[0, 0, row]
    on_sphere = sphere_conv2d(x, weight, stride=2)[0, 0, row]
    assert (on_planar - planar[row]).abs().max() < 1e-3
    assert (on_sphere - planar[row]).abs().mean() > 0.05


def test_planar_strided_layer_is_yaw_equivariant_in_output_columns(conv_path):
    conv = SphereConv2d(10, 3, 3, stride=2, output_grid="planar").double()
    assert_yaw_equivariant(conv, rand(1, 10, 16, 32), shifts=(1, 5), stride=2, atol=1e-12, rtol=0)
    assert "output_grid='planar'" in repr(conv)


def test_unknown_output_grid_is_named():
    with pytest.raises(ValueError, match="output_grid must be one of 'sphere', 'planar'"):
        SphereConv2d(3, 4, output_grid="torch")
    with pytest.raises(ValueError, match="output_grid must be one of"):
        sphere_conv2d(rand(1, 3, 8, 16), rand(4, 3, 3, 3), output_grid="centre")


def _spy_on_kernels(monkeypatch):
    """The names of the compiled kernel's functions called from now on, in order (its layout
    conversions left out)."""
    from pano360.nn import _fast

    if not _fast.extension_available():
        pytest.skip("the compiled SphereConv2d kernel is unavailable here")
    ext, calls = _fast._extension(), []

    class Spy:
        def __getattr__(self, name):
            if name != "transpose_maps":  # a layout conversion, not a route
                calls.append(name)
            return getattr(ext, name)

    monkeypatch.setattr(_fast, "_extension", Spy)
    return calls


def _depthwise_channels(route: str) -> int:
    from pano360.nn import _fast

    # From _CHANNELS_LAST_DEPTHWISE channels on, the channels-last kernels. 4 more (or fewer)
    # than a multiple of 16 leaves channels past their last whole vector of float32 and float64.
    least = _fast._CHANNELS_LAST_DEPTHWISE
    return {"few": least - 4, "many": least + 4}[route]


CL = ("depthwise_forward_cl", "depthwise_backward_cl")
PLANE = ("depthwise_forward", "depthwise_backward")


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize(
    ("route", "layout", "multiplier", "inference", "training"),
    [
        ("many", torch.contiguous_format, 1, CL[0], CL),
        ("many", torch.channels_last, 1, CL[0], CL),
        ("few", torch.channels_last, 1, PLANE[0], PLANE),
        ("few", torch.contiguous_format, 1, PLANE[0], PLANE),
        ("many", torch.channels_last, 2, PLANE[0], PLANE),  # the channels-last kernels: m = 1
    ],
)
@pytest.mark.parametrize("hw", [(8, 16), (5, 10)])  # 10 and 5 output columns: a partial block
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_depthwise_routes_equal_the_oracle_and_the_pure_torch_gradients(
    stride, route, layout, multiplier, inference, training, hw, dtype, monkeypatch
):
    """Depthwise SphereConv2d runs the channels-last kernels (forward and backward) from 16
    channels on, in either layout, the plane-by-plane ones otherwise; every route computes the
    oracle's values and the pure-torch path's gradients, and answers in the input's layout."""
    from pano360.nn import _sphere_conv

    calls = _spy_on_kernels(monkeypatch)
    c = _depthwise_channels(route)
    x = rand(2, c, *hw, seed=40).to(dtype).contiguous(memory_format=layout)
    w = (rand(c * multiplier, 1, 3, 3, seed=41) - 0.5).to(dtype)
    bias = rand(c * multiplier, seed=42).to(dtype)

    def fn(inp, weight, b):
        return sphere_conv2d(inp, weight, b, stride=stride, groups=c, output_grid="planar")

    with torch.no_grad():
        fast = fn(x, w, bias)
    assert calls == [inference]
    trained = _values_and_grads(fn, x, w, bias)
    assert calls == [inference, *training]
    assert fast.is_contiguous(memory_format=layout) and fast.dtype == dtype
    assert trained[1].is_contiguous(memory_format=layout)
    double = dtype == torch.float64
    tol = 1e-12 if double else 1e-5
    torch.testing.assert_close(fast, trained[0].detach(), atol=tol, rtol=0)
    expected = exact_conv2d(x.double(), w.double(), bias.double(), stride, groups=c,
                            output_grid="planar")  # fmt: skip
    torch.testing.assert_close(fast.double(), expected, atol=1e-9 if double else 1e-5, rtol=0)
    monkeypatch.setitem(_sphere_conv._COMPILED, "enabled", False)
    reference = _values_and_grads(fn, x, w, bias)
    for a, b in zip(trained[1:], reference[1:], strict=True):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("stride", [1, 2])
def test_channels_last_depthwise_gradcheck(layout, stride, monkeypatch):
    """gradcheck of the channels-last depthwise kernels: 20 channels (float64: two whole vectors
    and 4 channels past them, on two threads' slices), 6 and 3 output columns (partial blocks)."""
    calls = _spy_on_kernels(monkeypatch)
    c = _depthwise_channels("many")
    x = rand(1, c, 3, 6, seed=46).contiguous(memory_format=layout).requires_grad_()
    w = (rand(c, 1, 3, 3, seed=47) - 0.5).requires_grad_()
    bias = rand(c, seed=48).requires_grad_()

    def fn(inp, weight, b):
        return sphere_conv2d(inp, weight, b, stride=stride, groups=c)

    assert gradcheck(fn, (x, w, bias), eps=1e-6, atol=1e-5)
    assert set(calls) == set(CL)  # gradcheck runs the forward pass many times


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("c_in", [2, 3])  # one input channel is depthwise
@pytest.mark.parametrize(
    ("layout", "kernel"),
    [(torch.channels_last, "few_channels_forward_cl"), (torch.contiguous_format, "forward")],
)
@pytest.mark.parametrize("hw", [(8, 16), (5, 10)])  # 10 and 5 output columns: a partial block
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_few_channel_inference_equals_the_oracle_and_the_training_path(
    stride, c_in, layout, kernel, hw, dtype, monkeypatch
):
    """Channels-last inference with few input channels (an RGB stem) runs its own kernel
    (channels-first maps the im2col one); it computes what the im2col kernel (taken when
    gradients are needed) and the oracle compute, and answers in the input's layout. 20 output
    channels leave some past the last whole vector of float32 and float64 alike."""
    calls = _spy_on_kernels(monkeypatch)
    x = rand(2, c_in, *hw, seed=43).contiguous(memory_format=layout)
    w, bias = rand(20, c_in, 3, 3, seed=44) - 0.5, rand(20, seed=45)
    x32, w32, bias32 = (t.to(dtype) for t in (x, w, bias))
    with torch.no_grad():
        fast = sphere_conv2d(x32, w32, bias32, stride=stride, output_grid="planar")
    training = sphere_conv2d(
        x32, w32.clone().requires_grad_(), bias32, stride=stride, output_grid="planar"
    )
    assert calls == [kernel, "forward"]
    assert fast.is_contiguous(memory_format=layout) and fast.dtype == dtype
    double = dtype == torch.float64
    torch.testing.assert_close(fast, training.detach(), atol=1e-12 if double else 1e-5, rtol=0)
    expected = exact_conv2d(x, w, bias, stride=stride, output_grid="planar")
    torch.testing.assert_close(fast.double(), expected, atol=1e-9 if double else 1e-5, rtol=0)
