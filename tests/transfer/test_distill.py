"""Layer-wise SphConv distillation: the student, row-restricted training, error reduction against
the zero-shot spherical network, determinism, the run folder, Lightning's checkpoints and
kill-and-resume, the documented errors. (RowUntiedConv2d.forward_rows, which the training calls,
is tested in tests/nn; resuming after SIGKILL in tests/training/test_distill_resume.py.)"""

import dataclasses
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from torch import nn

from pano360 import training, transfer
from pano360.errors import ChoiceError, OutputExistsError, ShapeError, ValueRangeError
from pano360.models import create_model, mtcnn_normalize
from pano360.nn import RowUntiedConv2d, SphericalAvgPool2d, SphericalMaxPool2d
from pano360.training import DistillTask, distill
from pano360.transfer import (
    LAT_BANDS,
    DistillConfig,
    build_spherical,
    build_student,
    distillable_models,
    exact_outputs,
    layer_rmse,
    load_student,
    model_stack,
    receptive_field,
)
from pano360.transfer._distillation import _row_mse  # no public API: the loss of sampled rows

D = torch.float64
POLAR = LAT_BANDS[2]


# Many tiny ops: on a shared 2-core machine one thread is faster and steadier than two.
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_stack(seed=0):
    """VGG-like: conv, ReLU, 2x2 max pool, conv, ReLU, conv (valid, as MTCNN)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 6, 3),
        nn.ReLU(),
        nn.Conv2d(6, 4, 3),
    )


def blurry_erps(n, h, seed):
    """Random panoramas with detail at about four pixels (noise upsampled bilinearly)."""
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(n, 3, h // 4, h // 2, generator=g), size=(h, 2 * h),
                         mode="bilinear")  # fmt: skip


def states_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --- the student --------------------------------------------------------------------------------


def test_student_at_init_is_the_zero_shot_spherical_network_layer_for_layer():
    stack = tiny_stack().double()
    student = build_student(stack, (16, 32))
    spherical = build_spherical(stack, (16, 32))
    assert [name for name, _ in student.named_children()] == [str(i) for i in range(6)]
    assert isinstance(student[0], RowUntiedConv2d) and isinstance(student[2], SphericalMaxPool2d)
    x = blurry_erps(2, 16, seed=0).double()
    a, b = x, x
    for i, (s, z) in enumerate(zip(student, spherical, strict=True)):
        a, b = s(a), z(b)
        stride = receptive_field(stack, i)[1]
        assert a.shape == (2, stack[i].out_channels if i in (0, 3, 5) else a.shape[1],
                           16 // stride, 32 // stride)  # fmt: skip
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    # The first conv reads the image: exact from the start.
    torch.testing.assert_close(student[0](x), exact_outputs(stack, x, [0])[0], atol=1e-5, rtol=0)


def test_student_convs_space_taps_like_the_exact_patches():
    # After a total stride S the exact patch has S tan(s0) between feature pixels.
    student = build_student(tiny_stack(), (16, 32))
    base = 2 * math.pi / 32
    assert student[0].tap_spacing == base
    assert student[3].tap_spacing == pytest.approx(math.atan(2 * math.tan(base)), abs=1e-15)


@pytest.mark.parametrize(
    "kind, k, s, centre",
    [
        (nn.AvgPool2d, 2, 2, 0.5),  # the ERP grid of (H/2, W/2): input 2i + 0.5
        (nn.AvgPool2d, 4, 2, 0.5),
        (nn.AvgPool2d, 3, 1, 0.0),
        (nn.AvgPool2d, 3, 2, 1.0),  # odd k - s: half a pixel south of the grid (documented)
        (nn.MaxPool2d, 2, 2, 1.0),  # max of rows 2i, 2i + 1 of a map increasing downwards
    ],
)
def test_student_pools_sit_on_the_erp_grid(kind, k, s, centre):
    stack = nn.Sequential(nn.Conv2d(1, 1, 3), kind(k, s))
    student = build_student(stack, (16, 32))
    assert isinstance(student[1], SphericalMaxPool2d | SphericalAvgPool2d)
    rows = torch.arange(16.0)[None, None, :, None].expand(1, 1, 16, 32)
    out = student[1](rows)
    assert out.shape == (1, 1, 16 // s, 32 // s)
    inner = out[0, 0, 2:-2, 0]  # away from the poles, where rows fold back
    expected = s * torch.arange(16 // s)[2:-2] + centre
    torch.testing.assert_close(inner, expected.float())


def test_pointwise_convs_are_copied_without_padding_and_stay_frozen():
    norm = nn.Conv2d(3, 3, 1, padding=1).requires_grad_(False)
    stack = nn.Sequential(norm, nn.Conv2d(3, 2, 3))
    student = build_student(stack, (8, 16))
    assert student[0].padding == (0, 0) and not student[0].weight.requires_grad
    assert student(torch.rand(1, 3, 8, 16)).shape == (1, 2, 8, 16)


# --- the loss of sampled rows ---------------------------------------------------------------------


def test_area_weighted_row_mse_weighs_rows_by_solid_angle():
    pred = torch.zeros(1, 1, 3, 4, dtype=D)
    target = torch.ones(1, 1, 3, 4, dtype=D) * torch.tensor([1.0, 2.0, 3.0], dtype=D)[:, None]
    rows = torch.tensor([0, 3, 7])  # on an 8-row map: the polar row, two near the equator
    lat_edges = [(math.pi / 2 - math.pi * r / 8, math.pi / 2 - math.pi * (r + 1) / 8) for r in rows]
    area = torch.tensor([math.sin(a) - math.sin(b) for a, b in lat_edges], dtype=D)
    err = torch.tensor([1.0, 4.0, 9.0], dtype=D)
    expected = (err * area).sum() / area.sum()
    torch.testing.assert_close(_row_mse(pred, target, rows, (8, 16), True), expected)
    torch.testing.assert_close(_row_mse(pred, target, rows, (8, 16), False), err.mean())


# --- distillation reduces the error -------------------------------------------------------------


@pytest.mark.parametrize(
    "h, config, bound",
    [
        (16, DistillConfig(epochs=8, rows_per_image=8, lr=2e-3, batch_size=2), 0.9),
        (32, DistillConfig(epochs=5, rows_per_image=16, lr=1e-3, batch_size=2), 0.97),
    ],
)
def test_distillation_beats_the_zero_shot_spherical_network_near_the_poles(h, config, bound):
    stack = tiny_stack()
    student, history = distill(stack, blurry_erps(8, h, seed=1), config)
    assert [r["epoch"] for r in history] == list(range(1, config.epochs + 1))
    assert history[-1]["mse"]["3"] < history[0]["mse"]["3"]
    assert "0" not in history[0]["mse"]  # the first conv is exact from the start
    test = blurry_erps(4, h, seed=2)  # panoramas it was not trained on
    zero_shot = layer_rmse(build_spherical(stack, (h, 2 * h)), stack, test)
    distilled = layer_rmse(student, stack, test)
    for layer in (0, 1, 2):  # exact (the first conv) or fixed (its ReLU and pool)
        assert distilled[layer][POLAR] == pytest.approx(zero_shot[layer][POLAR], abs=1e-6)
    assert zero_shot[0][POLAR] < 1e-5
    for layer in (3, 4, 5):  # distilled convs, run end to end on their own inputs
        assert distilled[layer][POLAR] < bound * zero_shot[layer][POLAR], layer


def test_the_first_conv_is_trained_unless_it_is_exact_from_the_start():
    torch.manual_seed(0)
    imgs = blurry_erps(2, 8, seed=3).double()
    tail = [nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 2, 3)]
    affine = nn.Sequential(nn.Conv2d(3, 3, 1), nn.Conv2d(3, 4, 3), *tail).double()
    student, history = distill(affine, imgs, DistillConfig(epochs=1))
    assert list(history[0]["mse"]) == ["4"]
    torch.testing.assert_close(
        student[:2](imgs), exact_outputs(affine, imgs, [1])[0], atol=1e-5, rtol=0
    )
    # Sampling does not commute with tanh: the conv after it is not exact, so it trains.
    curved = nn.Sequential(nn.Tanh(), *affine[1:])
    assert list(distill(curved, imgs, DistillConfig(epochs=1))[1][0]["mse"]) == ["1", "4"]
    grouped = DistillConfig(epochs=1, row_group_size=2)  # tied rows are not exact either
    assert list(distill(tiny_stack(), imgs.float(), grouped)[1][0]["mse"]) == ["0", "3", "5"]


def test_layer_inputs_option_trains_on_the_exact_output_of_the_previous_layer():
    stack = tiny_stack()
    imgs = blurry_erps(2, 8, seed=3)
    a, _ = distill(stack, imgs, DistillConfig(epochs=1, inputs="conv"))
    b, _ = distill(stack, imgs, DistillConfig(epochs=1, inputs="layer"))
    assert not torch.equal(a[3].weights[0], b[3].weights[0])  # pool in the stage or not
    assert torch.equal(a[5].weights[0], b[5].weights[0])  # ReLU only: the same inputs


def test_finetuning_trains_the_whole_student_against_the_last_layer():
    stack = tiny_stack()
    config = DistillConfig(epochs=1, finetune_epochs=2, rows_per_image=4)
    student, history = distill(stack, blurry_erps(2, 8, seed=4), config)
    assert [r["phase"] for r in history] == ["layerwise", "finetune", "finetune"]
    assert list(history[1]["mse"]) == ["5"]
    untouched = build_student(stack, (8, 16))
    assert not torch.equal(student[0].weights[0], untouched[0].weights[0])  # trained now


# --- determinism, checkpoints, kill and resume --------------------------------------------------


def test_same_seed_gives_identical_weights_and_another_seed_different_ones():
    stack = tiny_stack()
    imgs = blurry_erps(3, 8, seed=5)
    config = DistillConfig(epochs=2, rows_per_image=2, finetune_epochs=1, seed=7)
    a, ha = distill(stack, imgs, config)
    b, hb = distill(stack, imgs, config)
    c, _ = distill(stack, imgs, DistillConfig(epochs=2, rows_per_image=2, finetune_epochs=1))
    assert states_equal(a, b) and ha == hb
    assert not states_equal(a, c)


class Kill(Exception):
    pass


class Steps(Callback):
    """Records (epoch, batch index) of every training step; raises Kill after global step
    ``kill_at`` (before that step's checkpoint is written)."""

    def __init__(self, kill_at: int | None = None) -> None:
        self.kill_at, self.steps = kill_at, []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.steps.append((trainer.current_epoch, batch_idx))
        if trainer.global_step == self.kill_at:
            raise Kill


def test_a_run_killed_mid_epoch_and_resumed_ends_with_the_same_weights(tmp_path):
    stack = tiny_stack()
    imgs = blurry_erps(3, 8, seed=6)  # 2 steps an epoch
    config = DistillConfig(epochs=2, finetune_epochs=2, rows_per_image=3, batch_size=2, seed=3)
    reference, ref_history = distill(stack, imgs, config, tmp_path / "whole")

    out = tmp_path / "killed"
    with pytest.raises(Kill):  # killed after step 4 (layer-wise epoch 2): checkpoint of step 3
        distill(stack, imgs, config, out, checkpoint_every_n_steps=1, callbacks=[Steps(4)])
    record = json.loads((out / "distill.json").read_text())
    assert not record["complete"] and not (out / "student.safetensors").exists()
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3
    with pytest.raises(Kill):  # resumed, then killed again after step 7 (fine-tuning epoch 4)
        distill(stack, imgs, config, out, checkpoint_every_n_steps=2, callbacks=[Steps(7)])
    steps = Steps()
    resumed, history = distill(stack, imgs, config, out, callbacks=[steps])
    assert steps.steps == [(3, 0), (3, 1)]  # from the checkpoint of step 6, the end of epoch 3
    assert states_equal(resumed, reference)
    assert history == ref_history
    assert states_equal(load_student(stack, out), reference)


def test_a_finished_run_is_loaded_not_retrained(tmp_path):
    stack = tiny_stack()
    imgs = blurry_erps(2, 8, seed=7)
    config = DistillConfig(epochs=1, rows_per_image=2)
    first, history = distill(stack, imgs, config, tmp_path)
    steps = Steps()
    again, again_history = distill(stack, imgs, config, tmp_path, callbacks=[steps])
    assert steps.steps == [] and again_history == history and states_equal(first, again)


def test_the_run_folder_holds_json_safetensors_and_lightnings_checkpoint(tmp_path):
    stack = tiny_stack()
    distill(stack, blurry_erps(2, 8, seed=8), DistillConfig(epochs=2, rows_per_image=2), tmp_path)
    names = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert names == ["checkpoints", "checkpoints/last.ckpt", "distill.json", "student.safetensors"]
    record = json.loads((tmp_path / "distill.json").read_text())
    assert record["complete"] and record["completed_epochs"] == record["total_epochs"] == 2
    assert (record["format"], record["version"]) == ("pano360.transfer.distill", 2)
    assert record["config"]["epochs"] == 2 and record["fingerprint"]["erp_hw"] == [8, 16]
    assert [r["epoch"] for r in record["history"]] == [1, 2]
    # Lightning's checkpoint, read without unpickling code: the student, Adam, our stream.
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert "exp_avg" in ckpt["optimizer_states"][0]["state"][0]
    assert ckpt["distill"]["generator"].dtype == torch.uint8
    assert all(k.startswith("student.") for k in ckpt["state_dict"])  # the stack is not saved
    student = safetensors.torch.load_file(str(tmp_path / "student.safetensors"))
    assert student.keys() == build_student(stack, (8, 16)).state_dict().keys()


def test_finished_runs_of_format_version_1_load_and_unfinished_ones_are_refused(tmp_path):
    stack = tiny_stack()
    imgs = blurry_erps(2, 8, seed=8)
    config = DistillConfig(epochs=1, rows_per_image=2)
    student, _ = distill(stack, imgs, config, tmp_path)
    record = json.loads((tmp_path / "distill.json").read_text())
    (tmp_path / "distill.json").write_text(json.dumps({**record, "version": 1}))
    assert states_equal(load_student(stack, tmp_path), student)
    assert states_equal(distill(stack, imgs, config, tmp_path)[0], student)
    (tmp_path / "distill.json").write_text(json.dumps({**record, "version": 1, "complete": False}))
    with pytest.raises(OutputExistsError, match="unfinished distill run of format version 1"):
        distill(stack, imgs, config, tmp_path)
    (tmp_path / "distill.json").write_text(json.dumps({**record, "version": 3}))
    with pytest.raises(OutputExistsError, match="format version 3, this pano360 reads versions"):
        distill(stack, imgs, config, tmp_path)


def test_the_student_stays_in_eval_mode_while_training():
    class Modes(Callback):
        def __init__(self):
            self.seen = []

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.seen.append(any(m.training for m in module.student.modules()))

    stack = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Conv2d(4, 2, 3)
    )
    stack.eval()
    before = stack[1].running_mean.clone()
    task_steps = Modes()
    distill(stack, blurry_erps(2, 8, seed=2), DistillConfig(epochs=1), callbacks=[task_steps])
    assert task_steps.seen and not any(task_steps.seen)
    assert torch.equal(stack[1].running_mean, before)


def test_training_step_returns_the_loss_and_its_components():
    task = DistillTask(tiny_stack(), blurry_erps(2, 8, seed=3), DistillConfig(epochs=1))
    assert [type(m).__name__ for m in task.children()] == ["Sequential"]  # the student only
    assert task.distillation.steps_per_epoch == 2
    assert set(task.distillation.parameters("layerwise")) == {
        *task.student[3].parameters(),
        *task.student[5].parameters(),
    }


def test_existing_out_dirs_are_never_overwritten(tmp_path):
    stack = tiny_stack()
    imgs = blurry_erps(2, 8, seed=9)
    config = DistillConfig(epochs=1, rows_per_image=2)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="not empty and holds no distill run"):
        distill(stack, imgs, config, foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(OutputExistsError, match="is not a folder"):
        distill(stack, imgs, config, a_file)

    run = tmp_path / "run"
    distill(stack, imgs, config, run)

    def files():
        return {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}

    before = files()
    with pytest.raises(OutputExistsError, match=r"config lr: 0\.001 there, 0\.01 now"):
        distill(stack, imgs, DistillConfig(epochs=1, rows_per_image=2, lr=1e-2), run)
    with pytest.raises(OutputExistsError, match="the images differ"):
        distill(stack, blurry_erps(2, 8, seed=10), config, run)
    with pytest.raises(OutputExistsError, match="the stack's layers or weights differ"):
        distill(tiny_stack(seed=1), imgs, config, run)
    with pytest.raises(OutputExistsError, match="pass resume=True"):
        distill(stack, imgs, config, run, resume=False)
    (run / "distill.json").write_text("{not json")
    with pytest.raises(OutputExistsError, match=r"unreadable distill\.json"):
        distill(stack, imgs, config, run)
    (run / "distill.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(OutputExistsError, match="not a pano360 distill run"):
        distill(stack, imgs, config, run)
    (run / "distill.json").write_bytes(before[Path("distill.json")])
    assert files() == before


def test_load_student_errors(tmp_path):
    stack = tiny_stack()
    with pytest.raises(ValueRangeError, match="holds no finished distill run"):
        load_student(stack, tmp_path)
    distill(stack, blurry_erps(2, 8, seed=12), DistillConfig(epochs=1, rows_per_image=2), tmp_path)
    with pytest.raises(ValueRangeError, match="stack differs"):
        load_student(tiny_stack(seed=2), tmp_path)
    (tmp_path / "distill.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(OutputExistsError, match="not a pano360 distill run"):
        load_student(stack, tmp_path)


def test_float64_images_train_a_float64_student():
    student, _ = distill(tiny_stack(), blurry_erps(2, 8, seed=13).double(), DistillConfig(epochs=1))
    assert all(p.dtype == D for p in student.parameters())


def test_images_may_be_a_sequence_of_single_images():
    imgs = blurry_erps(2, 8, seed=14)
    config = DistillConfig(epochs=1, rows_per_image=2)
    a, _ = distill(tiny_stack(), imgs, config)
    b, _ = distill(tiny_stack(), [imgs[0], imgs[1:2]], config)
    assert states_equal(a, b)


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": -1}, "epochs must be a non-negative integer"),
        ({"epochs": 0, "finetune_epochs": 0}, "at least 1"),
        ({"finetune_epochs": 1.5}, "finetune_epochs must be"),
        ({"rows_per_image": 0}, "rows_per_image must be a positive integer"),
        ({"batch_size": True}, "batch_size must be"),
        ({"row_group_size": 0}, "row_group_size must be"),
        ({"seed": -1}, "seed must be"),
        ({"chunk": 0}, "chunk must be"),
        ({"lr": 0.0}, r"lr must be a finite number in \(0, inf\), got 0\.0"),
        ({"finetune_lr": math.inf}, "finetune_lr must be a finite number, got inf"),
        ({"area_weighted": 1}, "area_weighted must be True or False, got 1"),
        ({"tap_spacing": 2.0}, r"tap_spacing must be a finite number in \(0, 1\.5708\), got 2\.0"),
    ],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueRangeError, match=match):
        DistillConfig(**kwargs)


def test_bad_inputs_choice_raises_a_choice_error():
    with pytest.raises(ChoiceError, match="inputs must be one of 'conv', 'layer', got 'exact'"):
        DistillConfig(inputs="exact")


def test_config_stores_numpy_scalars_as_python_numbers_for_its_json_record():
    config = DistillConfig(epochs=np.int64(2), lr=np.float32(0.5), area_weighted=np.bool_(True))
    assert (config.epochs, config.lr, config.area_weighted) == (2, 0.5, True)
    assert [type(v) for v in (config.epochs, config.lr, config.area_weighted)] == [int, float, bool]
    assert json.loads(json.dumps(dataclasses.asdict(config)))["epochs"] == 2


def test_distill_is_the_function_and_no_module_shares_its_name():
    assert training.distill is distill and callable(distill)
    assert importlib.util.find_spec("pano360.training.distill") is None
    assert not hasattr(transfer, "distill")  # one home: Lightning's, in pano360.training


@pytest.mark.parametrize(
    "images, error, match",
    [
        ("folder", TypeError, "images must be a tensor"),
        (torch.rand(3, 8, 16), ShapeError, r"images must be \(N, C, H, W\)"),
        ([], ValueRangeError, "at least one ERP image"),
        (torch.rand(2, 3, 8, 12), ShapeError, r"W == 2H"),
        (torch.rand(2, 1, 8, 16), ShapeError, "must have 3 channels"),
        (torch.rand(2, 3, 7, 14), ShapeError, "multiple of the stack's total stride 2"),
        ([torch.rand(3, 8, 16), torch.rand(3, 4, 8)], ShapeError, r"images\[1\] must be"),
        ([torch.ones(3, 8, 16, dtype=torch.uint8)], TypeError, "floating-point"),
    ],
)
def test_bad_images_raise(images, error, match):
    with pytest.raises(error, match=match):
        distill(tiny_stack(), images, DistillConfig(epochs=1))


def test_bad_stack_or_config_type_raise():
    imgs = torch.rand(1, 3, 8, 16)
    with pytest.raises(ValueRangeError, match="no spatial convolution"):
        distill(nn.Sequential(nn.Conv2d(3, 3, 1), nn.MaxPool2d(2)), imgs)
    with pytest.raises(TypeError, match="config must be a DistillConfig"):
        distill(tiny_stack(), imgs, {"epochs": 1})
    with pytest.raises(ValueRangeError, match="checkpoint_every_n_steps must be"):
        distill(tiny_stack(), imgs, DistillConfig(epochs=1), checkpoint_every_n_steps=0)
    with pytest.raises(TypeError, match="Linear"):
        distill(nn.Sequential(nn.Linear(3, 3)), imgs)


def test_build_errors():
    with pytest.raises(ShapeError, match="multiple of the stack's total stride 2"):
        build_student(tiny_stack(), (9, 18))
    with pytest.raises(ShapeError, match=r"erp_hw must be \(H, 2H\)"):
        build_spherical(tiny_stack(), (8, 8))
    with pytest.raises(ShapeError, match="pair"):
        build_student(tiny_stack(), "8x16")
    with pytest.raises(ValueRangeError, match="row_group_size must be"):
        build_student(tiny_stack(), (8, 16), row_group_size=0)


def test_layer_rmse_errors_and_empty_bands():
    stack = tiny_stack()
    erps = torch.rand(1, 3, 8, 16)
    with pytest.raises(TypeError, match="one layer per layer of the stack"):
        layer_rmse(stack[:3], stack, erps)
    with pytest.raises(ValueRangeError, match="bands must be"):
        layer_rmse(build_spherical(stack, (8, 16)), stack, erps, bands=[(0.5, 0.2)])
    with pytest.raises(ShapeError, match="model layer 0 gives"):
        layer_rmse(nn.Sequential(nn.Conv2d(3, 6, 3, padding=0), *stack[1:]), stack, erps)
    rmse = layer_rmse(build_spherical(stack, (8, 16)), stack, erps, bands=[(1.4, 1.5)], layers=5)
    assert list(rmse) == [5] and math.isnan(rmse[5][(1.4, 1.5)])  # no row there at 4 x 8


# --- the registered P-Net -----------------------------------------------------------------------


def test_mtcnn_pnet_stack_is_the_networks_features_on_images_in_0_1():
    stack = model_stack("mtcnn_pnet")
    assert distillable_models() == ["mtcnn_pnet"]
    assert receptive_field(stack) == (12, 2)
    pnet = create_model("mtcnn_pnet", pretrained=True)
    x = torch.rand(2, 3, 24, 30)
    torch.testing.assert_close(stack(x), pnet.features(mtcnn_normalize(x)), atol=1e-5, rtol=1e-5)
    assert not stack.normalize.weight.requires_grad
    with pytest.raises(ValueRangeError, match="model must be one of mtcnn_pnet"):
        model_stack("vgg_nope")


def test_distilled_pnet_beats_zero_shot_in_the_polar_band():
    from pano360.data import SceneConfig, make_face_scene

    scenes = [make_face_scene(i, SceneConfig(erp_hw=(32, 64))).erp for i in range(8)]
    stack = model_stack("mtcnn_pnet")
    config = DistillConfig(epochs=4, rows_per_image=16, batch_size=2)
    student, _ = distill(stack, torch.stack(scenes[:6]), config)
    test = torch.stack(scenes[6:])
    zero_shot = layer_rmse(build_spherical(stack, (32, 64)), stack, test, layers=[4, 6, 7])
    distilled = layer_rmse(student, stack, test, layers=[4, 6, 7])
    for layer in (4, 6, 7):  # conv2, conv3, prelu3
        assert distilled[layer][POLAR] < 0.95 * zero_shot[layer][POLAR], layer
