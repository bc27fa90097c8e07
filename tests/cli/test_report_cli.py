"""``pano360 report``: the folder it writes, its errors (exit 2, one line, no folder), --serve."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from pano360.data import write_fixations_csv
from pano360.detection import FaceDetection
from pano360.io import VideoWriter, write_image
from pano360.testing import run_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def inputs(tmp_path):
    """A small panorama with what the other commands write for it: faces JSON (the format of
    `pano360 faces`), a saliency map (.npy, as `pano360 saliency`), fixations (CSV)."""
    write_image(tmp_path / "pano.jpg", torch.rand(1, 3, 32, 64))
    faces = [FaceDetection((3.1, 0.3, 0.3, 0.35), 0.99, ((0.0, 0.0),) * 5).to_dict()]
    (tmp_path / "faces.json").write_text(json.dumps({"image": "pano.jpg", "faces": faces}))
    boxes = [{"bfov": [40, -10, 30, 20], "score": 0.5, "label": "car"}]
    (tmp_path / "det.json").write_text(json.dumps({"detections": boxes}))
    np.save(tmp_path / "sal.npy", np.random.rand(16, 32).astype(np.float32))
    write_fixations_csv(tmp_path / "fix.csv", torch.tensor([[0.1, 0.2], [-3.0, 1.4]]))
    return tmp_path


def test_report_writes_the_folder_and_says_how_to_open_it(inputs):
    out = inputs / "report"
    code, stdout, err = run_cli(
        "report", str(inputs / "pano.jpg"), "--faces", str(inputs / "faces.json"),
        "--detections", str(inputs / "det.json"), "--saliency", str(inputs / "sal.npy"),
        "--fixations", str(inputs / "fix.csv"), "--out", str(out), "--title", "Street",
    )  # fmt: skip
    assert code == 0, err
    assert err == ""
    assert "1 face(s), 1 detection(s), 1 saliency map(s), 2 fixation(s)" in stdout
    assert (out / "index.html").resolve().as_uri() in stdout
    res = json.loads((out / "results.json").read_text())
    assert res["title"] == "Street"
    assert [b["label"] for b in res["boxes"]] == ["face", "car"]
    assert res["boxes"][0]["score"] == 0.99 and len(res["fixations"]["points"]) == 2
    assert res["saliency"]["frames"] == ["saliency/000000.png"] and res["blur"] is not None
    # Again: refused without --overwrite (nothing changes), replaced with it.
    code, _, err = run_cli("report", str(inputs / "pano.jpg"), "--out", str(out))
    assert code == 2 and "already exists; pass --overwrite" in err and err.count("\n") == 1
    assert json.loads((out / "results.json").read_text())["title"] == "Street"
    code, _, err = run_cli("report", str(inputs / "pano.jpg"), "--out", str(out), "--overwrite")
    assert code == 0, err
    assert json.loads((out / "results.json").read_text())["boxes"] == []


def _square_map(folder: Path) -> str:
    np.save(folder / "square.npy", np.ones((16, 16), np.float32))
    return str(folder / "square.npy")


def _video(folder: Path) -> str:
    with VideoWriter(folder / "clip.mp4", fps=4) as out:
        out.write(torch.rand(1, 3, 16, 32))
    return str(folder / "clip.mp4")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (lambda d: ["--faces", str(d / "det.json")], "expected a JSON object with a list 'faces'"),
        (lambda d: ["--detections", str(d / "faces.json")], "a list 'detections'"),
        (lambda d: ["--faces", str(d / "sal.npy")], "not JSON"),
        (lambda d: ["--faces", str(d / "nope.json")], "cannot read"),
        (lambda d: ["--saliency", _square_map(d)], r"must be 2:1 \(W == 2H\), got 16x16"),
        (lambda d: ["--saliency", str(d / "nope.png")], "no such file or folder"),
        (lambda d: ["--fixations", str(d / "faces.json")], "bad header"),
        (lambda d: ["--saliency-fps", "0"], "--saliency-fps must be a positive"),
        (lambda d: ["--port", "8000"], "--port goes with --serve"),
        (lambda d: ["--port", "70000", "--serve"], r"--port must be in \[0, 65535\]"),
    ],
)
def test_bad_input_one_line_exit_2_no_folder(inputs, args, message):
    code, stdout, err = run_cli(
        "report", str(inputs / "pano.jpg"), *args(inputs), "--out", str(inputs / "report")
    )
    assert code == 2 and stdout == ""
    assert err.startswith("pano360: error: ") and err.count("\n") == 1
    assert re.search(message, err), err
    assert not (inputs / "report").exists()
    assert not [p for p in inputs.iterdir() if p.name.startswith(".report")]  # no temporary


@pytest.mark.parametrize(
    ("media", "message"),
    [
        (lambda d: str(d / "missing.jpg"), "cannot read media .* no such file"),
        (lambda d: _square_map(d), "not a video"),
        (lambda d: str(d), "it is a folder"),
    ],
)
def test_bad_media_one_line_exit_2_no_folder(inputs, media, message):
    code, _, err = run_cli("report", media(inputs), "--out", str(inputs / "report"))
    assert code == 2 and err.startswith("pano360: error: ") and err.count("\n") == 1
    assert re.search(message, err), err
    assert not (inputs / "report").exists()


def test_boxes_on_a_video_are_refused(inputs):
    clip = _video(inputs)
    out = str(inputs / "v")
    code, _, err = run_cli("report", clip, "--faces", str(inputs / "faces.json"), "--out", out)
    assert code == 2 and "go with images" in err
    code, _, err = run_cli("report", clip, "--out", out, "--saliency", str(inputs / "sal.npy"))
    assert code == 0, err


def test_serve_prints_a_free_local_port_and_serves_until_interrupted(inputs):
    out = inputs / "report"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, "-m", "pano360", "report", str(inputs / "pano.jpg"), "--out"]
    # A test run started in the background (`make test &`) inherits SIGINT ignored, and Python
    # keeps an ignored SIGINT ignored: give the server the disposition a terminal gives it.
    proc = subprocess.Popen(
        [*command, str(out), "--serve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        assert proc.stdout.readline().startswith("wrote ")
        line = proc.stdout.readline()
        assert line.startswith(f"serving {out} at http://127.0.0.1:"), line
        url = line.split(" at ")[1].split()[0]
        with urllib.request.urlopen(url) as r:
            assert b"pano360 report" in r.read()
        with urllib.request.urlopen(url + "results.json") as r:
            assert json.loads(r.read())["format"] == "pano360-report"
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and err == ""
