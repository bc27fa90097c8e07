"""blur_faces_in_video: streams a video through detection, tracking and blurring; keeps size,
rate and audio; writes per-frame JSON; leaves nothing behind on failure."""

from __future__ import annotations

import json
import math

import pytest
import torch

from pano360._core import OutputExistsError, ShapeError, ValueRangeError
from pano360.data import FACE_PATHS, SyntheticFaceVideo
from pano360.detection import blur_faces_in_video
from pano360.geometry import angle_between, lonlat_to_xyz
from pano360.io import VideoIOError, iter_video_frames, video_info
from pano360.testing import audio_packets, write_video_with_tone

pytest.importorskip("av")

# A coarse pyramid keeps these tests fast; the faces of the synthetic video are 11-16 degrees.
FAST = {"min_face_deg": 11.0, "max_face_deg": 17.0}


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    """3 frames of 256x512 of the synthetic face video, with a tone."""
    path = tmp_path_factory.mktemp("video") / "faces.mp4"
    video = SyntheticFaceVideo((256, 512), num_frames=3, fps=10, seed=3)
    frames = torch.stack([video.frame(i) for i in range(len(video))])
    packets = write_video_with_tone(path, frames, fps=10)
    return path, video, packets


def test_blurs_tracks_and_keeps_rate_size_and_audio(face_video, tmp_path):
    src, video, packets = face_video
    report = tmp_path / "faces.json"
    summary = blur_faces_in_video(
        src, tmp_path / "out.mp4", report=report, lead=1, detect_every=2, **FAST
    )
    assert (summary.frames, summary.hw, summary.fps) == (3, (256, 512), 10.0)
    assert (summary.max_missed, summary.lead) == (5, 1)
    info = video_info(tmp_path / "out.mp4")
    assert info.hw == (256, 512) and info.fps == pytest.approx(10)
    assert audio_packets(tmp_path / "out.mp4") == packets
    doc = json.loads(report.read_text())
    assert len(doc["frames"]) == 3 and doc["tracking"]["enabled"]
    assert summary.detections >= 4  # most faces are found in the 2 frames searched (0 and 2)
    assert [f["detected"] for f in doc["frames"][1]["faces"]] == [False] * summary.tracks
    assert summary.blurred >= summary.detections
    # Every face of the first frame is found, blurred and given a track id.
    truth = video.boxes(0)
    faces = doc["frames"][0]["faces"]
    assert {f["track"] for f in faces} >= {0, 1, 2}
    for f in faces:
        assert f["blurred"][:2] == f["bfov"][:2]
        assert f["blurred"][2] == pytest.approx(1.3 * f["bfov"][2], abs=1e-3)
    centres = torch.tensor([f["bfov"][:2] for f in faces]).deg2rad()
    for lon, lat in truth[:, :2].tolist():
        gap = torch.remainder(centres[:, 0] - lon + math.pi, 2 * math.pi) - math.pi
        assert bool(((gap.abs() < 0.05) & ((centres[:, 1] - lat).abs() < 0.05)).any())
    # The faces' pixels changed; a patch far from every face did not (beyond compression).
    out = next(iter_video_frames(tmp_path / "out.mp4"))[1]
    original = next(iter_video_frames(src))[1]
    assert (out - original).abs().mean() > 1e-3
    assert (out[..., 200:250, 20:60] - original[..., 200:250, 20:60]).abs().mean() < 0.02


def test_per_frame_detector_has_no_track_ids(face_video, tmp_path):
    src, _, _ = face_video
    report = tmp_path / "faces.json"
    summary = blur_faces_in_video(src, tmp_path / "out.mkv", report=report, track=False, **FAST)
    doc = json.loads(report.read_text())
    assert summary.tracks == 0 and summary.blurred == summary.detections
    assert all(f["track"] is None and f["detected"] for fr in doc["frames"] for f in fr["faces"])


def test_half_precision_finds_the_same_faces(face_video, tmp_path):
    # float16 autocast is meant for GPUs; on the CPU it runs (slowly) and checks the path:
    # the networks in float16, the frames, boxes and tracks in float32.
    src, _, _ = face_video
    docs = []
    for half in (False, True):
        report = tmp_path / f"half-{half}.json"
        blur_faces_in_video(
            src, tmp_path / f"half-{half}.mp4", report=report, track=False, half=half, **FAST
        )
        frames = json.loads(report.read_text())["frames"]
        docs.append([torch.tensor([f["bfov"] for f in fr["faces"]]) for fr in frames])
    full, half = docs
    assert [len(b) for b in half] == [len(b) for b in full] and len(full[0]) >= 3
    for a, b in zip(full, half, strict=True):
        # Each float16 box against the float32 box nearest to it on the sphere.
        ends = [lonlat_to_xyz(boxes[:, :2].double().deg2rad()) for boxes in (b, a)]
        apart = angle_between(ends[0][:, None], ends[1][None]).rad2deg()
        match = apart.argmin(1)
        nearest = a[match]
        assert len(set(match.tolist())) == len(a)
        assert float(apart.min(1).values.max()) < 1.0  # centres within a degree
        torch.testing.assert_close(b[:, 2:], nearest[:, 2:], atol=0, rtol=0.1)


def test_failures_leave_nothing(tmp_path):
    src = tmp_path / "cut.mkv"
    write_video_with_tone(src, torch.rand(6, 3, 32, 64), fps=4)
    src.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(VideoIOError, match="truncated or corrupt"):
        blur_faces_in_video(src, tmp_path / "out.mp4", report=tmp_path / "f.json", **FAST)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mkv"]
    wide = tmp_path / "wide.mp4"
    write_video_with_tone(wide, torch.rand(2, 3, 32, 48), fps=10, audio=False)
    with pytest.raises(ShapeError, match="width = 2 x height, got 48x32"):
        blur_faces_in_video(wide, tmp_path / "out.mp4", **FAST)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mkv", "wide.mp4"]


def test_settings_and_existing_outputs(tmp_path):
    src = tmp_path / "in.mp4"
    write_video_with_tone(src, torch.rand(2, 3, 32, 64), fps=10, audio=False)
    with pytest.raises(ValueRangeError, match="blur_scale"):
        blur_faces_in_video(src, tmp_path / "out.mp4", blur_scale=0)
    with pytest.raises(ValueRangeError, match="detect_every > 1 needs track=True"):
        blur_faces_in_video(src, tmp_path / "out.mp4", detect_every=2, track=False)
    with pytest.raises(ValueRangeError, match="batch_size"):
        blur_faces_in_video(src, tmp_path / "out.mp4", batch_size=0)
    with pytest.raises(ValueRangeError, match="half"):
        blur_faces_in_video(src, tmp_path / "out.mp4", half=1)
    with pytest.raises(ValueRangeError, match="min_face_deg"):
        blur_faces_in_video(src, tmp_path / "out.mp4", min_face_deg=0)
    with pytest.raises(ValueError, match="strategy"):
        blur_faces_in_video(src, tmp_path / "out.mp4", strategy="sideways")
    (tmp_path / "f.json").write_text("{}")
    with pytest.raises(OutputExistsError, match=r"f\.json"):
        blur_faces_in_video(src, tmp_path / "out.mp4", report=tmp_path / "f.json")
    assert not (tmp_path / "out.mp4").exists()


def test_synthetic_face_video_paths_and_determinism(tmp_path):
    video = SyntheticFaceVideo((64, 128), num_frames=9, seed=5)
    boxes = torch.stack([video.boxes(i) for i in range(9)])  # (T, 3, 4)
    seam, lat, pole = (boxes[:, k] for k in range(len(FACE_PATHS)))
    assert seam[0, 0] > 2.4 and seam[-1, 0] < -2.4  # across lon 180
    assert lat[0, 1] == pytest.approx(math.radians(-60)) and lat[-1, 1] == pytest.approx(
        math.radians(60)
    )
    assert pole[:, 1].max() > math.radians(85)  # over the pole, down the other side
    assert (pole[0, 0] - pole[-1, 0]).abs() == pytest.approx(math.pi)
    again = SyntheticFaceVideo((64, 128), num_frames=9, seed=5)
    assert torch.equal(again.frame(4), video.frame(4))
    assert not torch.equal(SyntheticFaceVideo((64, 128), 9, seed=6).frame(4), video.frame(4))
    video.write(tmp_path / "v.mp4", tmp_path / "v.json")
    doc = json.loads((tmp_path / "v.json").read_text())
    assert len(doc["frames"]) == 9 and doc["paths"] == list(FACE_PATHS)
    assert doc["frames"][4][2] == pytest.approx(torch.rad2deg(pole[4]).tolist(), abs=1e-5)
    with pytest.raises(ValueRangeError, match="num_frames"):
        SyntheticFaceVideo((64, 128), num_frames=1)
    with pytest.raises(ShapeError, match="erp_hw"):
        SyntheticFaceVideo((64, 100))
