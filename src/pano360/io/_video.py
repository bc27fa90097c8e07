"""Reading and writing videos with PyAV, frame by frame (a video is never loaded whole).

Frames are (1, 3, H, W) float32 tensors in [0, 1], like :func:`pano360.io.read_image` images.
PyAV is an optional dependency (``pip install 'pano360[video]'``); it is imported on first use.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from .._core import ImageIOError, OutputExistsError, ShapeError, ValueRangeError
from ._image import _describe, _move_into_place, _remove_quietly, _temporary_path
from ._spherical_video import SPHERICAL_SUFFIXES, read_spherical_boxes, write_spherical_boxes

__all__ = [
    "SPHERICAL_VIDEO_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "VideoIOError",
    "VideoInfo",
    "VideoWriter",
    "iter_video_frames",
    "read_video",
    "transcode_video",
    "video_info",
    "write_video",
]

# Extension -> (container format, codec, pixel format).
_WRITE_FORMATS = {
    ".mp4": ("mp4", "libx264", "yuv420p"),
    ".mkv": ("matroska", "libx264", "yuv420p"),
    ".mov": ("mov", "libx264", "yuv420p"),
    ".webm": ("webm", "libvpx-vp9", "yuv420p"),
    ".avi": ("avi", "mpeg4", "yuv420p"),
}

#: Video containers whose spherical-video metadata (:attr:`VideoInfo.spherical`) is read and
#: copied by :func:`transcode_video` (MP4 / MOV boxes; FFmpeg keeps none of it).
SPHERICAL_VIDEO_EXTENSIONS: tuple[str, ...] = SPHERICAL_SUFFIXES

#: Video file extensions :func:`write_video` knows (case-insensitive).
VIDEO_EXTENSIONS: tuple[str, ...] = tuple(sorted(_WRITE_FORMATS))


class VideoIOError(ImageIOError):
    """A video file cannot be read or written (missing, not a video, no PyAV, codec failure)."""


def _av():
    try:
        import av
    except ImportError:  # pragma: no cover - exercised only without the optional dependency
        raise VideoIOError(
            "reading and writing videos needs PyAV: pip install 'pano360[video]' (or av)"
        ) from None
    return av


@dataclass(frozen=True)
class VideoInfo:
    """What a video file's headers say.

    Attributes:
        hw: (H, W) of the frames.
        fps: average frame rate (frames per second).
        num_frames: frame count from the headers, or None when the container does not say
            (decoding is the only exact count).
        duration_s: duration in seconds, or None when unknown.
        spherical: whether the file carries spherical-video metadata, the boxes players read
            to show it as 360° (MP4 / MOV: Spherical Video V1 XMP or V2 ``sv3d``; other
            containers are not inspected and read False).
    """

    hw: tuple[int, int]
    fps: float
    num_frames: int | None
    duration_s: float | None
    spherical: bool = False


def _open_input(path: Path):
    av = _av()
    try:
        container = av.open(str(path), "r")
    except FileNotFoundError as e:
        raise VideoIOError(f"cannot read video '{path}': {_describe(e)}") from e
    except (OSError, av.error.FFmpegError) as e:
        raise VideoIOError(
            f"cannot read video '{path}': not a video PyAV can decode (or truncated/corrupt)"
        ) from e
    if not container.streams.video:
        container.close()
        raise VideoIOError(f"cannot read video '{path}': it has no video stream")
    return container


def _info_of(container, path: Path) -> VideoInfo:
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or float(rate) <= 0:
        raise VideoIOError(f"cannot read video '{path}': unknown frame rate")
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    ctx = stream.codec_context
    return VideoInfo(
        hw=(int(ctx.height), int(ctx.width)),
        fps=float(rate),
        num_frames=int(stream.frames) if stream.frames else None,
        duration_s=duration,
        spherical=bool(read_spherical_boxes(path)),
    )


def video_info(path: str | os.PathLike[str]) -> VideoInfo:
    """Frame size, rate, count and duration of a video, from its headers (nothing decoded).

    Raises:
        VideoIOError: missing file, not a video, no video stream, or PyAV not installed.
    """
    path = Path(path)
    container = _open_input(path)
    try:
        return _info_of(container, path)
    finally:
        container.close()


def _frames(container, path: Path, start: float = 0.0) -> Iterator[tuple[float, torch.Tensor]]:
    """Decoded frames with their time in seconds from the video's first frame.

    With ``start`` > 0 the container seeks to the last keyframe at or before ``start`` first, so
    decoding begins there rather than at the first frame; frames before ``start`` may still come
    (those between that keyframe and ``start``): the callers drop or use them.
    """
    av = _av()
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    origin = None
    index = 0
    fps = _info_of(container, path).fps
    if start > 0 and stream.start_time is not None and stream.time_base is not None:
        # Times stay relative to the first frame, which seeking skips: take it from the header.
        origin = float(stream.start_time * stream.time_base)
        target = stream.start_time + int(start / stream.time_base)
        try:
            container.seek(target, backward=True, any_frame=False, stream=stream)
        except av.error.FFmpegError as e:
            raise VideoIOError(f"cannot read video '{path}': seeking to {start:g} s failed") from e
        index = None  # the decode count no longer numbers frames from the first one
    try:
        for frame in container.decode(stream):
            if frame.time is not None:
                t = frame.time
            elif index is not None:
                t = index / fps
            else:
                raise VideoIOError(
                    f"cannot read video '{path}': its frames carry no time, so it cannot be "
                    "read from a later start; read it from the beginning"
                )
            origin = t if origin is None else origin
            rgb = frame.to_ndarray(format="rgb24")
            tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div_(255)
            index = None if index is None else index + 1
            yield t - origin, tensor
    except av.error.FFmpegError as e:
        where = f"at frame {index}" if index is not None else f"after seeking to {start:g} s"
        raise VideoIOError(f"cannot read video '{path}': decoding failed {where}") from e


def iter_video_frames(
    path: str | os.PathLike[str],
    *,
    fps: float | None = None,
    max_frames: int | None = None,
    start: float = 0.0,
) -> Iterator[tuple[float, torch.Tensor]]:
    """Decode a video lazily, frame by frame.

    Args:
        path: any video PyAV (FFmpeg) decodes.
        fps: sample the video at this rate: frame k shows the video at time k / fps (the
            source frame on screen then, repeated or skipped as needed). None: every frame.
        max_frames: stop after this many frames.
        start: begin at this time in seconds from the first frame: the first frame yielded is
            the first one at or after ``start`` (with ``fps``: the sample at the first multiple
            of 1 / fps at or after ``start``). The container seeks to the keyframe before
            ``start``, so reading a clip late in a long video does not decode what precedes it.

    Yields:
        ``(time_s, frame)``: time in seconds from the first frame, and a (1, 3, H, W) float32
        frame in [0, 1].

    Raises:
        VideoIOError: missing file, not a video, no video stream, a decoding error, or PyAV
            not installed.
        ValueRangeError: ``fps`` not positive, ``max_frames`` < 1 or ``start`` negative.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     write_video(f"{tmp}/v.mp4", torch.rand(4, 3, 16, 32), fps=10)
        ...     [round(t, 2) for t, _ in iter_video_frames(f"{tmp}/v.mp4", fps=5)]
        [0.0, 0.2]
    """
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise ValueRangeError(f"fps must be a positive number of frames per second, got {fps}")
    if max_frames is not None and (isinstance(max_frames, bool) or max_frames < 1):
        raise ValueRangeError(f"max_frames must be a positive integer, got {max_frames}")
    if isinstance(start, bool) or not (math.isfinite(start) and start >= 0):
        raise ValueRangeError(f"start must be a time >= 0 in seconds, got {start}")
    path = Path(path)
    container = _open_input(path)
    return _iterate(container, path, fps, max_frames, float(start))


def _iterate(container, path, fps, max_frames, start) -> Iterator[tuple[float, torch.Tensor]]:
    limit = math.inf if max_frames is None else max_frames
    eps = 1e-6
    count = 0
    try:
        if fps is None:
            for t, frame in _frames(container, path, start):
                if t < start - eps:
                    continue
                if count >= limit:
                    return
                count += 1
                yield t, frame
            return
        # Resample: target k takes the last source frame that starts at or before k / fps. The
        # first target is the first multiple of 1 / fps at or after start; seeking lands on a
        # keyframe at or before it, so the frame on screen then is decoded.
        src_fps = _info_of(container, path).fps
        k = math.ceil(start * fps - eps)
        prev = None
        for t, frame in _frames(container, path, start):
            while prev is not None and k / fps < t - eps:
                if count >= limit:
                    return
                yield k / fps, prev[1]
                count, k = count + 1, k + 1
            prev = (t, frame)
        if prev is not None:
            end = prev[0] + 1 / src_fps  # the last frame stays on screen one source period
            while k / fps < end - eps and count < limit:
                yield k / fps, prev[1]
                count, k = count + 1, k + 1
    finally:
        container.close()


def read_video(
    path: str | os.PathLike[str],
    *,
    fps: float | None = None,
    max_frames: int | None = None,
    start: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read a whole (short) video, or a clip of it, into memory.

    Args:
        path, fps, max_frames, start: as in :func:`iter_video_frames`.

    Returns:
        ``(frames, times)``: (T, 3, H, W) float32 in [0, 1] and (T,) float64 seconds.

    Raises:
        The errors of :func:`iter_video_frames`; VideoIOError also when no frame decodes.
    """
    items = list(iter_video_frames(path, fps=fps, max_frames=max_frames, start=start))
    if not items:
        raise VideoIOError(f"cannot read video '{path}': it has no frames")
    times = torch.tensor([t for t, _ in items], dtype=torch.float64)
    return torch.cat([f for _, f in items]), times


class VideoWriter:
    """Write a video frame by frame, atomically: the file appears only when it is complete.

    Args:
        path: output file; the extension picks container and codec (``.mp4``, ``.mkv``,
            ``.mov``: H.264; ``.webm``: VP9; ``.avi``: MPEG-4 part 2).
        fps: frames per second.
        overwrite: replace an existing file.
        quality: constant-quality factor, 0 (best) to 51 (H.264 CRF; VP9 and MPEG-4 map it to
            their own scale).
        copy_streams: streams of an open input (PyAV streams, e.g. its audio) whose packets
            :meth:`write_packet` copies into the output unchanged (no re-encoding).

    Use as a context manager: on normal exit the video is finalised and renamed into place; if
    the block raises, the partial file is deleted and ``path`` is left as it was.

    Raises:
        ImageIOError / VideoIOError: unsupported extension, missing or unwritable directory,
            encoder failure, PyAV not installed.
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        ShapeError: a frame of another size than the first, not (1, 3, H, W) or (3, H, W),
            or an odd width or height (the 4:2:0 codecs need even sizes).
        ValueRangeError: ``fps`` not positive or ``quality`` outside [0, 51].

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     with VideoWriter(f"{tmp}/v.mp4", fps=24) as out:
        ...         for _ in range(3):
        ...             out.write(torch.rand(1, 3, 16, 32))
        ...     video_info(f"{tmp}/v.mp4").hw
        (16, 32)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float,
        *,
        overwrite: bool = False,
        quality: int = 18,
        copy_streams: Sequence = (),
    ) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise ValueRangeError(f"fps must be a positive number of frames per second, got {fps}")
        if isinstance(quality, bool) or not isinstance(quality, int) or not 0 <= quality <= 51:
            raise ValueRangeError(f"quality must be an integer in [0, 51], got {quality!r}")
        suffix = self.path.suffix.lower()
        if suffix not in _WRITE_FORMATS:
            got = f"unsupported extension {suffix!r}" if suffix else "no extension"
            raise VideoIOError(
                f"cannot write video '{self.path}': {got}; supported: {', '.join(VIDEO_EXTENSIONS)}"
            )
        _check_video_output(self.path, overwrite)
        self.fps = fps
        self.quality = quality
        self._format = _WRITE_FORMATS[suffix]
        self._container = None
        self._stream = None
        self._tmp: Path | None = None
        self._hw: tuple[int, int] | None = None
        self._templates = tuple(copy_streams)
        self._copies: dict[int, object] = {}  # id of an input stream -> its output stream
        self._pending: list = []  # packets to copy that came before the first frame
        self.frames_written = 0
        self._finished = False

    def _start(self, h: int, w: int) -> None:
        av = _av()
        fmt, codec, pix_fmt = self._format
        if h % 2 or w % 2:
            raise ShapeError(
                f"cannot write video '{self.path}': {codec} with {pix_fmt} needs an even width "
                f"and height, got {w}x{h}"
            )
        try:
            self._tmp, fd = _temporary_path(self.path)
            os.close(fd)
            self._container = av.open(str(self._tmp), "w", format=fmt)
            rate = Fraction(self.fps).limit_denominator(1001)
            self._stream = self._container.add_stream(codec, rate=rate)
            self._stream.width, self._stream.height = w, h
            self._stream.pix_fmt = pix_fmt
            self._stream.options = _quality_options(codec, self.quality)
            for template in self._templates:
                copy = self._container.add_stream_from_template(template)
                self._copies[id(template)] = copy
            self._hw = (h, w)
            pending, self._pending = self._pending, []
            for packet in pending:
                self._mux_copy(packet)
        except (OSError, av.error.FFmpegError, ValueError) as e:
            self.abort()
            raise VideoIOError(f"cannot write video '{self.path}': {_describe(e)}") from e

    def _mux_copy(self, packet) -> None:
        packet.stream = self._copies[id(packet.stream)]
        self._container.mux(packet)

    def write_packet(self, packet) -> None:
        """Copy a demuxed packet of one of ``copy_streams`` into the output, unchanged.

        Packets that come before the first frame wait until it is written; flush packets
        (empty, as PyAV's demuxer ends each stream with) are skipped.

        Raises:
            VideoIOError: the packet is of no stream in ``copy_streams``, or the muxer fails.
        """
        if self._finished:
            raise VideoIOError(f"cannot write video '{self.path}': the writer is closed")
        if not any(packet.stream is t for t in self._templates):
            raise VideoIOError(
                f"cannot write video '{self.path}': a packet of stream {packet.stream.index} "
                "that is not one of copy_streams"
            )
        if packet.size == 0 or packet.dts is None:
            return
        if self._hw is None:
            self._pending.append(packet)
            return
        av = _av()
        try:
            self._mux_copy(packet)
        except (OSError, av.error.FFmpegError, ValueError) as e:
            self.abort()
            raise VideoIOError(f"cannot write video '{self.path}': {_describe(e)}") from e

    def write(self, frames: torch.Tensor) -> None:
        """Append frames: (1, 3, H, W), (3, H, W) or (T, 3, H, W) floats in [0, 1] (clamped)."""
        if self._finished:
            raise VideoIOError(f"cannot write video '{self.path}': the writer is closed")
        if not isinstance(frames, torch.Tensor) or not frames.is_floating_point():
            raise TypeError("frames must be a floating-point torch.Tensor in [0, 1]")
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ShapeError(
                f"frames must be (T, 3, H, W), (1, 3, H, W) or (3, H, W), got {tuple(frames.shape)}"
            )
        h, w = frames.shape[-2:]
        if self._hw is None:
            self._start(h, w)
        elif (h, w) != self._hw:
            raise ShapeError(
                f"every frame must be {self._hw[1]}x{self._hw[0]} like the first, got {w}x{h}"
            )
        av = _av()
        data = (frames.detach().to("cpu", torch.float32).clamp(0, 1) * 255).round()
        arrays = data.to(torch.uint8).permute(0, 2, 3, 1).numpy()
        try:
            for array in arrays:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
                for packet in self._stream.encode(frame):
                    self._container.mux(packet)
                self.frames_written += 1
        except (OSError, av.error.FFmpegError) as e:
            self.abort()
            raise VideoIOError(f"cannot write video '{self.path}': {_describe(e)}") from e

    def finish(self) -> None:
        """Flush the encoder and close the temporary file (the target is not created yet)."""
        if self._finished:
            return
        if self._container is None:
            raise VideoIOError(f"cannot write video '{self.path}': no frames were written")
        av = _av()
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
        except (OSError, av.error.FFmpegError) as e:
            self.abort()
            raise VideoIOError(f"cannot write video '{self.path}': {_describe(e)}") from e
        self._finished = True

    def close(self) -> None:
        """Finish and move the video into place (never replacing a file without overwrite)."""
        self.finish()
        if self._tmp is None:
            return
        tmp, self._tmp = self._tmp, None
        try:
            _move_into_place(tmp, self.path, self.overwrite)
        finally:
            _remove_quietly(tmp)

    def abort(self) -> None:
        """Drop everything written so far; ``path`` is left as it was."""
        if self._container is not None and not self._finished:
            # Already failing: whatever close() says, the file is deleted below.
            with contextlib.suppress(Exception):
                self._container.close()
        self._finished = True
        if self._tmp is not None:
            _remove_quietly(self._tmp)
            self._tmp = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __repr__(self) -> str:
        return f"VideoWriter('{self.path}', fps={self.fps}, frames_written={self.frames_written})"


# A stream that decodes to fewer frames than its headers announce, or ends this long before its
# announced duration, is truncated or corrupt (headers round durations to a frame or so).
_TRUNCATION_SLACK_S = 0.5


def _check_complete(path: Path, info: VideoInfo, count: int, last_t: float | None) -> None:
    if info.num_frames is not None:
        if count < info.num_frames:
            raise VideoIOError(
                f"cannot read video '{path}': it ends after {count} of its {info.num_frames} "
                "frames (truncated or corrupt)"
            )
        return
    if info.duration_s is not None:
        end = 0.0 if last_t is None else last_t + 1 / info.fps
        if end < info.duration_s - _TRUNCATION_SLACK_S:
            raise VideoIOError(
                f"cannot read video '{path}': it ends at {end:.2f} s of its {info.duration_s:.2f} "
                "s (truncated or corrupt)"
            )


def transcode_video(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    transform: Callable[[Iterator[tuple[float, torch.Tensor]]], Iterable[torch.Tensor]],
    *,
    overwrite: bool = False,
    quality: int = 18,
    require_erp: bool = False,
) -> VideoInfo:
    """Re-encode a video through a frame transform, streaming, with its audio copied unchanged.

    ``src`` is demuxed packet by packet: video frames go to ``transform`` as they decode, audio
    packets are copied into ``dst`` bit for bit (no re-encoding). Spherical-video metadata
    (:attr:`VideoInfo.spherical`) is copied byte for byte when both files are MP4 / MOV; compare
    the two files' :func:`video_info` to know whether it was kept. ``dst`` is written like
    :class:`VideoWriter` (its extension picks the codec, H.264 for ``.mp4``, ``.mkv``, ``.mov``)
    at ``src``'s frame rate, atomically: nothing is left at ``dst`` if anything fails,
    including a ``src`` that turns out truncated or corrupt after some frames.

    Args:
        src: the input video.
        dst: the output video.
        transform: called once with an iterator of ``(time_s, frame)`` (as
            :func:`iter_video_frames` yields); returns an iterable of (1, 3, H, W) or
            (T, 3, H, W) frames to write, lazily (it may hold a few frames back, e.g. to look
            ahead, but should not hold them all).
        overwrite, quality: as in :class:`VideoWriter`.
        require_erp: refuse a video whose width is not twice its height, before any work.

    Returns:
        The :class:`VideoInfo` of ``src``.

    Raises:
        VideoIOError: ``src`` missing, not a video, without a video stream, undecodable,
            truncated or corrupt (fewer frames or a shorter duration than its headers say);
            ``dst`` not writable; an encoder failure.
        ShapeError: ``require_erp`` and ``src`` is not 2:1, or frames of odd size.
        OutputExistsError: ``dst`` exists and ``overwrite`` is False.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     write_video(f"{tmp}/a.mp4", torch.rand(3, 3, 16, 32), fps=10)
        ...     negative = lambda frames: (1 - f for _, f in frames)
        ...     info = transcode_video(f"{tmp}/a.mp4", f"{tmp}/b.mp4", negative)
        ...     info.hw, video_info(f"{tmp}/b.mp4").num_frames
        ((16, 32), 3)
    """
    src, dst = Path(src), Path(dst)
    container = _open_input(src)
    try:
        info = _info_of(container, src)
        h, w = info.hw
        if require_erp and w != 2 * h:
            raise ShapeError(
                f"video '{src}' must be equirectangular with width = 2 x height, got {w}x{h}"
            )
        audio = tuple(container.streams.audio)
        with VideoWriter(
            dst, info.fps, overwrite=overwrite, quality=quality, copy_streams=audio
        ) as out:
            decoded = _demuxed_frames(container, src, info, out)
            for frames in transform(decoded):
                out.write(frames)
            # The transform may stop early; the rest of the input still has to be checked.
            for _ in decoded:
                pass
            if info.spherical and dst.suffix.lower() in SPHERICAL_SUFFIXES:
                out.finish()
                write_spherical_boxes(out._tmp, read_spherical_boxes(src))
    finally:
        container.close()
    return info


def _demuxed_frames(container, path: Path, info: VideoInfo, out: VideoWriter):
    """Decoded frames of the first video stream, copying the other streams' packets to ``out``."""
    av = _av()
    video = container.streams.video[0]
    video.thread_type = "AUTO"
    copied = {id(s) for s in out._templates}
    origin = last_t = None
    count = 0
    try:
        for packet in container.demux(video, *out._templates):
            if id(packet.stream) in copied:
                out.write_packet(packet)
                continue
            for frame in packet.decode():
                t = frame.time if frame.time is not None else count / info.fps
                origin = t if origin is None else origin
                last_t = t - origin
                rgb = frame.to_ndarray(format="rgb24")
                count += 1
                yield last_t, torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div_(255)
    except av.error.FFmpegError as e:
        raise VideoIOError(f"cannot read video '{path}': decoding failed at frame {count}") from e
    if count == 0:
        raise VideoIOError(f"cannot read video '{path}': it has no frames")
    _check_complete(path, info, count, last_t)


def _check_video_output(path: Path, overwrite: bool) -> None:
    parent = path.parent
    if path.is_dir():
        raise VideoIOError(f"cannot write video '{path}': it is a directory")
    if not parent.is_dir():
        raise VideoIOError(f"cannot write video '{path}': directory '{parent}' does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise VideoIOError(f"cannot write video '{path}': directory '{parent}' is not writable")
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"output '{path}' already exists; pass overwrite=True to replace it"
        )


def _quality_options(codec: str, quality: int) -> dict[str, str]:
    if codec == "libx264":
        return {"crf": str(quality), "preset": "medium"}
    if codec == "libvpx-vp9":
        return {"crf": str(min(63, round(quality * 63 / 51))), "b:v": "0"}
    # MPEG-4 part 2: qscale 1 (best) to 31.
    return {"qscale": str(max(1, min(31, round(1 + quality * 30 / 51))))}


def write_video(
    path: str | os.PathLike[str],
    frames: torch.Tensor | Iterable[torch.Tensor],
    fps: float,
    *,
    overwrite: bool = False,
    quality: int = 18,
) -> None:
    """Write frames to a video file, atomically (see :class:`VideoWriter`).

    Args:
        path: output file (``.mp4``, ``.mkv``, ``.mov``, ``.webm``, ``.avi``).
        frames: (T, 3, H, W) tensor, or an iterable of (1, 3, H, W) / (3, H, W) frames (streamed,
            e.g. a generator), floats in [0, 1].
        fps: frames per second.
        overwrite, quality: as in :class:`VideoWriter`.

    Raises:
        The errors of :class:`VideoWriter`; VideoIOError when there are no frames.
    """
    with VideoWriter(path, fps, overwrite=overwrite, quality=quality) as out:
        if isinstance(frames, torch.Tensor):
            out.write(frames)
        else:
            for frame in frames:
                out.write(frame)
