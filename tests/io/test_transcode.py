"""transcode_video: streaming re-encoding with the audio packets copied bit for bit, atomic
output, and the errors of broken inputs (truncated, no video stream, not 2:1)."""

from __future__ import annotations

import os
from fractions import Fraction

import pytest
import torch

from pano360._core import OutputExistsError, ShapeError
from pano360.io import VideoIOError, iter_video_frames, transcode_video, video_info
from pano360.testing import audio_packets, file_listing, write_video_with_tone

av = pytest.importorskip("av")


def _negative(frames):
    return (1 - f for _, f in frames)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_audio_packets_are_copied_bit_for_bit(tmp_path, suffix):
    src = tmp_path / "tone.mp4"
    written = write_video_with_tone(src, torch.rand(12, 3, 32, 64), fps=12)
    assert written and audio_packets(src) == written
    dst = tmp_path / f"out{suffix}"
    info = transcode_video(src, dst, _negative)
    assert info.hw == (32, 64) and info.fps == pytest.approx(12)
    assert audio_packets(dst) == written
    out = video_info(dst)
    assert out.hw == (32, 64) and out.fps == pytest.approx(12)
    frames = [f for _, f in iter_video_frames(dst)]
    originals = [f for _, f in iter_video_frames(src)]
    assert len(frames) == 12
    # The frames went through the transform (compression noise aside).
    assert (frames[3] - (1 - originals[3])).abs().mean() < 0.05


def test_transform_may_hold_frames_back(tmp_path):
    src = tmp_path / "tone.mp4"
    write_video_with_tone(src, torch.rand(7, 3, 16, 32), fps=7)

    def lagging(frames):  # holds three frames, then writes them as one batch
        held = []
        for _, f in frames:
            held.append(f)
            if len(held) == 3:
                yield torch.cat(held)
                held = []
        if held:
            yield torch.cat(held)

    transcode_video(src, tmp_path / "out.mp4", lagging)
    assert sum(1 for _ in iter_video_frames(tmp_path / "out.mp4")) == 7


def test_truncated_input_fails_and_leaves_nothing(tmp_path):
    src = tmp_path / "cut.mkv"
    write_video_with_tone(src, torch.rand(30, 3, 16, 32), fps=10)
    src.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    before = file_listing(tmp_path)
    with pytest.raises(VideoIOError, match="truncated or corrupt"):
        transcode_video(src, tmp_path / "out.mp4", _negative)
    assert file_listing(tmp_path) == before


def test_truncated_mp4_fails(tmp_path):
    src = tmp_path / "cut.mp4"
    write_video_with_tone(src, torch.rand(10, 3, 16, 32), fps=10)
    src.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(VideoIOError, match="truncated/corrupt"):
        transcode_video(src, tmp_path / "out.mp4", _negative)
    assert file_listing(tmp_path) == ["cut.mp4"]


def test_input_without_video_stream(tmp_path):
    src = tmp_path / "sound.mp4"
    with av.open(str(src), "w") as out:
        stream = out.add_stream("aac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            torch.zeros(1, 1024).numpy(), format="flt", layout="mono"
        )
        frame.sample_rate, frame.pts, frame.time_base = 16000, 0, Fraction(1, 16000)
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    with pytest.raises(VideoIOError, match="no video stream"):
        transcode_video(src, tmp_path / "out.mp4", _negative)
    assert file_listing(tmp_path) == ["sound.mp4"]


def test_require_erp_refuses_other_aspect_ratios_before_writing(tmp_path):
    src = tmp_path / "wide.mp4"
    write_video_with_tone(src, torch.rand(3, 3, 24, 32), fps=10, audio=False)
    with pytest.raises(ShapeError, match="width = 2 x height, got 32x24"):
        transcode_video(src, tmp_path / "out.mp4", _negative, require_erp=True)
    assert file_listing(tmp_path) == ["wide.mp4"]
    transcode_video(src, tmp_path / "out.mp4", _negative)  # allowed without require_erp


def test_output_errors(tmp_path, monkeypatch):
    src = tmp_path / "in.mp4"
    write_video_with_tone(src, torch.rand(3, 3, 16, 32), fps=10, audio=False)
    with pytest.raises(VideoIOError, match="does not exist"):
        transcode_video(src, tmp_path / "missing" / "out.mp4", _negative)
    (tmp_path / "out.mp4").write_bytes(b"keep")
    with pytest.raises(OutputExistsError, match="already exists"):
        transcode_video(src, tmp_path / "out.mp4", _negative)
    assert (tmp_path / "out.mp4").read_bytes() == b"keep"
    locked = tmp_path / "locked"
    locked.mkdir()
    access = os.access  # as for a non-root user after chmod 555 (root may write anywhere)
    monkeypatch.setattr(
        os, "access", lambda p, mode, **kw: not (mode & os.W_OK and p == locked) and access(p, mode)
    )
    with pytest.raises(VideoIOError, match="not writable"):
        transcode_video(src, locked / "out.mp4", _negative)
    assert file_listing(locked) == []


def test_a_failing_transform_leaves_nothing(tmp_path):
    src = tmp_path / "in.mp4"
    write_video_with_tone(src, torch.rand(4, 3, 16, 32), fps=10)

    def failing(frames):
        for i, (_, f) in enumerate(frames):
            if i == 2:
                raise RuntimeError("boom")
            yield f

    with pytest.raises(RuntimeError, match="boom"):
        transcode_video(src, tmp_path / "out.mp4", failing)
    assert file_listing(tmp_path) == ["in.mp4"]


def test_spherical_metadata_is_copied_between_mp4_and_mov(tmp_path):
    from pano360.io._spherical_video import (
        SphericalBoxes,
        read_spherical_boxes,
        spherical_v1_box,
        spherical_v2_box,
        write_spherical_boxes,
    )

    src = tmp_path / "pano.mp4"
    packets = write_video_with_tone(src, torch.rand(3, 3, 16, 32), fps=6)
    assert not video_info(src).spherical and not read_spherical_boxes(src)
    boxes = SphericalBoxes(v1_uuid=spherical_v1_box(), sv3d=spherical_v2_box())
    assert write_spherical_boxes(src, boxes)
    assert not write_spherical_boxes(src, boxes)  # already there: unchanged
    assert video_info(src).spherical and read_spherical_boxes(src) == boxes
    assert sum(1 for _ in iter_video_frames(src)) == 3  # still a valid file
    assert audio_packets(src) == packets
    for suffix in (".mp4", ".mov"):
        transcode_video(src, tmp_path / f"out{suffix}", _negative)
        assert read_spherical_boxes(tmp_path / f"out{suffix}") == boxes
        assert audio_packets(tmp_path / f"out{suffix}") == packets
    transcode_video(src, tmp_path / "out.mkv", _negative)
    assert not video_info(tmp_path / "out.mkv").spherical  # MKV is not inspected


def test_write_packet_refuses_packets_of_other_streams(tmp_path):
    from pano360.io import VideoWriter

    src = tmp_path / "tone.mp4"
    write_video_with_tone(src, torch.rand(2, 3, 16, 32), fps=4)
    with av.open(str(src)) as container:
        packet = next(p for p in container.demux(container.streams.audio[0]) if p.size)
        writer = VideoWriter(tmp_path / "out.mp4", 4)
        with pytest.raises(VideoIOError, match="not one of copy_streams"):
            writer.write_packet(packet)
        writer.abort()
    assert file_listing(tmp_path) == ["tone.mp4"]
