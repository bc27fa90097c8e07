"""sphericalize(): spherical layers swapped in, weights kept, a report naming every layer."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pano360.nn import (
    SphereConv2d,
    SphericalAvgPool2d,
    SphericalizeReport,
    SphericalMaxPool2d,
    SphericalPad2d,
    spherical_avg_pool2d,
    spherical_max_pool2d,
    spherical_pad,
    sphericalize,
)
from pano360.testing import assert_yaw_equivariant, exact_conv2d

D = torch.float64


def rand(*shape, seed=0):
    return torch.rand(*shape, dtype=D, generator=torch.Generator().manual_seed(seed))


def vgg_like():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 4, 1),
    ).double()


def test_vgg_like_keeps_state_dict_keys_values_and_output_shapes():
    net = vgg_like()
    sph, _ = sphericalize(net)
    assert list(sph.state_dict()) == list(net.state_dict())
    for key, value in net.state_dict().items():
        torch.testing.assert_close(sph.state_dict()[key], value, rtol=0, atol=0)
    x = rand(2, 3, 16, 32)
    assert sph(x).shape == net(x).shape == (2, 4, 8, 16)
    for planar, spherical in zip(net, sph, strict=True):  # layer by layer, the same shapes
        x_planar, x = planar(x), spherical(x)
        assert x.shape == x_planar.shape
    sph.load_state_dict(net.state_dict())  # a planar checkpoint loads as it is


def test_vgg_like_report_names_every_spatial_layer():
    _, report = sphericalize(vgg_like())
    assert report.replaced == [
        ("0", "Conv2d", "SphereConv2d"),
        ("2", "Conv2d", "SphereConv2d"),
        ("5", "Conv2d", "SphereConv2d"),
    ]
    assert [entry[:2] for entry in report.unchanged] == [("4", "MaxPool2d"), ("7", "Conv2d")]
    assert "1 x 1" in report.unchanged[1][2]
    assert report.unsupported == []


def test_vgg_like_first_layer_equals_the_exact_oracle():
    net = vgg_like()
    sph, _ = sphericalize(net)
    x = rand(1, 3, 16, 32, seed=1)
    conv = net[0]
    expected = exact_conv2d(x, conv.weight, conv.bias)
    torch.testing.assert_close(sph[0](x), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("stride", "dilation"), [(1, 1), (2, 1), (1, 2)])
def test_single_conv_network_equals_the_exact_per_pixel_evaluation(stride, dilation):
    conv = nn.Conv2d(3, 4, 3, stride=stride, padding=dilation, dilation=dilation).double()
    sph, report = sphericalize(nn.Sequential(conv))
    assert report.replaced == [("0", "Conv2d", "SphereConv2d")]
    x = rand(2, 3, 16, 32, seed=2)
    expected = exact_conv2d(x, conv.weight, conv.bias, stride=stride, dilation=dilation)
    torch.testing.assert_close(sph(x), expected, atol=1e-5, rtol=0)


def test_a_bare_conv_is_replaced_and_returned():
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False).double()
    sph, report = sphericalize(conv, inplace=True)
    assert isinstance(sph, SphereConv2d) and sph.bias is None
    assert sph.weight is conv.weight
    assert report.replaced == [("(model)", "Conv2d", "SphereConv2d")]
    x = rand(1, 2, 8, 16, seed=3)
    torch.testing.assert_close(sph(x), exact_conv2d(x, conv.weight), atol=1e-5, rtol=0)


def test_inplace_changes_the_model_and_keeps_its_parameters():
    net = vgg_like()
    weight = net[0].weight
    sph, _ = sphericalize(net, inplace=True)
    assert sph is net
    assert isinstance(net[0], SphereConv2d)
    assert net[0].weight is weight  # an optimizer built on net keeps working


def test_not_inplace_leaves_the_model_untouched():
    net = vgg_like()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    sph, _ = sphericalize(net)
    assert sph is not net
    assert [type(m) for m in net] == [type(m) for m in vgg_like()]
    assert all(type(m) is not SphereConv2d for m in net.modules())
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key])
    assert sph[0].weight is not net[0].weight


def test_training_mode_dtype_and_requires_grad_are_kept():
    net = vgg_like().eval()
    net[0].weight.requires_grad_(False)
    sph, _ = sphericalize(net)
    assert not sph[0].training and not sph[0].weight.requires_grad
    assert sph[0].weight.dtype == D and sph[0].weight.device.type == "cpu"


def test_whole_stride1_network_without_pooling_is_yaw_equivariant():
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.ReLU(),
        nn.ReflectionPad2d(2),
        nn.Conv2d(6, 6, 5),  # fused with the pad before it
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=2, dilation=2, padding_mode="reflect"),
        nn.ReLU(),
        nn.Conv2d(6, 2, 1),
    ).double()
    sph, report = sphericalize(net)
    assert report.unsupported == []
    assert_yaw_equivariant(sph, rand(1, 3, 16, 32, seed=4), shifts=(1, 5, 16))
    with pytest.raises(AssertionError):  # the planar network is not
        assert_yaw_equivariant(net, rand(1, 3, 16, 32, seed=4), shifts=(5,))


def test_pad_then_valid_conv_in_a_sequential_fuses_into_one_sphere_conv():
    conv = nn.Conv2d(3, 4, 3).double()
    sph, report = sphericalize(nn.Sequential(nn.ZeroPad2d(1), conv))
    assert report.replaced == [("0", "ZeroPad2d", "Identity"), ("1", "Conv2d", "SphereConv2d")]
    x = rand(1, 3, 8, 16, seed=5)
    torch.testing.assert_close(sph(x), exact_conv2d(x, conv.weight, conv.bias), atol=1e-5, rtol=0)


def test_pad_that_does_not_match_the_conv_is_made_spherical_and_the_conv_named():
    net = nn.Sequential(nn.ReplicationPad2d((1, 1, 2, 2)), nn.Conv2d(3, 4, 3))
    sph, report = sphericalize(net)
    assert report.replaced == [("0", "ReplicationPad2d", "SphericalPad2d")]
    assert sph[0].padding == (1, 1, 2, 2)
    assert [entry[:2] for entry in report.unsupported] == [("1", "Conv2d")]
    assert "not the 'same' padding (1, 1)" in report.unsupported[0][2]


@pytest.mark.parametrize(
    "pad",
    [
        nn.ZeroPad2d((1, 2, 3, 0)),
        nn.ConstantPad2d((1, 2, 3, 0), 0.5),
        nn.ReflectionPad2d((1, 2, 3, 0)),
        nn.ReplicationPad2d((1, 2, 3, 0)),
        nn.CircularPad2d((1, 2, 3, 0)),
    ],
)
def test_pad_layers_become_spherical_pads(pad):
    sph, report = sphericalize(nn.Sequential(pad))
    assert isinstance(sph[0], SphericalPad2d)
    assert report.replaced == [("0", type(pad).__name__, "SphericalPad2d")]
    x = rand(1, 2, 4, 8, seed=6)
    torch.testing.assert_close(sph(x), spherical_pad(x, (1, 2, 3, 0)), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("pool", "reference"),
    [
        (nn.MaxPool2d(3, 1, 1), lambda x: spherical_max_pool2d(x, 3, 1, 1)),
        (nn.MaxPool2d(3, 2, 1, dilation=1), lambda x: spherical_max_pool2d(x, 3, 2, 1)),
        (nn.MaxPool2d(2, ceil_mode=True), lambda x: spherical_max_pool2d(x, 2, ceil_mode=True)),
        (nn.AvgPool2d(3, 1, 1), lambda x: spherical_avg_pool2d(x, 3, 1, 1)),
        (nn.AvgPool2d((3, 1), 1, (1, 0)), lambda x: spherical_avg_pool2d(x, (3, 1), 1, (1, 0))),
    ],
)
def test_padded_pools_become_spherical_pools(pool, reference):
    sph, report = sphericalize(nn.Sequential(pool))
    new_type = SphericalMaxPool2d if isinstance(pool, nn.MaxPool2d) else SphericalAvgPool2d
    assert type(sph[0]) is new_type
    assert report.replaced == [("0", type(pool).__name__, new_type.__name__)]
    x = rand(1, 2, 6, 12, seed=7)
    assert sph(x).shape == pool(x).shape
    torch.testing.assert_close(sph(x), reference(x), rtol=0, atol=0)


def test_max_pool_with_indices_keeps_them_for_max_unpool():
    net = nn.Sequential(nn.MaxPool2d(3, 2, 1, return_indices=True))
    sph, _ = sphericalize(net)
    x = rand(1, 1, 8, 16, seed=8)
    values, indices = sph(x)
    assert torch.equal(x.flatten()[indices.flatten()], values.flatten())


def test_unpadded_pools_are_unchanged():
    net = nn.Sequential(nn.MaxPool2d(2), nn.AvgPool2d(3, 2), nn.LPPool2d(2, 2))
    sph, report = sphericalize(net)
    assert [type(m) for m in sph] == [nn.MaxPool2d, nn.AvgPool2d, nn.LPPool2d]
    assert [entry[:2] for entry in report.unchanged] == [
        ("0", "MaxPool2d"),
        ("1", "AvgPool2d"),
        ("2", "LPPool2d"),
    ]
    assert report.replaced == [] and report.unsupported == []


def test_strided_1x1_conv_samples_block_centres_like_the_strided_3x3_beside_it():
    shortcut = nn.Conv2d(2, 3, 1, stride=2).double()
    sph, report = sphericalize(nn.Sequential(shortcut))
    assert report.replaced == [("0", "Conv2d", "SphereConv2d")]
    x = rand(1, 2, 8, 16, seed=9)
    block_mean = F.avg_pool2d(x, 2)  # the centre of each 2 x 2 block, bilinearly
    expected = F.conv2d(block_mean, shortcut.weight, shortcut.bias)
    torch.testing.assert_close(sph(x), expected, atol=1e-10, rtol=0)


def test_planar_output_grid_puts_strided_outputs_where_nn_conv2d_does():
    """With output_grid="planar" a strided 1 x 1 conv reads input pixel (2i, 2j), exactly as
    nn.Conv2d; a strided 3 x 3 conv reads nn.Conv2d's pixels next to the equator."""
    shortcut = nn.Conv2d(2, 3, 1, stride=2).double()
    sph, _ = sphericalize(nn.Sequential(shortcut), output_grid="planar")
    assert sph[0].output_grid == "planar"
    x = rand(1, 2, 8, 16, seed=9)
    torch.testing.assert_close(sph(x), shortcut(x), atol=1e-12, rtol=0)
    torch.manual_seed(3)
    strided = nn.Conv2d(1, 1, 3, stride=2, padding=1, padding_mode="circular").double()
    planar, _ = sphericalize(strided, output_grid="planar")
    sphere, _ = sphericalize(strided)
    x = rand(1, 1, 256, 512, seed=10)
    row = 64  # on input row 128, 0.35 degrees from the equator
    assert (planar(x)[..., row, :] - strided(x)[..., row, :]).abs().max() < 1e-3
    assert (sphere(x)[..., row, :] - strided(x)[..., row, :]).abs().mean() > 0.05
    with pytest.raises(ValueError, match="output_grid must be one of 'sphere', 'planar'"):
        sphericalize(strided, output_grid="torch")


class PadsByItself(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        grid = torch.zeros(x.shape[0], 4, 8, 2, dtype=x.dtype)
        return self.conv(F.pad(x, (1, 1, 1, 1))) + F.grid_sample(x, grid, align_corners=False)


class PadsThroughAChild(nn.Module):
    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d(1)
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        # F.pad(x) in a comment is not a call
        return self.conv(self.pad(x))[..., 1:-1, 1:-1]


class MyConv(nn.Conv2d):
    pass


def test_unsupported_layers_are_named_with_reasons():
    hooked = nn.Conv2d(2, 2, 3, padding=1)
    hooked.register_forward_hook(lambda *args: None)
    net = nn.Sequential(
        nn.Conv1d(2, 2, 3),
        nn.Conv3d(2, 2, 3),
        nn.ConvTranspose2d(2, 2, 3),
        nn.Unfold(3),
        nn.AdaptiveAvgPool2d(4),
        nn.Upsample(scale_factor=2, mode="bilinear"),
        nn.Conv2d(2, 2, 3, padding=0),
        nn.Conv2d(2, 2, 3, stride=(2, 1), padding=1),
        nn.AvgPool2d(3, 1, 1, divisor_override=2),
        nn.ZeroPad2d(-1),
        MyConv(2, 2, 3, padding=1),
        nn.utils.parametrizations.weight_norm(nn.Conv2d(2, 2, 3, padding=1)),
        nn.LazyConv2d(2, 3, padding=1),
        hooked,
        PadsByItself(),
    )
    sph, report = sphericalize(net)
    names = [entry[0] for entry in report.unsupported]
    assert names == [str(i) for i in range(15)]
    reasons = {name: reason for name, _, reason in report.unsupported}
    assert "not a 2D convolution" in reasons["0"] and "not a 2D convolution" in reasons["1"]
    assert "transposed" in reasons["2"]
    assert "planar patches" in reasons["3"]
    assert "adaptive" in reasons["4"]
    assert "'bilinear' upsampling" in reasons["5"]
    assert "not the 'same' padding" in reasons["6"]
    assert "stride (2, 1)" in reasons["7"]
    assert "divisor_override" in reasons["8"]
    assert "negative padding" in reasons["9"]
    assert "subclass of nn.Conv2d" in reasons["10"] and "subclass of nn.Conv2d" in reasons["11"]
    assert "lazy" in reasons["12"] and "hooks" in reasons["13"]
    assert "pad, grid_sample" in reasons["14"]
    # Left as they were, but the child of the custom module is converted all the same.
    assert [type(m) for m in sph[:14]] == [type(m) for m in net[:14]]
    assert report.replaced == [("14.conv", "Conv2d", "SphereConv2d")]
    assert isinstance(sph[14], PadsByItself) and isinstance(sph[14].conv, SphereConv2d)


def test_custom_module_calling_only_child_layers_is_not_flagged():
    sph, report = sphericalize(PadsThroughAChild())
    assert report.unsupported == []
    assert report.replaced == [
        ("pad", "ZeroPad2d", "SphericalPad2d"),
        ("conv", "Conv2d", "SphereConv2d"),
    ]
    assert isinstance(sph.conv, SphereConv2d)


def test_layers_without_border_are_unchanged_with_reasons():
    net = nn.Sequential(
        nn.AdaptiveAvgPool2d(1),
        nn.AdaptiveMaxPool2d((1, 1)),
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.PixelShuffle(2),
        nn.PixelUnshuffle(2),
        nn.MaxUnpool2d(2),
        SphereConv2d(2, 2, 3),
    )
    _, report = sphericalize(net)
    assert [entry[0] for entry in report.unchanged] == [str(i) for i in range(7)]
    assert "already spherical" in report.unchanged[6][2]
    assert report.replaced == [] and report.unsupported == []


def test_model_without_convs_gives_empty_lists():
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2), nn.ReLU())
    sph, report = sphericalize(net)
    assert report == SphericalizeReport()
    assert str(report).startswith("sphericalize: 0 replaced, 0 unchanged, 0 unsupported")
    assert [type(m) for m in sph] == [nn.Flatten, nn.Linear, nn.ReLU]


def test_sphericalizing_twice_changes_nothing_more():
    sph, _ = sphericalize(vgg_like())
    again, report = sphericalize(sph)
    assert report.replaced == [] and report.unsupported == []
    assert [type(m) for m in again] == [type(m) for m in sph]


def test_shared_layers_stay_shared_and_are_reported_once():
    conv = nn.Conv2d(2, 2, 3, padding=1)
    sph, report = sphericalize(nn.Sequential(conv, nn.ReLU(), conv))
    assert sph[0] is sph[2] and isinstance(sph[0], SphereConv2d)
    assert report.replaced == [("0", "Conv2d", "SphereConv2d")]
    assert list(sph.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_nested_names_are_qualified_and_report_prints_a_table():
    net = nn.Sequential()
    net.add_module("features", nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2)))
    net.add_module("up", nn.Upsample(scale_factor=1.5))
    _, report = sphericalize(net)
    assert str(report).splitlines() == [
        "sphericalize: 1 replaced, 1 unchanged, 1 unsupported",
        "status       layer       type       new type / reason",
        "replaced     features.0  Conv2d     -> SphereConv2d",
        "unchanged    features.1  MaxPool2d  no padding: every window lies inside the map",
        "unsupported  up          Upsample   'nearest' upsampling to a size or by a non-integer "
        "factor clamps at the border instead of wrapping the seam and crossing the poles",
    ]


def test_errors():
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        sphericalize(lambda x: x)
    with pytest.raises(ValueError, match=r"taps must be one of 'tangent', 'crown'"):
        sphericalize(vgg_like(), taps="square")
    with pytest.raises(ValueError, match=r"taps='crown' cannot sphericalize.*projection"):
        sphericalize(vgg_like(), taps="crown")


# MobileNetV2: depthwise and strided 3 x 3 convs, 1 x 1 convs, BatchNorm, ReLU6, residuals.


@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_conv_bn_relu6_equals_the_exact_oracle(stride, conv_path):
    """A MobileNetV2 depthwise unit (groups == channels): the conv becomes a SphereConv2d that
    computes the tangent-plane oracle per channel; BatchNorm and ReLU6 stay pointwise."""
    torch.manual_seed(6)
    unit = nn.Sequential(
        nn.Conv2d(4, 4, 3, stride, 1, groups=4, bias=False), nn.BatchNorm2d(4), nn.ReLU6()
    ).double()
    unit[1].running_mean.uniform_(-0.2, 0.2)
    unit[1].running_var.uniform_(0.5, 1.5)
    unit.eval()
    sph, report = sphericalize(unit)
    assert report.replaced == [("0", "Conv2d", "SphereConv2d")] and sph[0].groups == 4
    x = rand(2, 4, 16, 32, seed=7) * 4
    expected = unit[2](unit[1](exact_conv2d(x, unit[0].weight, stride=stride, groups=4)))
    torch.testing.assert_close(sph(x), expected, atol=1e-5, rtol=0)


def test_mobilenet_v2_every_3x3_conv_becomes_spherical_and_1x1_convs_stay_planar():
    from pano360.models.backbones import InvertedResidual, MobileNetV2

    model = MobileNetV2()
    sph, report = sphericalize(model)
    convs = {n: m for n, m in model.named_modules() if type(m) is nn.Conv2d}
    spatial = sorted(n for n, m in convs.items() if m.kernel_size == (3, 3))
    assert len(spatial) == 18  # the stem and 17 depthwise convs, 5 of them strided
    assert sum(convs[n].stride == (2, 2) for n in spatial) == 5
    assert sum(convs[n].groups > 1 for n in spatial) == 17
    assert sorted(name for name, _, _ in report.replaced) == spatial
    assert sorted(name for name, _, _ in report.unchanged) == sorted(set(convs) - set(spatial))
    assert report.unsupported == []  # BatchNorm, ReLU6, residual additions, global pooling
    assert list(sph.state_dict()) == list(model.state_dict())
    assert sum(isinstance(m, InvertedResidual) and m.use_res_connect for m in sph.modules()) == 10


def test_sphericalized_mobilenet_v2_is_yaw_equivariant_at_every_stride():
    """Rolling the ERP by s columns rolls the stride-s map by one column, through strided
    depthwise convs and residual additions; the planar network is not equivariant."""
    from pano360.models.backbones import MobileNetV2

    torch.manual_seed(8)
    features = _random_bn_stats(MobileNetV2().features[:7]).eval()  # strides 2, 4, 8
    sph, _ = sphericalize(features)
    x = torch.rand(1, 3, 32, 64, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        assert_yaw_equivariant(sph, x, shifts=(1, 3), stride=8, atol=1e-4)
        with pytest.raises(AssertionError):
            assert_yaw_equivariant(features, x, shifts=(1,), stride=8, atol=1e-4)


def _random_bn_stats(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    return model
