"""exact_features: a backbone stage's exact outputs (patch from the receptive field, the stage's
own grid, on-disk cache), band_rmse, object_scenes and evaluate_backbone's pieces."""

from __future__ import annotations

import math
import warnings
from typing import ClassVar

import pytest
import torch
from torch import nn

from pano360.errors import ShapeError, ValueRangeError
from pano360.models import create_model
from pano360.models.backbones import Backbone
from pano360.nn import sphericalize
from pano360.testing import smooth_erp
from pano360.transfer import (
    LAT_BANDS,
    band_rmse,
    exact_features,
    object_scenes,
    stage_grid,
    stage_patch_size,
    stage_receptive_field,
    weights_fingerprint,
)


class Tiny(Backbone):
    """Two padded 3 x 3 stride-2 convs (MobileNetV2's alignment) and a 2 x 2 pool (VGG's)."""

    stages: ClassVar[dict[str, int]] = {"features.0": 2, "features.2": 4, "features.3": 8}

    def __init__(self, extra: nn.Module | None = None) -> None:
        super().__init__(None, normalize=False)
        torch.manual_seed(0)
        layers = [nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU(), nn.Conv2d(4, 5, 3, 2, 1)]
        self.features = nn.Sequential(*layers, extra or nn.MaxPool2d(2, 2))


class TinyVGG(Backbone):
    """Padded stride-1 convs and 2 x 2 pools: output m at the centre of its s x s block."""

    stages: ClassVar[dict[str, int]] = {"features.2": 2, "features.4": 4}

    def __init__(self) -> None:
        super().__init__(None, normalize=False)
        torch.manual_seed(0)
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Conv2d(4, 5, 3, 1, 1),
            nn.MaxPool2d(2, 2),
        )  # fmt: skip


def erp(hw=(16, 32), seed=0):
    return smooth_erp(hw, 3, seed=seed).expand(1, -1, -1, -1).contiguous()


def test_receptive_fields_of_the_backbones_match_their_published_values():
    mobilenet = create_model("mobilenet_v2")
    assert [stage_receptive_field(mobilenet, s) for s in mobilenet.stages] == [
        (19, 4), (59, 8), (267, 16), (491, 32),
    ]  # fmt: skip
    vgg = create_model("vgg16")  # pool2 .. pool5: 16, 44, 100, 212 pixels
    assert [stage_receptive_field(vgg, s)[0] for s in vgg.stages] == [16, 44, 100, 212]
    assert stage_receptive_field(create_model("resnet50"), "layer4") == (427, 32)


def test_patch_sizes_centre_an_output_pixel_and_respect_the_cap():
    mobilenet, vgg = create_model("mobilenet_v2"), create_model("vgg16")
    # Padded stride-2 convs centre output m on input s m: odd patches 2 s c + 1.
    assert stage_patch_size(mobilenet, "features.3") == 25
    assert stage_patch_size(mobilenet, "features.18", 224) == 193
    # 2 x 2 pools centre output m on the middle of its s x s block: odd multiples of s.
    assert stage_patch_size(vgg, "features.23", 224) == 112
    with pytest.raises(ValueRangeError, match="max_size must be at least 32"):
        stage_patch_size(vgg, "features.30", 8)


def test_convention_a_padded_strided_conv_stage_is_exactly_sphere_conv():
    """One padded 3 x 3 stride-2 conv centres output m on input pixel 2m (the planar grid):
    its exact output is SphereConv2d's on that grid, and not the sphere grid's."""
    tiny = Tiny().double()
    x = erp((16, 32)).double()
    assert stage_grid(tiny, "features.0") == "planar"
    exact = exact_features(tiny, x, "features.0")
    spherical, _ = sphericalize(tiny.features[0], output_grid="planar")
    torch.testing.assert_close(exact, spherical(x), rtol=1e-9, atol=1e-9)
    on_sphere, _ = sphericalize(tiny.features[0])
    assert (exact - on_sphere(x)).abs().max() > 1e-2


def test_exact_features_equal_apply_exact_for_a_vgg_like_stage():
    from pano360.transfer import apply

    tiny = TinyVGG().double()
    x = erp((16, 32)).double()
    p = stage_patch_size(tiny, "features.4")
    assert p == 12  # an odd multiple of the stride, as apply's exact asks
    expected = apply(tiny.stage_module("features.4"), x, "exact", patch_size=p, stride=4)
    torch.testing.assert_close(exact_features(tiny, x, "features.4"), expected)


def test_cache_is_used_checked_against_the_weights_and_replaced_when_stale(tmp_path):
    tiny, x = Tiny(), erp()
    first = exact_features(tiny, x, "features.2", cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.safetensors")
    stamp = path.stat().st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = exact_features(tiny, x, "features.2", cache_dir=tmp_path)
    assert torch.equal(first, again) and path.stat().st_mtime_ns == stamp
    with torch.no_grad():
        tiny.features[2].bias.add_(1.0)
    with pytest.warns(UserWarning, match="made for other weights"):
        changed = exact_features(tiny, x, "features.2", cache_dir=tmp_path)
    torch.testing.assert_close(changed, exact_features(tiny, x, "features.2"))
    assert not torch.allclose(changed, first)
    path.write_bytes(b"not a safetensors file")
    with pytest.warns(UserWarning, match="unreadable"):
        again = exact_features(tiny, x, "features.2", cache_dir=tmp_path)
    torch.testing.assert_close(again, changed)


def test_weights_fingerprint_sees_values_and_architecture():
    a = nn.Conv2d(3, 4, 3)
    b = nn.Conv2d(3, 4, 3, padding=1)
    b.load_state_dict(a.state_dict())
    assert weights_fingerprint(a) != weights_fingerprint(b)
    assert len(weights_fingerprint(a)) == 64


def test_exact_features_errors():
    tiny = Tiny()
    with pytest.raises(TypeError, match="Backbone"):
        exact_features(nn.Conv2d(3, 4, 3), erp(), "features.0")
    with pytest.raises(ValueError, match="stage must be one of"):
        exact_features(tiny, erp(), "features.1")
    with pytest.raises(TypeError, match="floating-point"):
        exact_features(tiny, erp().to(torch.uint8), "features.0")
    with pytest.raises(ShapeError, match="RGB"):
        exact_features(tiny, torch.rand(1, 1, 16, 32), "features.0")
    with pytest.raises(ShapeError, match="multiple of the stride 8"):
        exact_features(tiny, torch.rand(1, 3, 12, 24), "features.3")
    with pytest.raises(ValueRangeError, match="patch_size must put an output pixel"):
        exact_features(tiny, erp(), "features.2", patch_size=8)
    with pytest.raises(ValueRangeError, match="tap_spacing"):
        exact_features(tiny, erp(), "features.0", tap_spacing=2.0)
    with pytest.raises(TypeError, match=r"Upsample.*not supported"):
        stage_receptive_field(Tiny(nn.Upsample(scale_factor=2)), "features.3")


def test_band_rmse_by_band_and_relative_to_the_reference_spread():
    target = torch.zeros(1, 1, 6, 12)
    target[..., :1, :] = torch.arange(12.0)  # the polar rows vary, the others not at all
    output = target + 1.0
    rmse = band_rmse(output, target, LAT_BANDS)
    assert [round(v, 6) for v in rmse.values()] == [1.0, 1.0, 1.0]
    relative = band_rmse(output, target[..., :, :] + 0, [LAT_BANDS[2]], relative=True)
    assert relative[LAT_BANDS[2]] == pytest.approx(1 / target[..., [0, 5], :].std().item())
    with pytest.raises(ShapeError, match="the same"):
        band_rmse(output, target[..., :3, :6])
    with pytest.raises(ValueRangeError, match="bands must be"):
        band_rmse(output, target, [(0.5, 0.2)])


def test_object_scenes_put_two_photos_in_every_band_and_depend_only_on_the_seed():
    (scene,) = object_scenes(1, seed=3, erp_hw=(32, 64))
    again = object_scenes(2, seed=3, erp_hw=(32, 64))[0]
    assert torch.equal(scene.erp, again.erp)
    lats = scene.bfov[:, 1].abs()
    counts = [int(((lats >= lo) & (lats < hi)).sum()) for lo, hi in LAT_BANDS]
    assert counts == [2, 2, 2]
    assert scene.bfov[:, 2].min() >= math.radians(40)


def test_evaluate_backbone_and_backbone_runners_errors():
    from pano360.transfer import backbone_runners, evaluate_backbone

    tiny, x = Tiny(), erp()
    boxes = [torch.tensor([[0.0, 0.0, 0.5, 0.5]])]
    with pytest.raises(ShapeError, match="boxes must be 1 tensors"):
        evaluate_backbone(tiny, x, boxes * 2)
    with pytest.raises(ValueError, match="stages must be one of"):
        evaluate_backbone(tiny, x, boxes, ["features.1"])
    with pytest.raises(ValueRangeError, match="rmse_images"):
        evaluate_backbone(tiny, x, boxes, rmse_images=2)
    with pytest.raises(ValueRangeError, match="timing_images"):
        evaluate_backbone(tiny, x, boxes, timing_images=2)
    with pytest.raises(ValueError, match="strategies must be one of"):
        backbone_runners(tiny, "features.0", ["exact"])
    with pytest.raises(ValueError, match="stage must be one of"):
        backbone_runners(tiny, "features.9")
    runners = backbone_runners(tiny, "features.2", ["direct", "spherical"])
    assert list(runners) == ["direct", "spherical"]
    with torch.no_grad():
        assert runners["spherical"](x).shape == runners["direct"](x).shape == (1, 5, 4, 8)


def test_classification_is_against_the_network_on_each_objects_own_view():
    """The reference is the whole network on the object's tangent view (ERP spacing, at least
    32 pixels a side): a map holding that view's pooled features everywhere agrees on every
    object; a map of another view's features does not."""
    from pano360.geometry import erp_to_perspective
    from pano360.transfer import evaluate_backbone
    from pano360.transfer._deep_eval import _object_view_logits

    model = create_model("mobilenet_v2").eval()
    scene = object_scenes(1, seed=5, erp_hw=(64, 128))[0]
    x, box = scene.erp[None], scene.rbfov[2:3]  # one photo, |lat| < 25 degrees
    lon, lat, fov_x, fov_y, roll = box[0].tolist()
    side = (
        max(32, round(2 * math.tan(v / 2) / math.tan(2 * math.pi / 128))) for v in (fov_x, fov_y)
    )
    w, h = side
    view = erp_to_perspective(x, fov_x, (h, w), yaw=lon, pitch=lat, roll=roll)
    with torch.no_grad():
        torch.testing.assert_close(_object_view_logits(model, x, box), model(view))
        pooled = model.forward_features(view)["features.18"].mean(dim=(2, 3), keepdim=True)
        other = model.forward_features(view.flip(-2).transpose(-1, -2))["features.18"]
    final = {
        "same": lambda e: pooled.expand(-1, -1, 2, 4),
        "other": lambda e: other.mean(dim=(2, 3), keepdim=True).expand(-1, -1, 2, 4),
    }
    result = evaluate_backbone(
        model, x, [box], ["features.18"], rmse_images=0, timing_images=0,
        runners={"features.18": final},
    )  # fmt: skip
    assert result.objects == [1, 0, 0] and "exact" not in result.seconds
    assert result.top1["same"][0] == 100.0 and result.top5["same"][0] == 100.0
    assert result.top5["other"][0] < 100.0
    assert result.patch == {} and "| same |" in result.classification_markdown()


def test_exact_features_is_the_stage_on_the_tangent_view_of_each_cell():
    # Cell (i, j) is the stage's centre output on the pinhole view (erp_to_perspective) aimed
    # at the cell's direction on the stage's grid, one ERP pixel per view pixel at its centre.
    from pano360.geometry import erp_to_perspective

    model = create_model("mobilenet_v2").eval()
    x = erp((32, 64), seed=3)
    out = exact_features(model, x, "features.3")
    p, spacing = stage_patch_size(model, "features.3"), 2 * math.pi / 64
    fov = 2 * math.atan(p / 2 * math.tan(spacing))
    net = model.stage_module("features.3")
    assert stage_grid(model, "features.3") == "planar"  # cell (i, j) on input pixel (4i, 4j)
    for i, j in [(0, 3), (3, 0), (7, 12)]:
        lat, lon = (0.5 - (4 * i + 0.5) / 32) * math.pi, ((4 * j + 0.5) / 64 - 0.5) * 2 * math.pi
        view = erp_to_perspective(x, fov, (p, p), yaw=lon, pitch=lat)
        with torch.no_grad():
            cell = net(view)[0, :, (p - 1) // 8, (p - 1) // 8]
        torch.testing.assert_close(out[0, :, i, j], cell, atol=1e-4, rtol=1e-4)
