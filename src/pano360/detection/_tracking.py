"""Tracking spherical boxes across video frames: stable face blurring in 360° videos.

A face blurred in 29 frames and sharp in the 30th is not blurred. :class:`SphereTracker` links
each frame's detections to tracks, smooths every track's box, keeps reporting a track through a
few frames without a detection (at its predicted position) and, offline, a few frames before its
first detection (``lead``: those frames are held back until it is known whether a track starts).

Convention:
    Boxes are BFoV (lon, lat, fov_x, fov_y) radians (:mod:`pano360.geometry.boxes`). Tracks live
    on the sphere: a centre is a unit vector (:func:`~pano360.geometry.lonlat_to_xyz`) and its
    velocity a 3D step per frame, so a face crossing the seam (lon +-pi) or passing over a pole
    keeps its track; the distances that link detections to tracks are great-circle angles.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass

import torch

from .._core import ShapeError, check_int, check_number
from ..geometry import angle_between, check_sph_boxes, lonlat_to_xyz, xyz_to_lonlat

__all__ = ["SphereTracker", "TrackedBoxes", "frames_for_seconds"]


def frames_for_seconds(seconds: float, fps: float) -> int:
    """Number of frames lasting ``seconds`` at ``fps`` (rounded, at least 1 for seconds > 0).

    Example:
        >>> frames_for_seconds(0.5, 29.97), frames_for_seconds(0.0, 30)
        (15, 0)
    """
    seconds = check_number(seconds, "seconds", lo=0.0)
    fps = check_number(fps, "fps", lo=0.0, lo_open=True)
    return 0 if seconds == 0 else max(1, round(seconds * fps))


@dataclass(frozen=True)
class TrackedBoxes:
    """The tracks reported for one frame.

    Attributes:
        ids: (K,) int64 track ids (0, 1, ... in order of first detection).
        boxes: (K, 4) float64 BFoV radians: each track's smoothed box (predicted when not
            detected in this frame).
        scores: (K,) float64 detector score of the frame's matching detection; NaN when the
            track was not detected in this frame.
        detected: (K,) bool: whether a detection of this frame continued the track.
    """

    ids: torch.Tensor
    boxes: torch.Tensor
    scores: torch.Tensor
    detected: torch.Tensor

    def __len__(self) -> int:
        return len(self.ids)


class _Track:
    __slots__ = ("centre", "id", "last_seen", "missed", "size", "velocity")

    def __init__(self, track_id: int, centre: torch.Tensor, size: torch.Tensor) -> None:
        self.id = track_id
        self.centre = centre
        self.velocity = torch.zeros(3, dtype=torch.float64)
        self.size = size
        self.missed = 0
        # (frame, centre, size) of the box reported at the track's last detection.
        self.last_seen: tuple[int, torch.Tensor, torch.Tensor] | None = None

    def predicted(self) -> torch.Tensor:
        step = self.centre + self.velocity
        return step / step.norm()

    def box(self) -> list[float]:
        lon, lat = xyz_to_lonlat(self.centre).tolist()
        # While missed, the box grows by the distance the face may have strayed from its
        # predicted path (the speed, per missed frame), so the blur still covers it.
        spread = 2 * float(angle_between(self.centre, self.centre + self.velocity)) * self.missed
        fx, fy = (min(float(s) + spread, math.pi * 0.95) for s in self.size)
        return [lon, lat, fx, fy]


class SphereTracker:
    """Link per-frame spherical detections into tracks; report smoothed, gap-free boxes.

    Each frame, detections are matched greedily to the tracks' predicted centres by
    great-circle distance (closest pair first). A detection continues a track when its centre
    lies within ``gate`` times the larger of the two boxes' fields of view of the prediction;
    an unmatched detection starts a new track. A matched track's centre, velocity and size are
    smoothed exponentially (weight ``smoothing`` for the new detection); an unmatched one moves
    on at its velocity, is reported for up to ``max_missed`` frames, then dropped.

    Args:
        max_missed: frames a track is still reported without a detection (e.g.
            ``frames_for_seconds(0.5, fps)``).
        lead: frames held back, so that a track is also reported on up to ``lead`` frames
            before its first detection (offline use: the output lags the input by ``lead``
            frames). 0 reports every frame as soon as it is pushed.
        gate: matching radius, in units of the box's field of view, > 0.
        smoothing: weight of a detection in its track's box, in (0, 1]; 1 takes each
            detection as it is.

    Raises:
        ValueRangeError: a setting out of range.

    Convention:
        Module docstring: centres are unit vectors, so matching and prediction do not see the
        seam or the poles.

    Example:
        >>> tracker = SphereTracker(max_missed=2)
        >>> face = lambda lon: torch.tensor([[math.radians(lon), 0.0, 0.2, 0.2]])
        >>> none = torch.zeros(0, 4)
        >>> frames = [face(179), face(-179.5), none, face(-178)]  # across the seam, one miss
        >>> for i, boxes in enumerate(frames):
        ...     ((_, tracks),) = tracker.push(i, boxes, torch.ones(len(boxes)))
        ...     print(tracks.ids.tolist(), tracks.detected.tolist())
        [0] [True]
        [0] [True]
        [0] [False]
        [0] [True]
    """

    def __init__(
        self,
        max_missed: int,
        *,
        lead: int = 0,
        gate: float = 1.0,
        smoothing: float = 0.6,
    ) -> None:
        self.max_missed = check_int(max_missed, "max_missed", lo=0)
        self.lead = check_int(lead, "lead", lo=0)
        self.gate = check_number(gate, "gate", lo=0.0, lo_open=True)
        self.smoothing = check_number(smoothing, "smoothing", lo=0.0, hi=1.0, lo_open=True)
        self._tracks: list[_Track] = []
        self._next_id = 0
        # Frames held back: [item, rows, frame], a row being (id, box, score, detected).
        self._held: deque[list] = deque()
        self._frame = 0  # frames pushed so far

    @property
    def num_tracks(self) -> int:
        """Number of tracks started so far."""
        return self._next_id

    def __repr__(self) -> str:
        return (
            f"SphereTracker(max_missed={self.max_missed}, lead={self.lead}, gate={self.gate}, "
            f"smoothing={self.smoothing})"
        )

    def _match(self, centres: torch.Tensor, sizes: torch.Tensor) -> list[tuple[int, int]]:
        if not self._tracks or len(centres) == 0:
            return []
        predicted = torch.stack([t.predicted() for t in self._tracks])
        dist = angle_between(predicted[:, None], centres[None])
        track_size = torch.stack([t.size.max() for t in self._tracks])
        radius = self.gate * torch.maximum(track_size[:, None], sizes.max(-1).values[None])
        pairs = []
        used_t, used_d = set(), set()
        for flat in torch.argsort(dist.flatten(), stable=True).tolist():
            ti, di = divmod(flat, len(centres))
            if dist[ti, di] > radius[ti, di]:
                break
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            pairs.append((ti, di))
        return pairs

    def _coast(self) -> list[tuple]:
        """A frame nobody searched: every track moves on, no miss is counted."""
        rows = []
        for track in self._tracks:
            track.centre = track.predicted()
            rows.append((track.id, track.box(), math.nan, False))
        return rows

    def _update(self, boxes: torch.Tensor, scores: torch.Tensor) -> tuple[list[tuple], list[int]]:
        boxes = boxes.detach().to("cpu", torch.float64)
        scores = scores.detach().to("cpu", torch.float64)
        centres = lonlat_to_xyz(boxes[:, :2])
        sizes = boxes[:, 2:4]
        a = self.smoothing
        rows, born = [], []
        matched = dict(self._match(centres, sizes))
        reported = set()
        for ti, track in enumerate(self._tracks):
            if ti in matched:
                di = matched[ti]
                predicted = track.predicted()
                centre = (1 - a) * predicted + a * centres[di]
                centre = centre / centre.norm()
                track.velocity = (1 - a) * track.velocity + a * (centre - track.centre)
                track.centre = centre
                track.size = (1 - a) * track.size + a * sizes[di]
                track.missed = 0
                rows.append((track.id, track.box(), float(scores[di]), True))
                reported.add(di)
                self._interpolate_held(track)
            else:
                track.centre = track.predicted()
                track.missed += 1
                if track.missed <= self.max_missed:
                    rows.append((track.id, track.box(), math.nan, False))
        self._tracks = [t for t in self._tracks if t.missed <= self.max_missed]
        for di in range(len(boxes)):
            if di in reported:
                continue
            track = _Track(self._next_id, centres[di], sizes[di].clone())
            track.last_seen = (self._frame, track.centre, track.size)
            self._next_id += 1
            self._tracks.append(track)
            rows.append((track.id, track.box(), float(scores[di]), True))
            born.append(len(rows) - 1)
        return rows, born

    def _interpolate_held(self, track: _Track) -> None:
        """Just detected again: its rows in the held frames since its last detection become
        the interpolation between the two detected boxes; then remember this detection."""
        now = (self._frame, track.centre, track.size)
        if track.last_seen is not None and self._frame - track.last_seen[0] > 1:
            (f0, c0, s0), (f1, c1, s1) = track.last_seen, now
            for entry in self._held:
                if not f0 < entry[2] < f1:
                    continue
                t = (entry[2] - f0) / (f1 - f0)
                centre = (1 - t) * c0 + t * c1
                lon, lat = xyz_to_lonlat(centre / centre.norm()).tolist()
                fx, fy = ((1 - t) * s0 + t * s1).tolist()
                entry[1] = [
                    (i, [lon, lat, fx, fy], score, False) if i == track.id and not seen else
                    (i, box, score, seen)
                    for i, box, score, seen in entry[1]
                ]  # fmt: skip
        track.last_seen = now

    def push(
        self, item: Hashable, boxes: torch.Tensor | None, scores: torch.Tensor | None
    ) -> list[tuple[Hashable, TrackedBoxes]]:
        """Add one frame's detections; return the frames whose tracks are now final.

        Args:
            item: anything identifying the frame (a frame index, or the frame itself), handed
                back with its tracks.
            boxes: (N, 4) BFoV radians detected in this frame, or None for a frame the detector
                did not run on (e.g. every other frame): tracks move on at their speed and no
                miss is counted.
            scores: (N,) their scores (None with ``boxes`` None).

        Returns:
            ``[(item, tracks), ...]``: the frames that leave the ``lead`` buffer, oldest first
            (with ``lead=0``, exactly this frame).

        Raises:
            ShapeError: ``boxes`` not (N, 4) or ``scores`` not (N,).
            ValueRangeError: invalid box values.
        """
        self._frame += 1
        if boxes is None:
            self._held.append([item, self._coast(), self._frame])
            return self._ready()
        if not isinstance(boxes, torch.Tensor) or boxes.ndim != 2 or boxes.shape[1] != 4:
            got = tuple(boxes.shape) if isinstance(boxes, torch.Tensor) else type(boxes).__name__
            raise ShapeError(f"boxes must be (N, 4) BFoV, got {got}")
        check_sph_boxes(boxes, "boxes")
        if not isinstance(scores, torch.Tensor) or scores.shape != (len(boxes),):
            got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
            raise ShapeError(f"scores must be ({len(boxes)},) like boxes, got {got}")
        rows, born = self._update(boxes, scores)
        # A new track also covers the held-back frames (its first box: the face was about there).
        for held_item in list(self._held)[-self.lead :] if self.lead else []:
            for k in born:
                track_id, box, _, _ = rows[k]
                held_item[1].append((track_id, box, math.nan, False))
        self._held.append([item, rows, self._frame])
        return self._ready()

    def _ready(self) -> list[tuple[Hashable, TrackedBoxes]]:
        ready = []
        while len(self._held) > self.lead:
            ready.append(self._emit(self._held.popleft()))
        return ready

    def flush(self) -> list[tuple[Hashable, TrackedBoxes]]:
        """Return the frames still held back (at the end of the video), oldest first."""
        ready = [self._emit(entry) for entry in self._held]
        self._held.clear()
        return ready

    @staticmethod
    def _emit(entry: list) -> tuple[Hashable, TrackedBoxes]:
        item, rows = entry[:2]
        rows = sorted(rows, key=lambda r: r[0])
        return item, TrackedBoxes(
            ids=torch.tensor([r[0] for r in rows], dtype=torch.int64),
            boxes=torch.tensor([r[1] for r in rows], dtype=torch.float64).reshape(-1, 4),
            scores=torch.tensor([r[2] for r in rows], dtype=torch.float64),
            detected=torch.tensor([r[3] for r in rows], dtype=torch.bool),
        )
