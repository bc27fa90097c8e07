"""Blurring every face of a 360° video: stream, detect in batches, track on the sphere, blur.

:func:`blur_faces_in_video` decodes the video frame by frame (:func:`pano360.io.transcode_video`:
never the whole video in memory; the audio packets are copied unchanged), runs
:func:`~pano360.detection.detect_faces` on batches of frames, links the detections into tracks
(:class:`~pano360.detection.SphereTracker`), blurs each track's box on the sphere
(:func:`pano360.viz.blur_regions_on_sphere`) and encodes the result at the input's frame rate and
size. The detections of every frame, with their track ids, can be written as JSON.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .._core import ValueRangeError, check_bool, check_int, check_number
from ..io import SPHERICAL_VIDEO_EXTENSIONS, transcode_video, video_info, write_atomic
from ..viz import blur_regions_on_sphere
from ._faces360 import _check_settings, detect_faces, detector_precision
from ._tracking import SphereTracker, TrackedBoxes, frames_for_seconds

__all__ = ["VideoBlurSummary", "blur_faces_in_video", "widen_boxes"]

# Tracks are kept through misses, and reported before their first detection, this long.
_HOLD_S = 0.5
# A BFoV field of view stays below pi.
_MAX_FOV = 0.95 * math.pi


def widen_boxes(boxes: torch.Tensor, scale: float) -> torch.Tensor:
    """BFoV boxes with their fields of view times ``scale`` (capped below pi), same centres.

    Args:
        boxes: (N, 4) BFoV radians.
        scale: > 0.

    Returns:
        (N, 4) new tensor.

    Raises:
        ValueRangeError: ``scale`` not a positive number.

    Example:
        >>> widen_boxes(torch.tensor([[0.5, 0.1, 0.2, 0.3]]), 1.5)
        tensor([[0.5000, 0.1000, 0.3000, 0.4500]])
    """
    scale = check_number(scale, "scale", lo=0.0, lo_open=True)
    out = boxes.clone()
    out[:, 2:4] = (boxes[:, 2:4] * scale).clamp(max=_MAX_FOV)
    return out


@dataclass(frozen=True)
class VideoBlurSummary:
    """What :func:`blur_faces_in_video` did.

    Attributes:
        frames: frames written.
        fps: frame rate of the input and the output.
        hw: (H, W) of the frames.
        detections: faces detected, summed over frames.
        tracks: distinct tracks (0 without tracking).
        blurred: boxes blurred, summed over frames (detections and tracks held through misses
            and ahead of their first detection).
        max_missed, lead: the tracker's settings in frames (0 without tracking).
        spherical: the input's spherical-video metadata (the boxes players read to show a
            video as 360°): "kept" (copied into the output), "lost" (the output's container
            cannot hold it), "none" (the input has none) or "unknown" (the input is not MP4 /
            MOV, whose metadata is not read: :data:`pano360.io.SPHERICAL_VIDEO_EXTENSIONS`).
    """

    frames: int
    fps: float
    hw: tuple[int, int]
    detections: int
    tracks: int
    blurred: int
    max_missed: int
    lead: int
    spherical: str


def _deg(box: Sequence[float]) -> list[float]:
    return [round(math.degrees(v), 4) for v in box]


def blur_faces_in_video(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    report: str | os.PathLike[str] | None = None,
    strategy: str = "spherical",
    min_face_deg: float = 8.0,
    max_face_deg: float = 60.0,
    thresholds: Sequence[float] = (0.6, 0.7, 0.7),
    students: str | os.PathLike[str] | None = None,
    track: bool = True,
    max_missed: int | None = None,
    lead: int | None = None,
    blur_scale: float = 1.3,
    detect_every: int = 1,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    half: bool = False,
    overwrite: bool = False,
    quality: int = 18,
    progress: Callable[[int], None] | None = None,
) -> VideoBlurSummary:
    """Blur every face of an equirectangular video, temporally stable; write it and a JSON.

    Args:
        src: the input video (width = 2 x height); any format PyAV decodes.
        dst: the output video; ``.mp4``, ``.mkv`` or ``.mov`` write H.264 (see
            :class:`pano360.io.VideoWriter`), at ``src``'s frame rate and size, with its audio
            streams copied packet for packet.
        report: optional JSON file of every frame's faces (below).
        strategy, min_face_deg, max_face_deg, thresholds, students: as in
            :func:`detect_faces`.
        track: link detections across frames (:class:`SphereTracker`); False blurs each
            frame's detections only (the per-frame detector).
        max_missed: frames a track stays blurred without a detection; None: 0.5 s of frames.
        lead: frames before a track's first detection that are blurred too (the output lags
            the decoding by this many frames); None: 0.5 s of frames.
        blur_scale: the blurred region is each box with its fields of view times this (> 0),
            a margin for the box's jitter and the hair around a face.
        detect_every: run the detector on one frame in this many (1: every frame); with
            tracking, the frames between follow the tracks: each track's box is interpolated
            between its two detections (frames within ``lead`` of the later one), else
            predicted. Faster; 3 keeps every face covered on the synthetic benchmark video
            (faces moving up to 4 degrees a frame; docs/benchmarks.md). Without tracking it
            must be 1.
        batch_size: frames decoded, then detected, blurred and encoded, per step (each
            frame on its own: no stacked copy of the batch).
        device: where detection and blurring run (frames are decoded and encoded on the CPU).
        half: run the detector's networks in float16 (``torch.autocast`` on ``device``; meant
            for CUDA, where it is faster; the boxes, the tracks and the blur stay float32).
        overwrite: replace existing outputs.
        quality: H.264 constant-quality factor (:class:`pano360.io.VideoWriter`).
        progress: called with the number of frames written, after each batch.

    Returns:
        A :class:`VideoBlurSummary`.

    Raises:
        VideoIOError: ``src`` missing, not a video, without a video stream, truncated or
            corrupt; ``dst`` not writable or of an unsupported extension.
        ShapeError: the video is not 2:1 (width = 2 x height).
        OutputExistsError: an output exists and ``overwrite`` is False.
        ValueRangeError: a setting out of range.
        ValueError: unknown strategy.

    Nothing is written unless everything succeeds: the video, then the JSON, are moved into
    place at the end.

    The JSON: ``{"video", "fps", "size": [W, H], "strategy", "tracking": {"enabled",
    "detect_every", "max_missed", "lead", "blur_scale"}, "convention", "frames": [{"time", "faces":
    [{"track", "bfov", "blurred", "score", "detected"}]}]}``, angles in degrees; ``track`` is
    null without tracking, ``score`` null for a track blurred without a detection in that
    frame, ``blurred`` the box actually blurred.

    Example:
        >>> import tempfile
        >>> from pano360.io import write_video
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     write_video(f"{tmp}/in.mp4", torch.rand(3, 3, 32, 64), fps=10)
        ...     s = blur_faces_in_video(f"{tmp}/in.mp4", f"{tmp}/out.mp4")
        ...     s.frames, s.hw, s.max_missed
        (3, (32, 64), 5)
    """
    _check_settings(min_face_deg, max_face_deg, thresholds, 0.709)
    blur_scale = check_number(blur_scale, "blur_scale", lo=0.0, lo_open=True)
    batch_size = check_int(batch_size, "batch_size", lo=1)
    detect_every = check_int(detect_every, "detect_every", lo=1)
    if detect_every > 1 and not track:
        raise ValueRangeError("detect_every > 1 needs track=True (tracks fill the frames between)")
    check_int(max_missed, "max_missed", lo=0, optional=True)
    check_int(lead, "lead", lo=0, optional=True)
    device = torch.device(device)
    half = check_bool(half, "half")
    src, dst = Path(src), Path(dst)
    report = None if report is None else Path(report)
    if report is not None and report.exists() and not overwrite:
        from .._core import OutputExistsError

        raise OutputExistsError(f"output '{report}' already exists; pass overwrite=True")
    frames_doc: list[dict] = []
    counts = {"frames": 0, "decoded": 0, "detections": 0, "blurred": 0}
    settings: dict[str, object] = {}

    def transform(decoded: Iterator[tuple[float, torch.Tensor]]) -> Iterator[torch.Tensor]:
        first = next(decoded, None)
        if first is None:
            return
        fps = info_fps[0]
        hold = (
            frames_for_seconds(_HOLD_S, fps) if max_missed is None else max_missed,
            frames_for_seconds(_HOLD_S, fps) if lead is None else lead,
        )
        tracker = SphereTracker(hold[0], lead=hold[1]) if track else None
        settings.update(max_missed=hold[0] if track else 0, lead=hold[1] if track else 0)
        batch = [first]
        for item in decoded:
            batch.append(item)
            if len(batch) == batch_size:
                yield from _process(batch, tracker)
                batch = []
        if batch:
            yield from _process(batch, tracker)
        if tracker is not None:
            yield from _emit(tracker.flush())
        settings["tracks"] = tracker.num_tracks if tracker is not None else 0

    def _process(batch, tracker) -> Iterator[torch.Tensor]:
        first = counts["decoded"]
        counts["decoded"] += len(batch)
        detector = (strategy, min_face_deg, max_face_deg, thresholds)
        ready = []
        for k, (t, frame) in enumerate(batch):
            # Frame by frame, never stacked: a stack would copy every frame once more (88 MB
            # at 3840x1920), and detect_faces runs the images of a batch one by one anyway.
            frame = frame.to(device)
            if (first + k) % detect_every:
                ready.extend(tracker.push((t, frame), None, None))
                continue
            with detector_precision(device, half):
                (dets,) = detect_faces(frame, *detector, students=students)
            boxes, scores = dets["boxes"].double().cpu(), dets["scores"].double().cpu()
            counts["detections"] += len(boxes)
            if tracker is None:
                n = len(boxes)
                tracks = TrackedBoxes(
                    torch.full((n,), -1), boxes, scores, torch.ones(n, dtype=torch.bool)
                )
                ready.append(((t, frame), tracks))
            else:
                ready.extend(tracker.push((t, frame), boxes, scores))
        yield from _emit(ready, with_ids=tracker is not None)

    def _emit(ready, with_ids: bool = True) -> Iterator[torch.Tensor]:
        for (t, frame), tracks in ready:
            widened = widen_boxes(tracks.boxes, blur_scale)
            # Without boxes the decoded frame goes to the encoder as it is (no copy).
            out = blur_regions_on_sphere(frame, widened.to(frame)) if len(widened) else frame
            counts["frames"] += 1
            counts["blurred"] += len(tracks)
            faces = []
            for k in range(len(tracks)):
                score = float(tracks.scores[k])
                faces.append(
                    {
                        "track": int(tracks.ids[k]) if with_ids else None,
                        "bfov": _deg(tracks.boxes[k].tolist()),
                        "blurred": _deg(widened[k].tolist()),
                        "score": None if math.isnan(score) else round(score, 4),
                        "detected": bool(tracks.detected[k]),
                    }
                )
            frames_doc.append({"time": round(t, 6), "faces": faces})
            yield out.cpu()
        if ready and progress is not None:
            progress(len(ready))

    info_fps = [video_info(src).fps]
    info = transcode_video(
        src, dst, transform, overwrite=overwrite, quality=quality, require_erp=True
    )
    if report is not None:
        doc = {
            "video": str(src),
            "fps": info.fps,
            "size": [info.hw[1], info.hw[0]],
            "strategy": strategy,
            "tracking": {
                "enabled": track,
                "detect_every": detect_every,
                "max_missed": settings.get("max_missed", 0),
                "lead": settings.get("lead", 0),
                "blur_scale": blur_scale,
            },
            "convention": "degrees; bfov = [lon, lat, fov_x, fov_y]: a pinhole view aimed at the "
            "face centre (lon > 0 east/right, lat > 0 up); blurred: the region blurred (bfov with "
            "its fields of view times blur_scale); see docs/conventions.md",
            "frames": frames_doc,
        }
        text = (json.dumps(doc) + "\n").encode()
        try:
            write_atomic(report, lambda f: f.write(text), overwrite=overwrite)
        except BaseException:
            dst.unlink(missing_ok=True)  # no video without its report
            raise
    if src.suffix.lower() not in SPHERICAL_VIDEO_EXTENSIONS:
        spherical = "unknown"
    elif not info.spherical:
        spherical = "none"
    else:
        spherical = "kept" if video_info(dst).spherical else "lost"
    return VideoBlurSummary(
        frames=counts["frames"],
        fps=info.fps,
        hw=info.hw,
        detections=counts["detections"],
        tracks=int(settings.get("tracks", 0)),
        blurred=counts["blurred"],
        max_missed=int(settings.get("max_missed", 0)),
        lead=int(settings.get("lead", 0)),
        spherical=spherical,
    )
