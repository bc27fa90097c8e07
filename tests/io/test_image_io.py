"""pano360.io: round trips per format, pixel modes, every documented error, atomic writes."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

import pano360.io._image as image_module
from pano360.errors import ImageIOError, OutputExistsError, ShapeError, ValueRangeError
from pano360.io import IMAGE_EXTENSIONS, check_output_path, read_image, write_image, write_images
from pano360.io._deep import write_png16
from pano360.testing import file_listing


def _image(c: int, h: int = 12, w: int = 24, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, c, h, w, generator=g)


def _smooth(c: int, h: int = 32, w: int = 64) -> torch.Tensor:
    """A smooth image (JPEG's best case), so its error bound is meaningful."""
    y = torch.linspace(0, 1, h)[:, None]
    x = torch.linspace(0, 1, w)[None, :]
    chans = [0.5 + 0.4 * torch.sin(3 * x + 2 * y + k) for k in range(c)]
    return torch.stack(chans)[None]


def _quantised(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round() / 255


def _png16(path, array: np.ndarray) -> None:
    """Write a 16-bit PNG by hand (Pillow cannot write 16-bit colour)."""
    h, w, c = array.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header))
        f.write(chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".png", ".tif", ".tiff", ".PNG"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_lossless_round_trip_is_exact_to_8_bits(tmp_path, ext, channels):
    img = _image(channels)
    path = tmp_path / f"img{ext}"
    write_image(path, img)
    back = read_image(path)
    assert back.shape == img.shape and back.dtype == torch.float32
    torch.testing.assert_close(back, _quantised(img), atol=1e-6, rtol=0)


@pytest.mark.parametrize("channels", [3, 4])
def test_webp_quality_100_is_lossless(tmp_path, channels):
    img = _image(channels)
    if channels == 4:
        img[:, 3, :4] = 0  # fully transparent pixels keep their colour too
    write_image(tmp_path / "img.webp", img, quality=100)
    torch.testing.assert_close(
        read_image(tmp_path / "img.webp"), _quantised(img), atol=1e-6, rtol=0
    )


def test_webp_grayscale_reads_back_as_three_equal_channels(tmp_path):
    img = _image(1)
    write_image(tmp_path / "g.webp", img, quality=100)
    back = read_image(tmp_path / "g.webp")
    assert back.shape == (1, 3, *img.shape[-2:])
    torch.testing.assert_close(back, _quantised(img).expand_as(back), atol=1e-6, rtol=0)


@pytest.mark.parametrize("ext", [".jpg", ".jpeg", ".JPG", ".webp"])
@pytest.mark.parametrize("channels", [1, 3])
def test_lossy_round_trip_is_close(tmp_path, ext, channels):
    img = _smooth(channels)
    write_image(tmp_path / f"img{ext}", img)
    back = read_image(tmp_path / f"img{ext}")
    assert back.shape[-2:] == img.shape[-2:]
    assert (back - img).abs().mean() < 0.02


def test_jpeg_quality_changes_the_file(tmp_path):
    img = _image(3, 64, 128)
    write_image(tmp_path / "lo.jpg", img, quality=10)
    write_image(tmp_path / "hi.jpg", img, quality=95)
    assert (tmp_path / "lo.jpg").stat().st_size < (tmp_path / "hi.jpg").stat().st_size


def test_write_accepts_chw_clamps_and_detaches(tmp_path):
    img = torch.tensor([[[-1.0, 0.0, 0.5, 2.0]]], requires_grad=True)  # (1, 1, 4)
    write_image(tmp_path / "c.png", img)
    back = read_image(tmp_path / "c.png")
    assert back.shape == (1, 1, 1, 4)
    torch.testing.assert_close(back.flatten(), torch.tensor([0.0, 0.0, 128 / 255, 1.0]))


def test_write_float64_image(tmp_path):
    img = _image(3).double()
    write_image(tmp_path / "d.png", img)
    torch.testing.assert_close(read_image(tmp_path / "d.png"), _quantised(img).float())


# --- pixel modes on reading --------------------------------------------------------------------


def test_read_grayscale_gives_one_channel(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(4, 6) * 10
    Image.fromarray(a).save(tmp_path / "g.png")
    back = read_image(tmp_path / "g.png")
    assert back.shape == (1, 1, 4, 6)
    torch.testing.assert_close(back[0, 0], torch.from_numpy(a).float() / 255)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_read_16_bit_grayscale_scales_by_65535(tmp_path, ext):
    # Steps of 1365 and the value 1 are not multiples of 257: 8-bit precision would fail.
    a = (np.arange(48).reshape(6, 8) * 1365).astype(np.uint16)
    a[0, 0], a[-1, -1] = 1, 65535
    Image.fromarray(a).save(tmp_path / f"g16{ext}")
    back = read_image(tmp_path / f"g16{ext}")
    assert back.shape == (1, 1, 6, 8) and back.dtype == torch.float32
    torch.testing.assert_close(back[0, 0], torch.from_numpy(a.astype(np.float32) / 65535))
    assert back[0, 0, -1, -1] == 1.0


@pytest.mark.parametrize("channels", [3, 4])
def test_read_16_bit_colour_png_at_16_bit_precision(tmp_path, channels):
    # Values whose low byte matters (1, 1000, 12345): 8-bit precision would be off by up to 1/255.
    a = np.array([[[0, 256, 65535, 1], [1000, 40000, 12345, 65534]]], dtype=np.uint16)
    _png16(tmp_path / "rgb16.png", a[:, :, :channels])
    back, info = read_image(tmp_path / "rgb16.png", with_info=True)
    assert back.shape == (1, channels, 1, 2) and info.bit_depth == 16
    expected = torch.from_numpy(a[:, :, :channels].astype(np.float32) / 65535)
    torch.testing.assert_close(back, expected.permute(2, 0, 1)[None], atol=0, rtol=0)


def test_read_16_bit_grey_alpha_png_at_16_bit_precision_as_rgba(tmp_path):
    # As 8-bit grey + alpha, it reads as RGBA (grey in the three colour planes), here without
    # losing the low bytes (Pillow alone keeps only the high ones). Unfiltered and Up-filtered
    # rows (the hand-written file and write_png16) both decode.
    rng = np.random.default_rng(0)
    a = rng.integers(0, 65536, size=(5, 7, 2), dtype=np.uint16)
    a[0, 0] = (1, 65534)
    _png16(tmp_path / "la16.png", a)
    with open(tmp_path / "la16_up.png", "wb") as f:
        write_png16(f, a)
    expected = torch.from_numpy(a[:, :, [0, 0, 0, 1]].astype(np.float32) / 65535)
    for name in ("la16.png", "la16_up.png"):
        back, info = read_image(tmp_path / name, with_info=True)
        assert back.shape == (1, 4, 5, 7) and info.bit_depth == 16
        torch.testing.assert_close(back, expected.permute(2, 0, 1)[None], atol=0, rtol=0)


def test_read_palette_without_transparency_gives_rgb(tmp_path):
    im = Image.new("P", (4, 2))
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    im.putpixel((1, 0), 1)
    im.save(tmp_path / "p.png")
    back = read_image(tmp_path / "p.png")
    assert back.shape == (1, 3, 2, 4)
    torch.testing.assert_close(back[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(back[0, :, 0, 1], torch.tensor([0.0, 1.0, 0.0]))


def test_read_palette_with_transparency_gives_rgba(tmp_path):
    im = Image.new("P", (4, 2))
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    im.putpixel((1, 0), 1)
    im.save(tmp_path / "pt.png", transparency=0)
    back = read_image(tmp_path / "pt.png")
    assert back.shape == (1, 4, 2, 4)
    assert back[0, 3, 0, 0] == 0 and back[0, 3, 0, 1] == 1


def test_read_gray_alpha_gives_rgba_and_bilevel_gives_gray(tmp_path):
    Image.new("LA", (3, 2), (100, 50)).save(tmp_path / "la.png")
    back = read_image(tmp_path / "la.png")
    assert back.shape == (1, 4, 2, 3)
    torch.testing.assert_close(back[0, :, 0, 0], torch.tensor([100, 100, 100, 50]) / 255)
    Image.new("1", (3, 2), 1).save(tmp_path / "b.png")
    back = read_image(tmp_path / "b.png")
    assert back.shape == (1, 1, 2, 3) and bool((back == 1).all())


def test_read_cmyk_jpeg_gives_rgb(tmp_path):
    inks = {(255, 0, 0, 0): (0, 1, 1), (0, 255, 0, 0): (1, 0, 1), (0, 0, 255, 0): (1, 1, 0),
            (0, 0, 0, 255): (0, 0, 0), (0, 0, 0, 0): (1, 1, 1)}  # C, M, Y, K, paper  # fmt: skip
    img = Image.new("CMYK", (16 * len(inks), 16))
    for i, ink in enumerate(inks):
        img.paste(ink, (16 * i, 0, 16 * (i + 1), 16))
    img.save(tmp_path / "c.jpg", quality=95)
    back = read_image(tmp_path / "c.jpg")
    assert back.shape == (1, 3, 16, 16 * len(inks))
    for i, rgb in enumerate(inks.values()):
        block = back[0, :, 4:12, 16 * i + 4 : 16 * i + 12].mean(dim=(1, 2))
        torch.testing.assert_close(block, torch.tensor(rgb, dtype=block.dtype), atol=0.05, rtol=0)


def test_exif_orientation_is_not_applied(tmp_path):
    a = np.zeros((10, 20, 3), dtype=np.uint8)
    a[:, :10] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(a).save(tmp_path / "o.jpg", exif=exif, quality=95)
    back = read_image(tmp_path / "o.jpg")
    assert back.shape == (1, 3, 10, 20)  # as stored: not turned to 20 x 10
    assert back[0, :, :, :8].mean() > 0.9 and back[0, :, :, 12:].mean() < 0.1


# --- errors on reading -------------------------------------------------------------------------


def test_read_missing_file(tmp_path):
    with pytest.raises(ImageIOError, match=r"cannot read image '.*nope\.png': no such file"):
        read_image(tmp_path / "nope.png")


def test_read_directory(tmp_path):
    with pytest.raises(ImageIOError, match=r"cannot read image '.*': it is a directory"):
        read_image(tmp_path)


def test_read_not_an_image(tmp_path):
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(ImageIOError, match=r"'.*text\.png': not an image Pillow can decode"):
        read_image(tmp_path / "text.png")


def test_read_truncated_image(tmp_path):
    write_image(tmp_path / "full.png", _image(3, 64, 128))
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageIOError, match=r"cannot read image '.*cut\.png'"):
        read_image(tmp_path / "cut.png")


def test_read_float_tiff_is_refused(tmp_path):
    Image.new("F", (4, 2), 0.5).save(tmp_path / "f.tif")
    with pytest.raises(ImageIOError, match=r"'.*f\.tif': unsupported pixel format 'F'"):
        read_image(tmp_path / "f.tif")


def test_read_errors_are_oserrors_and_pano360_errors(tmp_path):
    with pytest.raises(OSError):
        read_image(tmp_path / "nope.png")


# --- errors on writing -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["out.bmp", "out.gif", "out"])
def test_write_unknown_extension_lists_supported(tmp_path, name):
    with pytest.raises(ImageIOError, match=r"'.*out.*'.*supported: \.jpeg, \.jpg, \.png"):
        write_image(tmp_path / name, _image(3))
    assert file_listing(tmp_path) == []
    assert IMAGE_EXTENSIONS == (".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")


def test_write_rgba_to_jpeg_names_the_file(tmp_path):
    with pytest.raises(ImageIOError, match=r"'.*a\.jpg': JPEG cannot store an alpha channel"):
        write_image(tmp_path / "a.jpg", _image(4))
    assert file_listing(tmp_path) == []


@pytest.mark.parametrize("shape", [(2, 3, 4, 8), (1, 2, 4, 8), (4, 8), (3, 0, 8), (1, 1, 3, 4, 8)])
def test_write_bad_shape(tmp_path, shape):
    with pytest.raises(ShapeError, match=r"must be \(1, C, H, W\) or \(C, H, W\) with C in"):
        write_image(tmp_path / "s.png", torch.zeros(shape))


def test_write_needs_a_float_tensor(tmp_path):
    with pytest.raises(TypeError, match=r"must be a torch\.Tensor, got ndarray"):
        write_image(tmp_path / "t.png", np.zeros((3, 4, 8)))
    with pytest.raises(
        TypeError, match=r"must be a floating-point tensor in \[0, 1\], got torch.uint8"
    ):
        write_image(tmp_path / "t.png", torch.zeros(3, 4, 8, dtype=torch.uint8))


def test_write_nan_is_refused(tmp_path):
    img = _image(3)
    img[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueRangeError, match="contains NaN"):
        write_image(tmp_path / "n.png", img)
    assert file_listing(tmp_path) == []


@pytest.mark.parametrize("quality", [0, 101, 9.5, True])
def test_write_bad_quality(tmp_path, quality):
    with pytest.raises(ValueRangeError, match=r"quality must be an integer in \[1, 100\]"):
        write_image(tmp_path / "q.jpg", _image(3), quality=quality)


def test_write_too_wide_for_webp(tmp_path):
    with pytest.raises(ImageIOError, match=r"WEBP images are at most 16383 pixels on a side"):
        write_image(tmp_path / "w.webp", torch.zeros(1, 1, 16384))
    assert file_listing(tmp_path) == []


def test_write_missing_directory(tmp_path):
    with pytest.raises(ImageIOError, match=r"directory '.*nodir' does not exist"):
        write_image(tmp_path / "nodir" / "x.png", _image(3))


def test_write_parent_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ImageIOError, match=r"'.*file' is not a directory"):
        write_image(tmp_path / "file" / "x.png", _image(3))


def test_write_onto_a_directory(tmp_path):
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ImageIOError, match=r"'.*d\.png': it is a directory"):
        write_image(tmp_path / "d.png", _image(3), overwrite=True)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write anywhere"
)
def test_write_unwritable_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ImageIOError, match=r"directory '.*locked' is not writable"):
            write_image(locked / "x.png", _image(3))
    finally:
        locked.chmod(0o700)


def test_write_unwritable_directory_at_open_time(tmp_path, monkeypatch):
    # Works as root too: the directory passes the access check but creating the file fails.
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(image_module.os, "open", refuse)
    with pytest.raises(ImageIOError, match=r"cannot write image '.*x\.png': permission denied"):
        write_image(tmp_path / "x.png", _image(3))
    assert file_listing(tmp_path) == []


# --- overwrite policy --------------------------------------------------------------------------


def test_existing_file_is_not_overwritten_with_overwrite_false(tmp_path):
    (tmp_path / "x.png").write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match=r"'.*x\.png' already exists; pass overwrite=True"):
        write_image(tmp_path / "x.png", _image(3), overwrite=False)
    assert (tmp_path / "x.png").read_bytes() == b"precious"
    assert file_listing(tmp_path) == ["x.png"]
    with pytest.raises(OutputExistsError):
        check_output_path(tmp_path / "x.png")


def test_overwrite_replaces_and_keeps_permissions(tmp_path):
    (tmp_path / "x.png").write_bytes(b"old")
    (tmp_path / "x.png").chmod(0o640)
    img = _image(3)
    write_image(tmp_path / "x.png", img, overwrite=True)
    torch.testing.assert_close(read_image(tmp_path / "x.png"), _quantised(img))
    assert (tmp_path / "x.png").stat().st_mode & 0o777 == 0o640
    assert file_listing(tmp_path) == ["x.png"]


def test_new_file_gets_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    write_image(tmp_path / "x.png", _image(3))
    assert (tmp_path / "x.png").stat().st_mode & 0o777 == 0o666 & ~umask


def test_file_appearing_during_the_write_is_not_replaced(tmp_path, monkeypatch):
    encode = image_module._encode_to_temporary

    def encode_then_race(path, *args):
        tmp = encode(path, *args)
        path.write_bytes(b"someone else's")
        return tmp

    monkeypatch.setattr(image_module, "_encode_to_temporary", encode_then_race)
    with pytest.raises(OutputExistsError, match="already exists"):
        write_image(tmp_path / "x.png", _image(3), overwrite=False)
    assert (tmp_path / "x.png").read_bytes() == b"someone else's"
    assert file_listing(tmp_path) == ["x.png"]


# --- atomicity ---------------------------------------------------------------------------------


def _failing_save(exc: BaseException):
    def save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG partial data")  # some bytes reach the disk, then it breaks
        raise exc

    return save


def test_failure_mid_write_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(Image.Image, "save", _failing_save(OSError(28, "No space left on device")))
    with pytest.raises(ImageIOError, match=r"cannot write image '.*x\.png': no space left"):
        write_image(tmp_path / "x.png", _image(3))
    assert file_listing(tmp_path) == []


def test_failure_mid_overwrite_keeps_the_old_file(tmp_path, monkeypatch):
    (tmp_path / "x.png").write_bytes(b"old")
    monkeypatch.setattr(Image.Image, "save", _failing_save(ValueError("encoder error")))
    with pytest.raises(ImageIOError, match="encoder error"):
        write_image(tmp_path / "x.png", _image(3), overwrite=True)
    assert (tmp_path / "x.png").read_bytes() == b"old"
    assert file_listing(tmp_path) == ["x.png"]


def test_interrupt_mid_write_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(Image.Image, "save", _failing_save(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "x.png", _image(3))
    assert file_listing(tmp_path) == []


def test_failed_rename_leaves_no_temporary_file(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(image_module.os, "replace", broken)
    with pytest.raises(ImageIOError, match="input/output error"):
        write_image(tmp_path / "x.png", _image(3), overwrite=True)
    assert file_listing(tmp_path) == []


def test_write_images_is_all_or_nothing(tmp_path, monkeypatch):
    good, bad = _image(3), _image(4)
    with pytest.raises(ImageIOError, match="JPEG cannot store an alpha channel"):
        write_images({tmp_path / "a.png": good, tmp_path / "b.jpg": bad})
    assert file_listing(tmp_path) == []

    calls = []
    real_save = Image.Image.save

    def second_save_fails(self, fp, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            _failing_save(OSError(28, "No space left on device"))(self, fp)
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", second_save_fails)
    with pytest.raises(ImageIOError, match=r"'.*b\.png': no space left"):
        write_images({tmp_path / "a.png": good, tmp_path / "b.png": good})
    assert file_listing(tmp_path) == []


def test_write_images_refuses_an_existing_target_before_writing(tmp_path):
    (tmp_path / "b.png").write_bytes(b"old")
    with pytest.raises(OutputExistsError, match=r"b\.png"):
        write_images(
            {tmp_path / "a.png": _image(3), tmp_path / "b.png": _image(3)}, overwrite=False
        )
    assert file_listing(tmp_path) == ["b.png"]


def test_write_images_refuses_duplicate_paths(tmp_path):
    with pytest.raises(ImageIOError, match="two outputs have the same path"):
        write_images({tmp_path / "a.png": _image(3), str(tmp_path / "a.png"): _image(3)})
    assert file_listing(tmp_path) == []


def test_write_images_writes_text_beside_images_all_or_nothing(tmp_path):
    img = torch.rand(1, 3, 8, 16)
    report = tmp_path / "report.json"
    write_images({tmp_path / "a.png": img, report: '{"faces": []}'})
    assert report.read_text() == '{"faces": []}' and (tmp_path / "a.png").exists()
    # An image that cannot be encoded: neither file appears.
    with pytest.raises(ImageIOError, match="alpha"):
        write_images({tmp_path / "b.json": b"{}", tmp_path / "b.jpg": torch.rand(1, 4, 8, 16)})
    assert not (tmp_path / "b.json").exists() and not (tmp_path / "b.jpg").exists()
