"""Faces of a folder of panoramas: recursion and layout, per-file errors, resuming, DataLoader
workers, half precision, the summary, and every documented error."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from pano360.detection import (
    FOLDER_SUMMARY_FIELDS,
    FaceFolderJob,
    blur_faces_in_folder,
    detect_faces,
    list_images,
)
from pano360.errors import ImageIOError, OutputExistsError, ValueRangeError
from pano360.io import read_image, write_image

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "panorama.jpg"
# Faces of 24 degrees and more: a small pyramid, so that each image takes a fraction of a
# second; the example's large faces are still found at 128 x 64.
FAST = {"min_face_deg": 24.0}


def _erp() -> torch.Tensor:
    return F.interpolate(read_image(EXAMPLE), size=(64, 128), mode="area")


def make_folder(root: Path) -> Path:
    """Three panoramas in nested folders (JPEG, 16-bit PNG, PNG with alpha), a corrupt JPEG, one
    that is not 2:1, a text file and a hidden image (neither are inputs)."""
    erp = _erp()
    (root / "street" / "day").mkdir(parents=True)
    write_image(root / "a.jpg", erp)
    write_image(root / "street" / "b.png", erp.roll(32, -1), bit_depth=16)
    alpha = torch.linspace(0, 1, 128).expand(1, 1, 64, 128)
    write_image(root / "street" / "day" / "c.png", torch.cat([erp.flip(-1), alpha], 1))
    (root / "street" / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    write_image(root / "street" / "wide.png", torch.rand(1, 3, 16, 48))
    (root / "notes.txt").write_text("not an image")
    write_image(root / ".hidden.png", erp)
    return root


GOOD = ["a.jpg", "street/b.png", "street/day/c.png"]
BAD = ["street/bad.jpg", "street/wide.png"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The folder processed once in-process and once with 2 DataLoader workers."""
    root = tmp_path_factory.mktemp("folders")
    src = make_folder(root / "in")
    plain = blur_faces_in_folder(FaceFolderJob(src, root / "plain", **FAST), jobs=0)
    workers = blur_faces_in_folder(FaceFolderJob(src, root / "workers", **FAST), jobs=2)
    return {"root": root, "src": src, "plain": plain, "workers": workers}


def test_list_images_recursive_by_extension(tmp_path):
    make_folder(tmp_path)
    (tmp_path / ".cache").mkdir()
    write_image(tmp_path / ".cache" / "x.png", torch.rand(1, 3, 8, 16))
    write_image(tmp_path / "street" / "UP.JPEG", torch.rand(1, 3, 8, 16))
    assert list_images(tmp_path) == sorted([*GOOD, *BAD, "street/UP.JPEG"])


def test_list_images_needs_a_folder(tmp_path):
    with pytest.raises(ImageIOError, match="is not a folder"):
        list_images(tmp_path / "missing")


def test_good_files_done_bad_ones_named_layout_mirrored(runs):
    results = {r.file: r for r in runs["plain"]}
    assert list(results) == sorted([*GOOD, *BAD])
    for f in GOOD:
        assert results[f].status == "done" and results[f].error is None
        assert results[f].faces >= 1  # the example's large faces
    assert results["street/bad.jpg"].status == "failed"
    assert "street/bad.jpg" in results["street/bad.jpg"].error
    assert "width = 2 x height" in results["street/wide.png"].error
    out = runs["root"] / "plain"
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    expected = [*GOOD, *(f + ".json" for f in GOOD), "faces_summary.csv", "faces_summary.json"]
    assert written == sorted(expected)


def test_outputs_are_the_detector_and_blur_of_each_image(runs):
    out, src = runs["root"] / "plain", runs["src"]
    for f in GOOD:
        erp, info = read_image(src / f, with_info=True)
        (found,) = detect_faces(erp[:, :3], **FAST)
        doc = json.loads((out / f"{f}.json").read_text())
        assert doc["image"] == f and doc["image_size"] == [128, 64]
        got = torch.tensor([face["bfov"] for face in doc["faces"]])
        torch.testing.assert_close(got, found["boxes"].rad2deg(), atol=1e-3, rtol=0)
        blurred, blurred_info = read_image(out / f, with_info=True)
        assert blurred.shape == erp.shape
        if erp.shape[1] == 4:
            torch.testing.assert_close(blurred[:, 3], erp[:, 3])  # alpha kept
        assert blurred_info.bit_depth == info.bit_depth  # 16-bit PNG stays 16-bit
        assert doc["blurred"]["bytes"] == (out / f).stat().st_size
        assert (blurred - erp).abs().amax() > 0.05  # faces blurred


def test_summary_csv_and_json_name_every_file(runs):
    out = runs["root"] / "plain"
    with open(out / "faces_summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == FOLDER_SUMMARY_FIELDS
    assert [r["file"] for r in rows] == sorted([*GOOD, *BAD])
    failed = {r["file"]: r["error"] for r in rows if r["status"] == "failed"}
    assert set(failed) == set(BAD) and "bad.jpg" in failed["street/bad.jpg"]
    doc = json.loads((out / "faces_summary.json").read_text())
    assert doc["counts"]["done"] == 3 and doc["counts"]["failed"] == 2
    assert doc["counts"]["faces"] == sum(int(r["faces"] or 0) for r in rows)


def test_workers_give_the_same_outputs(runs):
    plain, workers = runs["root"] / "plain", runs["root"] / "workers"
    for f in GOOD:
        assert (plain / f).read_bytes() == (workers / f).read_bytes()
        assert (plain / f"{f}.json").read_bytes() == (workers / f"{f}.json").read_bytes()
    strip = [(r.file, r.status, r.faces, r.error) for r in runs["plain"]]
    assert strip == [(r.file, r.status, r.faces, r.error) for r in runs["workers"]]


def test_resume_skips_done_files_and_redoes_missing_or_partial_ones(runs, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(runs["root"] / "plain", out)
    stamps = {f: (out / f).stat().st_mtime_ns for f in GOOD}
    (out / "a.jpg").unlink()  # a missing output
    partial = out / "street" / "b.png"
    partial.write_bytes(partial.read_bytes()[:100])  # a truncated one
    results = blur_faces_in_folder(FaceFolderJob(runs["src"], out, **FAST))
    status = {r.file: r.status for r in results}
    assert status == {"a.jpg": "done", "street/b.png": "done", "street/day/c.png": "skipped"} | {
        f: "failed" for f in BAD
    }
    assert (out / "street/day/c.png").stat().st_mtime_ns == stamps["street/day/c.png"]
    for f in GOOD:  # redone as the first run did them
        assert (out / f).read_bytes() == (runs["root"] / "plain" / f).read_bytes()
    skipped = next(r for r in results if r.status == "skipped")
    assert skipped.faces == next(r.faces for r in runs["plain"] if r.file == skipped.file)


def test_other_settings_redo_the_files(runs, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(runs["root"] / "plain", out)
    job = FaceFolderJob(runs["src"], out, blur=False, **FAST)
    assert {job.output_state(f)[0] for f in GOOD} == {"todo"}  # the records say blur=True


def test_files_not_written_by_us_are_failures_unless_overwrite(runs, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(runs["root"] / "plain", out)
    (out / "a.jpg.json").unlink()  # a.jpg is now a file we cannot claim
    (out / "street" / "b.png.json").write_text('{"someone": "else"}')
    job = FaceFolderJob(runs["src"], out, **FAST)
    with pytest.raises(OutputExistsError, match=r"a\.jpg' exists without"):
        job.output_state("a.jpg")
    with pytest.raises(OutputExistsError, match="not written by pano360 faces"):
        job.output_state("street/b.png")
    before = (out / "a.jpg").read_bytes()
    results = {r.file: r for r in blur_faces_in_folder(job)}
    assert results["a.jpg"].status == "failed" and "--overwrite" in results["a.jpg"].error
    assert (out / "a.jpg").read_bytes() == before
    again = blur_faces_in_folder(FaceFolderJob(runs["src"], out, overwrite=True, **FAST))
    assert [r.status for r in again if r.file in GOOD] == ["done"] * 3


def test_half_precision_finds_the_same_faces(tmp_path):
    # float16 autocast is meant for GPUs; on the CPU it runs (slowly) and checks the path.
    src = tmp_path / "in"
    src.mkdir()
    write_image(src / "a.png", _erp())
    full, half = (
        blur_faces_in_folder(FaceFolderJob(src, tmp_path / name, half=h, blur=False, **FAST))
        for name, h in (("full", False), ("half", True))
    )
    assert full[0].faces == half[0].faces >= 2
    boxes = [
        sorted(f["bfov"] for f in json.loads((tmp_path / n / "a.png.json").read_text())["faces"])
        for n in ("full", "half")
    ]
    full_boxes, half_boxes = (torch.tensor(b) for b in boxes)
    # float16 network outputs move the boxes by a small part of a face: centres within a
    # degree, fields of view within 10%.
    torch.testing.assert_close(half_boxes[:, :2], full_boxes[:, :2], atol=1.0, rtol=0)
    torch.testing.assert_close(half_boxes[:, 2:], full_boxes[:, 2:], atol=0, rtol=0.1)


def test_a_file_that_would_not_fit_in_memory_fails_and_the_others_go_on(tmp_path, monkeypatch):
    from pano360.detection import _memory

    src = tmp_path / "in"
    (src / "big").mkdir(parents=True)
    write_image(src / "small.png", _erp())
    write_image(src / "big" / "pano.png", F.interpolate(_erp(), scale_factor=2.0))
    # Over the limit from 128 rows up: the big panorama only.
    monkeypatch.setattr(
        _memory, "face_detection_memory", lambda hw, *a: 2**40 if hw[0] >= 128 else 0
    )
    monkeypatch.setattr(_memory, "_held_bytes", lambda: 0)
    job = FaceFolderJob(src, tmp_path / "out", max_memory_gb=64, **FAST)
    done = {r.file: r for r in blur_faces_in_folder(job)}
    assert done["small.png"].status == "done" and done["small.png"].faces >= 2
    assert done["big/pano.png"].status == "failed"
    assert "256x128 panorama needs about 1024" in done["big/pano.png"].error
    assert "more than the 64.0 GB --max-memory" in done["big/pano.png"].error
    assert not (tmp_path / "out" / "big" / "pano.png").exists()


@pytest.mark.parametrize(
    ("where", "error", "match"),
    [
        ("missing", ImageIOError, "is not a folder"),
        ("empty", ImageIOError, "holds no images"),
        ("inside", ValueRangeError, "inside it"),
        ("same", ValueRangeError, "inside it"),
    ],
)
def test_job_folder_errors(tmp_path, where, error, match):
    src = tmp_path / "in"
    src.mkdir()
    if where != "empty":
        write_image(src / "a.png", torch.rand(1, 3, 8, 16))
    dst = {"inside": src / "out", "same": src}.get(where, tmp_path / "out")
    with pytest.raises(error, match=match):
        FaceFolderJob(tmp_path / "missing" if where == "missing" else src, dst)


def test_job_refuses_an_output_that_is_an_input(tmp_path):
    # Outputs go to dst/REL: with dst above src, dst/photos/x.png is the input photos/x.png.
    (tmp_path / "photos" / "photos").mkdir(parents=True)
    write_image(tmp_path / "photos" / "x.png", torch.rand(1, 3, 8, 16))
    write_image(tmp_path / "photos" / "photos" / "x.png", torch.rand(1, 3, 8, 16))
    with pytest.raises(ValueRangeError, match="would be the input"):
        FaceFolderJob(tmp_path / "photos", tmp_path)


def test_job_setting_errors(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_image(src / "a.png", torch.rand(1, 3, 8, 16))
    with pytest.raises(ValueError, match="strategy"):
        FaceFolderJob(src, tmp_path / "out", strategy="bogus")
    with pytest.raises(ValueError, match="students go with strategy 'distilled'"):
        FaceFolderJob(src, tmp_path / "out", strategy="distilled")
    with pytest.raises(ValueRangeError, match="min_face_deg"):
        FaceFolderJob(src, tmp_path / "out", min_face_deg=0)
    with pytest.raises(ValueRangeError, match="max_memory_gb"):
        FaceFolderJob(src, tmp_path / "out", max_memory_gb=0)
    with pytest.raises(ValueRangeError, match="holds no finished distill run"):
        FaceFolderJob(src, tmp_path / "out", strategy="distilled", students=tmp_path)
    job = FaceFolderJob(src, tmp_path / "out")
    assert "files=1" in repr(job) and "strategy='spherical'" in repr(job)
    with pytest.raises(ValueRangeError, match="jobs must be a non-negative integer"):
        blur_faces_in_folder(job, jobs=-1)


def test_a_foreign_summary_is_not_replaced(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_image(src / "a.png", torch.rand(1, 3, 8, 16))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "faces_summary.csv").write_text("my,own,table\n")
    with pytest.raises(OutputExistsError, match="not a summary of pano360 faces"):
        FaceFolderJob(src, tmp_path / "out")
    FaceFolderJob(src, tmp_path / "out", overwrite=True)  # replaced when asked


@pytest.mark.skipif(os.name != "posix", reason="a file in the way of a folder")
def test_summary_write_error(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_image(src / "a.png", torch.rand(1, 3, 8, 16))
    job = FaceFolderJob(src, tmp_path / "out", min_face_deg=40)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "faces_summary.csv").mkdir()  # a folder where the CSV goes
    with pytest.raises(ImageIOError, match=r"faces_summary\.csv"):
        job.write_summary([])
    with pytest.raises(ImageIOError, match=r"faces_summary\.csv"):
        blur_faces_in_folder(job)
