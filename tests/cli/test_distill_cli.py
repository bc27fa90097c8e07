"""``pano360 distill``: the student it writes equals the library's, resuming, one-line errors."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from pano360.cli._distill import read_erp_folder
from pano360.geometry import resize_erp
from pano360.io import write_image
from pano360.testing import run_cli
from pano360.training import distill
from pano360.transfer import DistillConfig, load_student, model_stack

ARGS = ["--model", "mtcnn_pnet", "--images", "imgs", "--out", "out", "--erp-size", "32x16"]
FAST = ["--epochs", "1", "--rows-per-image", "4", "--eval-images", "1"]


# Many tiny ops: on a shared 2-core machine one thread is faster and steadier than two.
pytestmark = pytest.mark.usefixtures("one_thread")


def panorama(seed: int, hw=(32, 64), channels=3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, channels, hw[0] // 4, hw[1] // 4, generator=g)
    return F.interpolate(small, size=hw, mode="bilinear")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """imgs/ with three 64x32 panoramas, one of them grayscale."""
    monkeypatch.chdir(tmp_path)
    Path("imgs").mkdir()
    write_image("imgs/a.png", panorama(0))
    write_image("imgs/b.jpg", panorama(1))
    write_image("imgs/c.png", panorama(2, channels=1))
    Path("imgs/notes.txt").write_text("not an image, not read")
    return tmp_path


def states_equal(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_distill_writes_the_student_the_library_computes(workdir):
    code, out, err = run_cli("distill", *ARGS, *FAST, "--seed", "3")
    assert (code, err) == (0, "")
    assert "distilled mtcnn_pnet on 3 image(s) of 32x16: wrote out/student.safetensors" in out
    assert "per-layer RMSE against exact on 1 image(s)" in out and "conv3 (Conv2d)" in out
    assert sorted(p.name for p in Path("out").iterdir()) == [
        "checkpoints", "distill.json", "evaluation.json", "student.safetensors",
    ]  # fmt: skip
    assert [p.name for p in Path("out/checkpoints").iterdir()] == ["last.ckpt"]  # Lightning's
    stack = model_stack("mtcnn_pnet")
    images = read_erp_folder(Path("imgs"), (16, 32), 3)
    expected, _ = distill(stack, images, DistillConfig(epochs=1, rows_per_image=4, seed=3))
    assert states_equal(load_student(stack, "out"), expected)
    evaluation = json.loads(Path("out/evaluation.json").read_text())
    assert [layer["name"] for layer in evaluation["layers"]][-2:] == ["conv3", "prelu3"]
    assert evaluation["bands_deg"] == [[0, 30], [30, 60], [60, 85]]


def test_a_second_run_resumes_and_other_settings_are_refused(workdir):
    assert run_cli("distill", *ARGS, *FAST)[0] == 0
    student = Path("out/student.safetensors").read_bytes()
    code, out, err = run_cli("distill", *ARGS, *FAST, "-q")  # -q: the evaluation table only
    assert (code, err) == (0, "") and "distilled mtcnn_pnet" not in out
    assert out.startswith("per-layer RMSE against exact on 1 image(s)")
    assert Path("out/student.safetensors").read_bytes() == student
    code, _, err = run_cli("distill", *ARGS, *FAST, "--lr", "0.01")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("pano360: error: --out 'out' holds a different distill run (--lr: ")
    code, _, err = run_cli("distill", *ARGS, *FAST, "--no-resume")
    assert code == 2 and "already holds this distill run" in err and "--no-resume" in err
    assert Path("out/student.safetensors").read_bytes() == student


def test_images_are_read_as_rgb_erps_of_the_requested_size(workdir):
    write_image("imgs/d.png", torch.cat((panorama(3), torch.ones(1, 1, 32, 64)), dim=1))  # RGBA
    images = read_erp_folder(Path("imgs"), (16, 32), 3)
    assert images.shape == (4, 3, 16, 32)
    gray = resize_erp(panorama(2, channels=1), (16, 32))  # on the sphere, exact area
    torch.testing.assert_close(images[2], gray[0].expand(3, -1, -1), atol=1 / 255, rtol=0)
    same = read_erp_folder(Path("imgs"), (32, 64), 3)  # no resizing at the stored size
    torch.testing.assert_close(same[0], panorama(0)[0], atol=0.5 / 255, rtol=0)


@pytest.mark.parametrize(
    "change, message",
    [
        (["--images", "missing"], "--images 'missing' is not a folder"),
        (["--images", "empty"], "--images 'empty' holds no image"),
        (["--images", "wide"], "must be an equirectangular panorama (width = 2 x height)"),
        (["--erp-size", "30x15"], "--erp-size height must be a multiple of mtcnn_pnet's total"),
        (["--erp-size", "40x30"], "--erp-size must be 2:1"),
        (["--epochs", "-1"], "--epochs must be a non-negative integer"),
        (["--epochs", "0"], "--epochs + --finetune-epochs must be at least 1, got 0"),
        (["--lr", "0"], "--lr must be a finite number in (0, inf)"),
        (["--row-group-size", "0"], "--row-group-size must be a positive integer"),
        (["--eval-images", "-1"], "--eval-images must be 0 or more"),
        (["--checkpoint-every", "-1"], "--checkpoint-every must be 0 or more"),
        (["--model", "nope"], "--model must be one of mtcnn_pnet"),
        (["--out", "afile"], "--out 'afile' is not a folder"),
        (["--out", "afile/run"], "--out 'afile/run' cannot be created: 'afile' is not a folder"),
        (["--out", "imgs"], "--out 'imgs' is not empty and holds no distill run"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(workdir, change, message):
    Path("empty").mkdir()
    Path("wide").mkdir()
    write_image("wide/x.png", torch.rand(1, 3, 16, 40))
    Path("afile").write_text("x")
    code, out, err = run_cli("distill", *ARGS, *FAST, *change)  # the last value of an option wins
    assert code == 2 and out == ""
    assert err.startswith("pano360: error: ") and err.count("\n") == 1
    assert message in err


def test_help_names_the_options(workdir):
    code, out, _ = run_cli("distill", "--help")
    assert code == 0
    for option in ("--model", "--images", "--out", "--erp-size", "--epochs", "--seed",
                   "--checkpoint-every"):  # fmt: skip
        assert option in out


# --- a deep backbone (MobileNetV2) ------------------------------------------------------------

BACKBONE = ["--model", "mobilenet_v2", "--out", "out", "--erp-size", "64x32"]
BACKBONE_FAST = ["--stages", "features.3", "--epochs", "1", "--finetune-epochs", "1"]


def test_backbone_round_trip_through_eval_transfer(workdir):
    from pano360.models import create_model
    from pano360.transfer import (
        BackboneDistillConfig,
        distill_backbone,
        load_backbone_student,
        object_scenes,
    )

    args = [*BACKBONE, *BACKBONE_FAST, "--synthetic", "1", "--seed", "5", "--eval-images", "1"]
    code, out, err = run_cli("distill", *args, terminal=True)
    assert code == 0, err
    assert "distilled mobilenet_v2 on 1 image(s) of 64x32: wrote out/student.safetensors" in out
    assert "per-stage RMSE against exact over exact's standard deviation on 1 image(s)" in out
    assert "exact features.3 (1/1)" in err and "Epoch 1" in err  # progress bars, on stderr
    assert sorted(p.name for p in Path("out").iterdir()) == [
        "checkpoints", "distill.json", "evaluation.json", "exact", "student.safetensors",
    ]  # fmt: skip
    model = create_model("mobilenet_v2", pretrained=True).eval()
    erps = torch.stack([s.erp for s in object_scenes(1, 5, (32, 64))])
    config = BackboneDistillConfig(stages=("features.3",), epochs=1, finetune_epochs=1, seed=5)
    expected = distill_backbone(model, erps, config, cache_dir="out/exact")
    assert states_equal(load_backbone_student(model, "out/student.safetensors"), expected)
    evaluation = json.loads(Path("out/evaluation.json").read_text())
    assert [layer["name"] for layer in evaluation["layers"]] == ["features.3"]
    # pano360 eval transfer reads the student it wrote.
    code, out, err = run_cli(
        "eval", "transfer", "--model", "mobilenet_v2", "--student", "out/student.safetensors",
        "--size", "64x32", "--scenes", "1", "--rmse-scenes", "1", "--stage", "features.3",
        "--max-patch", "33", "--out", "eval", "-q",
    )  # fmt: skip
    assert code == 0, err
    assert "| features.3 | 25 px (102°) | distilled |" in out


def test_backbone_run_resumes_and_other_settings_are_refused(workdir):
    args = [*BACKBONE, *BACKBONE_FAST, "--images", "imgs", "--eval-images", "0"]
    assert run_cli("distill", *args)[0] == 0
    student = Path("out/student.safetensors").read_bytes()
    code, out, err = run_cli("distill", *args)
    assert (code, err) == (0, "") and "distilled mobilenet_v2 on 3 image(s)" in out
    assert Path("out/student.safetensors").read_bytes() == student
    code, _, err = run_cli("distill", *args, "--stages", "features.3,features.6")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("pano360: error: --out 'out' holds a different distill run (--stages: ")


@pytest.mark.parametrize(
    "change, message",
    [
        (["--stages", "features.4"], "--stages must be one of 'features.3', 'features.6'"),
        (["--stages", "features.6,features.3"], "--stages must be in mobilenet_v2's order"),
        (["--stages", ","], "--stages must name at least one stage of mobilenet_v2"),
        (["--erp-size", "96x48"], "--erp-size height must be a multiple of mobilenet_v2's total"),
        (["--erp-size", "64x64"], "--erp-size must be 2:1"),
        (["--rows-per-image", "4"], "--rows-per-image is for conv stacks, not the backbone"),
        (["--area-weighted"], "--area-weighted is for conv stacks"),
        (["--synthetic", "2"], "--images and --synthetic exclude each other"),
        (["--synthetic", "-1"], "--synthetic must be 0 or more"),
        (["--epochs", "0", "--finetune-epochs", "0"], "--epochs + --finetune-epochs must be"),
        (["--row-group-size", "0"], "--row-group-size must be a positive integer"),
        (["--images", "wide"], "must be an equirectangular panorama (width = 2 x height)"),
    ],
)
def test_backbone_bad_input_is_one_line_and_exit_2(workdir, change, message):
    Path("wide").mkdir()
    write_image("wide/x.png", torch.rand(1, 3, 16, 40))
    code, out, err = run_cli("distill", *BACKBONE, *BACKBONE_FAST, "--images", "imgs", *change)
    assert code == 2 and out == ""
    assert err.startswith("pano360: error: ") and err.count("\n") == 1
    assert message in err
    assert not Path("out").exists()  # nothing left behind


def test_options_of_the_other_kind_and_a_missing_source_are_refused(workdir):
    code, _, err = run_cli("distill", *ARGS, *FAST, "--stages", "features.3")
    assert code == 2 and "--stages is for backbones, not the conv stack mtcnn_pnet" in err
    code, _, err = run_cli("distill", *BACKBONE)
    assert code == 2 and "pass either --images DIR or --synthetic N" in err
    code, _, err = run_cli("distill", *ARGS, "--model", "vgg16")
    assert code == 2 and "--model must be one of mtcnn_pnet (conv stacks) or mobilenet_v2" in err
