"""``pano360 faces VIDEO --blur``: a blurred video with the input's audio and a JSON per frame;
broken inputs and outputs fail with one line, exit 2, and leave nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from pano360.io import video_info
from pano360.testing import audio_packets, file_listing, run_cli, write_video_with_tone

pytest.importorskip("av")

FAST = ["--min-face", "11", "--max-face", "17"]


def test_video_is_blurred_with_audio_and_json(tmp_path):
    src = tmp_path / "ride.mov"
    packets = write_video_with_tone(src, torch.rand(3, 3, 32, 64), fps=6)
    code, out, err = run_cli("faces", str(src), "--blur", "--out", str(tmp_path / "res"), *FAST)
    assert code == 0, err
    assert file_listing(tmp_path / "res") == ["ride_blurred.mov", "ride_faces.json"]
    assert out.startswith("3 frames, ") and "track(s)" in out
    assert audio_packets(tmp_path / "res" / "ride_blurred.mov") == packets
    assert video_info(tmp_path / "res" / "ride_blurred.mov").hw == (32, 64)
    doc = json.loads((tmp_path / "res" / "ride_faces.json").read_text())
    assert doc["size"] == [64, 32] and len(doc["frames"]) == 3
    assert doc["tracking"] == {
        "enabled": True, "detect_every": 1, "max_missed": 3, "lead": 3, "blur_scale": 1.3
    }  # fmt: skip
    # Without --overwrite, a second run refuses and changes nothing.
    code, _, err = run_cli("faces", str(src), "--blur", "--out", str(tmp_path / "res"), *FAST)
    assert code == 2 and "already exists" in err and err.count("\n") == 1
    code, _, err = run_cli(
        "faces", str(src), "--blur", "--no-track", "--overwrite", "--out", str(tmp_path / "res")
    )
    assert code == 0, err
    doc = json.loads((tmp_path / "res" / "ride_faces.json").read_text())
    assert doc["tracking"]["enabled"] is False


def _truncated(tmp_path: Path) -> Path:
    path = tmp_path / "cut.mkv"
    write_video_with_tone(path, torch.rand(6, 3, 32, 64), fps=4)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _sound_only(tmp_path: Path) -> Path:
    import av

    path = tmp_path / "sound.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            torch.zeros(1, 1024).numpy(), format="flt", layout="mono"
        )
        frame.sample_rate, frame.pts = 16000, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path


def _four_by_three(tmp_path: Path) -> Path:
    path = tmp_path / "tv.mp4"
    write_video_with_tone(path, torch.rand(2, 3, 48, 64), fps=4, audio=False)
    return path


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (_truncated, [], "cannot read video '{src}': it ends at "),
        (_sound_only, [], "cannot read video '{src}': it has no video stream"),
        (_four_by_three, [], "video '{src}' must be equirectangular with width = 2 x height"),
        (_four_by_three, ["--quiet"], "IMAGE '{src}' is a video: pass --blur"),
    ],
)
def test_broken_inputs_fail_in_one_line_and_leave_nothing(tmp_path, make, extra, message):
    src = make(tmp_path)
    before = file_listing(tmp_path)
    args = ["faces", str(src), *(extra or ["--blur"]), "--out", str(tmp_path / "res"), *FAST]
    code, out, err = run_cli(*args)
    assert (code, out) == (2, ""), err
    assert err.startswith("pano360: error: " + message.format(src=src)) and err.count("\n") == 1
    assert file_listing(tmp_path) == before


def test_unwritable_output_fails_in_one_line(tmp_path, monkeypatch):
    src = tmp_path / "in.mp4"
    write_video_with_tone(src, torch.rand(2, 3, 32, 64), fps=4)
    locked = tmp_path / "locked"
    locked.mkdir()
    access = os.access  # as for a non-root user after chmod 555 (root may write anywhere)
    monkeypatch.setattr(
        os,
        "access",
        lambda p, mode, **kw: not (mode & os.W_OK and Path(p) == locked) and access(p, mode),
    )
    before = file_listing(tmp_path)
    code, out, err = run_cli("faces", str(src), "--blur", "--out", str(locked))
    assert (code, out) == (2, "")
    assert err == f"pano360: error: --out '{locked}' is not writable\n"
    assert file_listing(tmp_path) == before


def test_device_is_checked(tmp_path):
    src = tmp_path / "in.mp4"
    write_video_with_tone(src, torch.rand(2, 3, 32, 64), fps=4, audio=False)
    code, _, err = run_cli("faces", str(src), "--blur", "--device", "tpu", "--out", str(tmp_path))
    assert code == 2 and "--device" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max-memory", "0.001"], "needs about "),
        (["--half", "--device", "cpu"], "--half runs the detector in float16"),
    ],
)
def test_memory_and_half_are_checked_before_any_output(tmp_path, extra, message):
    src = tmp_path / "in.mp4"
    write_video_with_tone(src, torch.rand(2, 3, 32, 64), fps=4, audio=False)
    before = file_listing(tmp_path)
    code, out, err = run_cli("faces", str(src), "--blur", "--out", str(tmp_path / "res"), *extra)
    assert (code, out) == (2, "") and err.count("\n") == 1 and message in err, err
    assert file_listing(tmp_path) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback without a GPU")
def test_half_on_auto_without_gpu_warns_and_runs_in_float32(tmp_path):
    src = tmp_path / "in.mp4"
    write_video_with_tone(src, torch.rand(2, 3, 32, 64), fps=4, audio=False)
    code, _, err = run_cli(
        "faces", str(src), "--blur", "--out", str(tmp_path / "res"), "--half", "--device",
        "auto", *FAST,
    )  # fmt: skip
    assert code == 0 and "warning: --half ignored: no GPU" in err


def test_spherical_metadata_kept_or_one_line_on_how_to_restore_it(tmp_path):
    from pano360.io._spherical_video import SphericalBoxes, spherical_v1_box, write_spherical_boxes

    src = tmp_path / "pano.mp4"
    write_video_with_tone(src, torch.rand(2, 3, 32, 64), fps=4)
    write_spherical_boxes(src, SphericalBoxes(v1_uuid=spherical_v1_box()))
    code, _, err = run_cli("faces", str(src), "--blur", "--out", str(tmp_path / "a"), *FAST)
    assert code == 0 and err == ""
    assert video_info(tmp_path / "a" / "pano_blurred.mp4").spherical
    mkv = tmp_path / "pano.mkv"
    write_video_with_tone(mkv, torch.rand(2, 3, 32, 64), fps=4)
    code, _, err = run_cli("faces", str(mkv), "--blur", "--out", str(tmp_path / "b"), *FAST)
    assert code == 0 and err.count("\n") == 1
    assert err.startswith("pano360: warning: spherical-video metadata is copied only between")
    assert "spatialmedia -i " in err and "pano_blurred_360.mkv" in err
