"""Reading and writing still images with Pillow, atomically and without surprises."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image

from .._core import ImageIOError, OutputExistsError, Pano360Error, ShapeError, ValueRangeError

__all__ = ["IMAGE_EXTENSIONS", "check_output_path", "read_image", "write_image", "write_images"]

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


def read_image(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an image file into a float tensor.

    Args:
        path: any still image Pillow decodes; PNG, JPEG, TIFF and WebP are the tested ones.

    Returns:
        (1, C, H, W) float32 tensor in [0, 1]. C is 1 for grayscale, 3 for colour and 4 for
        colour with alpha. 8-bit samples are divided by 255, 16-bit grayscale samples (PNG, TIFF)
        by 65535.

    Raises:
        ImageIOError: the file is missing, unreadable, empty, not an image, truncated, too large for
            Pillow's decompression-bomb limit, or stores a pixel format we do not read
            (32-bit integer or floating-point samples).

    Notes:
        Pixels are returned as stored. The EXIF orientation tag is *not* applied (a panorama's
        columns are longitudes; rotating it would break the geometry) and ICC colour profiles are
        ignored. Palette images become RGB, or RGBA when they have transparency; 1-bit images
        become grayscale; grayscale with alpha becomes RGBA; CMYK and YCbCr become RGB.
        Pillow reads 16-bit *colour* images at 8-bit precision. WebP has no grayscale: a
        grayscale WebP file reads as 3 equal channels. Multi-frame files (animations,
        multi-page TIFF) give their first frame.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     write_image(f"{tmp}/pano.png", torch.rand(1, 3, 32, 64))
        ...     read_image(f"{tmp}/pano.png").shape
        torch.Size([1, 3, 32, 64])
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            array, scale = _to_array(im, path)
    except ImageIOError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageIOError(f"cannot read image '{path}': {e}") from e
    except Image.UnidentifiedImageError as e:
        what = "the file is empty" if path.stat().st_size == 0 else "not an image Pillow can decode"
        raise ImageIOError(f"cannot read image '{path}': {what}") from e
    except (OSError, ValueError, SyntaxError) as e:
        # Pillow signals truncated or corrupt data with OSError, ValueError or SyntaxError.
        raise ImageIOError(f"cannot read image '{path}': {_describe(e)}") from e
    tensor = torch.from_numpy(array.astype(np.float32) / np.float32(scale))
    if tensor.ndim == 2:
        tensor = tensor[:, :, None]
    return tensor.permute(2, 0, 1).unsqueeze(0).contiguous()


def _to_array(im: Image.Image, path: Path) -> tuple[np.ndarray, int]:
    """(H, W) or (H, W, C) array of an opened image and the value of full intensity."""
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
                "(pano360 reads 8-bit images and 16-bit grayscale)"
            )
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


def _to_pil(image: torch.Tensor, name: str) -> Image.Image:
    """Validate a (1, C, H, W) or (C, H, W) float image in [0, 1] and convert it to 8 bits."""
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
    image = image.detach().to("cpu", torch.float32)
    if torch.isnan(image).any():
        raise ValueRangeError(f"{name} contains NaN values")
    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def _save_options(fmt: str, quality: int) -> dict:
    if fmt == "JPEG":
        return {"quality": quality}
    if fmt == "WEBP":
        # ``exact`` keeps the colour of fully transparent pixels, so lossless means lossless.
        return {"lossless": True, "exact": True} if quality == 100 else {"quality": quality}
    if fmt == "TIFF":
        return {"compression": "tiff_adobe_deflate"}
    return {}


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


def _encode_to_temporary(path: Path, im: Image.Image | bytes, fmt: str, quality: int) -> Path:
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
                im.save(f, format=fmt, **_save_options(fmt, quality))
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
    path: str | os.PathLike[str], write: Callable[[BinaryIO], None], overwrite: bool = False
) -> None:
    """Write any file through a hidden temporary next to it, renamed into place at the end.

    Readers never see a partial file and, without ``overwrite``, an existing file is never
    replaced (a hard link refuses to clobber, closing the race between check and rename).

    Args:
        path: the file to write.
        write: called once with the open temporary file (binary) to fill it.
        overwrite: whether an existing ``path`` may be replaced.

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
    overwrite: bool = False,
    quality: int = 95,
) -> None:
    """Write several images, all or nothing (e.g. the six faces of a cube map).

    Every image is validated and encoded to a temporary file in its target directory first;
    only when all of them succeeded are they renamed into place. On failure the temporary files
    are removed and no target is created.

    Args:
        images: mapping from output path to image (see :func:`write_image`), or to text (str,
            written as UTF-8) or bytes written as they are (a JSON report next to its images).
        overwrite: replace existing files. When False (the default) an existing target raises
            :class:`OutputExistsError` before anything is written.
        quality: JPEG and WebP quality, 1 to 100 (WebP at 100 is lossless).

    Raises:
        The errors of :func:`write_image`.
    """
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueRangeError(f"quality must be an integer in [1, 100], got {quality!r}")
    jobs = []
    for key, image in images.items():
        raw = isinstance(image, (str, bytes))
        path = check_output_path(key, overwrite=overwrite, image=not raw)
        if raw:
            jobs.append((path, image.encode() if isinstance(image, str) else image, "raw"))
            continue
        fmt = _format_of(path)
        im = _to_pil(image, f"image for '{path}'")
        if fmt == "JPEG" and im.mode == "RGBA":
            raise ImageIOError(
                f"cannot write image '{path}': JPEG cannot store an alpha channel (the image has "
                "4 channels); write PNG, TIFF or WebP, or drop the alpha channel"
            )
        if fmt in _MAX_SIDE and max(im.size) > _MAX_SIDE[fmt]:
            raise ImageIOError(
                f"cannot write image '{path}': {fmt} images are at most {_MAX_SIDE[fmt]} pixels "
                f"on a side, got {im.width}x{im.height}"
            )
        jobs.append((path, im, fmt))
    if len({os.path.abspath(p) for p, _, _ in jobs}) != len(jobs):
        raise ImageIOError("cannot write images: two outputs have the same path")
    done: list[Path] = []
    try:
        for path, im, fmt in jobs:
            done.append(_encode_to_temporary(path, im, fmt, quality))
    except BaseException:
        for tmp in done:
            _remove_quietly(tmp)
        raise
    for i, ((path, _, _), tmp) in enumerate(zip(jobs, done, strict=True)):
        try:
            _move_into_place(tmp, path, overwrite)
        except BaseException:
            for rest in done[i:]:
                _remove_quietly(rest)
            if not overwrite:
                # The files already placed are new ones of ours: take them back (all or nothing).
                for placed, _, _ in jobs[:i]:
                    _remove_quietly(placed)
            raise


def write_image(
    path: str | os.PathLike[str],
    image: torch.Tensor,
    *,
    overwrite: bool = False,
    quality: int = 95,
) -> None:
    """Write a float image to a PNG, JPEG, TIFF or WebP file, atomically.

    Args:
        path: output file; the extension picks the format (``.png``, ``.jpg``/``.jpeg``,
            ``.tif``/``.tiff``, ``.webp``, any case).
        image: (1, C, H, W) or (C, H, W) floating-point tensor, C in (1, 3, 4) (grayscale, RGB,
            RGBA). Values are clamped to [0, 1] and rounded to 8 bits.
        overwrite: replace an existing file. False by default: nothing is overwritten without
            being asked.
        quality: JPEG and WebP quality, 1 to 100 (WebP at 100 is lossless); PNG and TIFF
            (deflate-compressed) are always lossless.

    Raises:
        ImageIOError: unsupported extension, RGBA to JPEG, image too large for the format, missing
            or unwritable directory, or any failure while encoding or writing.
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        ShapeError: ``image`` is not (1, C, H, W) or (C, H, W) with C in (1, 3, 4).
        ValueRangeError: ``image`` contains NaN, or ``quality`` is outside [1, 100].
        TypeError: ``image`` is not a floating-point tensor.

    Notes:
        The image is encoded to a hidden temporary file in the same directory, flushed to disk,
        then renamed over ``path`` (``os.replace``), so readers never see a partial file. On
        any failure the temporary file is removed and ``path`` is left as it was.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     write_image(f"{tmp}/view.jpg", torch.rand(3, 48, 64), quality=90)
    """
    write_images({path: image}, overwrite=overwrite, quality=quality)
