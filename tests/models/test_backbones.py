"""ImageNet backbones: torchvision's state_dict layout, the "backbone" task contract, the shipped
MobileNetV2 weights (hash, classification of two photos) and user checkpoints (weights=PATH)."""

import json
import math
import pickle
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from pano360._core import file_sha256
from pano360.errors import ShapeError, ValueRangeError
from pano360.io import read_image
from pano360.models import (
    WeightsError,
    check_task_output,
    create_model,
    list_models,
    load_weights_file,
    model_info,
)
from pano360.models.backbones import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MOBILENET_V2_WEIGHTS,
    VGG,
    Backbone,
    MobileNetV2,
    ResNet,
    imagenet_classes,
    imagenet_normalize,
)

DATA = Path(__file__).parent / "data"
BACKBONES = ["mobilenet_v2", "resnet50", "vgg16", "vgg16_bn"]
# Parameter counts torchvision documents (``num_params`` of each model's ImageNet weights).
TORCHVISION_NUM_PARAMS = {
    "mobilenet_v2": 3_504_872,
    "resnet50": 25_557_032,
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
}
STAGE_CHANNELS = {
    "mobilenet_v2": [24, 32, 96, 1280],
    "resnet50": [256, 512, 1024, 2048],
    "vgg16": [128, 256, 512, 512],
    "vgg16_bn": [128, 256, 512, 512],
}


# torchvision's layouts, written out from its architecture descriptions (key -> shape).


def _bn(prefix, c):
    return {
        f"{prefix}.weight": (c,),
        f"{prefix}.bias": (c,),
        f"{prefix}.running_mean": (c,),
        f"{prefix}.running_var": (c,),
        f"{prefix}.num_batches_tracked": (),
    }


def torchvision_mobilenet_v2_layout():
    keys = {"features.0.0.weight": (32, 3, 3, 3), **_bn("features.0.1", 32)}
    setting = [(1, 16, 1), (6, 24, 2), (6, 32, 3), (6, 64, 4), (6, 96, 3), (6, 160, 3)]
    setting += [(6, 320, 1)]
    cin, index = 32, 1
    for t, c, n in setting:
        for _ in range(n):
            p, hidden, j = f"features.{index}.conv", cin * t, 0
            if t != 1:
                keys |= {f"{p}.0.0.weight": (hidden, cin, 1, 1), **_bn(f"{p}.0.1", hidden)}
                j = 1
            keys |= {f"{p}.{j}.0.weight": (hidden, 1, 3, 3), **_bn(f"{p}.{j}.1", hidden)}
            keys |= {f"{p}.{j + 1}.weight": (c, hidden, 1, 1), **_bn(f"{p}.{j + 2}", c)}
            cin, index = c, index + 1
    keys |= {"features.18.0.weight": (1280, 320, 1, 1), **_bn("features.18.1", 1280)}
    return keys | {"classifier.1.weight": (1000, 1280), "classifier.1.bias": (1000,)}


def torchvision_resnet50_layout():
    keys = {"conv1.weight": (64, 3, 7, 7), **_bn("bn1", 64)}
    cin = 64
    for i, (blocks, width) in enumerate(
        zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True), start=1
    ):
        for j in range(blocks):
            p = f"layer{i}.{j}"
            keys |= {f"{p}.conv1.weight": (width, cin, 1, 1), **_bn(f"{p}.bn1", width)}
            keys |= {f"{p}.conv2.weight": (width, width, 3, 3), **_bn(f"{p}.bn2", width)}
            keys |= {f"{p}.conv3.weight": (4 * width, width, 1, 1), **_bn(f"{p}.bn3", 4 * width)}
            if j == 0:
                keys |= {f"{p}.downsample.0.weight": (4 * width, cin, 1, 1)}
                keys |= _bn(f"{p}.downsample.1", 4 * width)
            cin = 4 * width
    return keys | {"fc.weight": (1000, 2048), "fc.bias": (1000,)}


def torchvision_vgg16_layout(batch_norm):
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    keys, index, cin = {}, 0, 3
    for v in cfg:
        if v == "M":
            index += 1
            continue
        keys |= {f"features.{index}.weight": (v, cin, 3, 3), f"features.{index}.bias": (v,)}
        if batch_norm:
            keys |= _bn(f"features.{index + 1}", v)
        index, cin = index + (3 if batch_norm else 2), v
    for i, (o, n) in zip((0, 3, 6), ((4096, 25088), (4096, 4096), (1000, 4096)), strict=True):
        keys |= {f"classifier.{i}.weight": (o, n), f"classifier.{i}.bias": (o,)}
    return keys


TORCHVISION_LAYOUTS = {
    "mobilenet_v2": torchvision_mobilenet_v2_layout,
    "resnet50": torchvision_resnet50_layout,
    "vgg16": lambda: torchvision_vgg16_layout(False),
    "vgg16_bn": lambda: torchvision_vgg16_layout(True),
}


@pytest.fixture(scope="module")
def models():
    return {name: create_model(name) for name in BACKBONES}


@pytest.fixture(scope="module")
def pretrained():
    return create_model("mobilenet_v2", pretrained=True)


def test_backbones_are_registered():
    assert list_models(task="backbone") == BACKBONES
    assert "mobilenet_v2" in list_models(pretrained=True)
    assert not {"resnet50", "vgg16", "vgg16_bn"} & set(list_models(pretrained=True))


@pytest.mark.parametrize("name", BACKBONES)
def test_state_dict_has_torchvisions_keys_shapes_and_parameter_count(name):
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = create_model(name)
    layout = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert layout == TORCHVISION_LAYOUTS[name]()
    assert list(layout) == list(TORCHVISION_LAYOUTS[name]())  # the order too
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_NUM_PARAMS[name]


def test_the_shipped_file_has_torchvisions_mobilenet_v2_layout():
    from safetensors import safe_open

    with safe_open(str(MOBILENET_V2_WEIGHTS.path()), "pt") as f:
        shipped = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    assert shipped == torchvision_mobilenet_v2_layout()


@pytest.mark.parametrize("name", BACKBONES)
@pytest.mark.parametrize("hw", [(64, 96), (67, 101)])
def test_forward_features_strides_and_channels(name, hw, models):
    model = models[name].eval()
    x = torch.rand(2, 3, *hw, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        features = model.forward_features(x)
    check_task_output(name, features, x)
    assert list(features) == list(model.stages)
    assert list(model.stages.values()) == [4, 8, 16, 32]
    assert [f.shape[1] for f in features.values()] == STAGE_CHANNELS[name]
    rounding = math.floor if name.startswith("vgg") else math.ceil
    for f, s in zip(features.values(), (4, 8, 16, 32), strict=True):
        assert tuple(f.shape[-2:]) == (rounding(hw[0] / s), rounding(hw[1] / s))


@pytest.mark.parametrize("name", BACKBONES)
def test_forward_is_the_head_on_the_last_stage(name, models):
    model = models[name].eval()
    x = torch.rand(1, 3, 32, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(x)
        last = list(model.forward_features(x).values())[-1]
        torch.testing.assert_close(logits, model.forward_head(last))
    assert logits.shape == (1, 1000)
    check_task_output(name, logits, x)


@pytest.mark.parametrize("name", BACKBONES)
def test_stage_module_is_the_network_up_to_each_stage(name, models):
    model = models[name].eval()
    x = torch.rand(1, 3, 40, 72, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        features = model.forward_features(x)
        for stage in model.stages:
            module = model.stage_module(stage)
            assert isinstance(module, torch.nn.Sequential)
            torch.testing.assert_close(module(x), features[stage], rtol=0, atol=0)
        last = model.stage_module(list(model.stages)[-1])
        assert {id(p) for p in last.parameters()} <= {id(p) for p in model.parameters()}
        first = next(iter(model.stages))
        assert model.stage_module(first)(torch.rand(1, 3, 20, 20)).ndim == 4
    with pytest.raises(ValueError, match="stage must be one of"):
        model.stage_module("fc")


def test_a_backbone_without_classifier_returns_its_stages():
    model = create_model("mobilenet_v2", num_classes=None).eval()
    assert not any(k.startswith("classifier") for k in model.state_dict())
    x = torch.rand(1, 3, 32, 32)
    out = model(x)
    assert isinstance(out, dict) and list(out) == list(model.stages)
    with torch.device("meta"):
        assert create_model("resnet50", num_classes=7).fc.out_features == 7


def _random_bn_stats(model):
    gen = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return model.eval()


def _bn_f(x, sd, p):
    return F.batch_norm(
        x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"]
    )


def resnet50_oracle(sd, x):
    """torchvision's ResNet-50 forward written with torch.nn.functional from the state dict."""
    x = imagenet_normalize(x)
    x = F.relu(_bn_f(F.conv2d(x, sd["conv1.weight"], stride=2, padding=3), sd, "bn1"))
    x = F.max_pool2d(x, 3, 2, 1)
    for i, blocks in enumerate((3, 4, 6, 3), start=1):
        for j in range(blocks):
            p, stride = f"layer{i}.{j}", 2 if i > 1 and j == 0 else 1
            y = F.relu(_bn_f(F.conv2d(x, sd[f"{p}.conv1.weight"]), sd, f"{p}.bn1"))
            y = F.conv2d(y, sd[f"{p}.conv2.weight"], stride=stride, padding=1)
            y = _bn_f(
                F.conv2d(F.relu(_bn_f(y, sd, f"{p}.bn2")), sd[f"{p}.conv3.weight"]), sd, f"{p}.bn3"
            )
            if j == 0:
                x = F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=stride)
                x = _bn_f(x, sd, f"{p}.downsample.1")
            x = F.relu(y + x)
    return F.linear(x.mean((2, 3)), sd["fc.weight"], sd["fc.bias"])


def vgg16_bn_oracle(sd, x):
    """torchvision's VGG-16-BN forward written with torch.nn.functional from the state dict."""
    x, index = imagenet_normalize(x), 0
    for v in [2, "M", 2, "M", 3, "M", 3, "M", 3, "M"]:
        if v == "M":
            x, index = F.max_pool2d(x, 2, 2), index + 1
            continue
        for _ in range(v):
            x = F.conv2d(x, sd[f"features.{index}.weight"], sd[f"features.{index}.bias"], padding=1)
            x, index = F.relu(_bn_f(x, sd, f"features.{index + 1}")), index + 3
    x = F.adaptive_avg_pool2d(x, 7).flatten(1)
    x = F.relu(F.linear(x, sd["classifier.0.weight"], sd["classifier.0.bias"]))
    x = F.relu(F.linear(x, sd["classifier.3.weight"], sd["classifier.3.bias"]))
    return F.linear(x, sd["classifier.6.weight"], sd["classifier.6.bias"])


@pytest.mark.parametrize(
    ("name", "oracle"), [("resnet50", resnet50_oracle), ("vgg16_bn", vgg16_bn_oracle)]
)
def test_forward_matches_torchvisions_forward_written_out(name, oracle, models):
    model = _random_bn_stats(models[name])
    x = torch.rand(2, 3, 64, 80, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(model(x), oracle(model.state_dict(), x), rtol=1e-4, atol=1e-5)


def test_backbone_contract_can_fail():
    x = torch.rand(2, 3, 64, 64)
    good = {f"s{s}": torch.zeros(2, 8, 64 // s, 64 // s) for s in (4, 8, 16, 32)}
    check_task_output("resnet50", good, x)
    with pytest.raises(ShapeError, match=r"a dict of 4 stages .* got 3"):
        check_task_output("resnet50", dict(list(good.items())[:3]), x)
    swapped = dict(good, s8=good["s16"])
    with pytest.raises(ShapeError, match=r"stage 's8' must be \(B, C, H/8, W/8\)"):
        check_task_output("resnet50", swapped, x)
    with pytest.raises(ShapeError, match=r"logits must be \(B, K\) for B = 2"):
        check_task_output("resnet50", torch.zeros(2, 10, 1), x)
    with pytest.raises(ValueRangeError, match="must be finite"):
        check_task_output("resnet50", torch.full((2, 10), float("nan")), x)
    with pytest.raises(TypeError, match="logits tensor or a dict of stages"):
        check_task_output("resnet50", [torch.zeros(2, 10)], x)


@pytest.mark.parametrize("shape", [(1, 3, 31, 64), (1, 4, 64, 64), (3, 64, 64)])
def test_wrong_inputs_are_shape_errors(shape, models):
    with pytest.raises(
        ShapeError, match=r"MobileNetV2 input must be \(B, 3, H, W\) with H, W >= 32"
    ):
        models["mobilenet_v2"](torch.rand(*shape))


def test_num_classes_is_checked():
    with pytest.raises(ValueRangeError, match="num_classes must be a positive int or None, got 0"):
        MobileNetV2(num_classes=0)


def test_module_classes_and_repr():
    with torch.device("meta"):
        assert isinstance(create_model("vgg16"), VGG)
        assert isinstance(create_model("resnet50"), ResNet)
    model = create_model("mobilenet_v2")
    assert isinstance(model, Backbone) and "num_classes=1000, normalize=True" in repr(model)


def test_imagenet_normalize_and_normalize_flag():
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(
        imagenet_normalize(x), (x - mean[:, None, None]) / std[:, None, None]
    )
    on, off = MobileNetV2(normalize=True).eval(), MobileNetV2(normalize=False).eval()
    off.load_state_dict(on.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(on(x), off(imagenet_normalize(x)))


def test_imagenet_classes_ship_with_their_provenance():
    names = imagenet_classes()
    assert len(names) == len(set(names)) == 1000
    assert names[:2] == ["tench", "goldfish"] and names[-1] == "toilet tissue"
    txt = Path(str(MOBILENET_V2_WEIGHTS.path())).parents[1] / "data" / "imagenet_classes.txt"
    note = txt.with_suffix(".md").read_text()
    assert file_sha256(txt) in note and "BSD 3-Clause License" in note


# The shipped MobileNetV2 weights.

REFERENCE = json.loads((DATA / "mobilenet_v2_reference.json").read_text())


def test_shipped_weights_hash_licences_and_spec():
    spec = model_info("mobilenet_v2").weights
    assert spec is MOBILENET_V2_WEIGHTS
    assert file_sha256(spec.path()) == spec.sha256 == REFERENCE["weights_sha256"]
    note = spec.path().parent.joinpath("mobilenet_v2.md").read_text()
    assert (
        spec.sha256 in note
        and "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889" in note
    )
    assert "BSD 3-Clause License" in note and "Permission is hereby granted" in note  # both


def _photo(name):
    entry = REFERENCE["photos"][name]
    path = DATA / entry["file"]
    assert file_sha256(path) == entry["sha256"]
    x = read_image(path)
    top, left = (x.shape[-2] - 224) // 2, (x.shape[-1] - 224) // 2
    return x[..., top : top + 224, left : left + 224]


@pytest.mark.parametrize(
    ("photo", "accepted"),
    [
        ("chelsea", {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}),
        ("coffee", {"espresso", "cup"}),
    ],
)
def test_pretrained_mobilenet_v2_classifies_the_photos_as_before_conversion(
    photo, accepted, pretrained
):
    """Top-1 is a right class, and the top-5 (and their logits) are the float32 original's,
    recorded by tools/convert_mobilenet_v2.py before conversion."""
    with torch.no_grad():
        logits = pretrained(_photo(photo))[0]
    names = imagenet_classes()
    values, indices = logits.topk(5)
    assert names[indices[0]] in accepted
    entry = REFERENCE["photos"][photo]
    assert indices.tolist() == entry["top5"]
    assert [names[i] for i in indices] == entry["top5_names"]
    torch.testing.assert_close(
        values, torch.tensor(entry["top5_logits_float32"]), rtol=0, atol=2e-3
    )


# User checkpoints: create_model(name, weights=PATH).


@pytest.fixture(scope="module")
def small_state():
    torch.manual_seed(5)
    return MobileNetV2(num_classes=10).state_dict()


def _assert_same_state(model, state):
    for key, value in state.items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_path_loads_a_torchvision_format_checkpoint(tmp_path, small_state, suffix):
    path = tmp_path / f"mine{suffix}"
    if suffix == ".pth":
        torch.save(small_state, path)
    else:
        save_file({k: v.contiguous() for k, v in small_state.items()}, str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = create_model("mobilenet_v2", weights=path, num_classes=10, strict=True)
    assert not model.training
    _assert_same_state(model, small_state)


def test_weights_path_resnet50_round_trip(tmp_path, models):
    path = tmp_path / "resnet50.pth"
    torch.save(models["resnet50"].state_dict(), path)
    model = create_model("resnet50", weights=str(path))
    _assert_same_state(model, models["resnet50"].state_dict())


def test_weights_path_unwraps_training_checkpoints(tmp_path, small_state):
    path = tmp_path / "checkpoint.pth"
    torch.save({"model": small_state, "optimizer": {}, "epoch": 3}, path)
    _assert_same_state(create_model("mobilenet_v2", weights=path, num_classes=10), small_state)


def test_missing_and_unexpected_keys_warn_or_fail_with_strict(tmp_path, small_state):
    state = dict(small_state)
    del state["classifier.1.bias"]
    state["head.weight"] = torch.zeros(3)
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.warns(
        UserWarning,
        match=r"does not fit MobileNetV2 exactly: missing keys \['classifier.1.bias'\], "
        r"unexpected keys \['head.weight'\]",
    ):
        model = create_model("mobilenet_v2", weights=path, num_classes=10)
    torch.testing.assert_close(model.classifier[1].weight, state["classifier.1.weight"])
    with pytest.raises(WeightsError, match=r"missing keys \['classifier.1.bias'\], unexpected"):
        create_model("mobilenet_v2", weights=path, num_classes=10, strict=True)


def test_weights_path_errors(tmp_path, small_state):
    path = tmp_path / "imagenet.pth"
    torch.save(small_state, path)
    with pytest.raises(
        WeightsError,
        match=r"shape mismatches \[classifier.1.bias: model \(1000,\), file \(10,\); "
        r"classifier.1.weight",
    ):
        create_model("mobilenet_v2", weights=path)
    with pytest.raises(WeightsError, match=r"weights file not found: .*nothing.pth"):
        create_model("mobilenet_v2", weights=tmp_path / "nothing.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(
        WeightsError,
        match=r"cannot read weights file .*garbage.pth with torch.load\(weights_only=True\)",
    ):
        create_model("mobilenet_v2", weights=garbage)
    pickled = tmp_path / "pickled.pth"
    pickled.write_bytes(pickle.dumps(Path("x"), protocol=2))  # weights_only refuses objects
    with pytest.raises(WeightsError, match=r"cannot read weights file .*pickled.pth"):
        load_weights_file(MobileNetV2(), pickled)
    not_a_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], not_a_dict)
    with pytest.raises(WeightsError, match=r"must hold a state dict .* got list"):
        load_weights_file(MobileNetV2(), not_a_dict)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00" * 20)
    with pytest.raises(WeightsError, match=r"cannot read weights file .* as safetensors"):
        load_weights_file(MobileNetV2(), broken)
    with pytest.raises(ValueError, match=r"pretrained=True .* or weights=PATH, not both"):
        create_model("mobilenet_v2", pretrained=True, weights=path)
