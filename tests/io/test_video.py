"""Video I/O with PyAV: lazy reading, sampling by fps, atomic writing, and typed errors."""

from __future__ import annotations

import os

import pytest
import torch

from pano360._core import OutputExistsError, ShapeError, ValueRangeError
from pano360.io import (
    VideoInfo,
    VideoIOError,
    VideoWriter,
    iter_video_frames,
    read_video,
    video_info,
    write_video,
)

pytest.importorskip("av")  # the optional video dependency (pano360[video])

H, W = 32, 64


def _levels(n: int) -> torch.Tensor:
    """n flat grey frames of distinct brightness: frame k is identified by its mean."""
    levels = torch.linspace(0.1, 0.9, n)
    return levels[:, None, None, None].expand(n, 3, H, W).contiguous()


def _which(frame: torch.Tensor, n: int) -> int:
    return int((torch.linspace(0.1, 0.9, n) - frame.mean()).abs().argmin())


@pytest.fixture
def clip(tmp_path):
    """A 10-frame 10 fps video of flat frames of increasing brightness."""
    path = tmp_path / "clip.mp4"
    write_video(path, _levels(10), fps=10)
    return path


def test_write_then_read_every_frame(clip):
    frames, times = read_video(clip)
    assert frames.shape == (10, 3, H, W) and frames.dtype == torch.float32
    torch.testing.assert_close(times, torch.arange(10, dtype=torch.float64) / 10)
    assert [_which(f, 10) for f in frames] == list(range(10))
    assert float((frames - _levels(10)).abs().mean()) < 0.02  # lossy codec, flat frames


def test_info_from_headers(clip):
    assert video_info(clip) == VideoInfo(hw=(H, W), fps=10.0, num_frames=10, duration_s=1.0)


@pytest.mark.parametrize("fps", [4.0, 10.0, 25.0, 3.3])
def test_sampling_by_fps_shows_the_frame_on_screen_at_each_time(clip, fps):
    items = list(iter_video_frames(clip, fps=fps))
    # Oracle: sample k is at time k / fps and shows source frame floor(k / fps * 10), while
    # that time is within the video (1 s long).
    expected = []
    k = 0
    while k / fps < 1.0 - 1e-9:
        expected.append((k / fps, min(9, int(k / fps * 10 + 1e-9))))
        k += 1
    assert [round(t, 9) for t, _ in items] == [round(t, 9) for t, _ in expected]
    assert [_which(f, 10) for _, f in items] == [i for _, i in expected]


def test_iteration_is_lazy_and_max_frames_stops_early(clip):
    it = iter_video_frames(clip)
    t, first = next(it)
    assert t == 0.0 and first.shape == (1, 3, H, W)
    it.close()
    assert len(list(iter_video_frames(clip, max_frames=3))) == 3
    assert len(list(iter_video_frames(clip, fps=20, max_frames=5))) == 5


@pytest.mark.parametrize("suffix", [".mkv", ".webm", ".avi", ".mov"])
def test_other_containers(tmp_path, suffix):
    path = tmp_path / f"v{suffix}"
    write_video(path, (f for f in _levels(4)), fps=8)  # a generator of (3, H, W) frames
    frames, _ = read_video(path)
    assert frames.shape == (4, 3, H, W)
    assert [_which(f, 4) for f in frames] == [0, 1, 2, 3]


def test_writer_is_atomic_and_never_overwrites(tmp_path):
    path = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="stop"), VideoWriter(path, fps=5) as out:
        out.write(_levels(2))
        raise RuntimeError("stop")
    assert os.listdir(tmp_path) == []  # no partial file, no temporary left
    write_video(path, _levels(2), fps=5)
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match="already exists"):
        write_video(path, _levels(3), fps=5)
    assert path.read_bytes() == before
    write_video(path, _levels(3), fps=5, overwrite=True)
    assert video_info(path).num_frames == 3
    assert sorted(os.listdir(tmp_path)) == ["out.mp4"]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda p: write_video(p / "a.gif", _levels(2), 5), VideoIOError, "unsupported extension"),
        (lambda p: write_video(p / "x" / "a.mp4", _levels(2), 5), VideoIOError,
         "does not exist"),
        (lambda p: write_video(p / "a.mp4", _levels(2), 0), ValueRangeError, "fps must be"),
        (lambda p: write_video(p / "a.mp4", _levels(2), 5, quality=60), ValueRangeError,
         "quality"),
        (lambda p: write_video(p / "a.mp4", torch.rand(2, 3, 31, 62), 5), ShapeError,
         "even width and height, got 62x31"),
        (lambda p: write_video(p / "a.mp4", torch.rand(2, 4, H, W), 5), ShapeError,
         r"\(T, 3, H, W\)"),
        (lambda p: write_video(p / "a.mp4", torch.zeros(2, 3, H, W, dtype=torch.uint8), 5),
         TypeError, "floating-point"),
        (lambda p: write_video(p / "a.mp4", [], 5), VideoIOError, "no frames were written"),
        (lambda p: write_video(p / "a.mp4", [torch.rand(3, H, W), torch.rand(3, H, 2 * W)], 5),
         ShapeError, "like the first"),
    ],
)  # fmt: skip
def test_write_errors(tmp_path, call, error, match):
    with pytest.raises(error, match=match):
        call(tmp_path)
    assert [p for p in os.listdir(tmp_path) if p.endswith(".tmp")] == []


def test_read_errors(tmp_path, clip):
    with pytest.raises(VideoIOError, match=r"cannot read video '.*missing.mp4': no such file"):
        video_info(tmp_path / "missing.mp4")
    (tmp_path / "text.mp4").write_text("not a video")
    with pytest.raises(VideoIOError, match="not a video PyAV can decode"):
        read_video(tmp_path / "text.mp4")
    with pytest.raises(ValueRangeError, match="fps must be a positive"):
        iter_video_frames(clip, fps=-1)
    with pytest.raises(ValueRangeError, match="max_frames must be a positive"):
        iter_video_frames(clip, max_frames=0)


def test_writer_repr_counts_frames(tmp_path):
    with VideoWriter(tmp_path / "r.mp4", fps=12.5) as out:
        out.write(_levels(3))
        assert repr(out) == f"VideoWriter('{tmp_path / 'r.mp4'}', fps=12.5, frames_written=3)"
    assert video_info(tmp_path / "r.mp4").fps == 12.5
