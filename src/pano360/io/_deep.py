"""16-bit files Pillow cannot handle itself: reading 16-bit colour PNG and TIFF (Pillow keeps the
high byte only) and writing 16-bit colour PNG and TIFF (Pillow has no 16-bit colour mode)."""

from __future__ import annotations

import struct
import sys
import zlib
from typing import BinaryIO

import numpy as np
from PIL import Image

__all__ = ["read_16bit_colour", "write_png16", "write_tiff16"]

# Pillow's raw modes for 16-bit samples, and the same samples declared in the other byte order
# (N is the machine's order, which libtiff hands over).
_OTHER = "B" if sys.byteorder == "little" else "L"
_SWAPPED = {
    "RGB;16B": "RGB;16L",
    "RGB;16L": "RGB;16B",
    "RGB;16N": f"RGB;16{_OTHER}",
    "RGBA;16B": "RGBA;16L",
    "RGBA;16L": "RGBA;16B",
    "RGBA;16N": f"RGBA;16{_OTHER}",
}


def _rawmode(tile) -> str | None:
    args = tile.args
    if isinstance(args, tuple):
        args = args[0] if args else None
    return args if isinstance(args, str) else None


def read_16bit_colour(path, im: Image.Image) -> np.ndarray | None:
    """(H, W, C) uint16 samples of a 16-bit RGB or RGBA file (or grey + alpha PNG, read as RGBA)
    Pillow opened as 8-bit, or None.

    Pillow decodes such files keeping the high byte of each sample. Decoding the same data a
    second time declared in the other byte order keeps the low bytes instead (the PNG filters
    and TIFF predictors work on whole pixels, so they undo the same way); the two make the exact
    16-bit samples. ``im`` is the opened, not yet loaded image.
    """
    if im.format not in ("PNG", "TIFF") or not im.tile:
        return None
    modes = {_rawmode(t) for t in im.tile}
    if modes == {"LA;16B"} and im.format == "PNG":
        return _grey_alpha_16(im)
    if len(modes) != 1 or next(iter(modes)) not in _SWAPPED:
        return None
    swapped = _SWAPPED[next(iter(modes))]
    im.load()
    high = np.asarray(im)
    with Image.open(path) as again:
        again.tile = [
            t._replace(args=swapped if isinstance(t.args, str) else (swapped, *t.args[1:]))
            for t in again.tile
        ]
        again.load()
        low = np.asarray(again)
    if low.shape != high.shape:
        return None
    return (high.astype(np.uint16) << 8) | low


def _grey_alpha_16(im: Image.Image) -> np.ndarray:
    """(H, W, 4) uint16 grey, grey, grey, alpha of a 16-bit grey + alpha PNG. Pillow opens it as
    8-bit RGBA from the high bytes and has no raw mode for the low ones; read as 8-bit RGBA, each
    pixel's 4 bytes are grey high, grey low, alpha high, alpha low (the PNG filters work on the
    same 4-byte pixels either way)."""
    im.tile = [t._replace(args="RGBA" if isinstance(t.args, str) else ("RGBA", *t.args[1:]))
               for t in im.tile]  # fmt: skip
    im.load()
    raw = np.asarray(im).astype(np.uint16)
    grey, alpha = (raw[..., 0] << 8) | raw[..., 1], (raw[..., 2] << 8) | raw[..., 3]
    return np.stack([grey, grey, grey, alpha], axis=-1)


def _chunk(fp: BinaryIO, kind: bytes, data: bytes) -> None:
    fp.write(struct.pack(">I", len(data)) + kind + data)
    fp.write(struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def write_png16(
    fp: BinaryIO,
    array: np.ndarray,
    *,
    exif: bytes | None = None,
    xmp: bytes | None = None,
    icc_profile: bytes | None = None,
) -> None:
    """Write (H, W, C) uint16 samples, C in (1, 2, 3, 4), as a 16-bit PNG (filter Up, deflate)."""
    h, w, c = array.shape
    fp.write(b"\x89PNG\r\n\x1a\n")
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    _chunk(fp, b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
    if icc_profile:
        _chunk(fp, b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile))
    if exif:
        _chunk(fp, b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif)
    if xmp:
        _chunk(fp, b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp)
    compressor = zlib.compressobj(6)
    previous = np.zeros(w * c * 2, dtype=np.uint8)
    band = max(1, (1 << 22) // max(1, w * c * 2))  # about 4 MB of rows at a time
    for r0 in range(0, h, band):
        rows = array[r0 : r0 + band].astype(">u2").reshape(-1, w * c).view(np.uint8)
        up = np.empty((rows.shape[0], rows.shape[1] + 1), dtype=np.uint8)
        up[:, 0] = 2  # filter type Up: each byte minus the one above it, modulo 256
        up[0, 1:] = rows[0] - previous
        up[1:, 1:] = rows[1:] - rows[:-1]
        previous = rows[-1].copy()
        data = compressor.compress(up.tobytes())
        if data:
            _chunk(fp, b"IDAT", data)
    _chunk(fp, b"IDAT", compressor.flush())
    _chunk(fp, b"IEND", b"")


def write_tiff16(
    fp: BinaryIO,
    array: np.ndarray,
    *,
    xmp: bytes | None = None,
    icc_profile: bytes | None = None,
) -> None:
    """Write (H, W, C) uint16 samples, C in (3, 4), as a little-endian 16-bit TIFF (deflate
    strips); XMP and the ICC profile are stored in their TIFF tags."""
    h, w, c = array.shape
    rows_per_strip = max(1, (1 << 20) // (w * c * 2))
    strips = []
    for r0 in range(0, h, rows_per_strip):
        block = np.ascontiguousarray(array[r0 : r0 + rows_per_strip]).astype("<u2")
        strips.append(zlib.compress(block.tobytes(), 6))
    # Layout: header, pixel strips, then the tag data that does not fit in 4 bytes, then the IFD.
    out = bytearray(b"II*\x00\x00\x00\x00\x00")
    offsets = []
    for s in strips:
        offsets.append(len(out))
        out += s
        if len(out) % 2:
            out += b"\x00"
    tags: list[tuple[int, int, int, bytes]] = []  # (tag, type, count, value bytes)

    def add(tag: int, kind: int, values, fmt: str) -> None:
        data = struct.pack(f"<{len(values)}{fmt}", *values) if fmt else bytes(values)
        tags.append((tag, kind, len(values), data))

    add(256, 4, [w], "I")
    add(257, 4, [h], "I")
    add(258, 3, [16] * c, "H")
    add(259, 3, [8], "H")  # Adobe deflate
    add(262, 3, [2], "H")  # RGB
    add(273, 4, offsets, "I")
    add(277, 3, [c], "H")
    add(278, 4, [rows_per_strip], "I")
    add(279, 4, [len(s) for s in strips], "I")
    add(284, 3, [1], "H")  # chunky
    if xmp:
        add(700, 1, xmp, "")
    if c == 4:
        add(338, 3, [2], "H")  # unassociated alpha
    add(339, 3, [1] * c, "H")  # unsigned integers
    if icc_profile:
        add(34675, 7, icc_profile, "")
    tags.sort()
    entries = []
    for tag, kind, count, data in tags:
        if len(data) <= 4:
            entries.append(struct.pack("<HHI", tag, kind, count) + data.ljust(4, b"\x00"))
        else:
            if len(out) % 2:
                out += b"\x00"
            entries.append(struct.pack("<HHII", tag, kind, count, len(out)))
            out += data
    if len(out) % 2:
        out += b"\x00"
    ifd = len(out)
    out += struct.pack("<H", len(entries)) + b"".join(entries) + b"\x00\x00\x00\x00"
    out[4:8] = struct.pack("<I", ifd)
    fp.write(out)
