"""Distillation of MobileNetV2 into a spherical student (pano360.transfer._deep_distill), on
tiny panoramas: the student starts as the zero-shot network, training brings it closer to
exact, and it round-trips through its safetensors file."""

import pytest
import torch

from pano360._core import ImageIOError, ShapeError, ValueRangeError
from pano360.models import create_model
from pano360.nn import RowUntiedConv2d
from pano360.transfer import (
    BackboneDistillConfig,
    BackboneStudent,
    backbone_runners,
    band_rmse,
    distill_backbone,
    exact_features,
    load_backbone_student,
)

HW = (32, 64)


@pytest.fixture(scope="module")
def model():
    return create_model("mobilenet_v2", pretrained=True).eval()


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    # Smooth random panoramas: low-resolution noise upsampled, so the features are not noise.
    low = torch.rand(2, 3, 8, 16, generator=g)
    return torch.nn.functional.interpolate(low, size=HW, mode="bilinear", align_corners=False)


def test_student_starts_as_the_zero_shot_network(model, images):
    student = BackboneStudent(model, HW)
    untied = [n for n, m in student.network.named_modules() if isinstance(m, RowUntiedConv2d)]
    # Only the strided 3 x 3 convs are untied by default.
    assert {n.split(".")[0] for n in untied} == {
        "features_0", "features_2", "features_4", "features_7", "features_14"
    }  # fmt: skip
    spherical = backbone_runners(model, "features.6", ("spherical",))["spherical"]
    with torch.no_grad():
        torch.testing.assert_close(
            student.stage("features.6")(images), spherical(images), atol=1e-4, rtol=1e-4
        )


def test_student_inference_runs_channels_last_with_the_training_paths_values(model, images):
    # Without grad on the CPU the student runs channels-last (the compiled inference kernels);
    # the output is in the input's layout and matches the path training takes.
    student = BackboneStudent(model, HW).eval()
    seen = []
    student.network[0].register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    with torch.no_grad():
        fast = student(images)
    reference = student(images).detach()
    assert seen[0].is_contiguous(memory_format=torch.channels_last)
    assert not seen[1].is_contiguous(memory_format=torch.channels_last)
    assert fast.is_contiguous() and fast.shape == (2, 1280, 1, 2)
    torch.testing.assert_close(fast, reference, atol=1e-4, rtol=1e-4)


def test_distillation_brings_the_student_closer_to_exact(model, images, tmp_path):
    config = BackboneDistillConfig(stages=("features.3",), epochs=4, finetune_epochs=2, lr=3e-3)
    logged = []
    student = distill_backbone(
        model, images, config, cache_dir=tmp_path, log=lambda *a: logged.append(a)
    )
    assert [(phase, epoch) for phase, epoch, _ in logged] == [
        *[("layerwise", e) for e in range(4)], *[("finetune", e) for e in range(2)]
    ]  # fmt: skip
    exact = exact_features(model, images, "features.3", cache_dir=tmp_path)
    zero_shot = backbone_runners(model, "features.3", ("spherical",))["spherical"]
    with torch.no_grad():
        before = band_rmse(zero_shot(images), exact, relative=True)
        after = band_rmse(student.stage("features.3")(images), exact, relative=True)
    for band in before:
        assert after[band] < 0.9 * before[band], (band, before, after)
    # The backbone itself is not changed.
    assert all(p.grad is None for p in model.parameters())
    assert student.provenance["stages"] == ["features.3"] and student.provenance["images"] == 2
    student.save(tmp_path / "student.safetensors", model)
    loaded = load_backbone_student(model, tmp_path / "student.safetensors")
    assert loaded.provenance == student.provenance


def test_student_round_trips_through_its_file(model, images, tmp_path):
    student = BackboneStudent(model, HW)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = tmp_path / "student.safetensors"
    student.save(path, model)
    loaded = load_backbone_student(model, path)
    with torch.no_grad():
        assert torch.equal(loaded(images), student(images))
    assert loaded.erp_hw == HW and loaded.untied == student.untied


def test_loading_checks_the_file_and_the_weights(model, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ImageIOError, match=r"bad\.safetensors"):
        load_backbone_student(model, bad)
    path = tmp_path / "student.safetensors"
    BackboneStudent(model, HW).save(path, model)
    other = create_model("mobilenet_v2").eval()  # other (random) weights
    with pytest.raises(ValueRangeError, match="other weights"):
        load_backbone_student(other, path)


def test_errors(model, images):
    with pytest.raises(ShapeError, match="erp_hw"):
        BackboneStudent(model, (40, 80))
    with pytest.raises(ValueRangeError, match="untied"):
        BackboneStudent(model, HW, untied=["features_99"])
    with pytest.raises(TypeError, match="Backbone"):
        BackboneStudent(torch.nn.Conv2d(3, 3, 3), HW)
    with pytest.raises(ValueRangeError, match="stages"):
        BackboneDistillConfig(stages=())
    with pytest.raises(ValueRangeError, match="epochs"):
        BackboneDistillConfig(epochs=0, finetune_epochs=0)
    with pytest.raises(ValueError, match="stages"):
        distill_backbone(model, images, BackboneDistillConfig(stages=("layer9",)))
    with pytest.raises(ValueRangeError, match="order"):
        distill_backbone(model, images, BackboneDistillConfig(stages=("features.6", "features.3")))
    with pytest.raises(ShapeError):
        distill_backbone(model, images[:, :, :, :40])
    with pytest.raises(TypeError, match="Backbone"):
        distill_backbone(torch.nn.Conv2d(3, 3, 3), images)
    with pytest.raises(TypeError, match="BackboneDistillConfig"):
        distill_backbone(model, images, {"epochs": 1})
    with pytest.raises(ValueError, match="stage must be one of"):
        BackboneStudent(model, HW).stage("features.4")
