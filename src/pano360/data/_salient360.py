"""Readers (and writers) of the Salient360! 2018 grand-challenge formats.

Saliency maps
    Raw little-endian floats, row-major (row 0 at the top, each row left to right), no header.
    The file name carries the size: ``NAME_{W}x{H}_{BITS}b.bin`` for an image (e.g.
    ``HEsalmap_23_2048x1024_32b.bin``) and ``NAME_{W}x{H}x{N}_{BITS}b.bin`` for a video of N
    frames stored one after the other. BITS is 32 in the dataset (16 and 64 are read too).

Scanpaths
    Comma-separated text with a header line. Images: ``Idx, longitude, latitude, start
    timestamp``; videos add ``duration, start frame, end frame``. Longitude and latitude are
    normalised to [0, 1], timestamps and durations are in milliseconds, and Idx (the fixation
    number) restarts for every observer, so one file holds every observer's scanpath.

Convention:
    Normalised (u, v) = (longitude, latitude) of the file are positions on the ERP image
    measured from its top-left corner in units of its width and height: u = 0 is the left edge,
    u = 1 the right edge; v = 0 the top edge (north pole), v = 1 the bottom edge. In our
    coordinates (:mod:`pano360.geometry.conventions`)::

        lon = (u - 0.5) 2pi     (u = 0 -> lon = -pi, u = 0.5 -> 0 straight ahead)
        lat = (0.5 - v) pi      (v = 0 -> lat = +pi/2, the north pole)

    so u W = x + 0.5 and v H = y + 0.5 in our pixel-centre coordinates. u = 1 is the same
    meridian as u = 0 and is returned as lon = -pi. A fixation falls in pixel (int(v H), int(u W)),
    as the Salient360! toolbox centres the Gaussians of its saliency maps. The fixation maps the
    tools' metrics read put it elsewhere: at (int(v H - 1), int(u W - 1)), one pixel up and left
    (``placement="salient360"`` of :func:`pano360.saliency.binary_fixation_map`, and the
    ``fixation_placement`` option of :class:`Salient360Images`); the files' own (u, v) are kept in
    :attr:`Scanpath.uv` so that this placement can be reproduced exactly.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._core import DatasetFormatError, ImageIOError, ShapeError, ValueRangeError, check_choice
from ..io import read_image, write_atomic
from ..saliency import FIXATION_PLACEMENTS, binary_fixation_map
from ._folder import SaliencySample, _read_lines

__all__ = [
    "Salient360BinInfo",
    "Salient360Images",
    "Salient360VideoMaps",
    "Scanpath",
    "lonlat_to_salient360",
    "parse_salient360_bin_name",
    "read_salient360_map",
    "read_salient360_scanpaths",
    "salient360_to_lonlat",
    "write_salient360_map",
]

_BIN_NAME = re.compile(r"^(?P<name>.+?)_(?P<w>\d+)x(?P<h>\d+)(?:x(?P<n>\d+))?_(?P<bits>\d+)b\.bin$")
_DTYPES = {16: np.dtype("<f2"), 32: np.dtype("<f4"), 64: np.dtype("<f8")}
_IMAGE_COLUMNS = ("idx", "longitude", "latitude", "start timestamp")
_VIDEO_COLUMNS = (*_IMAGE_COLUMNS, "duration", "start frame", "end frame")


# --- coordinates --------------------------------------------------------------------------------


def salient360_to_lonlat(uv: torch.Tensor) -> torch.Tensor:
    """Salient360! normalised (longitude, latitude) in [0, 1] to (lon, lat) radians.

    Args:
        uv: (..., 2) tensor (u, v), u from the left edge, v from the top edge.

    Returns:
        (..., 2) float64 (lon, lat) with lon in [-pi, pi) and lat in [-pi/2, pi/2]. Always
        float64: in float32, u = 0 would give float32(-pi), which lies just past the seam.

    Convention:
        lon = (u - 0.5) 2pi wrapped into [-pi, pi), lat = (0.5 - v) pi (see the module
        docstring). Inverse: :func:`lonlat_to_salient360`.

    Example:
        >>> salient360_to_lonlat(torch.tensor([[0.5, 0.5], [0.0, 0.0]])).tolist()
        [[0.0, 0.0], [-3.141592653589793, 1.5707963267948966]]
    """
    uv = torch.as_tensor(uv)
    if uv.shape[-1:] != (2,):
        raise ShapeError(f"uv must be (..., 2), got {tuple(uv.shape)}")
    uv = uv.to(torch.float64)
    lon = torch.remainder(uv[..., 0] * (2 * math.pi), 2 * math.pi) - math.pi
    lat = (0.5 - uv[..., 1]) * math.pi
    return torch.stack((lon, lat), dim=-1)


def lonlat_to_salient360(lonlat: torch.Tensor) -> torch.Tensor:
    """(lon, lat) radians to Salient360! normalised (u, v) in [0, 1) x [0, 1].

    Convention:
        u = lon / 2pi + 0.5 (lon wrapped first, so u is in [0, 1)), v = 0.5 - lat / pi.
        Inverse of :func:`salient360_to_lonlat`.

    Example:
        >>> lonlat_to_salient360(torch.tensor([0.0, math.pi / 2])).tolist()
        [0.5, 0.0]
    """
    lonlat = torch.as_tensor(lonlat)
    if lonlat.shape[-1:] != (2,):
        raise ShapeError(f"lonlat must be (..., 2), got {tuple(lonlat.shape)}")
    u = torch.remainder(lonlat[..., 0] + math.pi, 2 * math.pi) / (2 * math.pi)
    v = 0.5 - lonlat[..., 1] / math.pi
    return torch.stack((u, v), dim=-1)


# --- binary saliency maps -----------------------------------------------------------------------


@dataclass(frozen=True)
class Salient360BinInfo:
    """What a Salient360! ``.bin`` file name says: ``NAME_{W}x{H}[x{N}]_{BITS}b.bin``."""

    name: str
    width: int
    height: int
    frames: int | None  # None for an image map
    bits: int

    @property
    def frame_bytes(self) -> int:
        return self.width * self.height * self.bits // 8

    @property
    def expected_bytes(self) -> int:
        return self.frame_bytes * (self.frames or 1)


def parse_salient360_bin_name(path: str | os.PathLike[str]) -> Salient360BinInfo:
    """Parse the size and precision out of a Salient360! map file name.

    Raises:
        DatasetFormatError: the name does not match ``NAME_{W}x{H}_{BITS}b.bin`` or
            ``NAME_{W}x{H}x{N}_{BITS}b.bin``, or BITS is not 16, 32 or 64, or a size is 0.

    Example:
        >>> parse_salient360_bin_name("HEsalmap_23_2048x1024_32b.bin")
        Salient360BinInfo(name='HEsalmap_23', width=2048, height=1024, frames=None, bits=32)
    """
    path = Path(path)
    m = _BIN_NAME.match(path.name)
    if m is None:
        raise DatasetFormatError(
            f"{path}: file name must be NAME_{{W}}x{{H}}_{{BITS}}b.bin (image) or "
            f"NAME_{{W}}x{{H}}x{{N}}_{{BITS}}b.bin (video), e.g. HEsalmap_1_2048x1024_32b.bin"
        )
    bits = int(m["bits"])
    if bits not in _DTYPES:
        raise DatasetFormatError(f"{path}: float precision must be 16, 32 or 64 bits, got {bits}")
    info = Salient360BinInfo(
        m["name"], int(m["w"]), int(m["h"]), int(m["n"]) if m["n"] else None, bits
    )
    if info.width < 1 or info.height < 1 or info.frames == 0:
        raise DatasetFormatError(f"{path}: sizes in the file name must be positive")
    return info


def _check_size(path: Path, info: Salient360BinInfo) -> None:
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ImageIOError(f"cannot read '{path}': {e.strerror or e}") from e
    if size != info.expected_bytes:
        frames = f" x {info.frames} frames" if info.frames else ""
        raise DatasetFormatError(
            f"{path}: expected {info.expected_bytes} bytes ({info.width} x {info.height}"
            f"{frames} x {info.bits // 8}-byte floats, from the file name), got {size}"
        )


def _read_frames(path: Path, info: Salient360BinInfo, start: int, count: int) -> torch.Tensor:
    dtype = _DTYPES[info.bits]
    try:
        with open(path, "rb") as f:
            f.seek(start * info.frame_bytes)
            data = np.fromfile(f, dtype=dtype, count=count * info.width * info.height)
    except OSError as e:
        raise ImageIOError(f"cannot read '{path}': {e.strerror or e}") from e
    if data.size != count * info.width * info.height:
        raise DatasetFormatError(f"{path}: file ended early (truncated while reading)")
    maps = torch.from_numpy(data.astype(np.float32)).view(count, 1, info.height, info.width)
    return maps


def read_salient360_map(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an image saliency map ``NAME_{W}x{H}_{BITS}b.bin``.

    Args:
        path: the ``.bin`` file; its name gives W, H and the precision.

    Returns:
        (1, 1, H, W) float32 map, values as stored (row 0 at the top).

    Raises:
        DatasetFormatError: a bad file name, a video file name (several frames: use
            :class:`Salient360VideoMaps`), or a byte count other than W x H x BITS / 8 (the
            message gives the expected size).
        ImageIOError: the file cannot be read.
    """
    path = Path(path)
    info = parse_salient360_bin_name(path)
    if info.frames not in (None, 1):
        raise DatasetFormatError(
            f"{path}: a video of {info.frames} frames; read it with Salient360VideoMaps"
        )
    _check_size(path, info)
    return _read_frames(path, info, 0, 1)


class Salient360VideoMaps:
    """The frames of a Salient360! video saliency file, read on demand (never all at once).

    Args:
        path: ``NAME_{W}x{H}x{N}_{BITS}b.bin``.

    Indexing gives one frame as a (1, 1, H, W) float32 tensor (negative indices count from the
    end); :meth:`read` gives a range as (T, 1, H, W); iteration yields every frame in order.

    Raises:
        DatasetFormatError: a bad file name (or an image name, without N), or a byte count
            other than W x H x N x BITS / 8.
        ImageIOError: the file cannot be read.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.info = parse_salient360_bin_name(self.path)
        if self.info.frames is None:
            raise DatasetFormatError(
                f"{self.path}: an image map (no frame count in the name); read it with "
                "read_salient360_map"
            )
        _check_size(self.path, self.info)

    @property
    def hw(self) -> tuple[int, int]:
        return self.info.height, self.info.width

    def __len__(self) -> int:
        return int(self.info.frames)

    def __getitem__(self, index: int) -> torch.Tensor:
        n = len(self)
        i = int(index)
        if not -n <= i < n:
            raise IndexError(f"frame {index} out of range for {n} frames")
        return _read_frames(self.path, self.info, i % n, 1)

    def read(self, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Frames ``start`` to ``stop - 1`` as a (T, 1, H, W) tensor."""
        stop = len(self) if stop is None else stop
        if not 0 <= start < stop <= len(self):
            raise ValueRangeError(
                f"frame range must satisfy 0 <= start < stop <= {len(self)}, got {start}:{stop}"
            )
        return _read_frames(self.path, self.info, start, stop - start)

    def __iter__(self) -> Iterator[torch.Tensor]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"Salient360VideoMaps('{self.path}', {len(self)} frames of {self.hw})"


def write_salient360_map(
    directory: str | os.PathLike[str],
    name: str,
    maps: torch.Tensor,
    *,
    video: bool | None = None,
    overwrite: bool = False,
) -> Path:
    """Write maps in the Salient360! binary format (32-bit floats), e.g. for a submission.

    Args:
        directory: existing output folder.
        name: the NAME part of the file name (e.g. ``"HEsalmap_23"``).
        maps: (1, 1, H, W) for an image, (T, 1, H, W) for a video.
        video: write a video name (with the frame count); default: when T > 1.
        overwrite: replace an existing file.

    Returns:
        The path written: ``directory/NAME_{W}x{H}_32b.bin`` or ``NAME_{W}x{H}x{T}_32b.bin``.

    Raises:
        ShapeError: ``maps`` not (T, 1, H, W), or T > 1 with ``video=False``.
        OutputExistsError, ImageIOError: see :func:`pano360.data.write_atomic`.
    """
    maps = torch.as_tensor(maps).detach().to("cpu", torch.float32)
    if maps.ndim != 4 or maps.shape[1] != 1:
        raise ShapeError(f"maps must be (T, 1, H, W), got {tuple(maps.shape)}")
    t, _, h, w = maps.shape
    video = t > 1 if video is None else video
    if t > 1 and not video:
        raise ShapeError(f"an image map file holds one map, got {t} (pass video=True)")
    size = f"{w}x{h}x{t}" if video else f"{w}x{h}"
    path = Path(directory) / f"{name}_{size}_32b.bin"
    data = maps.numpy().astype("<f4").tobytes()
    write_atomic(path, lambda f: f.write(data), overwrite)
    return path


# --- scanpaths ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scanpath:
    """The fixations of one observer on one stimulus.

    Attributes:
        lonlat: (N, 2) float64 (lon, lat) radians (see the module's Convention).
        start_s: (N,) float64 start times in seconds (the file's milliseconds / 1000).
        duration_s: (N,) float64 durations in seconds (videos), else None.
        start_frame, end_frame: (N,) int64 frame numbers as stored (videos), else None.
        uv: (N, 2) float64 normalised (longitude, latitude) exactly as stored, or None.
    """

    lonlat: torch.Tensor
    start_s: torch.Tensor
    duration_s: torch.Tensor | None = None
    start_frame: torch.Tensor | None = None
    end_frame: torch.Tensor | None = None
    uv: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.lonlat.shape[0])


def _header_columns(line: str) -> tuple[str, ...] | None:
    """Column names of a header line, or None when the line is data (starts with a number)."""
    text = line.strip().lstrip("#").strip()
    try:
        float(text.split(",")[0])
    except ValueError:
        return tuple(" ".join(c.split()).lower() for c in text.split(","))
    return None


def read_salient360_scanpaths(path: str | os.PathLike[str]) -> list[Scanpath]:
    """Read a Salient360! scanpath file (image or video) into one scanpath per observer.

    Args:
        path: a comma-separated file, with a header (``Idx, longitude, latitude, start
            timestamp`` for images; videos add ``duration, start frame, end frame``; case and
            spaces are ignored, a leading ``#`` is allowed) or without one (4 or 7 columns).

    Returns:
        One :class:`Scanpath` per observer, in file order. A new observer starts wherever Idx
        does not increase.

    Raises:
        ImageIOError: the file cannot be read.
        DatasetFormatError: a bad header, a line with another number of fields than the
            header, a value that is not a number, longitude or latitude outside [0, 1], a
            non-integer Idx or frame, or a negative or non-finite time. The message names the
            file and the line.

    Convention:
        See the module docstring: lon = (u - 0.5) 2pi, lat = (0.5 - v) pi.
    """
    path = Path(path)
    lines = _read_lines(path)
    if not lines:
        return []
    columns = _header_columns(lines[0][1])
    if columns is not None:
        if columns not in (_IMAGE_COLUMNS, _VIDEO_COLUMNS):
            raise DatasetFormatError(
                f"{path}:{lines[0][0]}: bad header {lines[0][1].strip()!r}; expected "
                f"'Idx, longitude, latitude, start timestamp' (images) or with ', duration, "
                f"start frame, end frame' (videos)"
            )
        ncols, body = len(columns), lines[1:]
    else:
        ncols = len(lines[0][1].split(","))
        if ncols not in (len(_IMAGE_COLUMNS), len(_VIDEO_COLUMNS)):
            raise DatasetFormatError(
                f"{path}:{lines[0][0]}: expected 4 (image) or 7 (video) comma-separated "
                f"values, got {ncols}"
            )
        body = lines
    rows = []
    for lineno, line in body:
        fields = line.split(",")
        if len(fields) != ncols:
            raise DatasetFormatError(
                f"{path}:{lineno}: expected {ncols} comma-separated values, got {len(fields)}"
            )
        try:
            values = [float(v) for v in fields]
        except ValueError:
            raise DatasetFormatError(f"{path}:{lineno}: not a number in {line.strip()!r}") from None
        _check_row(path, lineno, values)
        rows.append(values)
    if not rows:
        return []
    data = torch.tensor(rows, dtype=torch.float64)
    idx = data[:, 0]
    starts = [0] + [i for i in range(1, len(rows)) if idx[i] <= idx[i - 1]] + [len(rows)]
    result = []
    for a, b in itertools.pairwise(starts):
        part = data[a:b]
        video = ncols == len(_VIDEO_COLUMNS)
        result.append(
            Scanpath(
                lonlat=salient360_to_lonlat(part[:, 1:3]),
                start_s=part[:, 3] / 1000,
                duration_s=part[:, 4] / 1000 if video else None,
                start_frame=part[:, 5].long() if video else None,
                end_frame=part[:, 6].long() if video else None,
                uv=part[:, 1:3].clone(),
            )
        )
    return result


def _check_row(path: Path, lineno: int, values: list[float]) -> None:
    video = len(values) == len(_VIDEO_COLUMNS)
    columns = _VIDEO_COLUMNS if video else _IMAGE_COLUMNS
    for name, v in zip(columns, values, strict=True):
        if not math.isfinite(v):
            raise DatasetFormatError(f"{path}:{lineno}: {name} must be finite, got {v!r}")
    if values[0] != int(values[0]):
        raise DatasetFormatError(f"{path}:{lineno}: Idx must be an integer, got {values[0]!r}")
    for name, v in (("longitude", values[1]), ("latitude", values[2])):
        if not 0.0 <= v <= 1.0:
            raise DatasetFormatError(
                f"{path}:{lineno}: {name} must be in [0, 1] (normalised), got {v!r}"
            )
    for name, v in zip(
        ("start timestamp", "duration"), values[3:5] if video else values[3:4], strict=False
    ):
        if v < 0:
            raise DatasetFormatError(f"{path}:{lineno}: {name} must be >= 0 ms, got {v!r}")
    if video:
        for name, v in (("start frame", values[5]), ("end frame", values[6])):
            if v != int(v) or v < 0:
                raise DatasetFormatError(
                    f"{path}:{lineno}: {name} must be a non-negative integer, got {v!r}"
                )
        if values[6] < values[5]:
            raise DatasetFormatError(
                f"{path}:{lineno}: end frame {values[6]:g} is before start frame {values[5]:g}"
            )


# --- the image dataset --------------------------------------------------------------------------

_TRAILING_NUMBER = re.compile(r"(\d+)$")
_STIMULUS_NUMBER = re.compile(r"^P?(\d+)(?:_\d+x\d+)?$")


class Salient360Images:
    """The Salient360! 2018 image dataset: stimuli, binary maps and scanpaths paired by number.

    Args:
        stimuli: folder of panoramas named ``P{n}.jpg`` (also ``P{n}_{W}x{H}.jpg`` or
            ``{n}.png``; any format :func:`pano360.io.read_image` reads).
        maps: folder of ``*_{n}_{W}x{H}_32b.bin`` maps (e.g. ``HE/SalMaps``), or None.
        scanpaths: folder of ``*_{n}.txt`` or ``.csv`` scanpath files (e.g.
            ``HE/Scanpaths``), or None.
        fixation_placement: None, or ``"cell"`` or ``"salient360"``: also give each item with
            scanpaths ``extra["fixation_map"]``, a (1, 1, H, W) map of fixation counts at the
            size of its saliency map (else of its image), built from the files' own (u, v)
            with that placement. ``"salient360"`` is the fixation map the Salient360! tools'
            metrics read, pixel for pixel: column ``int(u W - 1)``, row ``int(v H - 1)`` (see
            :func:`pano360.saliency.binary_fixation_map`); ``"cell"`` is the pixel holding the
            fixation, what lists of ``fixations`` give under pano360's own presets.

    Items are :class:`pano360.data.SaliencySample` with ``name`` the stimulus number as text,
    ``image`` (1, 3, H, W), ``saliency`` (1, 1, H, W), ``fixations`` (N, 2) radians of all
    observers, ``times`` (N,) seconds, and ``extra["scanpaths"]`` the per-observer
    :class:`Scanpath` list (and ``extra["fixation_map"]``, see above). Files are read when an
    item is requested.

    Raises:
        ImageIOError: a folder does not exist.
        DatasetFormatError: two files of one folder carry the same number.
        ValueError: an unknown ``fixation_placement``.
        ShapeError: (when an item is read) a fixation map asked for at a size that is not 2:1.
    """

    def __init__(
        self,
        stimuli: str | os.PathLike[str],
        maps: str | os.PathLike[str] | None = None,
        scanpaths: str | os.PathLike[str] | None = None,
        *,
        fixation_placement: str | None = None,
    ) -> None:
        if fixation_placement is not None:
            check_choice(fixation_placement, "fixation_placement", FIXATION_PLACEMENTS)
        self.fixation_placement = fixation_placement
        self._stimuli = _index(stimuli, lambda p: _STIMULUS_NUMBER.match(p.stem), None)
        self._maps: dict[int, Path] = {}
        self._scanpaths: dict[int, Path] = {}
        if maps is not None:
            self._maps = _index(maps, _map_number, (".bin",))
        if scanpaths is not None:
            self._scanpaths = _index(
                scanpaths, lambda p: _TRAILING_NUMBER.search(p.stem), (".txt", ".csv")
            )
        self.numbers: list[int] = sorted(self._stimuli)

    def __len__(self) -> int:
        return len(self.numbers)

    def __getitem__(self, i: int) -> SaliencySample:
        n = self.numbers[i]
        sample = SaliencySample(name=str(n), image=read_image(self._stimuli[n]))
        if n in self._maps:
            sample.saliency = read_salient360_map(self._maps[n])
        if n in self._scanpaths:
            paths = read_salient360_scanpaths(self._scanpaths[n])
            sample.extra["scanpaths"] = paths
            if paths:
                sample.fixations = torch.cat([p.lonlat for p in paths])
                sample.times = torch.cat([p.start_s for p in paths])
                if self.fixation_placement is not None:
                    ref = sample.saliency if sample.saliency is not None else sample.image
                    sample.extra["fixation_map"] = binary_fixation_map(
                        torch.cat([p.uv for p in paths]),
                        tuple(ref.shape[-2:]),
                        counts=True,
                        placement=self.fixation_placement,
                        normalized=True,
                    )
        return sample

    def __iter__(self) -> Iterator[SaliencySample]:
        for i in range(len(self)):
            yield self[i]


def _map_number(path: Path):
    return _TRAILING_NUMBER.search(parse_salient360_bin_name(path).name)


def _index(folder, number_of, suffixes) -> dict[int, Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageIOError(f"cannot read dataset folder '{folder}': not a directory")
    found: dict[int, Path] = {}
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.startswith("."):
            continue
        if suffixes is not None and p.suffix.lower() not in suffixes:
            continue
        m = number_of(p)
        if m is None:
            continue
        n = int(m.group(1))
        if n in found:
            raise DatasetFormatError(
                f"{folder}: '{found[n].name}' and '{p.name}' both carry the number {n}"
            )
        found[n] = p
    return found
