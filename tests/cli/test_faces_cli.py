"""``pano360 faces``: the main job on the embedded example, and its errors (exit 2, no output)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from pano360.io import read_image, write_image
from pano360.testing import run_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "panorama.jpg"


@pytest.fixture(scope="module")
def small_example(tmp_path_factory):
    """The example panorama at 1024 x 512 (faster; the faces stay 8-25 degrees wide)."""
    path = tmp_path_factory.mktemp("example") / "pano.jpg"
    write_image(path, F.interpolate(read_image(EXAMPLE), size=(512, 1024), mode="area"))
    return path


def test_faces_writes_outlines_blur_and_json(small_example, tmp_path):
    code, out, err = run_cli("faces", str(small_example), "--blur", "--out", str(tmp_path / "res"))
    assert code == 0, err
    res = tmp_path / "res"
    assert sorted(p.name for p in res.iterdir()) == [
        "pano_blurred.jpg", "pano_faces.jpg", "pano_faces.json",
    ]  # fmt: skip
    doc = json.loads((res / "pano_faces.json").read_text())
    assert doc["image_size"] == [1024, 512] and doc["strategy"] == "spherical"
    assert len(doc["faces"]) == 8  # every face of the example, the polar and seam ones included
    lats = sorted(abs(f["bfov"][1]) for f in doc["faces"])
    assert lats[-1] > 65  # degrees in the JSON
    assert "8 face(s)" in out
    original = read_image(small_example)
    blurred = read_image(res / "pano_blurred.jpg")
    assert blurred.shape == original.shape
    assert (blurred - original).abs().mean() > 1e-3  # something was blurred
    # Running again without --overwrite changes nothing and says why.
    before = (res / "pano_faces.json").stat().st_mtime_ns
    code, _, err = run_cli("faces", str(small_example), "--out", str(res))
    assert code == 2 and "already exists" in err and err.count("\n") == 1
    assert (res / "pano_faces.json").stat().st_mtime_ns == before


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: write_image(p, torch.rand(1, 3, 64, 100)), "width = 2 x height"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n garbage"), "cannot read"),
    ],
    ids=["not-2-to-1", "empty", "corrupt"],
)
def test_bad_images_exit_2_with_one_line_and_no_output(tmp_path, make, message):
    src = tmp_path / "bad.png"
    make(src)
    code, out, err = run_cli("faces", str(src), "--out", str(tmp_path / "res"))
    assert code == 2, (out, err)
    assert err.startswith("pano360: error: ") and err.count("\n") == 1
    assert message in err.lower()
    assert not any((tmp_path / "res").glob("*")) if (tmp_path / "res").exists() else True


def test_bad_options_exit_2(small_example, tmp_path):
    for args, message in [
        (["--strategy", "bogus"], "--strategy"),
        (["--min-face", "30", "--max-face", "10"], "--min-face"),
        (["--threshold", "2"], "--threshold"),
        (["--strategy", "distilled"], "--students"),
        (["--students", str(tmp_path)], "--students"),
    ]:
        code, _, err = run_cli("faces", str(small_example), "--out", str(tmp_path), *args)
        assert code == 2 and message in err, err
    assert not list(tmp_path.glob("*"))


def test_a_run_that_would_not_fit_in_memory_is_refused_up_front(small_example, tmp_path):
    code, _, err = run_cli(
        "faces", str(small_example), "--out", str(tmp_path), "--max-memory", "0.01"
    )
    assert code == 2 and err.count("\n") == 1, err
    assert "needs about" in err and "GB of memory" in err and "raise --max-memory" in err
    code, _, err = run_cli("faces", str(small_example), "--out", str(tmp_path), "--max-memory", "0")
    assert code == 2 and "--max-memory must be > 0" in err
    assert not list(tmp_path.glob("*"))


def test_the_refusal_names_the_smallest_min_face_that_fits(small_example, tmp_path, monkeypatch):
    from pano360.detection import _memory

    # An estimate that only fits from 2 degrees up, and plenty of memory otherwise.
    monkeypatch.setattr(
        _memory, "face_detection_memory", lambda hw, deg, *a: 2**50 if deg < 2 else 0
    )
    monkeypatch.setattr(_memory, "_available_bytes", lambda: 2**40)
    code, _, err = run_cli("faces", str(small_example), "--out", str(tmp_path), "--min-face", "0.5")
    assert code == 2 and "--min-face 0.5 degrees" in err and "pass --min-face 2 or larger" in err
    assert "available" in err and not list(tmp_path.glob("*"))
    code, _, err = run_cli("faces", str(small_example), "--out", str(tmp_path), "--min-face", "8")
    assert code == 0, err
