"""Synthetic 360-degree video saliency: photos moving on the sphere, and viewers watching them.

Each video is a function of ``(seed, video index)`` and the generator's settings. Photos of the
synthetic scene compositor's assets (:mod:`pano360.data.synthetic`) move along great circles
over a procedural background, at every latitude (the circles' axes are random, so objects pass
over the poles as often as the sphere's area says). Simulated viewers watch them:

- each viewer attends one object at a time, or looks around freely (``free_share`` of the
  time); every frame it switches with probability ``switch_prob``. A free viewer looks at a
  point drawn from the equator prior: longitude uniform, latitude Gaussian of
  ``equator_sigma_deg``;
- the head follows the attended point with a lag (it moves ``head_follow`` of the remaining
  angle per frame), so gaze trails fast objects and sweeps across the sphere when switching;
- the eyes add Gaussian noise of ``gaze_noise_deg`` around the head's direction.

With ``polar_share`` > 0, that share of the videos (spread evenly over the indices) are polar:
their photos circle a pole at a constant latitude drawn from ``polar_lat_deg`` (60-85 degrees by
default, either hemisphere), turning about the polar axis by ``speed_deg`` of longitude per
frame, so most of their viewers look at high latitudes (great circles only pass through them).

So a model that sees the frames can predict where viewers look (on the moving photos) better
than the equator prior can, which is what proves that training works. Target maps are
:func:`pano360.data.gaze_saliency_map` of the gaze points (the ECCV'18 seed's scale).
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .._core import (
    ImageIOError,
    OutputExistsError,
    check_hw,
    check_int,
    check_interval,
    check_number,
    check_seed,
)
from ..io import write_atomic, write_image
from ._video_sources import SEED_SIGMA_DEG, VideoSaliencySource, gaze_saliency_map
from .synthetic import (
    BACKGROUNDS,
    FACE_ASSETS,
    OBJECT_ASSETS,
    SCENE_ASSETS,
    Placement,
    render_scene,
    scene_background,
)
from .synthetic._seeding import scene_rng

__all__ = ["SyntheticSaliencyVideos", "write_eccv18_videos"]

_DEG = math.pi / 180


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _to_lonlat(xyz: np.ndarray) -> np.ndarray:
    """Unit (..., 3) in pano360's frame (x right, y up, z forward) -> (..., 2) (lon, lat)."""
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    lon = np.arctan2(x, z)
    lat = np.arctan2(y, np.hypot(x, z))
    return np.stack((lon, lat), axis=-1)


def _from_lonlat(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """(lon, lat) arrays -> unit (..., 3) in pano360's frame."""
    return np.stack((np.cos(lat) * np.sin(lon), np.sin(lat), np.cos(lat) * np.cos(lon)), -1)


def _random_directions(rng: np.random.Generator, n: int) -> np.ndarray:
    return _unit(rng.normal(size=(n, 3)))


def _rotate(p: np.ndarray, axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues: rotate unit vectors p (K, 3) about unit axes (K, 3) by angles (T, K)."""
    c, s = np.cos(angle)[..., None], np.sin(angle)[..., None]
    cross = np.cross(axis, p)
    dot = np.sum(axis * p, axis=-1, keepdims=True)
    return p * c + cross * s + axis * dot * (1 - c)


class SyntheticSaliencyVideos(VideoSaliencySource):
    """Synthetic 360-degree videos with simulated viewers' gaze (see the module docstring).

    A :class:`pano360.data.VideoSaliencySource`: wrap it in
    :class:`pano360.data.VideoSaliencyClips` to train, or write it to disk with
    :func:`pano360.data.write_eccv18_videos`. Motion and gaze of a whole video are drawn when
    it is first used (a few numbers per frame); frames are rendered when asked for.

    Args:
        n_videos: number of videos (names ``video_000``, ``video_001``, ...).
        n_frames: frames per video.
        size: (H, W) of the frames, W == 2H.
        seed: video i is a function of ``(seed, i)`` (and the settings below) only.
        n_objects: (min, max) photos per video.
        object_width_deg: (min, max) angular width of a photo, degrees.
        speed_deg: (min, max) angular speed of a photo, degrees per frame.
        n_viewers: gaze points per frame.
        free_share: share of the time a viewer looks around freely, in [0, 1].
        switch_prob: probability per frame that a viewer picks a new object (or free look).
        head_follow: share of the angle to the attended point the head turns per frame, (0, 1].
        gaze_noise_deg: eye noise around the head's direction, degrees.
        equator_sigma_deg: latitude spread of free looking, degrees.
        polar_share: share of the videos whose photos circle a pole, in [0, 1]: video i is polar
            when ``floor((i + 1) polar_share) > floor(i polar_share)`` (``floor(n_videos
            polar_share)`` of them, evenly spread). The other videos do not depend on it.
        polar_lat_deg: (min, max) |latitude| of a polar video's photos, degrees.
        sigma_deg: Gaussian of the target maps (:func:`pano360.data.gaze_saliency_map`).
        background: "plain" (a low-contrast mottled colour) or "sky" (sky over a meadow).
        fps: the nominal frame rate the videos report (for sampling by fps).
        supersample: composite the photos at this multiple of the size, then average.

    Raises:
        ValueRangeError: a parameter out of range (the message names it).
        ShapeError: ``size`` is not (H, W) with W == 2H.
        ValueError: unknown ``background``.

    Convention:
        Gaze and object positions are (lon, lat) radians of :mod:`pano360.geometry.conventions`.

    Example:
        >>> videos = SyntheticSaliencyVideos(2, 4, (16, 32), seed=1, n_viewers=3)
        >>> videos.read_frames("video_001", [0, 3]).shape, videos.gaze("video_001", 3).shape
        (torch.Size([2, 3, 16, 32]), torch.Size([3, 2]))
    """

    def __init__(
        self,
        n_videos: int,
        n_frames: int,
        size: Sequence[int] = (128, 256),
        seed: int = 0,
        *,
        n_objects: tuple[int, int] = (2, 4),
        object_width_deg: tuple[float, float] = (20.0, 40.0),
        speed_deg: tuple[float, float] = (0.5, 3.0),
        n_viewers: int = 12,
        free_share: float = 0.2,
        switch_prob: float = 0.04,
        head_follow: float = 0.4,
        gaze_noise_deg: float = 2.0,
        equator_sigma_deg: float = 15.0,
        polar_share: float = 0.0,
        polar_lat_deg: tuple[float, float] = (60.0, 85.0),
        sigma_deg: float = SEED_SIGMA_DEG,
        background: str = "plain",
        fps: float = 30.0,
        supersample: int = 2,
    ) -> None:
        self.n_videos = check_int(n_videos, "n_videos", lo=1)
        self.n_frames = check_int(n_frames, "n_frames", lo=1)
        self.size = check_hw(size, "size", erp=True)
        self.seed = check_seed(seed)
        lo, hi = n_objects
        self.n_objects = (check_int(lo, "n_objects", lo=1), check_int(hi, "n_objects", lo=lo))
        self.object_width_deg = check_interval(
            object_width_deg, "object_width_deg", lo=0.0, hi=120.0, lo_open=True
        )
        self.speed_deg = check_interval(speed_deg, "speed_deg", lo=0.0, hi=180.0)
        self.n_viewers = check_int(n_viewers, "n_viewers", lo=1)
        self.free_share = check_number(free_share, "free_share", lo=0.0, hi=1.0)
        self.switch_prob = check_number(switch_prob, "switch_prob", lo=0.0, hi=1.0)
        self.head_follow = check_number(head_follow, "head_follow", lo=0.0, hi=1.0, lo_open=True)
        self.gaze_noise_deg = check_number(gaze_noise_deg, "gaze_noise_deg", lo=0.0, hi=90.0)
        self.equator_sigma_deg = check_number(
            equator_sigma_deg, "equator_sigma_deg", lo=0.0, hi=180.0, lo_open=True
        )
        self.polar_share = check_number(polar_share, "polar_share", lo=0.0, hi=1.0)
        self.polar_lat_deg = check_interval(polar_lat_deg, "polar_lat_deg", lo=0.0, hi=90.0)
        self.sigma_deg = check_number(sigma_deg, "sigma_deg", lo=0.0, hi=180.0, lo_open=True)
        if background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, got {background!r}")
        self.background = background
        self._fps = check_number(fps, "fps", lo=0.0, lo_open=True, hi=math.inf)
        self.supersample = check_int(supersample, "supersample", lo=1)
        self.videos = tuple(f"video_{i:03d}" for i in range(self.n_videos))
        self._plans: dict[str, dict] = {}
        self._background_cache: tuple[str, torch.Tensor] | None = None

    def fps(self, video: str) -> float | None:
        return self._fps

    def frame_indices(self, video: str) -> np.ndarray:
        self._video_number(video)
        return np.arange(self.n_frames, dtype=np.int64)

    def is_polar(self, video: str) -> bool:
        """Whether the photos of ``video`` circle a pole (see ``polar_share``)."""
        i = self._video_number(video)
        return math.floor((i + 1) * self.polar_share) > math.floor(i * self.polar_share)

    def _video_number(self, video: str) -> int:
        try:
            return self.videos.index(video)
        except ValueError:
            raise KeyError(f"no video named {video!r} (there are {self.n_videos})") from None

    # --- drawing a video's motion and gaze ------------------------------------------------

    def plan(self, video: str) -> dict:
        """The drawn motion and gaze of a video (made on first use, then kept).

        Returns:
            ``{"placements": K base :class:`Placement` (lon = lat = 0), "objects": (T, K, 2)
            float64 (lon, lat) of each photo's anchor per frame, "gaze": (T, V, 2) float64
            (lon, lat) per frame and viewer, "attended": (T, V) int64 (object index, or -1 when
            looking freely), "background_seed": int, "polar": bool}``.
        """
        if video not in self._plans:
            self._plans[video] = self._draw(self._video_number(video))
        return self._plans[video]

    def _draw(self, number: int) -> dict:
        _, rng = scene_rng((self.seed, number))
        t_count, v_count = self.n_frames, self.n_viewers
        k_count = int(rng.integers(self.n_objects[0], self.n_objects[1] + 1))
        assets = FACE_ASSETS + OBJECT_ASSETS
        placements = []
        for _ in range(k_count):
            name = str(rng.choice(assets))
            asset = SCENE_ASSETS[name]
            width = float(rng.uniform(*self.object_width_deg)) * _DEG
            if asset.kind == "face":  # the face box is the width: scale to the whole portrait
                fx0, _, fx1, _ = asset.face_xyxy
                width *= (fx1 - fx0) / asset.size_hw[1]
            placements.append(
                Placement(
                    name,
                    lon=0.0,
                    lat=0.0,
                    width=width,
                    roll=float(rng.uniform(-0.35, 0.35)),
                    flip=bool(rng.random() < 0.5),
                    brightness=float(rng.uniform(0.85, 1.15)),
                )
            )
        start = _random_directions(rng, k_count)
        axis = _unit(np.cross(start, _random_directions(rng, k_count)))
        speed = rng.uniform(*self.speed_deg, k_count) * _DEG * rng.choice((-1.0, 1.0), k_count)
        frames = np.arange(t_count, dtype=np.float64)
        if self.is_polar(self.videos[number]):
            # Its own stream, so that the draws below (and other videos) stay as without it.
            _, polar_rng = scene_rng((self.seed, number, 1))
            lat = polar_rng.uniform(*self.polar_lat_deg, k_count) * _DEG
            lat *= polar_rng.choice((-1.0, 1.0), k_count)
            lon = polar_rng.uniform(-math.pi, math.pi, k_count)
            start = _from_lonlat(lon, lat)
            axis = np.tile(np.array([0.0, 1.0, 0.0]), (k_count, 1))  # constant latitude
        objects = _rotate(start, axis, frames[:, None] * speed[None, :])  # (T, K, 3)

        # Viewers: a Markov chain over {free, object 0..K-1}, a lagging head, noisy eyes.
        attended = np.empty((t_count, v_count), dtype=np.int64)
        gaze = np.empty((t_count, v_count, 3))
        offsets = (
            rng.normal(size=(v_count, 3)) * 0.15 * np.array([p.width for p in placements]).mean()
        )

        def choose(n: int) -> np.ndarray:
            free = rng.random(n) < self.free_share
            return np.where(free, -1, rng.integers(0, k_count, n))

        def free_point(n: int) -> np.ndarray:
            lon = rng.uniform(-math.pi, math.pi, n)
            lat = np.clip(rng.normal(0, self.equator_sigma_deg * _DEG, n), -1.5, 1.5)
            return _from_lonlat(lon, lat)

        state = choose(v_count)
        free_at = free_point(v_count)
        head = None
        noise = self.gaze_noise_deg * _DEG
        for t in range(t_count):
            switch = rng.random(v_count) < self.switch_prob
            if t > 0 and switch.any():
                new = choose(int(switch.sum()))
                state[switch] = new
                free_at[switch] = free_point(int(switch.sum()))
            on_object = state >= 0
            target = free_at.copy()
            target[on_object] = _unit(objects[t, state[on_object]] + offsets[on_object])
            head = target if head is None else _unit(head + self.head_follow * (target - head))
            eye = rng.normal(size=(v_count, 3)) * noise
            eye -= np.sum(eye * head, axis=-1, keepdims=True) * head  # tangent to the head
            gaze[t] = _unit(head + eye)
            attended[t] = state
        return {
            "placements": tuple(placements),
            "objects": _to_lonlat(objects),
            "gaze": _to_lonlat(gaze),
            "attended": attended,
            "background_seed": int(rng.integers(2**63)),
            "polar": self.is_polar(self.videos[number]),
        }

    # --- reading ------------------------------------------------------------------------------

    def gaze(self, video: str, index: int) -> torch.Tensor | None:
        """The gaze points of frame ``index`` as (V, 2) float64 (lon, lat), or None outside."""
        if not 0 <= int(index) < self.n_frames:
            return None
        return torch.from_numpy(self.plan(video)["gaze"][int(index)].copy())

    def _background(self, video: str, seed: int) -> torch.Tensor:
        if self._background_cache is None or self._background_cache[0] != video:
            bg = scene_background(self.size, seed, self.background)[0]
            self._background_cache = (video, bg)
        return self._background_cache[1]

    def read_frames(self, video: str, indices: Sequence[int]) -> torch.Tensor:
        plan = self.plan(video)
        background = self._background(video, plan["background_seed"])
        frames = []
        for i in indices:
            i = int(i)
            if not 0 <= i < self.n_frames:
                raise IndexError(f"frame {i} out of range for {self.n_frames} frames of {video}")
            moved = [
                Placement(
                    p.asset,
                    lon=float(lon),
                    lat=float(np.clip(lat, -math.pi / 2, math.pi / 2)),
                    width=p.width,
                    roll=p.roll,
                    flip=p.flip,
                    brightness=p.brightness,
                )
                for p, (lon, lat) in zip(plan["placements"], plan["objects"][i], strict=True)
            ]
            scene = render_scene(
                moved, self.size, background=background, supersample=self.supersample
            )
            frames.append(scene.erp)
        return torch.stack(frames)

    def target_maps(self, video: str, indices: Sequence[int], hw: Sequence[int]) -> torch.Tensor:
        h, w = check_hw(hw, "hw", erp=True)
        empty = torch.zeros(0, 2, dtype=torch.float64)
        gaze = [self.gaze(video, i) for i in indices]
        return gaze_saliency_map([empty if g is None else g for g in gaze], (h, w), self.sigma_deg)

    def __repr__(self) -> str:
        return (
            f"SyntheticSaliencyVideos({self.n_videos} videos of {self.n_frames} frames, "
            f"size={self.size}, seed={self.seed})"
        )


def write_eccv18_videos(
    root: str | os.PathLike[str],
    source: VideoSaliencySource,
    *,
    quality: int = 95,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Write a source with gaze (e.g. :class:`SyntheticSaliencyVideos`) in the ECCV'18 layout.

    Frames go to ``root/VIDEO/NNNN.jpg`` (the frame index, four digits or more) and the gaze of
    every frame to ``root/vinfo.pkl`` as normalised (x, y) pairs, readable with
    :class:`pano360.data.ECCV18Videos` (a pickle of plain dicts, lists, tuples and floats).

    Args:
        root: the dataset folder (created if missing).
        source: a source with a ``gaze(video, index)`` method giving (N, 2) (lon, lat).
        quality: JPEG quality of the frames.
        overwrite: replace existing files; otherwise an existing ``vinfo.pkl`` or frame raises
            before anything is written.
        progress: show a progress bar (tqdm), one step per frame.

    Returns:
        The path of ``vinfo.pkl``, written last (atomically).

    Raises:
        OutputExistsError: a target exists and ``overwrite`` is False.
        ImageIOError: a file cannot be written.
        TypeError: ``source`` gives no gaze.

    Convention:
        x = (lon + pi) / 2pi from the left edge, y = (pi/2 - lat) / pi from the top edge (the
        inverse of :class:`pano360.data.ECCV18Videos`'s).
    """
    if not callable(getattr(source, "gaze", None)):
        raise TypeError(f"source must give gaze points (a gaze method), {type(source).__name__}")
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ImageIOError(f"cannot create folder '{root}': {e.strerror or e}") from e
    vinfo_path = root / "vinfo.pkl"
    jobs = [(v, int(i)) for v in source.videos for i in source.frame_indices(v)]
    targets = [vinfo_path] + [root / v / f"{i:04d}.jpg" for v, i in jobs]
    if not overwrite:
        for target in targets:
            if target.exists():
                raise OutputExistsError(
                    f"output '{target}' already exists; pass overwrite=True to replace it"
                )
    steps = jobs
    if progress:
        from tqdm import tqdm

        steps = tqdm(jobs, desc="frames", unit="frame")
    vinfo: dict[str, dict[str, list[tuple[float, float]]]] = {v: {} for v in source.videos}
    for video, index in steps:
        (root / video).mkdir(exist_ok=True)
        frame = source.read_frames(video, [index])
        write_image(root / video / f"{index:04d}.jpg", frame, overwrite=overwrite, quality=quality)
        lonlat = source.gaze(video, index)
        lonlat = torch.zeros(0, 2) if lonlat is None else lonlat.double()
        x = torch.remainder(lonlat[:, 0] + math.pi, 2 * math.pi) / (2 * math.pi)
        y = ((math.pi / 2 - lonlat[:, 1]) / math.pi).clamp(0, 1)
        vinfo[video][f"{index:04d}"] = [(float(a), float(b)) for a, b in zip(x, y, strict=True)]
    data = pickle.dumps(vinfo, protocol=4)
    write_atomic(vinfo_path, lambda f: f.write(data), overwrite)
    return vinfo_path
