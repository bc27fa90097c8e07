"""``pano360.training.distill`` and ``DistillTask`` on a deep backbone (MobileNetV2, tiny
panoramas): the same steps as ``pano360.transfer.distill_backbone``, in a run folder with the
exact targets cached, a finished run read back, other settings refused, documented errors."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from pano360._core import OutputExistsError, ShapeError, ValueRangeError
from pano360.models import create_model
from pano360.training import DistillTask, distill
from pano360.transfer import (
    BackboneDistillConfig,
    BackboneStudent,
    DistillConfig,
    distill_backbone,
    load_backbone_student,
    load_student,
)

CONFIG = BackboneDistillConfig(stages=("features.3",), epochs=1, finetune_epochs=1, seed=2)


# Many tiny ops: on a shared 2-core machine one thread is faster and steadier than two.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    return create_model("mobilenet_v2", pretrained=True).eval()


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(1)
    return F.interpolate(torch.rand(2, 3, 8, 16, generator=g), size=(32, 64), mode="bilinear")


def states_equal(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_lightning_trains_what_the_plain_loop_trains(model, images, tmp_path):
    logged = []
    plain = distill_backbone(
        model, images, CONFIG, cache_dir=tmp_path / "cache", log=lambda *a: logged.append(a)
    )
    student, history = distill(model, images, CONFIG, cache_dir=tmp_path / "cache")
    assert isinstance(student, BackboneStudent) and not student.training
    assert states_equal(student, plain)
    assert [(r["epoch"], r["phase"]) for r in history] == [(1, "layerwise"), (2, "finetune")]
    assert [r["mse"] for r in history] == [losses for _, _, losses in logged]
    assert student.provenance == plain.provenance
    assert student.provenance["stages"] == ["features.3"] and student.provenance["images"] == 2
    zero_shot = BackboneStudent(model, (32, 64))
    assert not states_equal(student, zero_shot)  # it trained


def test_the_run_folder_holds_the_student_file_and_the_exact_cache(model, images, tmp_path):
    run = tmp_path / "run"
    student, history = distill(model, images, CONFIG, run)
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoints", "distill.json", "exact", "student.safetensors",
    ]  # fmt: skip
    assert len(list((run / "exact").iterdir())) == 2  # one file per image and stage
    assert states_equal(load_backbone_student(model, run / "student.safetensors"), student)
    record = json.loads((run / "distill.json").read_text())
    assert record["complete"] and record["config"]["stages"] == ["features.3"]
    assert set(record["fingerprint"]) == {"backbone", "images", "erp_hw"}
    # A finished run is read back, not trained again.
    again, again_history = distill(model, images, CONFIG, run)
    assert states_equal(again, student) and again_history == history
    assert again.provenance == student.provenance
    with pytest.raises(ValueRangeError, match="load_backbone_student"):
        load_student(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3)), run)
    other = BackboneDistillConfig(stages=("features.3", "features.6"), epochs=1)
    with pytest.raises(OutputExistsError, match=r"config stages: \[.features\.3.\] there"):
        distill(model, images, other, run)
    with pytest.raises(OutputExistsError, match="the images differ"):
        distill(model, images.flip(-1), CONFIG, run)
    with pytest.raises(OutputExistsError, match="resume=True"):
        distill(model, images, CONFIG, run, resume=False)


def test_backbone_task_errors(model, images):
    with pytest.raises(TypeError, match="BackboneDistillConfig"):
        DistillTask(model, images, DistillConfig(epochs=1))
    with pytest.raises(ValueError, match=r"config\.stages must be among"):
        DistillTask(model, images, BackboneDistillConfig(stages=("layer9",)))
    with pytest.raises(ValueRangeError, match="order"):
        distill(model, images, BackboneDistillConfig(stages=("features.6", "features.3")))
    with pytest.raises(ShapeError):
        distill(model, images[:, :, :, :40], CONFIG)
