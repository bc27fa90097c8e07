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


def _write_short_gop(path, n: int, fps: int, gop: int) -> None:
    """An H.264 video with a keyframe every ``gop`` frames and B-frames, written with PyAV
    directly (VideoWriter keeps the encoder's long default GOP), so that seeking lands on
    keyframes other than the first."""
    import av

    frames = (_levels(n) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.options = {"bf": "2", "sc_threshold": "0"}
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.mark.parametrize("start", [0.0, 0.05, 0.1, 0.45, 1.0, 1.3, 2.9])
def test_start_seeks_and_matches_decoding_from_the_beginning(tmp_path, start):
    path = tmp_path / "gop.mp4"
    _write_short_gop(path, 30, fps=10, gop=4)
    full = list(iter_video_frames(path))
    expected = [(t, f) for t, f in full if t >= start - 1e-6]
    got = list(iter_video_frames(path, start=start))
    assert [round(t, 6) for t, _ in got] == [round(t, 6) for t, _ in expected]
    for (_, a), (_, b) in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # decoding from a keyframe is exact
    if expected:
        frames, times = read_video(path, start=start, max_frames=2)
        want = torch.tensor([t for t, _ in expected[:2]], dtype=torch.float64)
        torch.testing.assert_close(times, want)
        torch.testing.assert_close(frames, torch.cat([f for _, f in expected[:2]]))


def test_start_decodes_from_the_keyframe_not_from_the_beginning(tmp_path, monkeypatch):
    import pano360.io._video as video

    path = tmp_path / "gop.mp4"
    _write_short_gop(path, 30, fps=10, gop=4)
    decoded = []

    class Counting:  # the container, counting what it decodes
        def __init__(self, container):
            self.container = container

        def __getattr__(self, name):
            return getattr(self.container, name)

        def decode(self, *streams):
            for frame in self.container.decode(*streams):
                decoded.append(frame.time)
                yield frame

    open_input = video._open_input
    monkeypatch.setattr(video, "_open_input", lambda p: Counting(open_input(p)))
    got = list(iter_video_frames(path, start=2.5))
    assert len(got) == 5 and round(got[0][0], 6) == 2.5
    assert len(decoded) < 10 and min(decoded) >= 2.0  # from the keyframe at 2.4 s (gop 4)


@pytest.mark.parametrize(("start", "fps"), [(0.35, 4.0), (1.0, 10.0), (2.05, 25.0)])
def test_start_with_resampling_shows_the_frame_on_screen(tmp_path, start, fps):
    path = tmp_path / "gop.mp4"
    _write_short_gop(path, 30, fps=10, gop=4)
    full = list(iter_video_frames(path, fps=fps))
    expected = [(t, f) for t, f in full if t >= start - 1e-6]
    got = list(iter_video_frames(path, fps=fps, start=start))
    assert [round(t, 9) for t, _ in got] == [round(t, 9) for t, _ in expected]
    assert [_which(f, 30) for _, f in got] == [_which(f, 30) for _, f in expected]


def test_start_past_the_end_yields_nothing_and_bad_start_is_refused(clip):
    assert list(iter_video_frames(clip, start=5.0)) == []
    with pytest.raises(ValueRangeError, match="start must be a time >= 0"):
        iter_video_frames(clip, start=-0.5)
    with pytest.raises(ValueRangeError, match="start must be a time >= 0"):
        iter_video_frames(clip, start=float("nan"))
