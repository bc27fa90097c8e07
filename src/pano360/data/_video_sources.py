"""Sources of 360-degree video saliency data: frames and per-frame target maps, read on demand.

A source lists videos; for each it knows which frames have ground truth, the frame rate when
there is one, and reads frames and target maps for given frame indices (never a whole video).
:class:`pano360.data.VideoSaliencyClips` turns any source into clips for training.

Targets from gaze (the seed's scale)
    Where a dataset gives gaze points, the target map of a frame is the mean over its N gaze
    points of unit-peak geodesic Gaussians of ``sigma_deg`` (:func:`gaze_saliency_map`, built
    on :func:`pano360.saliency.fixation_map` with ``normalize="none"``): a point looked at by
    every viewer reaches 1, by half of them 0.5. This is the scale of the targets of Zhang et
    al., "Saliency Detection in 360 Videos" (ECCV 2018), whose training code puts an impulse on
    each gaze pixel, convolves with a crown kernel holding a Gaussian of sigma pi/20 (9 degrees,
    our default) and divides by N. Their recipe differs from ours in two ways, on purpose: its
    crown convolution averages the kernel over the cap's ERP pixels, so the same gaze point
    gives a peak that changes with its latitude, and it pads the seam with zeros, so a gaze point
    near lon = +-180 degrees loses the half of its Gaussian across the seam. Ours is the same
    Gaussian of geodesic distance at every latitude and across the seam.
"""

from __future__ import annotations

import logging
import math
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from .._core import DatasetFormatError, ImageIOError, check_hw, check_number
from ..geometry import resize_erp
from ..io import iter_video_frames, read_image, video_info
from ..saliency import fixation_map, frame_fixation_indices
from ._folder import _VIDEO_SUFFIXES, SaliencyFolder, read_fixations_csv
from ._safe_pickle import load_restricted_pickle
from ._salient360 import (
    Salient360VideoMaps,
    parse_salient360_bin_name,
    read_salient360_scanpaths,
    salient360_to_lonlat,
)

__all__ = [
    "SEED_SIGMA_DEG",
    "ECCV18Videos",
    "FolderVideos",
    "Salient360Videos",
    "VideoSaliencySource",
    "gaze_saliency_map",
]

_log = logging.getLogger("pano360.data")

#: The Gaussian of the ECCV'18 seed's targets: sigma = pi/20 radians = 9 degrees.
SEED_SIGMA_DEG = 9.0


def gaze_saliency_map(
    gaze: torch.Tensor | Sequence[torch.Tensor],
    hw: Sequence[int],
    sigma_deg: float = SEED_SIGMA_DEG,
) -> torch.Tensor:
    """Target maps from gaze points at the seed's scale: the mean of unit-peak Gaussians.

    Args:
        gaze: (N, 2) (lon, lat) radians, or a sequence of B such tensors (one per map).
        hw: (H, W) of the maps, W == 2H.
        sigma_deg: standard deviation of the geodesic Gaussian, degrees.

    Returns:
        (B, 1, H, W) float32: pixel value ``(1 / N) sum_k exp(-d_k^2 / (2 sigma^2))`` with d_k
        the great-circle angle to gaze point k; a map with no gaze point is zero (never a
        division by zero).

    Raises:
        The errors of :func:`pano360.saliency.fixation_map`.

    Convention:
        Gaze (lon, lat) as in :mod:`pano360.geometry.conventions`; see the module docstring
        for how this differs from the ECCV'18 seed's crown-Gaussian recipe.

    Example:
        >>> c = torch.pi / 64  # the centre of pixel (15, 32) of a 32 x 64 map
        >>> m = gaze_saliency_map(torch.tensor([[c, c], [c, c], [-2.0, -1.0]]), (32, 64))
        >>> round(float(m[0, 0, 15, 32]), 3)  # two of three viewers look there
        0.667
    """
    gaze_list = [gaze] if isinstance(gaze, torch.Tensor) else list(gaze)
    maps = fixation_map(gaze_list, hw, sigma_deg, normalize="none")
    counts = torch.tensor([max(int(g.shape[0]), 1) for g in gaze_list], dtype=maps.dtype)
    return maps / counts[:, None, None, None]


class VideoSaliencySource(ABC):
    """What :class:`pano360.data.VideoSaliencyClips` reads: videos, their frames and targets.

    Subclass it to read another dataset: set ``videos`` and implement the four methods. Frame
    indices are integers on the video's own time line (frame k is shown at k / fps).
    Implementations must be picklable (DataLoader workers get a copy) and must not hold a whole
    video in memory.
    """

    #: Names of the videos, in a fixed order.
    videos: tuple[str, ...]

    @abstractmethod
    def frame_indices(self, video: str) -> np.ndarray:
        """Sorted int64 indices of the frames of ``video`` that have a target."""

    def fps(self, video: str) -> float | None:
        """Frames per second of ``video``, or None when the source does not know it."""
        return None

    @abstractmethod
    def read_frames(self, video: str, indices: Sequence[int]) -> torch.Tensor:
        """Frames at ``indices`` as (T, 3, H, W) float32 in [0, 1], at the stored size."""

    @abstractmethod
    def target_maps(self, video: str, indices: Sequence[int], hw: Sequence[int]) -> torch.Tensor:
        """Target maps (T, 1, h, w) float32 of the frames at ``indices``, at size ``hw``; zero
        for an index without a target (e.g. before the first frame)."""

    def __len__(self) -> int:
        return len(self.videos)


def _check_sigma(sigma_deg: float) -> float:
    return check_number(sigma_deg, "sigma_deg", lo=0.0, lo_open=True, hi=180.0)


# --- the ECCV'18 layout -------------------------------------------------------------------------

_FRAME_STEM = re.compile(r"^\d+$")


class ECCV18Videos(VideoSaliencySource):
    """The dataset layout of Zhang et al., "Saliency Detection in 360 Videos" (ECCV 2018).

    Layout::

        ROOT/
          vinfo.pkl              {video id: {frame id: [(x, y), ...], ...}, ...}
          VIDEO_ID/FRAME_ID.jpg  the frames of each video (ERP, W == 2H)

    A frame id is the jpg's stem, a number (``0001``); it is the frame's index on the video's
    time line (``frame_index`` of the clips). ``vinfo.pkl`` is read with
    :func:`pano360.data.load_restricted_pickle` (no code can run); its gaze lists may be lists of
    pairs or (N, 2) numpy arrays.

    Args:
        root: the dataset folder.
        videos: read only these video ids (default: every folder under ``root``).
        sigma_deg: standard deviation of each gaze point's Gaussian, degrees (default 9, the
            seed's pi/20); targets are :func:`gaze_saliency_map`.

    Frames listed in ``vinfo.pkl`` with no gaze point, and jpg files that ``vinfo.pkl`` does
    not list, have no target: they are skipped, counted in ``skipped`` (video id -> count) and
    logged (logger ``pano360.data``, level INFO). Frames are read when asked for.

    Raises:
        ImageIOError: ``root`` is not a folder or ``vinfo.pkl`` cannot be read.
        DatasetFormatError: ``vinfo.pkl`` refused or malformed (not a dict of dicts of (x, y)
            lists, a coordinate outside [0, 1]; the message names the video and frame); a video
            folder missing for a video of ``vinfo.pkl`` or the reverse (a video without gaze);
            a video none of whose frames has gaze; a frame listed in ``vinfo.pkl`` whose jpg is
            missing; a frame id that is not a number. Later, when reading: a corrupt frame.

    Convention:
        ``(x, y)`` are normalised image coordinates, as in the seed's code (which puts gaze
        point (x, y) on column ``x W`` and row ``y H``): x from the left edge (lon = -180
        degrees) to the right edge, y from the top edge (the north pole) down. So lon = (x -
        0.5) 2pi and lat = (0.5 - y) pi (:func:`pano360.data.salient360_to_lonlat`, the same
        coordinates as Salient360!); :mod:`pano360.geometry.conventions` places pixel centres
        accordingly. (The seed rounds to the pixel ``int(x W + 0.5)``, half a pixel to the
        right of and below where the point lies; we do not.)
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        videos: Sequence[str] | None = None,
        sigma_deg: float = SEED_SIGMA_DEG,
    ) -> None:
        self.root = Path(root)
        self.sigma_deg = _check_sigma(sigma_deg)
        if not self.root.is_dir():
            raise ImageIOError(f"cannot read dataset '{self.root}': not a directory")
        vinfo_path = self.root / "vinfo.pkl"
        vinfo = load_restricted_pickle(vinfo_path)
        if not isinstance(vinfo, Mapping):
            raise DatasetFormatError(
                f"{vinfo_path}: expected a dict {{video id: {{frame id: [(x, y), ...]}}}}, "
                f"got {type(vinfo).__name__}"
            )
        folders = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        names = [str(k) for k in vinfo]
        chosen = sorted(set(folders) | set(names)) if videos is None else [str(v) for v in videos]
        self._gaze: dict[str, dict[int, np.ndarray]] = {}
        self._files: dict[str, dict[int, Path]] = {}
        self.skipped: dict[str, int] = {}
        for video in chosen:
            if video not in vinfo:
                raise DatasetFormatError(
                    f"{vinfo_path}: video '{video}' has no gaze (it is not in vinfo.pkl)"
                )
            if not (self.root / video).is_dir():
                raise DatasetFormatError(
                    f"{self.root / video}: missing frame folder of video '{video}' (listed in "
                    "vinfo.pkl)"
                )
            self._scan_video(video, vinfo[video], vinfo_path)
        self.videos = tuple(chosen)
        total = sum(self.skipped.values())
        if total:
            _log.info(
                "%s: skipped %d frames without gaze in %d of %d videos",
                self.root,
                total,
                sum(1 for v in self.skipped.values() if v),
                len(self.videos),
            )

    def _scan_video(self, video: str, frames, vinfo_path: Path) -> None:
        if not isinstance(frames, Mapping):
            raise DatasetFormatError(
                f"{vinfo_path}: video '{video}' must map frame ids to gaze lists, got "
                f"{type(frames).__name__}"
            )
        folder = self.root / video
        files: dict[int, Path] = {}
        for p in folder.iterdir():
            if p.suffix.lower() != ".jpg" or p.name.startswith("."):
                continue
            if not _FRAME_STEM.match(p.stem):
                raise DatasetFormatError(f"{p}: a frame's name must be a number, like 0001.jpg")
            files[int(p.stem)] = p
        gaze: dict[int, np.ndarray] = {}
        seen: set[int] = set()
        for fid, points in frames.items():
            where = f"{vinfo_path}: video '{video}', frame {fid!r}"
            if not _FRAME_STEM.match(str(fid)):
                raise DatasetFormatError(f"{where}: a frame id must be a number, like '0001'")
            index = int(fid)
            if index in seen:
                raise DatasetFormatError(f"{where}: two frame ids with the number {index}")
            seen.add(index)
            xy = _gaze_array(points, where)
            if index not in files:
                raise DatasetFormatError(
                    f"{folder / (str(fid) + '.jpg')}: missing frame (vinfo.pkl has its gaze)"
                )
            if xy.shape[0]:
                gaze[index] = xy
        if not gaze:
            raise DatasetFormatError(
                f"{vinfo_path}: video '{video}' has no frame with gaze ({len(files)} frames)"
            )
        self._gaze[video] = gaze
        self._files[video] = files
        self.skipped[video] = len(files) - len(gaze)

    def frame_indices(self, video: str) -> np.ndarray:
        return np.array(sorted(self._gaze[video]), dtype=np.int64)

    def gaze(self, video: str, index: int) -> torch.Tensor | None:
        """The gaze points of a frame as (N, 2) float64 (lon, lat) radians, or None."""
        xy = self._gaze[video].get(int(index))
        return None if xy is None else salient360_to_lonlat(torch.from_numpy(xy))

    def read_frames(self, video: str, indices: Sequence[int]) -> torch.Tensor:
        files = self._files[video]
        frames = []
        for i in indices:
            path = files.get(int(i))
            if path is None:
                raise DatasetFormatError(
                    f"{self.root / video}: missing frame {int(i)} of video '{video}'"
                )
            frames.append(_read_frame(path))
        return torch.cat(frames)

    def target_maps(self, video: str, indices: Sequence[int], hw: Sequence[int]) -> torch.Tensor:
        h, w = check_hw(hw, "hw", erp=True)
        gaze = [self.gaze(video, i) for i in indices]
        empty = torch.zeros(0, 2, dtype=torch.float64)
        return gaze_saliency_map([empty if g is None else g for g in gaze], (h, w), self.sigma_deg)

    def __repr__(self) -> str:
        return f"ECCV18Videos('{self.root}', {len(self.videos)} videos)"


def _gaze_array(points, where: str) -> np.ndarray:
    """(N, 2) float64 normalised (x, y) from a gaze list, checked."""
    try:
        xy = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetFormatError(f"{where}: gaze must be a list of (x, y) numbers") from None
    if xy.size == 0:
        return np.zeros((0, 2))
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise DatasetFormatError(
            f"{where}: gaze must be a list of (x, y) pairs, got an array of shape {xy.shape}"
        )
    bad = ~np.isfinite(xy) | (xy < 0) | (xy > 1)
    if bad.any():
        k = int(np.flatnonzero(bad.any(axis=1))[0])
        raise DatasetFormatError(
            f"{where}: gaze point {k} is {tuple(xy[k].tolist())}; x and y must be in [0, 1]"
        )
    return xy


def _read_frame(path: Path) -> torch.Tensor:
    try:
        frame = read_image(path)
    except ImageIOError as e:
        if not path.exists():
            raise DatasetFormatError(f"{path}: missing frame") from None
        raise DatasetFormatError(f"{path}: corrupt frame ({e})") from None
    if frame.shape[1] == 1:
        frame = frame.expand(-1, 3, -1, -1)
    elif frame.shape[1] == 4:
        frame = frame[:, :3]
    if frame.shape[-1] != 2 * frame.shape[-2]:
        raise DatasetFormatError(
            f"{path}: a frame must be an ERP image with W == 2H, got "
            f"{frame.shape[-1]}x{frame.shape[-2]}"
        )
    return frame


# --- video files --------------------------------------------------------------------------------


def _decode(path: Path, indices: Sequence[int], fps: float) -> torch.Tensor:
    """Frames ``indices`` of a video file (T, 3, H, W): frame k is the one shown at k / fps.

    Decoding seeks to the keyframe before the first frame asked for and stops after the last,
    keeping only those (never the whole video in memory, and a clip late in a long video does
    not decode the frames before it).
    """
    wanted = sorted({int(i) for i in indices})
    if wanted and wanted[0] < 0:
        raise DatasetFormatError(f"{path}: no frame {wanted[0]}")
    found: dict[int, torch.Tensor] = {}
    last = wanted[-1] if wanted else -1
    if wanted:
        # Half a frame early, so that rounding of the stored times cannot skip the first one.
        start = max(0.0, (wanted[0] - 0.5) / fps)
        try:
            for t, frame in iter_video_frames(path, start=start):
                k = round(t * fps)
                if k in wanted:
                    found[k] = frame
                if k >= last:
                    break
        except ImageIOError as e:
            raise DatasetFormatError(f"{path}: corrupt video ({e})") from None
    missing = [i for i in wanted if i not in found]
    if missing:
        try:  # the error path only: count what the video really has
            count = sum(1 for _ in iter_video_frames(path))
        except ImageIOError as e:
            raise DatasetFormatError(f"{path}: corrupt video ({e})") from None
        raise DatasetFormatError(
            f"{path}: missing frame {missing[0]} (the video has {count} frames)"
        )
    return torch.cat([found[int(i)] for i in indices])


def _video_length(path: Path, fallback: int | None) -> tuple[int, float]:
    """Frame count and rate of a video from its headers (or ``fallback`` frames)."""
    try:
        info = video_info(path)
    except ImageIOError as e:
        raise DatasetFormatError(f"{path}: corrupt video ({e})") from None
    count = info.num_frames
    if count is None and info.duration_s is not None:
        count = round(info.duration_s * info.fps)
    if count is None:
        count = fallback
    if count is None:
        raise DatasetFormatError(f"{path}: the video does not say how many frames it has")
    return int(count), float(info.fps)


def _map_frames(maps, indices: Sequence[int], n: int, hw: tuple[int, int]) -> torch.Tensor:
    """(T, 1, h, w) of per-frame maps read with ``maps(i)`` -> (1, 1, H, W); zeros outside."""
    out = torch.zeros(len(indices), 1, *hw)
    for k, i in enumerate(indices):
        if 0 <= int(i) < n:
            out[k] = resize_erp(maps(int(i)).float(), hw)[0]
    return out


class _GazeVideoSource(VideoSaliencySource):
    """A source of video files whose targets are per-frame gaze lists or per-frame maps."""

    sigma_deg: float
    _paths: dict[str, Path]
    _lengths: dict[str, tuple[int, float]]
    _gaze: dict[str, list[torch.Tensor]]

    def fps(self, video: str) -> float | None:
        return self._lengths[video][1]

    def frame_indices(self, video: str) -> np.ndarray:
        if video in self._gaze:
            return np.array([i for i, g in enumerate(self._gaze[video]) if len(g)], np.int64)
        return np.arange(self._lengths[video][0], dtype=np.int64)

    def gaze(self, video: str, index: int) -> torch.Tensor | None:
        """The gaze points of frame ``index`` as (N, 2) float64 (lon, lat), or None."""
        per_frame = self._gaze.get(video)
        if per_frame is None or not 0 <= int(index) < len(per_frame):
            return None
        g = per_frame[int(index)]
        return g if len(g) else None

    def read_frames(self, video: str, indices: Sequence[int]) -> torch.Tensor:
        return _decode(self._paths[video], indices, self._lengths[video][1])

    def target_maps(self, video: str, indices: Sequence[int], hw: Sequence[int]) -> torch.Tensor:
        hw = check_hw(hw, "hw", erp=True)
        if video in self._gaze:
            empty = torch.zeros(0, 2, dtype=torch.float64)
            gaze = [self.gaze(video, i) for i in indices]
            return gaze_saliency_map([empty if g is None else g for g in gaze], hw, self.sigma_deg)
        return self._read_maps(video, indices, hw)

    def _read_maps(self, video, indices, hw) -> torch.Tensor:
        raise NotImplementedError


class FolderVideos(_GazeVideoSource):
    """The videos of a dataset in the generic folder format (:class:`SaliencyFolder`).

    Each ``videos/NAME.mp4`` (any extension PyAV reads) needs ``fixations/NAME.csv`` with a
    ``t`` column (preferred: targets are :func:`gaze_saliency_map` of the fixations of each
    frame's time window) or ``maps/NAME.npy`` of shape (T, H, W) (targets are its frames,
    resized with :func:`pano360.geometry.resize_erp`, at the scale stored; the file is memory
    mapped, never read whole).

    Args:
        root: the dataset folder.
        videos: only these names (default: every video).
        sigma_deg: Gaussian of the gaze targets, degrees (default 9, the ECCV'18 seed's).
        window_s: the time window a frame pools fixations from (see
            :func:`pano360.saliency.frame_fixation_indices`), seconds.

    Frames are decoded when an item asks for them, from the start of the video up to the last
    frame needed (PyAV, no seeking): fine for short clips; for long videos convert them once to
    frame folders with :func:`pano360.data.write_eccv18_videos`.

    Raises:
        ImageIOError: ``root`` is not a folder.
        DatasetFormatError: a video without fixations and without maps (no gaze), fixations
            without times, a map file that is not (T, H, W), a corrupt video; the errors of
            :func:`pano360.data.read_fixations_csv`.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        videos: Sequence[str] | None = None,
        sigma_deg: float = SEED_SIGMA_DEG,
        window_s: float = 0.2,
    ) -> None:
        folder = SaliencyFolder(root)
        self.root = folder.root
        self.sigma_deg = _check_sigma(sigma_deg)
        self.window_s = check_number(window_s, "window_s", lo=0.0, lo_open=True, hi=math.inf)
        names = sorted(folder._videos) if videos is None else [str(v) for v in videos]
        self._paths, self._lengths, self._gaze, self._maps = {}, {}, {}, {}
        for name in names:
            if name not in folder._videos:
                raise DatasetFormatError(f"{self.root / 'videos'}: no video named {name!r}")
            path = folder._videos[name]
            fix = folder._fixations.get(name)
            map_path = folder._maps.get(name)
            if map_path is not None and map_path.suffix.lower() == ".npy":
                arr = np.load(map_path, mmap_mode="r", allow_pickle=False)
                if arr.ndim != 3 or arr.shape[2] != 2 * arr.shape[1]:
                    raise DatasetFormatError(
                        f"{map_path}: a video's maps must be (T, H, W) with W == 2H, got "
                        f"{arr.shape}"
                    )
                self._maps[name] = map_path
            elif fix is None:
                raise DatasetFormatError(
                    f"{path}: video without gaze (no fixations/{name}.csv and no maps/{name}.npy)"
                )
            count, rate = _video_length(path, None if name not in self._maps else arr.shape[0])
            if fix is not None:
                lonlat, times = read_fixations_csv(fix)
                if times is None:
                    raise DatasetFormatError(
                        f"{fix}: a video's fixations need times (header 'lon,lat,t')"
                    )
                per_frame = frame_fixation_indices(times, count, rate, window_s=self.window_s)
                self._gaze[name] = [lonlat[i] for i in per_frame]
                if not any(len(g) for g in self._gaze[name]):
                    raise DatasetFormatError(f"{fix}: no fixation falls within the video")
            elif name in self._maps:
                count = min(count, arr.shape[0])
            self._paths[name] = path
            self._lengths[name] = (count, rate)
        self.videos = tuple(names)

    def _read_maps(self, video, indices, hw) -> torch.Tensor:
        arr = np.load(self._maps[video], mmap_mode="r", allow_pickle=False)

        def one(i: int) -> torch.Tensor:
            return torch.from_numpy(np.array(arr[i], dtype=np.float32))[None, None]

        return _map_frames(one, indices, self._lengths[video][0], hw)

    def __repr__(self) -> str:
        return f"FolderVideos('{self.root}', {len(self.videos)} videos)"


_FIRST_NUMBER = re.compile(r"(\d+)")


def _numbered(folder: Path, suffixes: tuple[str, ...], name_of) -> dict[int, Path]:
    if not folder.is_dir():
        raise ImageIOError(f"cannot read dataset folder '{folder}': not a directory")
    found: dict[int, Path] = {}
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.startswith(".") or p.suffix.lower() not in suffixes:
            continue
        m = _FIRST_NUMBER.search(name_of(p))
        if m is None:
            continue
        n = int(m.group(1))
        if n in found:
            raise DatasetFormatError(
                f"{folder}: '{found[n].name}' and '{p.name}' both carry the number {n}"
            )
        found[n] = p
    return found


class Salient360Videos(_GazeVideoSource):
    """The Salient360! video dataset: stimuli with scanpaths or saliency maps, by number.

    Files are paired by the first number in their names (``1_PortoRiverside.mp4`` with
    ``1_PortoRiverside_fixations.csv`` and ``1_PortoRiverside_2048x1024x500_32b.bin``).

    Args:
        videos: folder of the stimuli (any extension PyAV reads).
        scanpaths: folder of video scanpath files (``.txt``/``.csv`` with start and end
            frames, :func:`pano360.data.read_salient360_scanpaths`), or None.
        maps: folder of video saliency maps (``.bin``, :class:`Salient360VideoMaps`), or None.
        sigma_deg: Gaussian of the gaze targets, degrees (default 9, the ECCV'18 seed's).

    Targets come from the scanpaths when given: the gaze of frame k is every fixation with
    ``start frame <= k <= end frame`` (frame numbers as stored), and the target is
    :func:`gaze_saliency_map` (the seed's scale). Otherwise they are the frames of the
    maps, resized with :func:`pano360.geometry.resize_erp`, at the scale stored. Only videos
    with scanpaths (or maps) are listed. Frames are decoded as in :class:`FolderVideos`.

    Raises:
        ImageIOError: a folder does not exist.
        ValueError: neither ``scanpaths`` nor ``maps`` given.
        DatasetFormatError: two files of a folder carry one number; a video none of whose
            frames has a fixation; the errors of the scanpath and map readers.
    """

    def __init__(
        self,
        videos: str | os.PathLike[str],
        *,
        scanpaths: str | os.PathLike[str] | None = None,
        maps: str | os.PathLike[str] | None = None,
        sigma_deg: float = SEED_SIGMA_DEG,
    ) -> None:
        if scanpaths is None and maps is None:
            raise ValueError("Salient360Videos needs scanpaths or maps (or both)")
        self.sigma_deg = _check_sigma(sigma_deg)
        stimuli = _numbered(Path(videos), _VIDEO_SUFFIXES, lambda p: p.stem)
        paths = (
            _numbered(Path(scanpaths), (".txt", ".csv"), lambda p: p.stem)
            if scanpaths is not None
            else {}
        )
        bins = (
            _numbered(Path(maps), (".bin",), lambda p: parse_salient360_bin_name(p).name)
            if maps is not None
            else {}
        )
        self._paths, self._lengths, self._gaze, self._maps = {}, {}, {}, {}
        names = []
        for n, path in sorted(stimuli.items()):
            if n not in paths and n not in bins:
                continue
            name = path.stem
            video_maps = Salient360VideoMaps(bins[n]) if n in bins else None
            count, rate = _video_length(path, None if video_maps is None else len(video_maps))
            if n in paths:
                self._gaze[name] = self._frame_gaze(paths[n], count)
            else:
                self._maps[name] = bins[n]
                count = min(count, len(video_maps))
            self._paths[name] = path
            self._lengths[name] = (count, rate)
            names.append(name)
        self.videos = tuple(names)

    @staticmethod
    def _frame_gaze(path: Path, count: int) -> list[torch.Tensor]:
        scanpaths = [s for s in read_salient360_scanpaths(path) if s.start_frame is not None]
        if not scanpaths:
            raise DatasetFormatError(f"{path}: no video scanpath (start and end frames) in it")
        lonlat = torch.cat([s.lonlat for s in scanpaths])
        start = torch.cat([s.start_frame for s in scanpaths])
        end = torch.cat([s.end_frame for s in scanpaths])
        frames = torch.arange(count)[:, None]
        inside = (start[None] <= frames) & (frames <= end[None])
        per_frame = [lonlat[row] for row in inside]
        if not any(len(g) for g in per_frame):
            raise DatasetFormatError(f"{path}: no fixation falls within the video's {count} frames")
        return per_frame

    def _read_maps(self, video, indices, hw) -> torch.Tensor:
        maps = Salient360VideoMaps(self._maps[video])
        return _map_frames(lambda i: maps[i], indices, self._lengths[video][0], hw)

    def __repr__(self) -> str:
        return f"Salient360Videos({len(self.videos)} videos)"
