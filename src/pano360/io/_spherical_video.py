"""Spherical-video metadata of MP4 / MOV files: the boxes players read to show a video as 360°.

Two generations exist (github.com/google/spatial-media, docs/spherical-video-rfc.md and
spherical-video-v2-rfc.md): V1, an XMP document (``GSpherical:Spherical`` ...) in a ``uuid`` box
(ffcc8263-f855-4a93-8814-587a02521fdd) of the video track; V2, ``sv3d`` (and ``st3d``) boxes in
the video sample entry (``avc1``, ``hvc1``, ...). FFmpeg (so PyAV) neither exposes nor writes
them, so they are read and written here as raw boxes, copied byte for byte.

Writing inserts them into a file whose ``moov`` box comes after its media data (as PyAV and
FFmpeg write by default): growing ``moov`` then moves no sample, so no chunk offset changes.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SPHERICAL_V1_UUID", "SphericalBoxes", "read_spherical_boxes", "write_spherical_boxes"]

#: Containers whose spherical-video metadata pano360 reads and copies (case-insensitive).
SPHERICAL_SUFFIXES: tuple[str, ...] = (".m4v", ".mov", ".mp4")

#: The ``uuid`` box id of Spherical Video V1 (XMP).
SPHERICAL_V1_UUID = bytes.fromhex("ffcc8263f8554a938814587a02521fdd")
# A visual sample entry's fields before its child boxes (ISO 14496-12 VisualSampleEntry).
_VISUAL_ENTRY_FIELDS = 78
_STSD_FIELDS = 8  # version, flags, entry_count


@dataclass(frozen=True)
class SphericalBoxes:
    """Raw spherical-video boxes of a video track (header included), each None when absent."""

    v1_uuid: bytes | None = None
    sv3d: bytes | None = None
    st3d: bytes | None = None

    def __bool__(self) -> bool:
        return any((self.v1_uuid, self.sv3d, self.st3d))


def _boxes(data: bytes | bytearray, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
    """(type, start, header length, end) of each box in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError("malformed box")
        yield kind, pos, header, pos + size
        pos += size


def _top_level(f) -> Iterator[tuple[bytes, int, int]]:
    """(type, start, end) of the file's top-level boxes, reading only their headers."""
    f.seek(0, os.SEEK_END)
    total = f.tell()
    pos = 0
    while pos + 8 <= total:
        f.seek(pos)
        head = f.read(16)
        size, kind = struct.unpack(">I4s", head[:8])
        if size == 1:
            size = struct.unpack(">Q", head[8:16])[0]
        elif size == 0:
            size = total - pos
        if size < 8 or pos + size > total:
            raise ValueError("malformed box")
        yield kind, pos, pos + size
        pos += size


def _child(data, box: tuple, kind: bytes, skip: int = 0) -> tuple | None:
    _, start, header, end = box
    for child in _boxes(data, start + header + skip, end):
        if child[0] == kind:
            return child
    return None


def _video_track(moov: bytes | bytearray) -> list[tuple] | None:
    """The chain moov > trak > mdia > minf > stbl > stsd > sample entry of the first video
    track, as boxes of :func:`_boxes`; None if there is none."""
    root = (b"moov", 0, _boxes_header(moov), len(moov))
    for trak in _boxes(moov, root[2], root[3]):
        if trak[0] != b"trak":
            continue
        mdia = _child(moov, trak, b"mdia")
        hdlr = mdia and _child(moov, mdia, b"hdlr")
        if not hdlr or moov[hdlr[1] + hdlr[2] + 8 : hdlr[1] + hdlr[2] + 12] != b"vide":
            continue
        minf = _child(moov, mdia, b"minf")
        stbl = minf and _child(moov, minf, b"stbl")
        stsd = stbl and _child(moov, stbl, b"stsd")
        if not stsd:
            return None
        entries = list(_boxes(moov, stsd[1] + stsd[2] + _STSD_FIELDS, stsd[3]))
        if not entries:
            return None
        return [root, trak, mdia, minf, stbl, stsd, entries[0]]
    return None


def _boxes_header(data) -> int:
    return 16 if struct.unpack(">I", data[:4])[0] == 1 else 8


def _read_moov(path: Path) -> tuple[bytes, int, bool] | None:
    """(moov bytes, its offset, whether it is the last box after all media data), or None."""
    with open(path, "rb") as f:
        boxes = list(_top_level(f))
        moovs = [b for b in boxes if b[0] == b"moov"]
        if len(moovs) != 1:
            return None
        _, start, end = moovs[0]
        last = boxes[-1][0] == b"moov" and all(b[2] <= start for b in boxes if b[0] == b"mdat")
        f.seek(start)
        return f.read(end - start), start, last


def read_spherical_boxes(path: str | os.PathLike[str]) -> SphericalBoxes:
    """The spherical-video boxes of an MP4 / MOV file's first video track (empty otherwise).

    Other containers, and files whose boxes cannot be parsed, give an empty result (false).
    """
    path = Path(path)
    if path.suffix.lower() not in SPHERICAL_SUFFIXES:
        return SphericalBoxes()
    return _read_boxes(path)


def _read_boxes(path: Path) -> SphericalBoxes:
    try:
        found = _read_moov(path)
        chain = None if found is None else _video_track(found[0])
    except (OSError, ValueError, struct.error):
        return SphericalBoxes()
    if chain is None:
        return SphericalBoxes()
    moov, trak, entry = found[0], chain[1], chain[-1]
    v1 = None
    for kind, start, header, end in _boxes(moov, trak[1] + trak[2], trak[3]):
        if kind == b"uuid" and moov[start + header : start + header + 16] == SPHERICAL_V1_UUID:
            v1 = bytes(moov[start:end])
    found_v2 = {}
    for name in (b"sv3d", b"st3d"):
        box = _child(moov, entry, name, skip=_VISUAL_ENTRY_FIELDS)
        found_v2[name] = None if box is None else bytes(moov[box[1] : box[3]])
    return SphericalBoxes(v1, found_v2[b"sv3d"], found_v2[b"st3d"])


def _insert(moov: bytearray, chain: list[tuple], at: int, payload: bytes) -> None:
    moov[at:at] = payload
    for _, start, header, _ in chain:
        if header == 16:
            size = struct.unpack(">Q", moov[start + 8 : start + 16])[0] + len(payload)
            moov[start + 8 : start + 16] = struct.pack(">Q", size)
        else:
            size = struct.unpack(">I", moov[start : start + 4])[0] + len(payload)
            if size >= 2**32:
                raise ValueError("box too large")
            moov[start : start + 4] = struct.pack(">I", size)


def write_spherical_boxes(path: str | os.PathLike[str], boxes: SphericalBoxes) -> bool:
    """Add spherical-video boxes to the first video track of an MP4 / MOV file, in place (the
    file's name may be a temporary one: the caller knows it is MP4 / MOV).

    Returns:
        True if written; False when the file has no video track, already has such boxes, or
        its ``moov`` box is not the last box after the media data (then nothing is changed).
    """
    path = Path(path)
    if not boxes:
        return False
    try:
        found = _read_moov(path)
        if found is None or not found[2] or _read_boxes(path):
            return False
        moov, offset = bytearray(found[0]), found[1]
        chain = _video_track(moov)
        if chain is None:
            return False
        # V2 boxes go at the end of the sample entry, V1 at the end of the track; the track
        # comes after its sample entry's end, so insert V1 first: the entry does not move.
        if boxes.v1_uuid:
            _insert(moov, chain[:2], chain[1][3], boxes.v1_uuid)
            chain = _video_track(moov)
        v2 = (boxes.sv3d or b"") + (boxes.st3d or b"")
        if v2:
            _insert(moov, chain, chain[-1][3], v2)
        _video_track(moov)  # still parses
    except (OSError, ValueError, struct.error):
        return False
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(moov)
        f.truncate()
    return True


def spherical_v1_box(projection: str = "equirectangular") -> bytes:
    """A Spherical Video V1 ``uuid`` box declaring a monoscopic stitched 360° video."""
    xmp = (
        '<?xml version="1.0"?><rdf:SphericalVideo '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns:GSpherical="http://ns.google.com/videos/1.0/spherical/">'
        "<GSpherical:Spherical>true</GSpherical:Spherical>"
        "<GSpherical:Stitched>true</GSpherical:Stitched>"
        "<GSpherical:StitchingSoftware>pano360</GSpherical:StitchingSoftware>"
        f"<GSpherical:ProjectionType>{projection}</GSpherical:ProjectionType>"
        "</rdf:SphericalVideo>"
    ).encode()
    return struct.pack(">I4s", 8 + 16 + len(xmp), b"uuid") + SPHERICAL_V1_UUID + xmp


def _box(kind: bytes, payload: bytes, full: bool = False) -> bytes:
    body = (b"\0\0\0\0" if full else b"") + payload
    return struct.pack(">I4s", 8 + len(body), kind) + body


def spherical_v2_box() -> bytes:
    """A Spherical Video V2 ``sv3d`` box: equirectangular, full sphere, no rotation."""
    svhd = _box(b"svhd", b"pano360\0", full=True)
    prhd = _box(b"prhd", struct.pack(">iii", 0, 0, 0), full=True)
    equi = _box(b"equi", struct.pack(">IIII", 0, 0, 0, 0), full=True)
    return _box(b"sv3d", svhd + _box(b"proj", prhd + equi))
