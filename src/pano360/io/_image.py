"""Reading and writing still images with Pillow, atomically and without surprises."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import stat
import threading
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO, Literal, overload

import numpy as np
import torch
from PIL import Image, PngImagePlugin

from .._core import ImageIOError, OutputExistsError, Pano360Error, ShapeError, ValueRangeError
from ._deep import read_16bit_colour, write_png16, write_tiff16
from ._metadata import ImageInfo, exif_for, exif_of, xmp_of

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "check_output_path",
    "read_image",
    "write_image",
    "write_images",
]

# File extension (lower case) -> Pillow format name, for writing.
_FORMATS = {
    ".jpeg": "JPEG",
    ".jpg": "JPEG",
    ".png": "PNG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}

#: File extensions :func:`write_image` knows (case-insensitive).
IMAGE_EXTENSIONS: tuple[str, ...] = tuple(sorted(_FORMATS))

# Largest width or height each format can store.
_MAX_SIDE = {"JPEG": 65_535, "WEBP": 16_383}

# Pillow modes read as 8-bit images without conversion, and their channel counts.
_DIRECT_MODES = {"L": 1, "RGB": 3, "RGBA": 4}
# 16-bit grayscale modes (scaled by 65535).
_GRAY16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def _describe(err: BaseException) -> str:
    """A short reason for an OS or Pillow error, without the path (we print our own)."""
    if isinstance(err, FileNotFoundError):
        return "no such file or directory"
    if isinstance(err, IsADirectoryError):
        return "it is a directory"
    if isinstance(err, NotADirectoryError):
        return "a parent of it is not a directory"
    if isinstance(err, PermissionError):
        return "permission denied"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror[0].lower() + err.strerror[1:]
    return str(err) or type(err).__name__


#: Default of ``max_pixels`` in :func:`read_image` (and ``--max-pixels`` on the command line):
#: 16384 x 8192, a 16K panorama. A larger image needs a larger limit, which guards against
#: files that decode to far more memory than their size suggests (decompression bombs).
DEFAULT_MAX_PIXELS = 16_384 * 8_192

# Pillow's own decompression-bomb limit is a module global; we replace it by ``max_pixels`` while
# opening (a lock keeps two of our reads from restoring each other's value).
_PIL_LIMIT = threading.Lock()


@overload
def read_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int | None = ...,
    with_info: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def read_image(
    path: str | os.PathLike[str], *, max_pixels: int | None = ..., with_info: Literal[True]
) -> tuple[torch.Tensor, ImageInfo]: ...


def read_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    with_info: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, ImageInfo]:
    """Read an image file into a float tensor.

    Args:
        path: any still image Pillow decodes; PNG, JPEG, TIFF and WebP are the tested ones.
        max_pixels: largest width x height accepted (default :data:`DEFAULT_MAX_PIXELS`,
            16384 x 8192); None for no limit. A 20000 x 10000 panorama needs
            ``max_pixels=200_000_000`` and about 2.4 GB of memory per float32 copy.
        with_info: also return an :class:`ImageInfo` (bit depth, EXIF, XMP, ICC profile), to
            pass to :func:`write_image` so that an output keeps them.

    Returns:
        (1, C, H, W) float32 tensor in [0, 1], or (tensor, :class:`ImageInfo`) with
        ``with_info``. C is 1 for grayscale, 3 for colour and 4 for colour with alpha. 8-bit
        samples are divided by 255, 16-bit samples (PNG, TIFF; grayscale and colour) by 65535.

    Raises:
        ImageIOError: the file is missing, unreadable, empty, not an image, truncated, larger
            than ``max_pixels``, or stores a pixel format we do not read (32-bit integer or
            floating-point samples).
        ValueRangeError: ``max_pixels`` is not a positive integer or None.

    Notes:
        Pixels are returned as stored. The EXIF orientation tag is *not* applied (a panorama's
        columns are longitudes; rotating it would break the geometry) and ICC colour profiles are
        not applied (``with_info`` hands the profile over, so that outputs keep it). Palette
        images become RGB, or RGBA when they have transparency; 1-bit images become grayscale;
        grayscale with alpha becomes RGBA (at 8 bits); CMYK and YCbCr become RGB. WebP has no
        grayscale: a grayscale WebP file reads as 3 equal channels. Multi-frame files
        (animations, multi-page TIFF) give their first frame.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     write_image(f"{tmp}/pano.png", torch.rand(1, 3, 32, 64))
        ...     erp, info = read_image(f"{tmp}/pano.png", with_info=True)
        >>> erp.shape, info.bit_depth
        (torch.Size([1, 3, 32, 64]), 8)
    """
    path = Path(path)
    if max_pixels is not None and (
        isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1
    ):
        raise ValueRangeError(f"max_pixels must be a positive integer or None, got {max_pixels!r}")
    try:
        with _open_image(path) as im:
            _check_pixels(im, path, max_pixels)
            array, scale = _to_array(im, path)
            info = ImageInfo(
                format=im.format,
                bit_depth=16 if scale == 65_535 else 8,
                exif=exif_of(im),
                xmp=xmp_of(im),
                icc_profile=im.info.get("icc_profile") or None,
            )
    except ImageIOError:
        raise
    except Image.DecompressionBombError as e:  # only from a plugin that checks again
        raise ImageIOError(f"cannot read image '{path}': {e}") from e
    except Image.UnidentifiedImageError as e:
        what = "the file is empty" if path.stat().st_size == 0 else "not an image Pillow can decode"
        raise ImageIOError(f"cannot read image '{path}': {what}") from e
    except (OSError, ValueError, SyntaxError) as e:
        # Pillow signals truncated or corrupt data with OSError, ValueError or SyntaxError.
        raise ImageIOError(f"cannot read image '{path}': {_describe(e)}") from e
    tensor = _to_tensor(array, scale)
    return (tensor, info) if with_info else tensor


def _open_image(path: Path) -> Image.Image:
    """Image.open without Pillow's decompression-bomb warning or error (we check ourselves)."""
    with _PIL_LIMIT, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = limit


def _check_pixels(im: Image.Image, path: Path, max_pixels: int | None) -> None:
    w, h = im.size
    if max_pixels is not None and w * h > max_pixels:
        gb = w * h * 4 * len(im.getbands()) / 1e9
        raise ImageIOError(
            f"image '{path}' is {w}x{h} = {w * h} pixels, more than max_pixels={max_pixels} "
            f"(--max-pixels on the command line); raise the limit to read it (one float32 copy "
            f"takes {gb:.1f} GB)"
        )


def _to_tensor(array: np.ndarray, scale: int) -> torch.Tensor:
    """(H, W) or (H, W, C) integer samples -> (1, C, H, W) float32 in [0, 1], one channel at a
    time so that a large image is never held as more than one float32 copy."""
    if array.ndim == 2:
        array = array[:, :, None]
    h, w, c = array.shape
    out = torch.empty(1, c, h, w, dtype=torch.float32)
    planes = out.numpy()[0]
    for k in range(c):
        np.divide(array[:, :, k], np.float32(scale), out=planes[k], dtype=np.float32)
    return out


def _to_array(im: Image.Image, path: Path) -> tuple[np.ndarray, int]:
    """(H, W) or (H, W, C) array of an opened image and the value of full intensity."""
    deep = read_16bit_colour(path, im)
    if deep is not None:
        return deep, 65_535
    if im.mode in _GRAY16_MODES:
        return np.asarray(im).astype(np.uint16), 65_535
    if im.mode not in _DIRECT_MODES:
        if im.mode == "1":
            im = im.convert("L")
        elif im.mode in ("LA", "La", "PA", "RGBa") or (
            im.mode == "P" and "transparency" in im.info
        ):
            im = im.convert("RGBA")
        elif im.mode in ("P", "CMYK", "YCbCr", "RGBX", "LAB", "HSV"):
            im = im.convert("RGB")
        else:
            raise ImageIOError(
                f"cannot read image '{path}': unsupported pixel format {im.mode!r} "
                "(pano360 reads 8-bit and 16-bit images with integer samples)"
            )
    im.load()
    return np.asarray(im), 255


def check_output_path(
    path: str | os.PathLike[str], *, overwrite: bool = False, image: bool = True
) -> Path:
    """Check, before any work is done, that an image (or another file) can be written to ``path``.

    Args:
        path: the file to write; for an image its extension picks the format (see
            :data:`IMAGE_EXTENSIONS`).
        overwrite: whether an existing file may be replaced.
        image: whether ``path`` must have an image extension.

    Returns:
        ``path`` as a :class:`pathlib.Path`.

    Raises:
        ImageIOError: unsupported extension, missing or unwritable directory, or ``path`` is a
            directory.
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    parent = path.parent
    what = "image" if image else "file"
    if path.is_dir():
        raise ImageIOError(f"cannot write {what} '{path}': it is a directory")
    if image:
        _format_of(path)
    if not parent.exists():
        raise ImageIOError(f"cannot write {what} '{path}': directory '{parent}' does not exist")
    if not parent.is_dir():
        raise ImageIOError(f"cannot write {what} '{path}': '{parent}' is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ImageIOError(f"cannot write {what} '{path}': directory '{parent}' is not writable")
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"output '{path}' already exists; pass overwrite=True to replace it"
        )
    return path


def _format_of(path: Path) -> str:
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        got = f"unsupported extension {path.suffix!r}" if path.suffix else "no extension"
        raise ImageIOError(
            f"cannot write image '{path}': {got}; supported: {', '.join(IMAGE_EXTENSIONS)}"
        )
    return fmt


def _to_samples(image: torch.Tensor, name: str, bit_depth: int) -> np.ndarray:
    """Validate a (1, C, H, W) or (C, H, W) float image in [0, 1]; return (H, W, C) samples,
    uint8 or uint16, converted a band of rows at a time (no full-size float copy)."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(image).__name__}")
    if not image.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor in [0, 1], got {image.dtype}")
    if image.ndim == 4 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 3 or image.shape[0] not in (1, 3, 4) or 0 in image.shape:
        raise ShapeError(
            f"{name} must be (1, C, H, W) or (C, H, W) with C in (1, 3, 4) and H, W >= 1, "
            f"got {tuple(image.shape)}"
        )
    image = image.detach()
    c, h, w = image.shape
    top, dtype = (65_535, np.uint16) if bit_depth == 16 else (255, np.uint8)
    out = np.empty((h, w, c), dtype=dtype)
    band = max(1, (1 << 22) // (w * c))
    for r0 in range(0, h, band):
        rows = image[:, r0 : r0 + band].to("cpu", torch.float32)
        if torch.isnan(rows).any():
            raise ValueRangeError(f"{name} contains NaN values")
        q = (rows.clamp(0, 1) * top).round().to(torch.int32).permute(1, 2, 0).numpy()
        out[r0 : r0 + band] = q
    return out


def _save_options(fmt: str, quality: int) -> dict:
    if fmt == "JPEG":
        return {"quality": quality}
    if fmt == "WEBP":
        # ``exact`` keeps the colour of fully transparent pixels, so lossless means lossless.
        return {"lossless": True, "exact": True} if quality == 100 else {"quality": quality}
    if fmt == "TIFF":
        return {"compression": "tiff_adobe_deflate"}
    return {}


def _metadata_options(fmt: str, metadata: ImageInfo | None, w: int, h: int) -> dict:
    """Pillow's save options that store EXIF, XMP and the ICC profile in ``fmt``."""
    if metadata is None:
        return {}
    options: dict = {}
    if metadata.icc_profile:
        options["icc_profile"] = metadata.icc_profile
    if metadata.exif:
        options["exif"] = exif_for(metadata.exif, w, h)
    if fmt == "TIFF" and (metadata.exif or metadata.xmp):
        # In TIFF, EXIF and XMP are tags of the image's own directory. libtiff (used for
        # compressed TIFF) cannot write EXIF's sub-directories, so such files are uncompressed.
        tags = Image.Exif()
        tags.load(options.get("exif", b""))
        if metadata.xmp:
            tags[0x02BC] = metadata.xmp
        options["exif"] = tags
        if metadata.exif:
            options["compression"] = None
    elif metadata.xmp:
        if fmt == "PNG":
            info = PngImagePlugin.PngInfo()
            info.add_itxt("XML:com.adobe.xmp", metadata.xmp.decode("utf-8", "replace"))
            options["pnginfo"] = info
        else:
            options["xmp"] = metadata.xmp
    return options


def _encode(f: BinaryIO, job: _Job, quality: int) -> None:
    array, fmt, meta = job.array, job.fmt, job.metadata
    h, w, c = array.shape
    if array.dtype == np.uint16 and c > 1:
        # Pillow has no 16-bit colour mode: our own encoders.
        if fmt == "PNG":
            write_png16(
                f,
                array,
                exif=exif_for(meta.exif, w, h) if meta and meta.exif else None,
                xmp=meta.xmp if meta else None,
                icc_profile=meta.icc_profile if meta else None,
            )
        else:
            xmp, icc = (meta.xmp, meta.icc_profile) if meta else (None, None)
            write_tiff16(f, array, xmp=xmp, icc_profile=icc)
        return
    im = Image.fromarray(array[:, :, 0] if c == 1 else array)
    im.save(f, format=fmt, **{**_save_options(fmt, quality), **_metadata_options(fmt, meta, w, h)})


def _temporary_path(path: Path) -> tuple[Path, int]:
    """Create a new empty hidden file next to ``path``; return it and its open descriptor."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            # Mode 0o666 before the umask, like any new file (mkstemp would give 0o600).
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


@dataclasses.dataclass(frozen=True)
class _Job:
    """An image ready to encode: samples, format and the metadata to store with it."""

    array: np.ndarray
    fmt: str
    metadata: ImageInfo | None


def _encode_to_temporary(path: Path, im: _Job | bytes, quality: int) -> Path:
    """Encode ``im`` (or write raw bytes) into a new temporary file next to ``path``; nothing is
    left on failure."""
    what = "file" if isinstance(im, bytes) else "image"
    try:
        tmp, fd = _temporary_path(path)
    except OSError as e:
        raise ImageIOError(f"cannot write {what} '{path}': {_describe(e)}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(im, bytes):
                f.write(im)
            else:
                _encode(f, im, quality)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            # Keep the permissions of the file we replace.
            with contextlib.suppress(OSError):
                os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
    except BaseException as e:
        _remove_quietly(tmp)
        if isinstance(e, Exception):
            raise ImageIOError(f"cannot write {what} '{path}': {_describe(e)}") from e
        raise
    return tmp


def _move_into_place(tmp: Path, path: Path, overwrite: bool) -> None:
    """Rename ``tmp`` to ``path``; without ``overwrite`` never replace a file that appeared."""
    try:
        if overwrite:
            os.replace(tmp, path)
            return
        try:
            # A hard link fails if ``path`` exists, closing the gap between check and rename.
            os.link(tmp, path)
        except FileExistsError:
            raise OutputExistsError(
                f"output '{path}' already exists; pass overwrite=True to replace it"
            ) from None
        except OSError:
            # File systems without hard links: check, then rename.
            if path.exists():
                raise OutputExistsError(
                    f"output '{path}' already exists; pass overwrite=True to replace it"
                ) from None
            os.replace(tmp, path)
        else:
            os.unlink(tmp)
    except Pano360Error:
        raise
    except OSError as e:
        raise ImageIOError(f"cannot write image '{path}': {_describe(e)}") from e


def write_atomic(
    path: str | os.PathLike[str], write: Callable[[BinaryIO], None], overwrite: bool = True
) -> None:
    """Write any file through a hidden temporary next to it, renamed into place at the end.

    Readers never see a partial file and, with ``overwrite=False``, an existing file is never
    replaced (a hard link refuses to clobber, closing the race between check and rename).

    Args:
        path: the file to write.
        write: called once with the open temporary file (binary) to fill it.
        overwrite: whether an existing ``path`` may be replaced (True by default, like
            :func:`write_image`).

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        ImageIOError: the directory is missing or unwritable, or writing fails.
    """
    path = check_output_path(path, overwrite=overwrite, image=False)
    try:
        tmp, fd = _temporary_path(path)
    except OSError as e:
        raise ImageIOError(f"cannot write file '{path}': {_describe(e)}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        _move_into_place(tmp, path, overwrite)
    except Pano360Error:
        raise
    except OSError as e:
        raise ImageIOError(f"cannot write file '{path}': {_describe(e)}") from e
    finally:
        _remove_quietly(tmp)


def write_images(
    images: Mapping[str | os.PathLike[str], torch.Tensor | str | bytes],
    *,
    overwrite: bool = True,
    quality: int = 95,
    bit_depth: int = 8,
    metadata: ImageInfo | None = None,
) -> None:
    """Write several images, all or nothing (e.g. the six faces of a cube map).

    Every image is validated and encoded to a temporary file in its target directory first;
    only when all of them succeeded are they renamed into place. On failure the temporary files
    are removed and no target is created.

    Args:
        images: mapping from output path to image (see :func:`write_image`), or to text (str,
            written as UTF-8) or bytes written as they are (a JSON report next to its images).
        overwrite: replace existing files (the default). With False an existing target raises
            :class:`OutputExistsError` before anything is written.
        quality: JPEG and WebP quality, 1 to 100 (WebP at 100 is lossless).
        bit_depth: 8 or 16 bits per sample, for every image (16 for PNG and TIFF only).
        metadata: EXIF, XMP and ICC profile stored in every image (see :func:`write_image`).

    Raises:
        The errors of :func:`write_image`.
    """
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueRangeError(f"quality must be an integer in [1, 100], got {quality!r}")
    if bit_depth not in (8, 16) or isinstance(bit_depth, bool):
        raise ValueRangeError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    if metadata is not None and not isinstance(metadata, ImageInfo):
        raise TypeError(
            f"metadata must be an ImageInfo (from read_image(..., with_info=True)), "
            f"got {type(metadata).__name__}"
        )
    jobs: list[tuple[Path, _Job | bytes]] = []
    for key, image in images.items():
        raw = isinstance(image, (str, bytes))
        path = check_output_path(key, overwrite=overwrite, image=not raw)
        if raw:
            jobs.append((path, image.encode() if isinstance(image, str) else image))
            continue
        fmt = _format_of(path)
        if bit_depth == 16 and fmt not in ("PNG", "TIFF"):
            raise ImageIOError(
                f"cannot write image '{path}': {fmt} stores 8 bits per sample; write PNG or "
                "TIFF for bit_depth=16"
            )
        array = _to_samples(image, f"image for '{path}'", bit_depth)
        h, w, c = array.shape
        if fmt == "JPEG" and c == 4:
            raise ImageIOError(
                f"cannot write image '{path}': JPEG cannot store an alpha channel (the image has "
                "4 channels); write PNG, TIFF or WebP, or drop the alpha channel"
            )
        if fmt in _MAX_SIDE and max(h, w) > _MAX_SIDE[fmt]:
            raise ImageIOError(
                f"cannot write image '{path}': {fmt} images are at most {_MAX_SIDE[fmt]} pixels "
                f"on a side, got {w}x{h}"
            )
        jobs.append((path, _Job(array, fmt, metadata)))
    if len({os.path.abspath(p) for p, _ in jobs}) != len(jobs):
        raise ImageIOError("cannot write images: two outputs have the same path")
    done: list[Path] = []
    try:
        for path, job in jobs:
            done.append(_encode_to_temporary(path, job, quality))
    except BaseException:
        for tmp in done:
            _remove_quietly(tmp)
        raise
    for i, ((path, _), tmp) in enumerate(zip(jobs, done, strict=True)):
        try:
            _move_into_place(tmp, path, overwrite)
        except BaseException:
            for rest in done[i:]:
                _remove_quietly(rest)
            if not overwrite:
                # The files already placed are new ones of ours: take them back (all or nothing).
                for placed, _ in jobs[:i]:
                    _remove_quietly(placed)
            raise


def write_image(
    path: str | os.PathLike[str],
    image: torch.Tensor,
    *,
    overwrite: bool = True,
    quality: int = 95,
    bit_depth: int = 8,
    metadata: ImageInfo | None = None,
) -> None:
    """Write a float image to a PNG, JPEG, TIFF or WebP file, atomically.

    Args:
        path: output file; the extension picks the format (``.png``, ``.jpg``/``.jpeg``,
            ``.tif``/``.tiff``, ``.webp``, any case).
        image: (1, C, H, W) or (C, H, W) floating-point tensor, C in (1, 3, 4) (grayscale, RGB,
            RGBA). Values are clamped to [0, 1] and rounded to ``bit_depth`` bits.
        overwrite: replace an existing file (the default, like ``open(path, "w")``). With False
            an existing file raises :class:`OutputExistsError` (the command line's rule, where
            ``--overwrite`` must be given).
        quality: JPEG and WebP quality, 1 to 100 (WebP at 100 is lossless); PNG and TIFF
            (deflate-compressed) are always lossless.
        bit_depth: 8 (default) or 16 bits per sample; 16 for PNG and TIFF only. Use
            ``info.bit_depth`` of :func:`read_image` to keep a 16-bit input 16-bit.
        metadata: an :class:`ImageInfo` from :func:`read_image` (``with_info=True``) whose EXIF,
            XMP (e.g. GPano 360° tags) and ICC profile are stored in the file, for an output
            that still shows the input's scene (an ERP after blurring, say; see
            :func:`rotate_metadata` for a rotated one). EXIF's PixelXDimension and
            PixelYDimension are set to the image's size; the EXIF thumbnail is never written.
            JPEG, PNG and WebP store all three; TIFF stores them at 8 bits and in 16-bit
            grayscale, XMP and ICC only in 16-bit colour.

    Raises:
        ImageIOError: unsupported extension, RGBA to JPEG, 16 bits to JPEG or WebP, image too
            large for the format, metadata the format cannot hold (a JPEG XMP packet over 64 KB),
            missing or unwritable directory, or any failure while encoding or writing.
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        ShapeError: ``image`` is not (1, C, H, W) or (C, H, W) with C in (1, 3, 4).
        ValueRangeError: ``image`` contains NaN, ``quality`` is outside [1, 100], or
            ``bit_depth`` is not 8 or 16.
        TypeError: ``image`` is not a floating-point tensor, or ``metadata`` not an ImageInfo.

    Notes:
        The image is encoded to a hidden temporary file in the same directory, flushed to disk,
        then renamed over ``path`` (``os.replace``), so readers never see a partial file. On
        any failure the temporary file is removed and ``path`` is left as it was.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     write_image(f"{tmp}/view.jpg", torch.rand(3, 48, 64), quality=90)
        ...     write_image(f"{tmp}/view.jpg", torch.rand(3, 48, 64))  # replaced
        ...     write_image(f"{tmp}/deep.png", torch.rand(3, 48, 64), bit_depth=16)
    """
    write_images(
        {path: image},
        overwrite=overwrite,
        quality=quality,
        bit_depth=bit_depth,
        metadata=metadata,
    )
