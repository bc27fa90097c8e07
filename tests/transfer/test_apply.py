"""pano360.transfer.apply: any planar dense model on panoramas with every strategy."""

import math

import pytest
import torch
from torch import nn

from pano360.errors import ChoiceError, ValueRangeError
from pano360.geometry import (
    ViewRig,
    erp_lonlat_grid,
    erp_to_perspective,
    perspective_to_erp,
)
from pano360.testing import smooth_erp
from pano360.transfer import STRATEGIES, TransferredModel, apply

D = torch.float64


class Residual(nn.Module):
    """A model the library does not know: not an nn.Sequential, a residual addition, stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.body = nn.Conv2d(6, 6, 3, padding=1)
        self.down = nn.AvgPool2d(2)
        self.head = nn.Conv2d(6, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.stem(x))
        y = y + torch.relu(self.body(y))
        return self.head(self.down(y))


def random_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 4, 1),
    ).double()  # fmt: skip


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_runs_a_model_the_library_does_not_know(strategy):
    torch.manual_seed(1)
    model = Residual().double()
    erp = torch.rand(2, 3, 16, 32, dtype=D)
    opts = {"patch_size": 6} if strategy == "exact" else {}
    rig = ViewRig.sphere14(hw=(12, 12)) if strategy == "multiview" else None
    out = apply(model, erp, strategy, rig=rig, **opts)
    assert out.shape == (2, 2, 8, 16)
    assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_runs_a_random_conv_stack(strategy):
    model = random_cnn()
    erp = smooth_erp((16, 32), dtype=D)
    out = apply(model, erp, strategy)
    assert out.shape == (1, 4, 16, 32)
    if strategy == "direct":
        torch.testing.assert_close(out, model(erp))


def _exact_oracle(model, erp, patch, stride, rows_cols, spacing):
    """Loop oracle: the model on a pinhole view centred on each output pixel, centre output."""
    h, w = erp.shape[-2:]
    grid = erp_lonlat_grid((h // stride, w // stride), dtype=D)
    fov = 2 * math.atan(patch * math.tan(spacing) / 2)  # one tap spacing between view pixels
    centre = (patch // stride - 1) // 2
    values = []
    for i, j in rows_cols:
        lon, lat = grid[i, j].tolist()
        view = erp_to_perspective(erp, fov, (patch, patch), yaw=lon, pitch=lat)
        values.append(model(view)[0, :, centre, centre])
    return torch.stack(values, dim=-1)


def test_exact_equals_a_loop_oracle_at_sampled_pixels():
    torch.manual_seed(2)
    model = Residual().double().eval()
    erp = torch.rand(1, 3, 16, 32, dtype=D)
    out = apply(model, erp, "exact", patch_size=6)
    picks = [(0, 0), (0, 15), (3, 7), (4, 0), (7, 9), (7, 15)]
    expected = _exact_oracle(model, erp, 6, 2, picks, 2 * math.pi / 32)
    got = torch.stack([out[0, :, i, j] for i, j in picks], dim=-1)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize(
    "model", [nn.Conv2d(3, 4, 3, padding=1), nn.Sequential(nn.Conv2d(3, 4, 3))]
)
def test_spherical_equals_exact_for_a_single_convolution(model):
    model = model.double()
    erp = torch.rand(1, 3, 8, 16, dtype=D, generator=torch.Generator().manual_seed(3))
    opts = {} if isinstance(model, nn.Sequential) else {"patch_size": 3}
    exact = apply(model, erp, "exact", **opts)
    torch.testing.assert_close(apply(model, erp, "spherical"), exact)


def test_planar_grid_spherical_equals_exact_and_the_others_come_closer_at_the_equator():
    """A padded stride-2 conv puts output (i, j) on input pixel (2i, 2j): on the planar grid
    the spherical copy equals exact, and direct, cubemap and multiview are closer to it next to
    the equator than on the sphere grid, where the spherical copy also blurs."""
    torch.manual_seed(4)
    model = nn.Conv2d(3, 4, 3, stride=2, padding=1, padding_mode="replicate").double()
    erp = smooth_erp((64, 128), dtype=D, degree=8, seed=5)
    band = slice(14, 18)  # output rows on input rows 28-34, within 11 degrees of the equator
    with torch.no_grad():
        exact = apply(model, erp, "exact", patch_size=5, output_grid="planar")
        gaps = {}
        for strategy in ("direct", "cubemap", "multiview", "spherical"):
            for grid in ("planar", "sphere"):
                out = apply(model, erp, strategy, output_grid=grid)
                gaps[strategy, grid] = float((out - exact)[..., band, :].abs().mean())
    assert gaps["spherical", "planar"] < 1e-12
    assert gaps["direct", "planar"] < 1e-4  # the taps miss the pixels by < 0.02 pixel there
    assert gaps["spherical", "sphere"] > 20 * gaps["direct", "planar"]  # half a pixel off
    for strategy in ("cubemap", "multiview"):
        assert gaps[strategy, "planar"] < gaps[strategy, "sphere"], gaps


def test_multiview_with_one_view_is_e2p_then_the_model_then_p2e():
    torch.manual_seed(4)
    model = Residual().double()
    erp = torch.rand(1, 3, 32, 64, dtype=D)
    rig = ViewRig.from_views([0.4], [0.3], [1.2], roll=[0.2], hw=(24, 24))
    view = erp_to_perspective(erp, 1.2, (24, 24), 0.4, 0.3, 0.2)
    expected, _ = perspective_to_erp(model(view), 1.2, (16, 32), 0.4, 0.3, 0.2)
    torch.testing.assert_close(apply(model, erp, "multiview", rig=rig), expected)


def test_cubemap_of_a_pointwise_model_keeps_a_constant_everywhere():
    model = nn.Conv2d(3, 1, 1).double()
    erp = torch.full((1, 3, 16, 32), 0.5, dtype=D)
    out = apply(model, erp, "cubemap")
    torch.testing.assert_close(out, model(erp))


def test_the_module_form_agrees_and_builds_once():
    model = random_cnn()
    erp = smooth_erp((16, 32), dtype=D)
    runner = TransferredModel(model, "spherical")
    first = runner(erp)
    torch.testing.assert_close(first, apply(model, erp, "spherical"))
    built = runner._spherical[(16, 32)]
    runner(erp)
    assert runner._spherical[(16, 32)] is built
    assert "strategy='spherical'" in repr(runner)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_spherical_inference_runs_channels_last_and_returns_the_input_layout(layout):
    """On the CPU without gradients the spherical copy runs channels-last (its first layer sees
    that layout); it computes what it computes run as given, and answers in the input's
    layout."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU6(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16),  # depthwise
        nn.Conv2d(16, 4, 1),
    ).eval()
    runner = TransferredModel(model, "spherical", output_grid="planar")
    erp = torch.rand(1, 3, 16, 32).contiguous(memory_format=layout)
    as_given = runner(erp)  # the parameters need gradients: the layers take erp as it is
    seen = []
    spherical = runner._spherical_model((16, 32))
    hook = spherical[0].register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    with torch.no_grad():
        fast = runner(erp)
    hook.remove()
    assert seen[0].is_contiguous(memory_format=torch.channels_last) and not seen[0].is_contiguous()
    assert fast.is_contiguous(memory_format=layout)
    torch.testing.assert_close(fast, as_given.detach(), atol=1e-5, rtol=0)


def test_the_model_is_not_changed_and_keeps_its_mode():
    model = Residual().double().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    erp = torch.rand(1, 3, 8, 16, dtype=D)
    for strategy in STRATEGIES:
        apply(model, erp, strategy, **({"patch_size": 2} if strategy == "exact" else {}))
    assert model.training and all(m.training for m in model.modules())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_errors():
    model = Residual()
    erp = torch.rand(1, 3, 8, 16)
    with pytest.raises(ChoiceError, match="strategy must be one of"):
        apply(model, erp, "views")
    with pytest.raises(ValueRangeError, match="needs patch_size"):
        apply(model, erp, "exact")
    with pytest.raises(ValueRangeError, match="odd multiple of the model's stride 2"):
        apply(model, erp, "exact", patch_size=4)
    with pytest.raises(ValueRangeError, match="patch_size must be a positive integer"):
        apply(model, erp, "exact", patch_size=0)
    with pytest.raises(ValueRangeError, match=r"patch_size must be 2 s m \+ 1 for the planar"):
        apply(model, erp, "exact", patch_size=6, output_grid="planar")
    with pytest.raises(ChoiceError, match="output_grid must be one of 'sphere', 'planar'"):
        apply(model, erp, "direct", output_grid="centre")
    with pytest.raises(ValueRangeError, match="needs patch_size"):
        apply(random_cnn(), erp.double(), "exact", output_grid="planar")  # no stack path
    with pytest.raises(TypeError, match=r"model must be an nn\.Module"):
        apply(lambda x: x, erp, "direct")
    with pytest.raises(TypeError, match=r"rig must be a pano360\.geometry\.ViewRig"):
        apply(model, erp, "multiview", rig=[0.0])


def test_unsupported_layers_are_named_in_a_warning():
    class Shift(nn.Module):
        def forward(self, x):
            return torch.nn.functional.pad(x, (1, 0, 0, 0))[..., :-1]  # planar: reads a border

    model = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), Shift())
    with pytest.warns(RuntimeWarning, match="stay planar"):
        apply(model, torch.rand(1, 3, 8, 16), "spherical")
