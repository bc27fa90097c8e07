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


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
