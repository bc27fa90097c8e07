"""Saliency map files, one map per frame: written frame by frame (nothing holds a whole video's
maps in memory), read back whole. The one home of the formats ``pano360 saliency`` writes and
``pano360 eval saliency`` reads.

Formats (:data:`SALIENCY_MAP_FORMATS`), for maps (T, H, W) written to ``STEM`` + suffix:

- ``npy``: ``STEM.npy``, float32 (T, H, W), every frame as given (``pano360 saliency``: summing
  to 1), 4 bytes a pixel;
- ``npy16``: ``STEM.npy``, float16 (T, H, W), every frame divided by its peak (a map summing to
  1 has values near 1 / (H W), below float16's normal range: scaled to peak 1 they keep 11 bits
  of precision), 2 bytes a pixel;
- ``npz``: ``STEM.npz``, the same float16 array in a compressed archive (zip, deflate; key
  ``saliency``), often a tenth of ``npy16`` for smooth maps;
- ``png8``, ``png16``: a folder ``STEM/`` of grayscale PNGs ``000000.png``, ... (8 or 16 bits),
  each frame scaled so its peak is white.

The scaled formats keep each frame's shape, not its total: saliency metrics compare maps as
distributions (each is normalised), so they score the same; divide a frame by its sum to get the
map summing to 1 back.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from .._core import DatasetFormatError, ImageIOError, OutputExistsError, ShapeError, check_choice
from ._image import read_image, write_atomic, write_image

__all__ = ["SALIENCY_MAP_FORMATS", "SaliencyMapWriter", "read_saliency_maps", "saliency_map_path"]

#: Format name -> what it stores (see the module docstring).
SALIENCY_MAP_FORMATS: dict[str, str] = {
    "npy": "float32 .npy (T, H, W), as computed (maps summing to 1)",
    "npy16": "float16 .npy (T, H, W), each frame scaled to peak 1",
    "npz": "compressed .npz archive of float16 frames scaled to peak 1",
    "png8": "a folder of 8-bit grayscale PNGs, one per frame, peak white",
    "png16": "a folder of 16-bit grayscale PNGs, one per frame, peak white",
}
_SUFFIX = {"npy": ".npy", "npy16": ".npy", "npz": ".npz", "png8": "", "png16": ""}
_ARCHIVE_KEY = "saliency"
_IMAGE_SUFFIXES = (".png", ".tif", ".tiff")


def saliency_map_path(stem: str | os.PathLike[str], fmt: str) -> Path:
    """Where :class:`SaliencyMapWriter` writes format ``fmt`` for ``stem``: ``stem.npy``,
    ``stem.npz`` or the folder ``stem``.

    Raises:
        ChoiceError: ``fmt`` not in :data:`SALIENCY_MAP_FORMATS`.

    Example:
        >>> saliency_map_path("out/tour_saliency", "npz").as_posix()
        'out/tour_saliency.npz'
    """
    check_choice(fmt, "fmt", tuple(SALIENCY_MAP_FORMATS))
    stem = Path(stem)
    return stem.with_name(stem.name + _SUFFIX[fmt])


def _npy_header(f: BinaryIO, dtype: str, shape: tuple[int, ...]) -> None:
    np.lib.format.write_array_header_1_0(
        f, {"descr": dtype, "fortran_order": False, "shape": shape}
    )


class SaliencyMapWriter:
    """Write saliency maps frame by frame; :meth:`close` puts the file (or folder) in place.

    Until then everything is in a hidden temporary file or folder next to the target, so a
    failed or aborted run leaves nothing behind, and readers never see a partial output.

    Args:
        stem: the output without its suffix (see :func:`saliency_map_path`).
        fmt: one of :data:`SALIENCY_MAP_FORMATS`.
        overwrite: replace an existing output (a folder only when it holds nothing but PNGs).

    Raises:
        ChoiceError: unknown ``fmt``.
        OutputExistsError: the output exists and ``overwrite`` is False (checked at the start
            and again at :meth:`close`).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     writer = SaliencyMapWriter(f"{d}/clip_saliency", "png16")
        ...     for t in range(3):
        ...         writer.write(torch.rand(1, 1, 8, 16))
        ...     path = writer.close()
        ...     read_saliency_maps(path).shape
        torch.Size([3, 1, 8, 16])
    """

    def __init__(self, stem: str | os.PathLike[str], fmt: str, *, overwrite: bool = False):
        self.path = saliency_map_path(stem, fmt)
        self.fmt, self.overwrite = fmt, overwrite
        self._check_target()
        self.frames, self.hw = 0, None
        parent = self.path.parent
        if fmt.startswith("png"):
            self._tmp_dir: Path | None = Path(
                tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=parent)
            )
            self._raw = None
        else:
            self._tmp_dir = None
            self._raw = tempfile.TemporaryFile(dir=parent)  # noqa: SIM115 (closed by abort)

    def _check_target(self) -> None:
        if not self.path.exists():
            return
        if not self.overwrite:
            raise OutputExistsError(f"'{self.path}' exists; pass overwrite to replace it")
        if self.path.is_dir() and any(
            p.is_dir() or p.suffix.lower() != ".png" for p in self.path.iterdir()
        ):
            raise OutputExistsError(
                f"'{self.path}' is a folder holding more than PNG frames; not replaced"
            )

    def write(self, maps: torch.Tensor) -> None:
        """Append frames: (H, W), (1, H, W) or (T, 1, H, W) non-negative maps of one size."""
        if self._raw is None and self._tmp_dir is None:
            raise ValueError("the writer is closed")
        m = maps.detach().to("cpu", torch.float32)
        if m.dim() == 4 and m.shape[1] == 1:
            m = m[:, 0]
        elif m.dim() == 2:
            m = m[None]
        elif not (m.dim() == 3 and m.shape[0] == 1):
            raise ShapeError(
                f"maps must be (H, W), (1, H, W) or (T, 1, H, W), got {tuple(maps.shape)}"
            )
        hw = tuple(m.shape[-2:])
        if self.hw is not None and hw != self.hw:
            raise ShapeError(f"every frame must be {self.hw}, got {hw}")
        self.hw = hw
        for frame in m:
            if self.fmt == "npy":
                self._raw.write(frame.numpy().astype("<f4").tobytes())
            else:
                peak = frame.amax()
                scaled = frame / peak if peak > 0 else frame
                if self.fmt in ("npy16", "npz"):
                    self._raw.write(scaled.numpy().astype("<f2").tobytes())
                else:
                    name = self._tmp_dir / f"{self.frames:06d}.png"
                    bits = 16 if self.fmt == "png16" else 8
                    write_image(name, scaled[None], bit_depth=bits)
            self.frames += 1

    def close(self) -> Path:
        """Put the output in place; returns its path.

        Raises:
            ValueError: no frame was written.
            OutputExistsError: the output appeared meanwhile and ``overwrite`` is False.
        """
        if self.frames == 0:
            self.abort()
            raise ValueError("no saliency map was written")
        self._check_target()
        if self._tmp_dir is not None:
            old = None
            if self.path.exists():  # replaced (checked above): moved aside, then removed
                old = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.old.", dir=self.path.parent))
                os.replace(self.path, old / "maps")
            os.replace(self._tmp_dir, self.path)
            self._tmp_dir = None
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            return self.path
        dtype = "<f4" if self.fmt == "npy" else "<f2"
        shape = (self.frames, *self.hw)
        raw = self._raw

        def write(f: BinaryIO) -> None:
            raw.seek(0)
            if self.fmt == "npz":
                with (
                    zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z,
                    z.open(f"{_ARCHIVE_KEY}.npy", "w", force_zip64=True) as member,
                ):
                    _npy_header(member, dtype, shape)
                    shutil.copyfileobj(raw, member)
            else:
                _npy_header(f, dtype, shape)
                shutil.copyfileobj(raw, f)

        try:
            write_atomic(self.path, write, self.overwrite)
        finally:
            self.abort()
        return self.path

    def abort(self) -> None:
        """Remove what was written (the temporary file or folder); the target is untouched."""
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        if self._tmp_dir is not None:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None


def _read_array(path: Path) -> np.ndarray:
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.ndarray):
            return data
        with data:  # an .npz archive
            arrays = {k: data[k] for k in data}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ImageIOError(f"cannot read saliency maps '{path}': {e}") from None
    if _ARCHIVE_KEY in arrays:
        return arrays[_ARCHIVE_KEY]
    if len(arrays) != 1:
        raise DatasetFormatError(
            f"'{path}' must hold one array or one named '{_ARCHIVE_KEY}', got {sorted(arrays)}"
        )
    return next(iter(arrays.values()))


def read_saliency_maps(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read saliency maps in any of :data:`SALIENCY_MAP_FORMATS` (and single map images).

    Args:
        path: a ``.npy`` (H, W) or (T, H, W) array of any float or integer type, a ``.npz``
            archive (its ``saliency`` array, or its only one), a grayscale image (PNG, TIFF: one
            map), or a folder of such images, one per frame in the order of their names.

    Returns:
        (T, 1, H, W) float32 maps as stored (images in [0, 1]), W == 2H.

    Raises:
        ImageIOError: a missing or unreadable file, a folder without images.
        DatasetFormatError: an array of another rank or type, an archive of several arrays,
            a colour image, negative or non-finite values.
        ShapeError: maps that are not 2:1, or frames of different sizes.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(
            p for p in path.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file()
        )
        if not files:
            raise ImageIOError(f"saliency map folder '{path}' holds no PNG or TIFF frames")
        frames = []
        for f in files:
            img = read_image(f)
            if img.shape[1] != 1:
                raise DatasetFormatError(f"'{f}': a saliency map must be grayscale")
            if frames and img.shape[-2:] != frames[0].shape[-2:]:
                raise ShapeError(
                    f"'{f}' is {tuple(img.shape[-2:])}, the folder's first frame "
                    f"{tuple(frames[0].shape[-2:])}: every frame must have one size"
                )
            frames.append(img)
        maps = torch.cat(frames)
    elif not path.is_file():
        raise ImageIOError(f"cannot read saliency maps '{path}': no such file or folder")
    elif path.suffix.lower() in (".npy", ".npz"):
        arr = _read_array(path)
        if arr.ndim not in (2, 3) or arr.dtype.kind not in "fiu":
            raise DatasetFormatError(
                f"'{path}': expected a numeric (H, W) or (T, H, W) array, got shape "
                f"{arr.shape} of dtype {arr.dtype}"
            )
        maps = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        maps = maps.reshape(-1, 1, *maps.shape[-2:])
    else:
        img = read_image(path)
        if img.shape[1] != 1:
            raise DatasetFormatError(f"'{path}': a saliency map must be grayscale")
        maps = img
    h, w = maps.shape[-2:]
    if w != 2 * h:
        raise ShapeError(f"'{path}': a saliency map must be 2:1 (W == 2H), got {w}x{h}")
    if not bool(torch.isfinite(maps).all()) or bool((maps < 0).any()):
        raise DatasetFormatError(f"'{path}': saliency values must be finite and non-negative")
    return maps
