"""exact_outputs against a per-location loop oracle, SphereConv2d, RowUntiedConv2d and a planar
network at the equator; receptive fields; yaw equivariance; the documented errors."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from pano360.errors import ShapeError, ValueRangeError
from pano360.nn import RowUntiedConv2d, SphereConv2d
from pano360.testing import assert_yaw_equivariant, exact_conv2d, smooth_erp
from pano360.transfer import exact_outputs, receptive_field

D = torch.float64


# Many tiny ops: on a shared 2-core machine one thread is faster and steadier than two.
pytestmark = pytest.mark.usefixtures("one_thread")


def rand(*shape, seed=0, dtype=D):
    return torch.rand(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def mixed_stack(seed=0):
    """Convs (odd, even, strided), PReLU, max and average pools: total stride 4, field 16."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3),
        nn.PReLU(3, init=0.1),
        nn.MaxPool2d(2),
        nn.Conv2d(3, 4, 2),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(4, 2, 3),
    ).double()


def pnet_like(seed=0, channels=(3, 4, 4, 2)):
    """MTCNN P-Net's shape: valid 3x3 convs, PReLU, 2x2 max pool in ceil mode (field 12)."""
    torch.manual_seed(seed)
    a, b, c, d = channels
    return nn.Sequential(
        nn.Conv2d(a, b, 3),
        nn.PReLU(b),
        nn.MaxPool2d(2, 2, ceil_mode=True),
        nn.Conv2d(b, c, 3),
        nn.PReLU(c),
        nn.Conv2d(c, d, 3),
    ).double()


# --- the per-location oracle --------------------------------------------------------------------


def bilinear_on_sphere(img, x, y):
    """img (B, C, H, W) at pixel (x, y): four corners, each folded over a pole explicitly."""
    h, w = img.shape[-2:]
    x0, y0 = math.floor(x), math.floor(y)
    out = 0.0
    for r, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for c, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            rr, cc = r, c
            while not 0 <= rr < h:  # past a pole: the mirrored row, on the opposite meridian
                rr = -1 - rr if rr < 0 else 2 * h - 1 - rr
                cc += w // 2
            out = out + wy * wx * img[:, :, rr, cc % w]
    return out


def naive_exact(stack, erp, layer, tap_spacing=None):
    """For every output pixel: its own tangent patch, pixel by pixel, and the stack on it."""
    img = erp.numpy()
    b, c, h, w = img.shape
    size, stride = receptive_field(stack, layer)
    ho, wo = h // stride, w // stride
    t = math.tan(2 * math.pi / w if tap_spacing is None else tap_spacing)
    rows = []
    for i in range(ho):
        lat0 = math.pi / 2 - math.pi * (i + 0.5) / ho
        cols = []
        for j in range(wo):
            lon0 = -math.pi + 2 * math.pi * (j + 0.5) / wo
            right = np.array([math.cos(lon0), 0.0, -math.sin(lon0)])
            up = np.array(
                [-math.sin(lat0) * math.sin(lon0), math.cos(lat0), -math.sin(lat0) * math.cos(lon0)]
            )
            fwd = np.array(
                [math.cos(lat0) * math.sin(lon0), math.sin(lat0), math.cos(lat0) * math.cos(lon0)]
            )
            patch = np.zeros((b, c, size, size))
            for a in range(size):
                for bb in range(size):
                    d = (bb - (size - 1) / 2) * t * right - (a - (size - 1) / 2) * t * up + fwd
                    rho = math.hypot(d[0], d[2])
                    lon = lon0 if rho <= 1e-12 * abs(d[1]) else math.atan2(d[0], d[2])
                    lat = math.atan2(d[1], rho)
                    x = (lon / (2 * math.pi) + 0.5) * w - 0.5
                    y = (-lat / math.pi + 0.5) * h - 0.5
                    patch[:, :, a, bb] = bilinear_on_sphere(img, x, y)
            out = torch.from_numpy(patch)
            for module in stack[: layer + 1]:  # the test stacks have no padding
                out = module(out)
            assert out.shape[-2:] == (1, 1)
            cols.append(out[:, :, 0, 0])
        rows.append(torch.stack(cols, dim=-1))
    return torch.stack(rows, dim=-2)


# --- conventions --------------------------------------------------------------------------------


@pytest.mark.parametrize("k, s", [(3, 1), (3, 2), (2, 1), (4, 2), (1, 2)])
def test_convention_one_conv_is_sphere_conv_row_untied_and_the_exact_oracle(k, s):
    torch.manual_seed(k + s)
    conv = nn.Conv2d(3, 4, k, stride=s).double()
    erp = rand(2, 3, 16, 32)
    (got,) = exact_outputs(nn.Sequential(conv), erp)
    assert got.shape == (2, 4, 16 // s, 32 // s)
    torch.testing.assert_close(
        got, exact_conv2d(erp, conv.weight, conv.bias, stride=s), atol=1e-12, rtol=0
    )
    sphere = SphereConv2d(3, 4, k, stride=s).double()
    sphere.load_state_dict(conv.state_dict())
    torch.testing.assert_close(got, sphere(erp), atol=1e-5, rtol=0)
    untied = RowUntiedConv2d.from_conv(conv, (16, 32), row_group_size=1)
    torch.testing.assert_close(got, untied(erp), atol=1e-5, rtol=0)


def test_convention_row_shared_sampling_equals_the_per_location_loop_on_every_layer():
    stack = mixed_stack()
    erp = rand(1, 2, 8, 16, seed=3)
    got = exact_outputs(stack, erp)  # every layer
    assert [g.shape[-2:] for g in got] == [(8, 16)] * 2 + [(4, 8)] * 3 + [(2, 4)] * 2
    for layer, value in enumerate(got):
        torch.testing.assert_close(value, naive_exact(stack, erp, layer), atol=1e-12, rtol=0)


def test_convention_a_tap_on_the_pole_reads_the_output_pixels_meridian():
    # tap_spacing = pi / 16 on 8 rows puts the tap above the centre of row 0 exactly on the pole.
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3).double()
    erp = rand(1, 2, 8, 16, seed=4)
    (got,) = exact_outputs(nn.Sequential(conv), erp, tap_spacing=math.pi / 16)
    expected = naive_exact(nn.Sequential(conv), erp, 0, tap_spacing=math.pi / 16)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)
    oracle = exact_conv2d(erp, conv.weight, conv.bias, tap_spacing=math.pi / 16)
    torch.testing.assert_close(got, oracle, atol=1e-12, rtol=0)


def test_convention_equals_the_planar_network_at_the_equator_on_its_grid():
    # P-Net's shape: field 12, stride 2. Output (i, j) sits on the ERP grid of (H/2, W/2),
    # input pixel (2i + 0.5, 2j + 0.5); the planar valid network puts its output (i', j') at
    # (2i' + 5.5, 2j' + 5.5) of its input, so it is aligned on the ERP cropped by one row and
    # wrapped five columns to the left.
    stack = pnet_like()
    erp = smooth_erp((64, 128), degree=10, seed=2, dtype=D)
    (got,) = exact_outputs(stack, erp, [5], rows=[15, 16])  # the two rows at the equator
    wrapped = torch.cat((erp[..., -5:], erp, erp[..., :7]), dim=-1)[:, :, 1:]
    planar = stack(wrapped)  # row i' is output row i' + 3
    assert planar.shape[-1] == 64 + 1
    aligned = (got - planar[:, :, 12:14, :64]).abs().max()
    off_by_a_column = (got - planar[:, :, 12:14, 1:65]).abs().max()
    off_by_a_row = (got - planar[:, :, 13:15, :64]).abs().max()
    scale = got.abs().max()
    # Tangent-plane and ERP pixels differ by a few hundredths of a pixel there (a shift by half
    # an input pixel would give about 0.009 * scale with this image).
    assert aligned < 0.003 * scale
    assert aligned < 0.1 * min(off_by_a_column, off_by_a_row)


def test_convention_yaw_equivariant_by_whole_output_columns():
    stack = mixed_stack(seed=1)
    erp = rand(1, 2, 8, 16, seed=5)
    for layer, stride in ((0, 1), (3, 2), (6, 4)):
        assert_yaw_equivariant(
            lambda x, layer=layer: exact_outputs(stack, x, [layer])[0],
            erp,
            shifts=(1, 3),
            stride=stride,
            atol=1e-12,
            rtol=0,
        )


def test_padding_of_the_stack_is_ignored_on_the_sphere():
    valid = pnet_like(seed=3)
    padded = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular"),
        nn.PReLU(4),
        nn.MaxPool2d(2, 2, padding=1),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.PReLU(4),
        nn.Conv2d(4, 2, 3, padding=1),
    ).double()
    padded.load_state_dict(valid.state_dict())
    erp = rand(1, 3, 16, 32, seed=6)
    for a, b in zip(exact_outputs(valid, erp), exact_outputs(padded, erp), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


# --- rows, chunks, dtypes, devices --------------------------------------------------------------


def test_rows_chunks_and_layer_order_do_not_change_the_values():
    stack = mixed_stack(seed=2)
    erp = rand(2, 2, 16, 32, seed=7)
    full = exact_outputs(stack, erp, [6, 2])
    assert [f.shape for f in full] == [(2, 2, 4, 8), (2, 3, 8, 16)]
    rows = [3, 0, 2]
    for chunk in (1, 5, 1000):
        part = exact_outputs(stack, erp, [-1, 2], rows=rows, chunk=chunk)
        torch.testing.assert_close(part[0], full[0][:, :, rows], atol=1e-12, rtol=0)
        torch.testing.assert_close(part[1], full[1][:, :, rows], atol=1e-12, rtol=0)


def test_pointwise_layers_before_any_spatial_layer_act_on_the_image():
    torch.manual_seed(0)
    scale = nn.Conv2d(2, 2, 1).double()
    stack = nn.Sequential(scale, nn.Tanh(), nn.Conv2d(2, 3, 3).double())
    erp = rand(1, 2, 8, 16, seed=8)
    got = exact_outputs(stack, erp, rows=[1, 6])
    torch.testing.assert_close(got[1], torch.tanh(scale(erp))[:, :, [1, 6]], atol=1e-12, rtol=0)
    torch.testing.assert_close(got[2], naive_exact(stack, erp, 2)[:, :, [1, 6]], atol=1e-12, rtol=0)


def test_float32_agrees_with_float64_and_the_stack_is_left_as_it_was():
    stack = pnet_like(seed=4).float().train()
    before = {k: v.clone() for k, v in stack.state_dict().items()}
    erp = rand(1, 3, 16, 32, seed=9)
    (single,) = exact_outputs(stack, erp.float(), [5])
    (double,) = exact_outputs(stack, erp, [5])  # float64 input, float32 stack: a copy is used
    assert single.dtype == torch.float32 and double.dtype == torch.float64
    torch.testing.assert_close(single.double(), double, atol=1e-5, rtol=1e-5)
    assert stack.training and all(m.training for m in stack)
    assert all(torch.equal(v, stack.state_dict()[k]) for k, v in before.items())


def test_dropout_and_batchnorm_run_in_eval_mode():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3).double()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    stack = nn.Sequential(nn.Conv2d(2, 3, 3), bn, nn.Dropout(0.9)).double().train()
    erp = rand(1, 2, 8, 16, seed=10)
    got = exact_outputs(stack, erp)
    torch.testing.assert_close(got[2], bn.eval()(got[0]), atol=1e-12, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    stack = mixed_stack(seed=5)
    erp = rand(1, 2, 8, 16, seed=11)
    cpu = exact_outputs(stack, erp)
    gpu = exact_outputs(stack.cuda(), erp.cuda())
    for a, b in zip(cpu, gpu, strict=True):
        torch.testing.assert_close(b.cpu(), a, atol=1e-10, rtol=0)


# --- receptive fields ---------------------------------------------------------------------------


def test_receptive_field_of_every_prefix():
    stack = mixed_stack()
    got = [receptive_field(stack, i) for i in range(len(stack))]
    assert got == [(3, 1), (3, 1), (4, 2), (6, 2), (6, 2), (8, 4), (16, 4)]
    assert receptive_field(pnet_like()) == (12, 2)
    dilated = nn.Sequential(nn.Conv2d(1, 1, 3, dilation=2), nn.MaxPool2d(3, 2, dilation=2))
    assert receptive_field(dilated) == (9, 2)


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stack, error, match",
    [
        (nn.Conv2d(3, 3, 3), TypeError, "must be an nn.Sequential"),
        (nn.Sequential(), ValueRangeError, "at least one layer"),
        (nn.Sequential(nn.Conv2d(3, 3, 3), nn.Flatten()), TypeError, r"layer 1 .*Flatten"),
        (nn.Sequential(nn.Conv2d(3, 3, (1, 3))), ValueRangeError, "kernel_size must be the same"),
        (nn.Sequential(nn.Conv2d(3, 3, 3, stride=(1, 2))), ValueRangeError, "stride must be"),
        (nn.Sequential(nn.MaxPool2d(2, 3)), ValueRangeError, "must not exceed the window"),
        (nn.Sequential(nn.AvgPool2d(2, divisor_override=3)), ValueRangeError, "divisor_override"),
        (
            nn.Sequential(nn.BatchNorm2d(3, track_running_stats=False)),
            ValueRangeError,
            "running statistics",
        ),
    ],
)
def test_unsupported_stacks_raise(stack, error, match):
    with pytest.raises(error, match=match):
        receptive_field(stack)
    with pytest.raises(error, match=match):
        exact_outputs(stack, torch.rand(1, 3, 8, 16))


@pytest.mark.parametrize(
    "erp, kwargs, error, match",
    [
        (torch.rand(1, 3, 8, 12), {}, ShapeError, r"W == 2H"),
        (torch.rand(3, 8, 16), {}, ShapeError, r"\(B, C, H, W\)"),
        (torch.rand(1, 2, 8, 16), {}, ShapeError, "must have 3 channels"),
        (torch.rand(1, 3, 6, 12), {}, ShapeError, "multiple of the total stride 4"),
        (torch.ones(1, 3, 8, 16, dtype=torch.int64), {}, TypeError, "floating-point"),
        ([[0.0]], {}, TypeError, "torch.Tensor"),
        (torch.rand(1, 3, 8, 16), {"layers": 7}, ValueRangeError, r"layers must be indices"),
        (torch.rand(1, 3, 8, 16), {"layers": []}, ValueRangeError, "at least one layer"),
        (torch.rand(1, 3, 8, 16), {"rows": [2]}, ValueRangeError, r"rows must be .*layer 6: 2"),
        (torch.rand(1, 3, 8, 16), {"rows": [-1]}, ValueRangeError, "rows must be"),
        (torch.rand(1, 3, 8, 16), {"chunk": 0}, ValueRangeError, "chunk must be"),
        (torch.rand(1, 3, 8, 16), {"tap_spacing": 2.0}, ValueRangeError, "tap_spacing"),
    ],
)
def test_bad_inputs_raise(erp, kwargs, error, match):
    stack = mixed_stack().float()
    stack[0] = nn.Conv2d(3, 3, 3)
    with pytest.raises(error, match=match):
        exact_outputs(stack, erp, **kwargs)


def test_receptive_field_rejects_a_layer_out_of_range():
    with pytest.raises(ValueRangeError, match="layers must be indices"):
        receptive_field(mixed_stack(), 7)
