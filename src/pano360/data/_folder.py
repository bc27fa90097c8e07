"""The generic saliency folder format: what pano360's own tools write and read.

Layout (every part optional; items are matched by file stem, ``NAME``)::

    ROOT/
      images/NAME.jpg        still ERP panoramas (W == 2H), any format read_image reads
      videos/NAME.mp4        ERP videos (.mp4 .mkv .webm .avi .mov), read with PyAV
      maps/NAME.npy          saliency: float (H, W) for an image, (T, H, W) for a video
      maps/NAME.png          or a grayscale PNG (images only; 8 or 16 bits, read in [0, 1])
      fixations/NAME.csv     header "lon,lat" or "lon,lat,t"; degrees; t in seconds

Fixation CSV files hold one fixation per line after the header: longitude in [-180, 180]
(positive right/east, 0 at the image centre), latitude in [-90, 90] (positive up), and for
videos the time t in seconds from the start (>= 0). Inside the library they become radians.

Convention: see :mod:`pano360.geometry.conventions` (lon = -180 degrees at the left edge of
column 0, lat = 90 at the top edge of row 0).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .._core import DatasetFormatError, ImageIOError, ShapeError, ValueRangeError
from ..io import read_image, write_atomic, write_image

__all__ = [
    "SaliencyFolder",
    "SaliencySample",
    "read_fixations_csv",
    "read_saliency_map",
    "write_fixations_csv",
    "write_saliency_map",
    "write_saliency_sample",
]

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp")
_VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov")
_MAP_SUFFIXES = (".npy", ".png")
_FIX_HEADERS = (("lon", "lat"), ("lon", "lat", "t"))


@dataclass
class SaliencySample:
    """One item of a saliency dataset.

    Attributes:
        name: the item's name (file stem, or the stimulus number for Salient360!).
        image: (1, C, H, W) float panorama in [0, 1], or None (video items, or no image).
        video: path of the video file, or None. Videos are not decoded here: iterate them with
            :func:`pano360.io.iter_video_frames`.
        saliency: (1, 1, H, W) map for an image, (T, 1, H, W) for a video, or None.
        fixations: (N, 2) float64 (lon, lat) in radians, every observer together, or None.
        times: (N,) float64 fixation start times in seconds (videos), or None.
        extra: format-specific data (e.g. Salient360! per-observer scanpaths).
    """

    name: str
    image: torch.Tensor | None = None
    video: Path | None = None
    saliency: torch.Tensor | None = None
    fixations: torch.Tensor | None = None
    times: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)


# --- fixations ----------------------------------------------------------------------------------


def read_fixations_csv(path: str | os.PathLike[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Read a fixation CSV file of the generic folder format.

    Args:
        path: a file whose first line is ``lon,lat`` or ``lon,lat,t`` (case and spaces
            ignored) followed by one fixation per line, in degrees (t in seconds).

    Returns:
        ``(fixations, times)``: (N, 2) float64 (lon, lat) in radians and (N,) float64 seconds,
        or None when the file has no ``t`` column.

    Raises:
        ImageIOError: the file cannot be read.
        DatasetFormatError: bad header, a line with the wrong number of fields or a value that
            is not a number, lon outside [-180, 180], lat outside [-90, 90], or t negative or
            not finite. The message names the file and line.

    Convention:
        Degrees in the file, radians in the result: lon right (east), lat up; see
        :mod:`pano360.geometry.conventions`.
    """
    path = Path(path)
    lines = _read_lines(path)
    if not lines:
        raise DatasetFormatError(f"{path}: empty file; expected a header 'lon,lat' or 'lon,lat,t'")
    lineno, header = lines[0]
    names = tuple(c.strip().lower() for c in header.split(","))
    if names not in _FIX_HEADERS:
        raise DatasetFormatError(
            f"{path}:{lineno}: bad header {header.strip()!r}; expected 'lon,lat' or 'lon,lat,t'"
        )
    rows = _parse_rows(path, lines[1:], len(names))
    data = np.asarray(rows, dtype=np.float64).reshape(-1, len(names))
    line_of = [n for n, _ in lines[1:]]
    _check_range(path, line_of, data[:, 0], -180.0, 180.0, "lon")
    _check_range(path, line_of, data[:, 1], -90.0, 90.0, "lat")
    times = None
    if len(names) == 3:
        _check_range(path, line_of, data[:, 2], 0.0, math.inf, "t")
        times = torch.from_numpy(data[:, 2].copy())
    return torch.from_numpy(np.deg2rad(data[:, :2])), times


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines of a text file with their 1-based numbers."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ImageIOError(f"cannot read '{path}': {reason}") from e
    return [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]


def _parse_rows(path: Path, lines: list[tuple[int, str]], ncols: int) -> list[list[float]]:
    rows = []
    for lineno, line in lines:
        fields = line.split(",")
        if len(fields) != ncols:
            raise DatasetFormatError(
                f"{path}:{lineno}: expected {ncols} comma-separated values, got {len(fields)}"
            )
        try:
            rows.append([float(v) for v in fields])
        except ValueError:
            raise DatasetFormatError(f"{path}:{lineno}: not a number in {line.strip()!r}") from None
    return rows


def _check_range(path, line_of, values, lo, hi, name) -> None:
    bad = ~np.isfinite(values) | (values < lo) | (values > hi)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        span = f">= {lo:g}" if math.isinf(hi) else f"in [{lo:g}, {hi:g}]"
        raise DatasetFormatError(
            f"{path}:{line_of[i]}: {name} must be {span}, got {float(values[i]):g}"
        )


def write_fixations_csv(
    path: str | os.PathLike[str],
    fixations: torch.Tensor,
    times: torch.Tensor | None = None,
    *,
    overwrite: bool = False,
) -> None:
    """Write fixations to a CSV file of the generic folder format (atomically).

    Args:
        path: output file.
        fixations: (N, 2) (lon, lat) in radians; lon is wrapped into [-pi, pi).
        times: optional (N,) start times in seconds (>= 0).
        overwrite: replace an existing file.

    Raises:
        ShapeError: wrong shapes.
        ValueRangeError: a latitude outside [-pi/2, pi/2], non-finite values or negative times.
        OutputExistsError, ImageIOError: see :func:`write_atomic`.
    """
    fix = torch.as_tensor(fixations).detach().to("cpu", torch.float64)
    if fix.ndim != 2 or fix.shape[1] != 2:
        raise ShapeError(f"fixations must be (N, 2) (lon, lat), got {tuple(fix.shape)}")
    if not bool(torch.isfinite(fix).all()):
        raise ValueRangeError("fixations must be finite")
    if bool((fix[:, 1].abs() > math.pi / 2 + 1e-9).any()):
        raise ValueRangeError("fixations latitudes must be in [-pi/2, pi/2] radians")
    lon = torch.remainder(fix[:, 0] + math.pi, 2 * math.pi) - math.pi
    cols = [torch.rad2deg(lon), torch.rad2deg(fix[:, 1]).clamp(-90, 90)]
    header = "lon,lat"
    if times is not None:
        t = torch.as_tensor(times).detach().to("cpu", torch.float64)
        if t.shape != (fix.shape[0],):
            raise ShapeError(f"times must be ({fix.shape[0]},), got {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
            raise ValueRangeError("times must be finite and >= 0 seconds")
        cols.append(t)
        header = "lon,lat,t"
    rows = torch.stack(cols, dim=1).tolist()
    text = header + "\n" + "".join(",".join(f"{v:.17g}" for v in r) + "\n" for r in rows)
    write_atomic(Path(path), lambda f: f.write(text.encode()), overwrite)


# --- saliency maps ------------------------------------------------------------------------------


def read_saliency_map(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read a saliency map of the generic folder format.

    Args:
        path: ``.npy`` holding a float or integer (H, W) or (T, H, W) array, or a grayscale
            ``.png`` (8 or 16 bits).

    Returns:
        float32 (1, 1, H, W), or (T, 1, H, W) for a (T, H, W) ``.npy`` (a video). PNG values are
        in [0, 1] (full white = 1); ``.npy`` values are returned as stored.

    Raises:
        ImageIOError: unreadable file.
        DatasetFormatError: unsupported extension, a colour PNG, an array of another rank or
            dtype, negative or non-finite values, or a width that is not twice the height.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".png":
        img = read_image(path)
        if img.shape[1] != 1:
            raise DatasetFormatError(
                f"{path}: a saliency map PNG must be grayscale (1 channel), got {img.shape[1]}"
            )
        maps = img
    elif suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ImageIOError(f"cannot read '{path}': {e}") from e
        if arr.ndim not in (2, 3) or arr.dtype.kind not in "fiu":
            raise DatasetFormatError(
                f"{path}: expected a numeric (H, W) or (T, H, W) array, got shape "
                f"{arr.shape} of dtype {arr.dtype}"
            )
        maps = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        maps = maps[None, None] if arr.ndim == 2 else maps[:, None]
    else:
        raise DatasetFormatError(
            f"{path}: unsupported saliency map extension {path.suffix!r}; use .npy or .png"
        )
    h, w = maps.shape[-2:]
    if w != 2 * h:
        raise DatasetFormatError(f"{path}: a saliency map must be 2:1 (W == 2H), got {w}x{h}")
    if not bool(torch.isfinite(maps).all()) or bool((maps < 0).any()):
        raise DatasetFormatError(f"{path}: saliency values must be finite and non-negative")
    return maps


def write_saliency_map(
    path: str | os.PathLike[str], maps: torch.Tensor, *, overwrite: bool = False
) -> None:
    """Write a saliency map (``.npy``: float32 as is; ``.png``: 8-bit, scaled to max 1).

    Args:
        path: output file, ``.npy`` or ``.png``.
        maps: (1, 1, H, W) or (H, W); for ``.npy`` also (T, 1, H, W) (a video, stored as
            (T, H, W)).
        overwrite: replace an existing file.

    Raises:
        ShapeError: wrong shape (or a video map to PNG).
        ValueRangeError: negative or non-finite values.
        ImageIOError: unsupported extension, or writing fails.
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    maps = torch.as_tensor(maps).detach().to("cpu", torch.float32)
    if maps.ndim == 2:
        maps = maps[None, None]
    if maps.ndim != 4 or maps.shape[1] != 1:
        raise ShapeError(f"maps must be (T, 1, H, W) or (H, W), got {tuple(maps.shape)}")
    if not bool(torch.isfinite(maps).all()) or bool((maps < 0).any()):
        raise ValueRangeError("maps must be finite and non-negative")
    suffix = path.suffix.lower()
    if suffix == ".png":
        if maps.shape[0] != 1:
            raise ShapeError(
                f"a PNG holds one map; got {maps.shape[0]} frames (write a video's maps to .npy)"
            )
        peak = maps.max()
        write_image(path, maps[0] / peak if peak > 0 else maps[0], overwrite=overwrite)
    elif suffix == ".npy":
        arr = maps[:, 0].numpy() if maps.shape[0] > 1 else maps[0, 0].numpy()
        write_atomic(path, lambda f: np.save(f, arr, allow_pickle=False), overwrite)
    else:
        raise ImageIOError(f"cannot write '{path}': saliency maps are written as .npy or .png")


# --- the folder ---------------------------------------------------------------------------------


class SaliencyFolder:
    """A dataset in the generic folder format (see the module docstring for the layout).

    Args:
        root: the folder holding ``images/``, ``videos/``, ``maps/`` and ``fixations/``.

    Items are :class:`SaliencySample` objects, indexed by position (sorted names) or by name;
    files are read when an item is requested.

    Raises:
        ImageIOError: ``root`` is not a directory.
        DatasetFormatError: two files of one folder share a name (e.g. ``maps/a.png`` and
            ``maps/a.npy``), or a name is both an image and a video.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as root:
        ...     write_saliency_sample(root, "a", image=torch.rand(1, 3, 8, 16))
        ...     SaliencyFolder(root)["a"].image.shape
        torch.Size([1, 3, 8, 16])
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ImageIOError(f"cannot read dataset '{self.root}': not a directory")
        self._images = self._scan("images", _IMAGE_SUFFIXES)
        self._videos = self._scan("videos", _VIDEO_SUFFIXES)
        self._maps = self._scan("maps", _MAP_SUFFIXES)
        self._fixations = self._scan("fixations", (".csv",))
        both = sorted(set(self._images) & set(self._videos))
        if both:
            raise DatasetFormatError(
                f"{self.root}: {both[0]!r} is both an image and a video; names must be unique"
            )
        self.names: list[str] = sorted(
            set(self._images) | set(self._videos) | set(self._maps) | set(self._fixations)
        )

    def _scan(self, sub: str, suffixes: tuple[str, ...]) -> dict[str, Path]:
        folder = self.root / sub
        found: dict[str, Path] = {}
        if not folder.is_dir():
            return found
        for p in sorted(folder.iterdir()):
            if p.name.startswith(".") or p.suffix.lower() not in suffixes or not p.is_file():
                continue
            if p.stem in found:
                raise DatasetFormatError(
                    f"{folder}: '{found[p.stem].name}' and '{p.name}' have the same name; keep one"
                )
            found[p.stem] = p
        return found

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[SaliencySample]:
        for name in self.names:
            yield self[name]

    def __getitem__(self, key: int | str) -> SaliencySample:
        if isinstance(key, str):
            if key not in self.names:
                raise KeyError(f"no item named {key!r} in '{self.root}'")
            name = key
        else:
            name = self.names[key]
        sample = SaliencySample(name=name, video=self._videos.get(name))
        if name in self._images:
            sample.image = read_image(self._images[name])
        if name in self._maps:
            sample.saliency = read_saliency_map(self._maps[name])
        if name in self._fixations:
            sample.fixations, sample.times = read_fixations_csv(self._fixations[name])
        return sample

    def __repr__(self) -> str:
        return f"SaliencyFolder('{self.root}', {len(self)} items)"


def write_saliency_sample(
    root: str | os.PathLike[str],
    name: str,
    *,
    image: torch.Tensor | None = None,
    saliency: torch.Tensor | None = None,
    fixations: torch.Tensor | None = None,
    times: torch.Tensor | None = None,
    image_format: str = ".png",
    map_format: str = ".npy",
    overwrite: bool = False,
) -> None:
    """Add one item to a dataset in the generic folder format (folders are created).

    Args:
        root: the dataset folder.
        name: the item's file stem (no path separators, not starting with a dot).
        image: (1, C, H, W) panorama in [0, 1] -> ``images/NAME{image_format}``.
        saliency: (1, 1, H, W) or (T, 1, H, W) -> ``maps/NAME{map_format}``.
        fixations: (N, 2) radians, with optional ``times`` (N,) seconds ->
            ``fixations/NAME.csv``.
        image_format: extension of the image file.
        map_format: ``".npy"`` (exact floats; required for videos) or ``".png"`` (8 bits).
        overwrite: replace existing files.

    Raises:
        ValueRangeError: a bad ``name``; the errors of the writers.
    """
    if not name or name.startswith(".") or "/" in name or os.sep in name:
        raise ValueRangeError(f"name must be a plain file stem, got {name!r}")
    root = Path(root)
    folders = {
        "images": image is not None,
        "maps": saliency is not None,
        "fixations": fixations is not None,
    }
    for sub, needed in folders.items():
        if needed:
            (root / sub).mkdir(parents=True, exist_ok=True)
    if image is not None:
        write_image(root / "images" / f"{name}{image_format}", image, overwrite=overwrite)
    if saliency is not None:
        write_saliency_map(root / "maps" / f"{name}{map_format}", saliency, overwrite=overwrite)
    if fixations is not None:
        write_fixations_csv(
            root / "fixations" / f"{name}.csv", fixations, times, overwrite=overwrite
        )
