"""pano360.io as the docs use it: 360° metadata (GPano XMP, EXIF) kept, 16 bits kept, the pixel
limit (max_pixels), and the overwrite default of the README's quick start."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from PIL import ExifTags, Image

from pano360.errors import ImageIOError, OutputExistsError, ValueRangeError
from pano360.io import (
    DEFAULT_MAX_PIXELS,
    ImageInfo,
    read_image,
    rotate_metadata,
    write_image,
    write_images,
)

GPANO = "http://ns.google.com/photos/1.0/panorama/"


def theta_xmp(w: int, h: int, heading: float = 12.5, pitch: float = 0.0) -> bytes:
    """The GPano packet a RICOH THETA writes (attribute form), for a w x h full panorama."""
    fields = {
        "ProjectionType": "equirectangular",
        "UsePanoramaViewer": "True",
        "CroppedAreaImageWidthPixels": w,
        "CroppedAreaImageHeightPixels": h,
        "FullPanoWidthPixels": w,
        "FullPanoHeightPixels": h,
        "CroppedAreaLeftPixels": 0,
        "CroppedAreaTopPixels": 0,
        "PoseHeadingDegrees": f"{heading:.1f}",
        "PosePitchDegrees": f"{pitch:.1f}",
        "PoseRollDegrees": "0.0",
        "InitialViewHeadingDegrees": 90,
    }
    attrs = " ".join(f'GPano:{k}="{v}"' for k, v in fields.items())
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:GPano="{GPANO}" {attrs}/>'
        '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


def theta_exif(w: int, h: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "RICOH"
    exif[ExifTags.Base.Model] = "RICOH THETA Z1"
    exif[ExifTags.Base.Orientation] = 1
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.DateTimeOriginal] = "2024:05:01 10:20:30"
    sub[ExifTags.Base.ExifImageWidth] = w
    sub[ExifTags.Base.ExifImageHeight] = h
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (35.0, 40.0, 12.0)
    return exif


def make_theta_jpeg(path, h: int = 32, w: int = 64) -> np.ndarray:
    pixels = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(
        path, quality=95, exif=theta_exif(w, h), xmp=theta_xmp(w, h), icc_profile=b"fake-icc"
    )
    return pixels


def _exif(path) -> Image.Exif:
    with Image.open(path) as im:
        exif = im.getexif()
        exif.get_ifd(ExifTags.IFD.Exif)
        exif.get_ifd(ExifTags.IFD.GPSInfo)
        return exif


# --- metadata ----------------------------------------------------------------------------------


def test_read_image_with_info_gives_gpano_exif_and_icc(tmp_path):
    make_theta_jpeg(tmp_path / "theta.jpg")
    erp, info = read_image(tmp_path / "theta.jpg", with_info=True)
    assert erp.shape == (1, 3, 32, 64)
    assert (info.format, info.bit_depth, info.icc_profile) == ("JPEG", 8, b"fake-icc")
    assert info.gpano["ProjectionType"] == "equirectangular"
    assert info.gpano["FullPanoWidthPixels"] == "64"
    assert info.gpano["PoseHeadingDegrees"] == "12.5"
    assert info.exif is not None and b"RICOH THETA Z1" in info.exif
    assert torch.equal(read_image(tmp_path / "theta.jpg"), erp)  # the tensor alone, as before


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".tif"])
def test_metadata_is_kept_in_every_format(tmp_path, ext):
    make_theta_jpeg(tmp_path / "theta.jpg")
    erp, info = read_image(tmp_path / "theta.jpg", with_info=True)
    out = tmp_path / f"blurred{ext}"
    write_image(out, erp * 0.5, metadata=info)
    _, back = read_image(out, with_info=True)
    assert back.gpano == info.gpano
    assert back.icc_profile == b"fake-icc"
    exif = _exif(out)
    assert exif[ExifTags.Base.Model] == "RICOH THETA Z1"
    assert exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] == "2024:05:01 10:20:30"
    assert exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] == "N"
    assert exif[ExifTags.Base.Orientation] == 1


def test_without_metadata_nothing_is_copied(tmp_path):
    make_theta_jpeg(tmp_path / "theta.jpg")
    erp = read_image(tmp_path / "theta.jpg")
    write_image(tmp_path / "plain.jpg", erp)
    _, info = read_image(tmp_path / "plain.jpg", with_info=True)
    assert (info.xmp, info.exif, info.icc_profile) == (None, None, None)


def test_exif_pixel_size_follows_the_written_image(tmp_path):
    make_theta_jpeg(tmp_path / "theta.jpg")
    _, info = read_image(tmp_path / "theta.jpg", with_info=True)
    write_image(tmp_path / "half.jpg", torch.rand(1, 3, 16, 32), metadata=info)
    sub = _exif(tmp_path / "half.jpg").get_ifd(ExifTags.IFD.Exif)
    assert (sub[ExifTags.Base.ExifImageWidth], sub[ExifTags.Base.ExifImageHeight]) == (32, 16)


def test_tiff_input_exif_loses_its_layout_tags(tmp_path):
    # A TIFF's own IFD holds its strips and sizes; only the scene's tags travel to the output.
    Image.new("RGB", (8, 4)).save(tmp_path / "a.tif", exif=theta_exif(8, 4))
    _, info = read_image(tmp_path / "a.tif", with_info=True)
    parsed = Image.Exif()
    parsed.load(info.exif)
    assert parsed[ExifTags.Base.Model] == "RICOH THETA Z1"
    assert not {256, 257, 273, 279} & set(parsed)
    write_image(tmp_path / "b.jpg", torch.rand(1, 3, 4, 8), metadata=info)
    assert _exif(tmp_path / "b.jpg")[ExifTags.Base.Make] == "RICOH"


def test_metadata_must_be_an_image_info(tmp_path):
    with pytest.raises(TypeError, match=r"metadata must be an ImageInfo.*got dict"):
        write_image(tmp_path / "x.jpg", torch.rand(1, 3, 4, 8), metadata={"xmp": b""})


def test_rotate_metadata_yaw_turns_the_heading():
    info = ImageInfo("JPEG", xmp=theta_xmp(64, 32, heading=350.0))
    turned = rotate_metadata(info, yaw=math.radians(30))
    assert turned.gpano["PoseHeadingDegrees"] == "20"
    assert turned.gpano["PosePitchDegrees"] == "0.0"
    assert "InitialViewHeadingDegrees" not in turned.gpano
    assert turned.gpano["ProjectionType"] == "equirectangular"
    back = rotate_metadata(turned, yaw=math.radians(-30))
    assert back.gpano["PoseHeadingDegrees"] == "350"


@pytest.mark.parametrize(
    "angles, pose_pitch",
    [((0.0, 0.2, 0.0), 0.0), ((0.0, 0.0, -0.1), 0.0), ((0.5, 0.0, 0.0), 10.0)],
    ids=["pitch", "roll", "yaw-of-a-tilted-pose"],
)
def test_rotate_metadata_drops_the_pose_it_cannot_update(angles, pose_pitch):
    info = ImageInfo("JPEG", xmp=theta_xmp(64, 32, pitch=pose_pitch))
    gpano = rotate_metadata(info, *angles).gpano
    assert not {"PoseHeadingDegrees", "PosePitchDegrees", "PoseRollDegrees"} & set(gpano)
    assert gpano["FullPanoWidthPixels"] == "64" and gpano["UsePanoramaViewer"] == "True"


def test_rotate_metadata_element_form_and_no_rotation():
    xmp = (
        f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description xmlns:GPano="{GPANO}">'
        "<GPano:PoseHeadingDegrees>100</GPano:PoseHeadingDegrees>"
        "<GPano:ProjectionType>equirectangular</GPano:ProjectionType>"
        "</rdf:Description></x:xmpmeta>"
    ).encode()
    info = ImageInfo("JPEG", xmp=xmp)
    assert rotate_metadata(info) is info
    assert rotate_metadata(info, yaw=math.pi).gpano == {
        "PoseHeadingDegrees": "280",
        "ProjectionType": "equirectangular",
    }


# --- bit depth ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".png", ".tif"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_16_bit_round_trip_is_exact(tmp_path, ext, channels):
    a = np.random.default_rng(channels).integers(0, 65536, (channels, 6, 12), dtype=np.int64)
    img = torch.from_numpy(a / 65535.0).float()[None]
    write_image(tmp_path / f"d{ext}", img, bit_depth=16)
    back, info = read_image(tmp_path / f"d{ext}", with_info=True)
    assert info.bit_depth == 16
    assert torch.equal((back * 65535).round().long(), torch.from_numpy(a)[None])


def test_16_bit_tiff_from_another_writer_is_read_exactly(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    a = np.random.default_rng(1).integers(0, 65536, (5, 9, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "t.tif", a, photometric="rgb", compression="zlib")
    back = read_image(tmp_path / "t.tif")
    np.testing.assert_array_equal((back[0] * 65535).round().permute(1, 2, 0).numpy(), a)
    write_image(tmp_path / "u.tif", back, bit_depth=16)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "u.tif"), a)


def test_16_bit_png_keeps_metadata(tmp_path):
    make_theta_jpeg(tmp_path / "theta.jpg")
    _, info = read_image(tmp_path / "theta.jpg", with_info=True)
    write_image(tmp_path / "d.png", torch.rand(1, 3, 32, 64), bit_depth=16, metadata=info)
    _, back = read_image(tmp_path / "d.png", with_info=True)
    assert back.bit_depth == 16 and back.gpano == info.gpano and back.icc_profile == b"fake-icc"
    assert _exif(tmp_path / "d.png")[ExifTags.Base.Model] == "RICOH THETA Z1"


def test_8_bit_files_say_8():
    assert ImageInfo("PNG").bit_depth == 8


@pytest.mark.parametrize("ext", [".jpg", ".webp"])
def test_16_bits_to_an_8_bit_format_is_refused(tmp_path, ext):
    with pytest.raises(ImageIOError, match=r"stores 8 bits per sample; write PNG or TIFF"):
        write_image(tmp_path / f"x{ext}", torch.rand(1, 3, 4, 8), bit_depth=16)


@pytest.mark.parametrize("depth", [12, 32, True])
def test_bad_bit_depth(tmp_path, depth):
    with pytest.raises(ValueRangeError, match=r"bit_depth must be 8 or 16"):
        write_images({tmp_path / "x.png": torch.rand(1, 3, 4, 8)}, bit_depth=depth)


# --- max_pixels --------------------------------------------------------------------------------


def test_max_pixels_refuses_with_a_clear_message(tmp_path):
    write_image(tmp_path / "p.png", torch.rand(1, 3, 8, 16))
    with pytest.raises(
        ImageIOError,
        match=r"'.*p\.png' is 16x8 = 128 pixels, more than max_pixels=100 "
        r"\(--max-pixels on the command line\)",
    ):
        read_image(tmp_path / "p.png", max_pixels=100)
    assert read_image(tmp_path / "p.png", max_pixels=128).shape == (1, 3, 8, 16)


def test_default_limit_refuses_20000_by_10000_before_decoding(tmp_path):
    Image.new("1", (20_000, 10_000)).save(tmp_path / "big.png")
    with pytest.raises(ImageIOError, match=r"20000x10000 = 200000000 pixels, more than max_pix"):
        read_image(tmp_path / "big.png")
    assert DEFAULT_MAX_PIXELS == 16_384 * 8_192


def test_pillow_limit_is_replaced_without_its_warning(tmp_path, monkeypatch):
    # Pillow warns above its limit and refuses above twice it; ours decides instead.
    write_image(tmp_path / "p.png", torch.rand(1, 3, 16, 32))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(tmp_path / "p.png", max_pixels=None).shape == (1, 3, 16, 32)
    assert Image.MAX_IMAGE_PIXELS == 100  # restored for everyone else


@pytest.mark.parametrize("value", [0, -5, 1.5, True])
def test_bad_max_pixels(tmp_path, value):
    with pytest.raises(ValueRangeError, match=r"max_pixels must be a positive integer or None"):
        read_image(tmp_path / "p.png", max_pixels=value)


# --- the README's quick start, run twice -------------------------------------------------------


def test_write_image_replaces_by_default_and_refuses_when_asked(tmp_path):
    for _ in range(2):
        write_image(tmp_path / "view.jpg", torch.rand(1, 3, 8, 16))
    with pytest.raises(OutputExistsError, match=r"already exists; pass overwrite=True"):
        write_image(tmp_path / "view.jpg", torch.rand(1, 3, 8, 16), overwrite=False)
