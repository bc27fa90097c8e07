"""Model registry, shipped weights and the MTCNN networks: interface, loading, remapping."""

import dataclasses
import shutil

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from torch.autograd import gradcheck

from pano360._core import file_sha256, registry
from pano360.errors import ChoiceError, ShapeError, ValueRangeError
from pano360.models import (
    MTCNN_PNET_WEIGHTS,
    MTCNNOutput,
    ONet,
    PNet,
    RNet,
    WeightsError,
    WeightsSpec,
    check_task_output,
    create_model,
    list_models,
    list_tasks,
    load_weights,
    model_info,
    mtcnn_normalize,
    register_model,
    remap_facenet_mtcnn_state_dict,
)
from pano360.models.mtcnn import _FACENET_KEYS

MTCNN = ["mtcnn_onet", "mtcnn_pnet", "mtcnn_rnet"]


@pytest.fixture
def scratch_registry(monkeypatch):
    """A copy of the registry that the test may add to; the real one is left untouched."""
    list_models()  # built-in models registered before the copy
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


# Registry.


def test_mtcnn_models_are_registered_with_weights():
    assert set(MTCNN) <= set(list_models())
    assert set(MTCNN) <= set(list_models(pretrained=True))
    assert list_models() == sorted(list_models())


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_keeps_its_task_contract(name):
    """Every model, whatever its task: built without downloads, run on a small batch, its
    output checked against its task's contract, and gradients reach every parameter."""
    info = model_info(name)
    assert info.task in list_tasks() and info.description
    model = create_model(name)
    assert isinstance(model, nn.Module) and model.training
    x = torch.rand(2, *info.input_size, generator=torch.Generator().manual_seed(0))
    out = model(x)
    check_task_output(name, out, x)
    tensors = [t for t in (out if isinstance(out, tuple) else (out,)) if t is not None]
    params = list(model.parameters())
    if params:
        sum(t.square().mean() for t in tensors).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


def test_task_contracts_can_fail():
    x = torch.rand(2, 3, 12, 12)
    with pytest.raises(TypeError, match="MTCNNOutput"):
        check_task_output("mtcnn_pnet", x, x)
    with pytest.raises(ShapeError, match=r"face_logits must be \(B, 2, ...\)"):
        check_task_output("mtcnn_pnet", MTCNNOutput(x[:1, :2], x[:1, :2]), x)
    erp = torch.rand(2, 3, 8, 16)
    with pytest.raises(ShapeError, match=r"must return \(B, 1, H, W\)"):
        check_task_output("spectral", erp, erp)
    with pytest.raises(ValueRangeError, match="sum to 1"):
        check_task_output("spectral", erp[:, :1], erp)


def test_list_models_by_task():
    assert list_models(task="mtcnn") == MTCNN
    assert set(list_models(task="saliency")) == {
        "equator",
        "planar_unet",
        "spectral",
        "spherical_unet",
        "spherical_unet_tangent",
        "uniform",
    }
    with pytest.raises(ChoiceError, match="task must be one of"):
        list_models(task="nope")


@pytest.mark.parametrize("name", list_models(pretrained=True))
def test_every_pretrained_model_loads_its_verified_weights(name):
    spec = model_info(name).weights
    model = create_model(name, pretrained=True)
    assert not model.training
    file_tensors = load_file(str(spec.path()))
    state = model.state_dict()
    assert set(state) == set(file_tensors)
    for key, value in file_tensors.items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0)
    # The shipped licence names the file's hash and carries the licence text.
    notice = spec.path().parent.joinpath(spec.licence_file.split("/")[-1]).read_text()
    # Every licence of an SPDX expression ("MIT", "BSD-3-Clause AND MIT") has its text there.
    texts = {"MIT": "Permission is hereby granted", "BSD-3-Clause": "Redistribution and use in"}
    assert spec.sha256 in notice and all(texts[x] in notice for x in spec.licence.split(" AND "))


def test_create_model_passes_keyword_arguments(scratch_registry):
    @register_model("test_tiny_conv", task="saliency", input_size=(3, 8, 8))
    def test_tiny_conv(channels: int = 4) -> nn.Module:
        return nn.Conv2d(3, channels, 3)

    assert create_model("test_tiny_conv", channels=2).out_channels == 2
    assert "test_tiny_conv" in list_models() and "test_tiny_conv" not in list_models(True)


def test_register_model_rejects_a_taken_name(scratch_registry):
    with pytest.raises(ValueError, match="'mtcnn_pnet' is already registered"):
        register_model("mtcnn_pnet", task="mtcnn", input_size=(3, 12, 12))(PNet)


def test_create_model_errors(scratch_registry):
    with pytest.raises(ValueError, match=r"model name must be one of .*'mtcnn_pnet'.*got 'nope'"):
        create_model("nope")
    with pytest.raises(ValueError, match="model name must be one of"):
        model_info("nope")
    with pytest.raises(ValueError, match="task must be a registered task"):
        register_model("test_no_task", task="nope", input_size=(3, 8, 8))(nn.Identity)
    register_model("test_no_weights", task="saliency", input_size=(3, 8, 8))(lambda: nn.Identity())
    with pytest.raises(ValueError, match="'test_no_weights' has no pretrained weights"):
        create_model("test_no_weights", pretrained=True)


# load_weights: every failure is a WeightsError naming the problem.


def _local_spec(path, sha256="auto"):
    digest = file_sha256(path) if sha256 == "auto" else sha256
    return dataclasses.replace(MTCNN_PNET_WEIGHTS, file=str(path), package=None, sha256=digest)


def test_corrupted_weights_file_is_a_clear_error(tmp_path):
    path = tmp_path / "pnet.safetensors"
    shutil.copy(MTCNN_PNET_WEIGHTS.path(), path)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte in a tensor
    path.write_bytes(bytes(data))
    spec = _local_spec(path, MTCNN_PNET_WEIGHTS.sha256)
    with pytest.raises(
        WeightsError, match=f"corrupted.*sha256 must be {spec.sha256}, got [0-9a-f]"
    ):
        load_weights(PNet(), spec)


def test_create_model_reports_a_corrupted_shipped_file(tmp_path, scratch_registry):
    path = tmp_path / "pnet.safetensors"
    path.write_bytes(MTCNN_PNET_WEIGHTS.path().read_bytes()[:-1] + b"x")
    spec = _local_spec(path, MTCNN_PNET_WEIGHTS.sha256)
    register_model("test_corrupt_pnet", task="mtcnn", input_size=(3, 12, 12), weights=spec)(PNet)
    assert isinstance(create_model("test_corrupt_pnet"), PNet)  # no weights asked: fine
    with pytest.raises(WeightsError, match="corrupted or not the expected one"):
        create_model("test_corrupt_pnet", pretrained=True)


def test_unreadable_and_missing_weights_files(tmp_path):
    path = tmp_path / "pnet.safetensors"
    path.write_bytes(MTCNN_PNET_WEIGHTS.path().read_bytes()[:-10])  # truncated
    with pytest.raises(WeightsError, match=r"cannot read weights file .* as safetensors"):
        load_weights(PNet(), _local_spec(path, None))
    with pytest.raises(WeightsError, match=r"weights file not found: .*nothing.safetensors"):
        load_weights(PNet(), _local_spec(tmp_path / "nothing.safetensors", None))


def test_missing_unexpected_and_misshapen_keys_are_reported(tmp_path):
    tensors = load_file(str(MTCNN_PNET_WEIGHTS.path()))
    del tensors["face.bias"]
    tensors["extra.weight"] = torch.zeros(1)
    tensors["box.bias"] = torch.zeros(5)
    path = tmp_path / "bad.safetensors"
    save_file(tensors, str(path))
    with pytest.raises(
        WeightsError,
        match=r"does not fit PNet: missing keys \['face.bias'\], unexpected keys "
        r"\['extra.weight'\], shape mismatches \[box.bias: model \(4,\), file \(5,\)\]",
    ):
        load_weights(PNet(), _local_spec(path))


def test_load_weights_keeps_the_models_dtype_and_is_the_same_object():
    model = PNet().double()
    assert load_weights(model, MTCNN_PNET_WEIGHTS) is model
    assert model.face.weight.dtype == torch.float64


def test_weights_spec_is_frozen():
    assert isinstance(MTCNN_PNET_WEIGHTS, WeightsSpec)
    with pytest.raises(dataclasses.FrozenInstanceError):
        MTCNN_PNET_WEIGHTS.sha256 = "0"


# Remapping facenet-pytorch's checkpoints, against facenet-pytorch's forward written out.

FACENET_SHAPES = {
    "pnet": {"conv1": (10, 3, 3), "conv2": (16, 10, 3), "conv3": (32, 16, 3)},
    "rnet": {"conv1": (28, 3, 3), "conv2": (48, 28, 3), "conv3": (64, 48, 2)},
    "onet": {
        "conv1": (32, 3, 3),
        "conv2": (64, 32, 3),
        "conv3": (64, 64, 3),
        "conv4": (128, 64, 2),
    },
}
FACENET_DENSE = {
    "pnet": {"conv4_1": (2, 32, 1, 1), "conv4_2": (4, 32, 1, 1)},
    "rnet": {"dense4": (128, 576), "dense5_1": (2, 128), "dense5_2": (4, 128)},
    "onet": {
        "dense5": (256, 1152),
        "dense6_1": (2, 256),
        "dense6_2": (4, 256),
        "dense6_3": (10, 256),
    },
}


def random_facenet_state_dict(net, seed=0):
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for name, (o, i, k) in FACENET_SHAPES[net].items():
        sd[f"{name}.weight"] = torch.randn(o, i, k, k, generator=gen) * 0.3
        sd[f"{name}.bias"] = torch.randn(o, generator=gen) * 0.1
        sd[f"prelu{name[4:]}.weight"] = torch.rand(o, generator=gen)
    for name, shape in FACENET_DENSE[net].items():
        sd[f"{name}.weight"] = torch.randn(*shape, generator=gen) * 0.1
        sd[f"{name}.bias"] = torch.randn(shape[0], generator=gen) * 0.1
    for name, units in {"rnet": ("prelu4", 128), "onet": ("prelu5", 256)}.items():
        if name == net:
            sd[f"{units[0]}.weight"] = torch.rand(units[1], generator=gen)
    return sd


def facenet_forward_oracle(net, sd, x):
    """facenet-pytorch 2.6.0's forward, layer by layer, including its (W, H, C) flattening."""
    x = (x * 255 - 127.5) * 0.0078125
    pools = {"pnet": [(2, 2), None, None], "rnet": [(3, 2), (3, 2), None]}
    pools["onet"] = [(3, 2), (3, 2), (2, 2), None]
    for i, pool in enumerate(pools[net], start=1):
        x = F.prelu(F.conv2d(x, sd[f"conv{i}.weight"], sd[f"conv{i}.bias"]), sd[f"prelu{i}.weight"])
        if pool:
            x = F.max_pool2d(x, pool[0], pool[1], ceil_mode=True)
    if net == "pnet":
        face = F.conv2d(x, sd["conv4_1.weight"], sd["conv4_1.bias"])
        return face, F.conv2d(x, sd["conv4_2.weight"], sd["conv4_2.bias"]), None
    flat = x.permute(0, 3, 2, 1).contiguous().view(x.shape[0], -1)
    first, prelu, heads = (
        ("dense4", "prelu4", "dense5") if net == "rnet" else ("dense5", "prelu5", "dense6")
    )
    y = F.prelu(F.linear(flat, sd[f"{first}.weight"], sd[f"{first}.bias"]), sd[f"{prelu}.weight"])
    face = F.linear(y, sd[f"{heads}_1.weight"], sd[f"{heads}_1.bias"])
    box = F.linear(y, sd[f"{heads}_2.weight"], sd[f"{heads}_2.bias"])
    if net == "rnet":
        return face, box, None
    raw = F.linear(y, sd["dense6_3.weight"], sd["dense6_3.bias"])
    # facenet-pytorch: points_x = raw[:, :5], points_y = raw[:, 5:10].
    return face, box, torch.stack((raw[:, :5], raw[:, 5:10]), dim=-1)


@pytest.mark.parametrize(
    ("net", "cls", "hw"),
    [("pnet", PNet, (17, 23)), ("rnet", RNet, (24, 24)), ("onet", ONet, (48, 48))],
)
def test_remap_facenet_state_dict_matches_facenets_forward(net, cls, hw):
    sd = {k: v.double() for k, v in random_facenet_state_dict(net).items()}
    model = cls().double().eval()
    model.load_state_dict(remap_facenet_mtcnn_state_dict(net, sd), strict=True)
    x = torch.rand(3, 3, *hw, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        ours, theirs = model(x), facenet_forward_oracle(net, sd, x)
    for a, b in zip(ours, theirs, strict=True):
        if b is None:
            assert a is None
        else:
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert set(_FACENET_KEYS[net]) == {k.rsplit(".", 1)[0] for k in sd}


def test_remap_errors():
    sd = random_facenet_state_dict("rnet")
    with pytest.raises(ValueError, match="net must be one of 'pnet', 'rnet', 'onet', got 'xnet'"):
        remap_facenet_mtcnn_state_dict("xnet", sd)
    del sd["dense4.bias"]
    sd["surprise.weight"] = torch.zeros(1)
    with pytest.raises(
        WeightsError,
        match=r"not a facenet-pytorch rnet state dict: missing keys \['dense4.bias'\], "
        r"unexpected keys \['surprise.weight'\]",
    ):
        remap_facenet_mtcnn_state_dict("rnet", sd)


# MTCNN network contracts.


def test_mtcnn_input_normalisation_is_inside_forward():
    model = PNet().eval()
    x = torch.rand(1, 3, 14, 16)
    f = model.features(mtcnn_normalize(x))
    out = model(x)
    torch.testing.assert_close(out.face_logits, model.face(f))
    torch.testing.assert_close(
        mtcnn_normalize(torch.tensor([0.0, 1.0])), torch.tensor([-0.99609375, 0.99609375])
    )


def test_output_shapes_and_face_prob():
    pnet, rnet, onet = PNet(), RNet(), ONet()
    out = pnet(torch.rand(2, 3, 31, 20))  # h = ceil(29 / 2) - 4 = 11, w = ceil(18 / 2) - 4 = 5
    assert out.face_logits.shape == (2, 2, 11, 5) and out.box_deltas.shape == (2, 4, 11, 5)
    assert out.landmarks is None and isinstance(out, MTCNNOutput)
    torch.testing.assert_close(
        out.face_prob, torch.sigmoid(out.face_logits[:, 1] - out.face_logits[:, 0])
    )
    assert rnet(torch.rand(5, 3, 24, 24)).box_deltas.shape == (5, 4)
    o = onet(torch.rand(5, 3, 48, 48))
    assert o.face_logits.shape == (5, 2) and o.landmarks.shape == (5, 5, 2)


@pytest.mark.parametrize(
    ("model", "shape", "match"),
    [
        (PNet(), (1, 3, 11, 20), r"PNet input must be at least 12 x 12, got \(H, W\) = \(11, 20\)"),
        (PNet(), (1, 4, 12, 12), r"PNet input must be \(B, 3, H, W\), got \(1, 4, 12, 12\)"),
        (RNet(), (1, 3, 24, 25), r"RNet input must be \(B, 3, 24, 24\), got \(1, 3, 24, 25\)"),
        (ONet(), (3, 48, 48), r"ONet input must be \(B, 3, H, W\), got \(3, 48, 48\)"),
    ],
)
def test_wrong_input_shapes(model, shape, match):
    with pytest.raises(ShapeError, match=match):
        model(torch.rand(*shape))


@pytest.mark.parametrize("hw", [(12, 12), (17, 24), (24, 19)])
def test_convention_pnet_cell_sees_rows_2i_to_2i_plus_11(hw):
    """The receptive field pnet_map_to_boxes assumes: stride 2, window 12, ceil_mode at the end."""
    torch.manual_seed(0)
    model = PNet().double()
    x = torch.rand(1, 3, *hw, dtype=torch.float64, requires_grad=True)
    out = model(x)
    h, w = out.face_logits.shape[-2:]
    for i, j in [(0, 0), (h - 1, w - 1), (h // 2, w - 1)]:
        (grad,) = torch.autograd.grad(out.face_logits[0, 1, i, j], x, retain_graph=True)
        rows = torch.nonzero(grad.abs().sum((0, 1, 3))).flatten()
        cols = torch.nonzero(grad.abs().sum((0, 1, 2))).flatten()
        assert rows.tolist() == list(range(2 * i, min(2 * i + 12, hw[0])))
        assert cols.tolist() == list(range(2 * j, min(2 * j + 12, hw[1])))


def test_convention_onet_landmarks_are_xy_pairs():
    model = ONet()
    with torch.no_grad():
        model.landmarks.weight.zero_()
        model.landmarks.bias.copy_(torch.arange(10.0))
    points = model(torch.rand(1, 3, 48, 48)).landmarks[0]
    assert points.tolist() == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]


def test_gradcheck_pnet_float64():
    torch.manual_seed(0)
    model = PNet().double()
    x = torch.rand(1, 3, 12, 13, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: tuple(model(t)[:2]), (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", [n for n in list_models() if model_info(n).stack is not None])
def test_a_distillable_model_names_a_conv_stack_that_computes_its_features(name):
    """The stack contract: a supported conv stack (receptive field and stride known) whose
    output is the model's features; for P-Net, on images in [0, 1]."""
    from pano360.transfer import receptive_field

    stack = model_info(name).stack()
    size, stride = receptive_field(stack)
    assert (size, stride) == (12, 2)
    x = torch.rand(1, 3, 24, 24)
    pnet = create_model(name, pretrained=True)
    torch.testing.assert_close(stack(x), pnet.features(mtcnn_normalize(x)))
