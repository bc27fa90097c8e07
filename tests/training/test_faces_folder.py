"""A folder of panoramas through Lightning's predict loop, in one process (the 2-process run is
tests/cli/test_faces_folder_cli.py): the same outputs and summary as the plain loop."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from pano360.detection import FaceFolderJob, blur_faces_in_folder
from pano360.errors import ImageIOError, ValueRangeError
from pano360.io import read_image, write_image
from pano360.training import FaceFolderPredictTask, blur_faces_in_folder_ddp
from pano360.training._faces_folder import _AtLeast

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "panorama.jpg"
FAST = {"min_face_deg": 24.0}


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    erp = F.interpolate(read_image(EXAMPLE), size=(64, 128), mode="area")
    write_image(src / "a.jpg", erp)
    (src / "sub" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return src


def test_predict_loop_gives_the_plain_loops_outputs(folder, tmp_path):
    plain = blur_faces_in_folder(FaceFolderJob(folder, tmp_path / "plain", **FAST))
    lines = []
    job = FaceFolderJob(folder, tmp_path / "ddp", **FAST)
    environment = dict(os.environ)
    results = blur_faces_in_folder_ddp(job, devices=1, accelerator="cpu", on_result=lines.append)
    # No process group or launch variables (MASTER_PORT, LOCAL_RANK...) left behind: a later
    # Lightning run from this process, or a child it starts, would join this finished run.
    assert not torch.distributed.is_initialized() and dict(os.environ) == environment
    assert [(r.file, r.status, r.faces) for r in results] == [
        (r.file, r.status, r.faces) for r in plain
    ]
    assert [r.file for r in lines] == ["a.jpg", "sub/bad.png"]
    for name in ("a.jpg", "a.jpg.json"):
        assert (tmp_path / "ddp" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes()
    summary = json.loads((tmp_path / "ddp" / "faces_summary.json").read_text())
    assert summary["counts"] == {"done": 1, "skipped": 0, "failed": 1, "faces": plain[0].faces}
    again = blur_faces_in_folder_ddp(job, devices=1, accelerator="cpu")
    assert [r.status for r in again] == ["skipped", "failed"]


def test_padding_gives_every_process_an_item():
    padded = _AtLeast(["a"], 3)
    assert len(padded) == 3 and [padded[i] for i in range(3)] == ["a", None, None]
    assert len(_AtLeast(["a", "b", "c"], 2)) == 3


def test_errors(folder, tmp_path):
    job = FaceFolderJob(folder, tmp_path / "out", **FAST)
    with pytest.raises(ValueRangeError, match="jobs must be a non-negative integer"):
        blur_faces_in_folder_ddp(job, jobs=-1)
    with pytest.raises(ValueRangeError, match="jobs must be a non-negative integer"):
        FaceFolderPredictTask(job, jobs=-1)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "faces_summary.json").mkdir()  # a folder where the summary goes
    with pytest.raises(ImageIOError, match=r"faces_summary\.json"):
        blur_faces_in_folder_ddp(job, devices=1, accelerator="cpu")
    assert torch.is_tensor(read_image(tmp_path / "out" / "a.jpg"))  # the file itself was done
