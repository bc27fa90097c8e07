"""RowUntiedConv2d against SphereConv2d and the exact oracle, its parameter budget, symmetry,
gradients, training and the documented errors."""

import math

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck
from torch.func import functional_call

from pano360.errors import ShapeError, ValueRangeError
from pano360.nn import DEFAULT_MAX_PARAM_RATIO, RowUntiedConv2d, SphereConv2d
from pano360.testing import assert_yaw_equivariant, exact_conv2d

D = torch.float64


def rand(*shape, seed=0):
    return torch.rand(*shape, dtype=D, generator=torch.Generator().manual_seed(seed))


def make_conv(c_in, c_out, stride=1, dilation=1, groups=1, seed=1):
    torch.manual_seed(seed)
    return nn.Conv2d(c_in, c_out, 3, stride=stride, dilation=dilation, groups=groups).double()


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_smoke():
    conv = RowUntiedConv2d(3, 8, (16, 32))
    out = conv(torch.rand(2, 3, 16, 32))
    assert out.shape == (2, 8, 16, 32)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("h", [16, 32])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("groups", [1, 2])
def test_from_conv_equals_sphere_conv_and_exact_oracle_on_every_row(h, stride, dilation, groups):
    conv = make_conv(4, 6, stride, dilation, groups)
    layer = RowUntiedConv2d.from_conv(conv, (h, 2 * h))  # one kernel per output row
    assert layer.row_group_size == 1 and layer.num_row_groups == -(-h // stride)
    sphere = SphereConv2d(4, 6, 3, stride=stride, dilation=dilation, groups=groups).double()
    sphere.load_state_dict(conv.state_dict())
    x = rand(2, 4, h, 2 * h)
    got = layer(x)
    assert got.shape == (2, 6, -(-h // stride), 2 * h // stride)
    torch.testing.assert_close(got, sphere(x), atol=1e-5, rtol=0)
    expected = exact_conv2d(x, conv.weight, conv.bias, stride, dilation, groups=groups)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("stride", [2, 4])
def test_planar_output_grid_equals_sphere_conv_and_the_oracle(stride):
    conv = make_conv(4, 6, stride)
    sphere = SphereConv2d(4, 6, 3, stride=stride, output_grid="planar").double()
    sphere.load_state_dict(conv.state_dict())
    layer = RowUntiedConv2d.from_conv(sphere, (16, 32))  # the grid comes from the layer
    assert layer.output_grid == "planar" and "output_grid='planar'" in repr(layer)
    x = rand(2, 4, 16, 32)
    torch.testing.assert_close(layer(x), sphere(x), atol=1e-5, rtol=0)
    expected = exact_conv2d(x, conv.weight, conv.bias, stride, output_grid="planar")
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=0)
    rows = torch.tensor([0, 3])
    torch.testing.assert_close(
        layer.forward_rows(x, rows), layer(x)[:, :, rows], atol=1e-12, rtol=0
    )
    with pytest.raises(ValueError, match="output_grid must be one of"):
        RowUntiedConv2d(4, 6, (16, 32), output_grid="centre")


@pytest.mark.parametrize("stride", [1, 2])
def test_channels_last_input_gives_the_same_output_in_channels_last(stride):
    layer = RowUntiedConv2d.from_conv(make_conv(4, 6, stride), (16, 32)).double()
    x = rand(2, 4, 16, 32)
    got = layer(x.contiguous(memory_format=torch.channels_last))
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, layer(x), atol=1e-12, rtol=0)


@pytest.mark.parametrize("h", [2, 3, 5, 31])
@pytest.mark.parametrize("stride", [1, 2])
def test_from_conv_equals_sphere_conv_on_tiny_and_odd_maps(h, stride):
    conv = make_conv(2, 3, stride)
    sphere = SphereConv2d(2, 3, 3, stride=stride).double()
    sphere.load_state_dict(conv.state_dict())
    x = rand(1, 2, h, 2 * h, seed=2)
    layer = RowUntiedConv2d.from_conv(conv, (h, 2 * h))
    torch.testing.assert_close(layer(x), sphere(x), atol=1e-5, rtol=0)


def test_convention_a_tap_exactly_on_the_pole_is_read_on_the_output_meridian():
    """Stride 2, dilation 1: the top tap of output row 0 lands exactly on the north pole
    (tap_spacing = the angle from the output centre to the pole). Bilinear sampling at the pole
    on the output's meridian reads the 2 x 2 input pixels around the output's column and those
    opposite it, a quarter each: the limit of taps arriving there, and yaw-equivariant."""
    h, w = 8, 16
    weight = torch.zeros(1, 1, 3, 3, dtype=D)
    weight[0, 0, 0, 1] = 1  # the top-centre tap only
    conv = nn.Conv2d(1, 1, 3, stride=2, bias=False).double()
    conv.weight.data.copy_(weight)
    x = rand(1, 1, h, w, seed=3)
    out = RowUntiedConv2d.from_conv(conv, (h, w))(x)[0, 0, 0]
    cols = torch.arange(w // 2) * 2
    row0 = x[0, 0, 0]
    expected = (
        row0[cols] + row0[cols + 1] + row0[(cols + w // 2) % w] + row0[(cols + 1 + w // 2) % w]
    ) / 4
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("row_group_size", [2, 3, 4, 16])
def test_groups_start_from_their_middle_row(row_group_size):
    h = 16
    conv = make_conv(2, 3)
    layer = RowUntiedConv2d.from_conv(conv, (h, 2 * h), row_group_size=row_group_size)
    sphere = SphereConv2d(2, 3, 3).double()
    sphere.load_state_dict(conv.state_dict())
    x = rand(1, 2, h, 2 * h, seed=4)
    got, expected = layer(x), sphere(x)
    middles = list(layer.middle_rows)
    torch.testing.assert_close(got[:, :, middles], expected[:, :, middles], atol=1e-12, rtol=0)
    # The middle row of an even group is the central row nearer the equator.
    assert layer.middle_rows[0] == (row_group_size // 2 if row_group_size < h else h // 2 - 1)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("row_group_size", [1, 2, 3, 5, 8])
def test_shapes_for_several_group_sizes(stride, row_group_size):
    h = 16
    ho = h // stride
    layer = RowUntiedConv2d(4, 6, (h, 2 * h), stride=stride, row_group_size=row_group_size)
    assert layer.num_row_groups == len(layer.weights) == -(-ho // row_group_size)
    starts = [start for start, _ in layer.row_groups]
    assert starts == list(range(0, ho, row_group_size)) and layer.row_groups[-1][1] == ho
    for kernel in layer.weights:
        assert kernel.shape[:2] == (6, 4)
        assert kernel.shape[2] >= 3 and kernel.shape[3] >= 3
    widths = [kernel.shape[3] for kernel in layer.weights]
    if row_group_size == 1:  # kernels are wider towards the poles, mirrored about the equator
        half = widths[: (ho + 1) // 2]
        assert half == sorted(half, reverse=True) and widths == widths[::-1]
        assert widths[0] > widths[ho // 2]
    assert layer(torch.rand(2, 4, h, 2 * h)).shape == (2, 6, ho, 2 * h // stride)
    assert set(layer.state_dict()) == {f"weights.{g}" for g in range(len(widths))} | {"bias"}


@pytest.mark.parametrize("hw", [(64, 128), (128, 256)])
def test_default_group_size_keeps_parameters_within_64x_conv2d(hw):
    layer = RowUntiedConv2d(16, 16, hw)
    ratio = n_params(layer) / n_params(nn.Conv2d(16, 16, 3))
    print(f"{hw}: row_group_size={layer.row_group_size}, {ratio:.1f}x nn.Conv2d parameters")
    assert ratio <= DEFAULT_MAX_PARAM_RATIO
    assert ratio == pytest.approx(layer.param_ratio)
    # The smallest such size: one row fewer per group is over budget.
    smaller = RowUntiedConv2d(16, 16, hw, row_group_size=layer.row_group_size - 1)
    assert smaller.param_ratio > DEFAULT_MAX_PARAM_RATIO


def test_rolling_columns_rolls_the_output():
    layer = RowUntiedConv2d(2, 3, (16, 32), row_group_size=3).double()
    assert_yaw_equivariant(layer, rand(1, 2, 16, 32), shifts=(1, 7, 16), atol=1e-12, rtol=0)
    strided = RowUntiedConv2d(2, 3, (16, 32), stride=2).double()
    x = rand(1, 2, 16, 32, seed=5)
    torch.testing.assert_close(
        strided(torch.roll(x, 6, -1)), torch.roll(strided(x), 3, -1), atol=1e-12, rtol=0
    )


def test_north_south_mirroring_commutes_with_a_mirrored_kernel():
    conv = make_conv(2, 3)
    mirrored_conv = make_conv(2, 3)
    mirrored_conv.weight.data = conv.weight.data.flip(-2)
    layer = RowUntiedConv2d.from_conv(conv, (16, 32), row_group_size=4)
    mirrored = RowUntiedConv2d.from_conv(mirrored_conv, (16, 32), row_group_size=4)
    x = rand(1, 2, 16, 32, seed=6)
    torch.testing.assert_close(mirrored(x.flip(-2)), layer(x).flip(-2), atol=1e-12, rtol=0)


@pytest.mark.parametrize("h", [2, 3, 4, 8, 31])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("dilation", [1, 2])
def test_never_nan_or_inf(h, stride, dilation):
    x = torch.rand(1, 2, h, 2 * h)
    layer = RowUntiedConv2d(2, 2, (h, 2 * h), stride=stride, dilation=dilation)
    out = layer(x)
    assert out.shape == (1, 2, -(-h // stride), 2 * h // stride)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


@pytest.mark.parametrize("stride", [1, 2])
def test_gradcheck_input_and_kernels(stride):
    layer = RowUntiedConv2d(2, 2, (4, 8), stride=stride, row_group_size=1).double()
    names = [name for name, _ in layer.named_parameters()]
    x = rand(1, 2, 4, 8).requires_grad_()

    def fn(inp, *params):
        return functional_call(layer, dict(zip(names, params, strict=True)), (inp,))

    params = tuple(p.detach().clone().requires_grad_() for p in layer.parameters())
    assert gradcheck(fn, (x, *params), eps=1e-6, atol=1e-5)


# --- forward_rows: chosen output rows only -----------------------------------------------------


def randomised(layer, seed=0):
    """Every kernel entry made to count (the projected kernels have zeros in their boxes)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for w in layer.weights:
            w.add_(torch.rand(w.shape, generator=g, dtype=w.dtype))
    return layer


@pytest.mark.parametrize("h", [3, 8])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("row_group_size", [1, 2, None])
def test_forward_rows_equals_forward_at_those_rows_reading_only_input_rows(
    h, stride, groups, row_group_size
):
    conv = make_conv(4, 6, stride, dilation=2 if h > 4 else 1, groups=groups)
    layer = randomised(RowUntiedConv2d.from_conv(conv, (h, 2 * h), row_group_size))
    ho = layer.out_hw[0]
    rows = torch.tensor([ho - 1, 0, ho // 2, 0])  # both poles, unsorted, a repeat
    x = rand(2, 4, h, 2 * h).requires_grad_()
    full = layer(x)[:, :, rows]
    # Every column, the seam's included (columns 0 and Wo - 1 read across it).
    torch.testing.assert_close(layer.forward_rows(x, rows), full, atol=1e-12, rtol=0)
    # input_rows names exactly the rows the full layer's outputs there depend on.
    (grad,) = torch.autograd.grad(full.sum(), x)
    depends = grad.abs().sum(dim=(0, 1, 3)).nonzero().flatten()
    needed = layer.input_rows(rows)
    assert needed.tolist() == depends.tolist()
    # ... and forward_rows reads no other row (NaN anywhere it read would show).
    sparse = torch.full_like(x.detach(), math.nan)
    sparse[:, :, needed] = x.detach()[:, :, needed]
    torch.testing.assert_close(layer.forward_rows(sparse, rows), full, atol=1e-12, rtol=0)


def test_forward_rows_of_every_row_is_forward_and_rows_may_be_a_list():
    layer = randomised(RowUntiedConv2d.from_conv(make_conv(2, 3, stride=2), (8, 16), 3))
    x = rand(1, 2, 8, 16)
    every = torch.arange(layer.out_hw[0])
    torch.testing.assert_close(layer.forward_rows(x, every), layer(x), atol=1e-12, rtol=0)
    torch.testing.assert_close(
        layer.forward_rows(x, [3, 1]), layer(x)[:, :, [3, 1]], atol=1e-12, rtol=0
    )
    assert layer.forward_rows(x, []).shape == (1, 3, 0, 8)
    assert layer.input_rows([]).tolist() == []


def test_forward_rows_is_yaw_equivariant():
    layer = randomised(RowUntiedConv2d.from_conv(make_conv(2, 3, stride=2), (8, 16), 1))
    x, rows = rand(1, 2, 8, 16), torch.tensor([0, 3])
    rolled = layer.forward_rows(x.roll(6, dims=-1), rows)  # 6 input columns = 3 output columns
    torch.testing.assert_close(rolled, layer.forward_rows(x, rows).roll(3, dims=-1), atol=1e-12,
                               rtol=0)  # fmt: skip


class RowsOf(nn.Module):
    """``forward_rows`` at fixed rows as a module, so that functional_call can swap parameters."""

    def __init__(self, layer, rows):
        super().__init__()
        self.layer, self.rows = layer, rows

    def forward(self, x):
        return self.layer.forward_rows(x, self.rows)


@pytest.mark.parametrize("stride, row_group_size", [(1, 2), (2, 1)])
def test_forward_rows_gradcheck_float64(stride, row_group_size):
    layer = RowUntiedConv2d.from_conv(make_conv(2, 2, stride), (4, 8), row_group_size)
    module = RowsOf(layer, torch.tensor([layer.out_hw[0] - 1, 0]))
    names = [name for name, _ in module.named_parameters()]

    def fn(x, *params):
        return functional_call(module, dict(zip(names, params, strict=True)), (x,))

    x = rand(1, 2, 4, 8).requires_grad_()
    params = tuple(p.detach().clone().requires_grad_() for p in module.parameters())
    assert gradcheck(fn, (x, *params), eps=1e-6, atol=1e-5)


def test_forward_rows_errors():
    layer = RowUntiedConv2d(4, 2, (8, 16), stride=2)
    x = torch.rand(1, 4, 8, 16)
    with pytest.raises(ShapeError, match=r"x must be \(B, 4, 8, 16\)"):
        layer.forward_rows(torch.rand(1, 3, 8, 16), [0])
    for method, args in ((layer.forward_rows, (x,)), (layer.input_rows, ())):
        with pytest.raises(
            ValueRangeError, match=r"rows must be output rows in \[0, 4\), got \[4, -1\]"
        ):
            method(*args, torch.tensor([0, 4, -1]))
        with pytest.raises(ValueRangeError, match=r"rows must be a 1-D tensor .* of integer"):
            method(*args, torch.tensor([[0, 1]]))
        with pytest.raises(ValueRangeError, match=r"integer output rows, got torch\.float32"):
            method(*args, [0.5])
        with pytest.raises(ValueRangeError, match=r"integer output rows, got torch\.bool"):
            method(*args, torch.tensor([True]))


def test_one_optimizer_step_reduces_the_loss():
    torch.manual_seed(0)
    layer = RowUntiedConv2d(2, 3, (8, 16), row_group_size=2)
    target_layer = SphereConv2d(2, 3, 3)
    x = torch.rand(4, 2, 8, 16)
    with torch.no_grad():
        target = target_layer(x)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.05)
    losses = []
    for _ in range(2):
        loss = nn.functional.mse_loss(layer(x), target)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert losses[1] < losses[0]


def test_float32_matches_sphere_conv():
    torch.manual_seed(0)
    sphere = SphereConv2d(3, 4, 3)
    layer = RowUntiedConv2d.from_conv(sphere, (16, 32))
    assert layer.weights[0].dtype == torch.float32 and layer.bias.dtype == torch.float32
    x = torch.rand(1, 3, 16, 32)
    torch.testing.assert_close(layer(x), sphere(x), atol=1e-5, rtol=1e-5)


def test_constructor_starts_as_a_projected_perspective_kernel():
    """At construction the layer is a spherical conv of some perspective kernel: a constant
    input gives a constant output on every row (each row's kernel sums to the same total)."""
    layer = RowUntiedConv2d(2, 3, (16, 32), row_group_size=1).double()
    out = layer(torch.ones(1, 2, 16, 32, dtype=D))
    # (up to float32 rounding: the kernel was drawn before .double())
    torch.testing.assert_close(out, out[:, :, :1, :1].expand_as(out), atol=1e-6, rtol=0)
    bound = 1 / math.sqrt(2 * 9)  # nn.Conv2d's bias bound for fan_in 2 x 3 x 3
    assert layer.bias.abs().max() <= bound


def test_repr():
    layer = RowUntiedConv2d(4, 6, (16, 32), stride=2, dilation=2, groups=2, bias=False)
    assert repr(layer).startswith(
        "RowUntiedConv2d(4, 6, erp_hw=(16, 32), kernel_size=(3, 3), stride=2, dilation=2, "
        f"groups=2, bias=False, row_group_size={layer.row_group_size}, "
        f"row_groups={layer.num_row_groups}, largest_kernel=("
    )
    assert repr(layer).endswith(f"params={layer.param_ratio:.1f}x Conv2d)")
    assert repr(RowUntiedConv2d(3, 8, (16, 32), row_group_size=4)) == (
        "RowUntiedConv2d(3, 8, erp_hw=(16, 32), kernel_size=(3, 3), stride=1, row_group_size=4, "
        "row_groups=4, largest_kernel=(4, 9), params=12.0x Conv2d)"
    )


def test_errors():
    layer = RowUntiedConv2d(4, 2, (8, 16))
    with pytest.raises(ShapeError, match=r"erp_hw=\(8, 16\), got \(1, 4, 16, 32\)"):
        layer(torch.rand(1, 4, 16, 32))
    with pytest.raises(ShapeError, match=r"in_channels=4 .* got \(1, 3, 8, 16\)"):
        layer(torch.rand(1, 3, 8, 16))
    with pytest.raises(ShapeError, match=r"x must be \(B, 4, 8, 16\)"):
        layer(torch.rand(4, 8, 16))
    with pytest.raises(ShapeError, match="erp_hw must satisfy W == 2H"):
        RowUntiedConv2d(4, 2, (8, 10))
    with pytest.raises(ShapeError, match="erp_hw must be a pair"):
        RowUntiedConv2d(4, 2, 8)
    with pytest.raises(ValueRangeError, match="row_group_size must be at most"):
        RowUntiedConv2d(4, 2, (8, 16), row_group_size=9)
    with pytest.raises(ValueRangeError, match="row_group_size must be a positive integer"):
        RowUntiedConv2d(4, 2, (8, 16), row_group_size=0)
    with pytest.raises(ValueRangeError, match="stride must divide the ERP width"):
        RowUntiedConv2d(4, 2, (3, 6), stride=4)
    with pytest.raises(ValueRangeError, match="stride must be the same along rows and columns"):
        RowUntiedConv2d(4, 2, (8, 16), stride=(1, 2))
    with pytest.raises(ValueRangeError, match=r"tap_spacing must be in \(0, pi/2\)"):
        RowUntiedConv2d(4, 2, (8, 16), tap_spacing=2.0)
    with pytest.raises(ValueRangeError, match="groups must divide"):
        RowUntiedConv2d(4, 3, (8, 16), groups=2)
    with pytest.raises(ValueRangeError, match="in_channels must be a positive integer"):
        RowUntiedConv2d(0, 3, (8, 16))
    with pytest.raises(TypeError, match=r"conv must be an nn\.Conv2d or a SphereConv2d"):
        RowUntiedConv2d.from_conv(nn.Linear(2, 2), (8, 16))
    with pytest.raises(ValueError, match="from_conv needs tangent taps"):
        RowUntiedConv2d.from_conv(SphereConv2d(2, 2, taps="crown"), (8, 16))
    with pytest.raises(ValueRangeError, match=r"conv\.stride must be the same"):
        RowUntiedConv2d.from_conv(nn.Conv2d(2, 2, 3, stride=(1, 2)), (8, 16))
    with pytest.raises(ShapeError, match=r"weight must be \(2, 4, 3, 3\)"):
        layer.set_perspective_weight(torch.rand(2, 4, 5, 5))
    with pytest.raises(ShapeError, match=r"bias must be \(2,\)"):
        layer.set_perspective_weight(torch.rand(2, 4, 3, 3), torch.rand(3))
    with pytest.raises(ShapeError, match="bias given for a layer built with bias=False"):
        RowUntiedConv2d(4, 2, (8, 16), bias=False).set_perspective_weight(
            torch.rand(2, 4, 3, 3), torch.rand(2)
        )
