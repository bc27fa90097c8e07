"""``pano360 faces DIR --blur --out DIR2``: a folder with a corrupt image, resuming, the same
outputs as one image at a time, usage errors, and 2 processes through Lightning's predict loop."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from pano360.io import read_image, write_image
from pano360.testing import run_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "panorama.jpg"
FAST = ["--min-face", "24"]  # a small pyramid: a fraction of a second per 128 x 64 image
GOOD = ["a.jpg", "street/b.jpg", "street/day/c.png", "street/day/d.jpg"]
SUMMARY = ["faces_summary.csv", "faces_summary.json"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("photos") / "photos"
    (root / "street" / "day").mkdir(parents=True)
    erp = F.interpolate(read_image(EXAMPLE), size=(64, 128), mode="area")
    for k, name in enumerate(GOOD):
        write_image(root / name, erp.roll(16 * k, -1))
    (root / "street" / "bad.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    return root


@pytest.fixture(scope="module")
def first_run(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("first") / "blurred"
    return out, run_cli("faces", str(photos), "--blur", "--out", str(out), *FAST)


def _summary(out: Path) -> list[dict]:
    with open(out / "faces_summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_good_images_processed_bad_one_reported_exit_1(first_run):
    out, (code, stdout, stderr) = first_run
    assert code == 1, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("pano360: error: ")
    assert "street/bad.jpg" in stderr
    assert "5 image(s): 4 processed, 1 failed" in stdout
    rows = {r["file"]: r for r in _summary(out)}
    assert sorted(rows) == sorted([*GOOD, "street/bad.jpg"])
    assert (
        rows["street/bad.jpg"]["status"] == "failed"
        and "bad.jpg" in rows["street/bad.jpg"]["error"]
    )
    assert all(rows[f]["status"] == "done" and int(rows[f]["faces"]) >= 1 for f in GOOD)
    for f in GOOD:
        assert (out / f).is_file() and (out / f"{f}.json").is_file()


def test_second_run_skips_what_is_done(photos, first_run):
    out, _ = first_run
    stamps = [(out / f).stat().st_mtime_ns for f in GOOD]
    code, stdout, stderr = run_cli("faces", str(photos), "--blur", "--out", str(out), *FAST)
    assert code == 1 and "bad.jpg" in stderr  # still broken
    assert "0 processed, 4 already done, 1 failed" in stdout
    assert [(out / f).stat().st_mtime_ns for f in GOOD] == stamps
    assert {r["status"] for r in _summary(out) if r["file"] in GOOD} == {"skipped"}


def test_same_outputs_as_one_image_at_a_time(photos, first_run, tmp_path):
    out, _ = first_run
    code, _, err = run_cli("faces", str(photos / "a.jpg"), "--blur", "--out", str(tmp_path), *FAST)
    assert code == 0, err
    assert (tmp_path / "a_blurred.jpg").read_bytes() == (out / "a.jpg").read_bytes()
    single = json.loads((tmp_path / "a_faces.json").read_text())["faces"]
    assert json.loads((out / "a.jpg.json").read_text())["faces"] == single


def test_only_the_detections_without_blur(photos, tmp_path):
    code, _, _ = run_cli(
        "faces", str(photos), "--out", str(tmp_path / "o"), "-q", "--jobs", "2", *FAST
    )
    assert code == 1
    files = sorted(p.relative_to(tmp_path / "o").as_posix() for p in (tmp_path / "o").rglob("*.*"))
    assert files == sorted(
        [*(f + ".json" for f in GOOD), "faces_summary.csv", "faces_summary.json"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "is a folder: pass --out DIR"),
        (["--out", "{src}/blurred"], "is the input folder '{src}' or inside it"),
        (["--out", "{src}"], "is the input folder '{src}' or inside it"),
        (["--out", "{tmp}/o", "--half", "--device", "cpu"], "--half runs the detector in float16"),
        (["--out", "{tmp}/o", "--jobs", "-1"], "--jobs must be a non-negative integer"),
        (["--out", "{tmp}/o", "--devices", "0"], "--devices must be a positive integer"),
        (["--out", "{tmp}/o", "--num-nodes", "0"], "--num-nodes must be a positive integer"),
    ],
)
def test_usage_errors_exit_2_before_any_work(photos, tmp_path, args, message):
    fill = {"src": str(photos), "tmp": str(tmp_path)}
    code, _, err = run_cli("faces", str(photos), "--blur", *(a.format(**fill) for a in args))
    assert code == 2 and err.count("\n") == 1, err
    assert message.format(**fill) in err
    assert not (photos / "blurred").exists() and not (tmp_path / "o").exists()


def test_folder_options_refused_for_one_image(photos, tmp_path):
    code, _, err = run_cli("faces", str(photos / "a.jpg"), "--jobs", "2", "--out", str(tmp_path))
    assert code == 2 and "--jobs: only for a folder of images" in err


def test_max_memory_fails_each_file_that_would_not_fit(photos, tmp_path):
    code, _, err = run_cli(
        "faces", str(photos), "--out", str(tmp_path / "o"), "--max-memory", "0.001", *FAST
    )
    assert code == 1, err
    rows = {r["file"]: r for r in _summary(tmp_path / "o")}
    assert all(rows[f]["status"] == "failed" and "needs about" in rows[f]["error"] for f in GOOD)
    assert "needs about" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback without a GPU")
def test_half_on_auto_without_gpu_warns_and_runs_in_float32(photos, tmp_path):
    src = tmp_path / "one"
    src.mkdir()
    (src / "a.jpg").write_bytes((photos / "a.jpg").read_bytes())
    code, _, err = run_cli(
        "faces", str(src), "--out", str(tmp_path / "o"), "--half", "--device", "auto", *FAST
    )
    assert code == 0 and "warning: --half ignored: no GPU" in err


def test_two_processes_share_the_folder_through_lightning(photos, first_run, tmp_path):
    """--devices 2 on the CPU: 2 processes (DDP, gloo), Lightning's predict sampler giving each
    file to one of them; every file done exactly once, outputs as in one process."""
    pytest.importorskip("lightning")
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = ["faces", str(photos), "--blur", "--out", str(out), "--devices", "2", "--device", "cpu"]
    proc = subprocess.run(
        [sys.executable, "-m", "pano360", *args, *FAST],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]  # the corrupt image
    assert proc.stderr.count("street/bad.jpg") == 1  # reported once, by the process that had it
    assert proc.stdout.count("\n") == 1 and "4 processed, 1 failed" in proc.stdout
    rows = _summary(out)
    assert sorted(r["file"] for r in rows) == sorted([*GOOD, "street/bad.jpg"])  # each once
    assert {r["rank"] for r in rows} == {"0", "1"}  # both processes worked
    assert all(r["status"] == "done" for r in rows if r["file"] in GOOD)
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted(
        [*GOOD, *(f + ".json" for f in GOOD), "faces_summary.csv", "faces_summary.json"]
    )
    one_process, _ = first_run
    for f in GOOD:
        # The same boxes (to float rounding: the processes run with other thread counts).
        faces = [json.loads((d / f"{f}.json").read_text())["faces"] for d in (out, one_process)]
        boxes = [torch.tensor([face["bfov"] for face in fs]) for fs in faces]
        torch.testing.assert_close(boxes[0], boxes[1], atol=1e-3, rtol=0)
        images = [read_image(d / f) for d in (out, one_process)]
        torch.testing.assert_close(images[0], images[1], atol=2 / 255, rtol=0)
