"""What an image file says besides its pixels: bit depth, EXIF, XMP (GPano) and ICC profile."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from PIL import Image

__all__ = ["ImageInfo", "rotate_metadata"]

# TIFF tags that describe how the pixels are stored, not the scene: they belong to the file
# being written, so they are never copied from the input (Pillow writes its own).
_LAYOUT_TAGS = frozenset(
    {
        0x00FE, 0x00FF, 0x0100, 0x0101, 0x0102, 0x0103, 0x0106, 0x0107, 0x0108, 0x0109,  # sizes
        0x0111, 0x0115, 0x0116, 0x0117, 0x0118, 0x0119, 0x011C, 0x0122, 0x0123, 0x013D,
        0x0140, 0x0142, 0x0143, 0x0144, 0x0145, 0x0152, 0x0153, 0x0154, 0x0155, 0x015B,
        0x0201, 0x0202, 0x02BC, 0x8773,  # JPEG thumbnail, XMP and ICC (kept separately)
    }
)  # fmt: skip
_EXIF_IFD = 0x8769
# Exif IFD: PixelXDimension, PixelYDimension (the size of the image the EXIF belongs to).
_PIXEL_X, _PIXEL_Y = 0xA002, 0xA003

_GPANO_NS = "http://ns.google.com/photos/1.0/panorama/"
# Fields a rotation of the sphere changes (the pose of the image centre and the initial view).
_POSE_FIELDS = ("PoseHeadingDegrees", "PosePitchDegrees", "PoseRollDegrees")
_VIEW_FIELDS = ("InitialViewHeadingDegrees", "InitialViewPitchDegrees", "InitialViewRollDegrees")


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`read_image` learned about a file besides its pixels.

    Pass it to :func:`write_image` (``metadata=``) to keep EXIF, XMP and the ICC profile in an
    output that still shows the same scene, and ``bit_depth=info.bit_depth`` to keep 16 bits.

    Attributes:
        format: Pillow's name of the file format ("JPEG", "PNG", "TIFF", "WEBP", ...).
        bit_depth: bits per sample as stored: 8, or 16 for 16-bit PNG and TIFF.
        exif: the EXIF block (TIFF structure, as Pillow writes it) without the tags that
            describe the file's pixel layout and without the thumbnail; None when absent.
        xmp: the XMP packet (UTF-8 XML), e.g. the GPano tags of a 360° camera; None when absent.
        icc_profile: the ICC colour profile; None when absent.
    """

    format: str | None
    bit_depth: int = 8
    exif: bytes | None = None
    xmp: bytes | None = None
    icc_profile: bytes | None = None

    @property
    def gpano(self) -> dict[str, str]:
        """The GPano (Google Photo Sphere) fields of the XMP packet, name -> text value."""
        if not self.xmp:
            return {}
        text = self.xmp.decode("utf-8", "replace")
        prefix = _gpano_prefix(text)
        found = {}
        for name, value in re.findall(rf'\b{prefix}:(\w+)\s*=\s*["\']([^"\']*)["\']', text):
            found[name] = value
        for name, value in re.findall(rf"<{prefix}:(\w+)>([^<]*)</{prefix}:\1>", text):
            found[name] = value.strip()
        return found


def _gpano_prefix(text: str) -> str:
    match = re.search(rf"xmlns:(\w+)\s*=\s*[\"']{re.escape(_GPANO_NS)}[\"']", text)
    return re.escape(match[1]) if match else "GPano"


def _set_gpano(xmp: bytes, values: dict[str, str | None]) -> bytes:
    """The XMP packet with GPano fields replaced (str) or removed (None), in either XMP form
    (attribute ``GPano:X="v"`` or element ``<GPano:X>v</GPano:X>``); the rest is kept as is."""
    text = xmp.decode("utf-8")
    prefix = _gpano_prefix(text)
    for name, value in values.items():
        attr = re.compile(rf"(\s){prefix}:{name}\s*=\s*([\"'])[^\"']*\2")
        elem = re.compile(rf"(\s*)<{prefix}:{name}>[^<]*</{prefix}:{name}>")
        if value is None:
            text = attr.sub("", text)
            text = elem.sub("", text)
        else:
            field = f"{prefix}:{name}"
            text = attr.sub(lambda m, f=field, v=value: f"{m[1]}{f}={m[2]}{v}{m[2]}", text)
            text = elem.sub(lambda m, f=field, v=value: f"{m[1]}<{f}>{v}</{f}>", text)
    return text.encode("utf-8")


def rotate_metadata(
    info: ImageInfo, yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0
) -> ImageInfo:
    """Metadata of an ERP panorama re-centred on the camera direction (yaw, pitch, roll).

    The rotation is the one of ``pano360 project rotate`` (the centre of the result shows what
    a camera aimed by yaw, pitch and roll sees), i.e. ``rotate_erp(erp, rotation_matrix(yaw,
    pitch, roll).T)``. Angles in radians.

    GPano fields (the only ones a rotation changes):

    - a pure yaw of an image whose ``PosePitchDegrees`` and ``PoseRollDegrees`` are absent or 0:
      ``PoseHeadingDegrees`` (the compass heading of the image centre), if present, becomes
      ``(heading + degrees(yaw)) mod 360``;
    - any other rotation: ``PoseHeadingDegrees``, ``PosePitchDegrees`` and ``PoseRollDegrees``
      are removed, since the pose of the new centre is no longer described by them;
    - any non-zero rotation removes ``InitialViewHeadingDegrees``, ``InitialViewPitchDegrees``
      and ``InitialViewRollDegrees``, so viewers open on the new centre.

    Everything else (EXIF, the other GPano fields, the ICC profile, the bit depth) is kept.

    Example:
        >>> import math
        >>> xmp = b'<x xmlns:GPano="http://ns.google.com/photos/1.0/panorama/" '
        >>> xmp += b'GPano:PoseHeadingDegrees="350.0"/>'
        >>> rotate_metadata(ImageInfo("JPEG", xmp=xmp), yaw=math.radians(20)).gpano
        {'PoseHeadingDegrees': '10'}
    """
    if not info.xmp or (yaw == 0 and pitch == 0 and roll == 0):
        return info
    gpano = info.gpano
    values: dict[str, str | None] = dict.fromkeys(_VIEW_FIELDS)
    level = all(_as_float(gpano.get(f, "0")) == 0 for f in _POSE_FIELDS[1:])
    if pitch == 0 and roll == 0 and level:
        if "PoseHeadingDegrees" in gpano:
            heading = _as_float(gpano["PoseHeadingDegrees"])
            if math.isfinite(heading):
                new = round((heading + math.degrees(yaw)) % 360.0, 6) % 360.0
                values["PoseHeadingDegrees"] = f"{new:g}"
            else:
                values["PoseHeadingDegrees"] = None
    else:
        values.update(dict.fromkeys(_POSE_FIELDS))
    return dataclasses.replace(info, xmp=_set_gpano(info.xmp, values))


def _as_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def exif_of(im: Image.Image) -> bytes | None:
    """The scene's EXIF of an opened image: no pixel-layout tags, no thumbnail (IFD1)."""
    try:
        exif = im.getexif()
        if not len(exif):
            return None
        exif.get_ifd(_EXIF_IFD)  # parse the Exif IFD now, while the file is open
        for tag in _LAYOUT_TAGS & set(exif):
            del exif[tag]
        # Pillow writes IFD0 and its sub-IFDs (Exif, GPS, Interop), never IFD1: the thumbnail,
        # which would show the unmodified (e.g. not blurred) picture, is dropped here.
        return exif.tobytes()
    except Exception:  # a malformed EXIF block is dropped; the pixels still load
        return None


def exif_for(exif: bytes, width: int, height: int) -> bytes:
    """The EXIF block with PixelXDimension/PixelYDimension set to the written image's size."""
    parsed = Image.Exif()
    parsed.load(exif)
    sub = parsed.get_ifd(_EXIF_IFD)
    if _PIXEL_X in sub or _PIXEL_Y in sub:
        sub[_PIXEL_X], sub[_PIXEL_Y] = width, height
    return parsed.tobytes()


def xmp_of(im: Image.Image) -> bytes | None:
    """The XMP packet of an opened image, whatever the format stores it in."""
    xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    if xmp is None and hasattr(im, "tag_v2"):
        xmp = im.tag_v2.get(0x02BC)  # TIFF XMLPacket
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    if isinstance(xmp, tuple):
        xmp = bytes(xmp)
    return bytes(xmp) if xmp else None
