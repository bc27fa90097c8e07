"""The CLI run as a user runs it (a subprocess): 360° metadata (GPano XMP, EXIF) survives `faces
--blur` and `project rotate`, 16-bit PNG stays 16-bit through `project`, and --max-pixels."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import ExifTags, Image

from pano360.io import read_image, write_image

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "panorama.jpg"
GPANO = "http://ns.google.com/photos/1.0/panorama/"


def pano360(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pano360", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def save_theta_jpeg(path: Path, erp: torch.Tensor, heading: float = 12.5) -> None:
    """``erp`` saved as a RICOH THETA saves a photo: GPano XMP and EXIF (make, model, date, GPS)."""
    h, w = erp.shape[-2:]
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
        "PosePitchDegrees": "0.0",
        "PoseRollDegrees": "0.0",
    }
    attrs = " ".join(f'GPano:{k}="{v}"' for k, v in fields.items())
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:GPano="{GPANO}" {attrs}/></rdf:RDF></x:xmpmeta>'
    ).encode()
    exif = Image.Exif()
    exif[ExifTags.Base.Make], exif[ExifTags.Base.Model] = "RICOH", "RICOH THETA Z1"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2024:05:01 10:20:30"
    exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] = "N"
    pixels = (erp[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    Image.fromarray(pixels).save(path, quality=95, exif=exif, xmp=xmp)


def model_and_gps(path: Path) -> tuple[str, str]:
    with Image.open(path) as im:
        exif = im.getexif()
        return exif[ExifTags.Base.Model], exif.get_ifd(ExifTags.IFD.GPSInfo)[1]


@pytest.fixture(scope="module")
def theta(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("theta")
    small = F.interpolate(read_image(EXAMPLE), size=(256, 512), mode="area")
    save_theta_jpeg(folder / "theta.jpg", small)
    return folder / "theta.jpg"


def test_faces_blur_keeps_gpano_and_exif(theta, tmp_path):
    args = ("faces", str(theta), "--blur", "--strategy", "direct", "--out", "out")
    proc = pano360(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    _, source = read_image(theta, with_info=True)
    assert source.gpano["ProjectionType"] == "equirectangular"
    for name in ("theta_blurred.jpg", "theta_faces.jpg"):
        _, info = read_image(tmp_path / "out" / name, with_info=True)
        assert info.gpano == source.gpano, name
        assert model_and_gps(tmp_path / "out" / name) == ("RICOH THETA Z1", "N")


def test_rotate_yaw_turns_the_heading_and_keeps_the_rest(theta, tmp_path):
    proc = pano360("project", "rotate", str(theta), "turned.jpg", "--yaw", "30", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    _, source = read_image(theta, with_info=True)
    _, info = read_image(tmp_path / "turned.jpg", with_info=True)
    assert info.gpano == {**source.gpano, "PoseHeadingDegrees": "42.5"}
    assert model_and_gps(tmp_path / "turned.jpg") == ("RICOH THETA Z1", "N")


def test_rotate_pitch_drops_only_the_pose(theta, tmp_path):
    proc = pano360("project", "rotate", str(theta), "tilted.jpg", "--pitch", "10", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    _, source = read_image(theta, with_info=True)
    _, info = read_image(tmp_path / "tilted.jpg", with_info=True)
    pose = {"PoseHeadingDegrees", "PosePitchDegrees", "PoseRollDegrees"}
    assert info.gpano == {k: v for k, v in source.gpano.items() if k not in pose}


def _png16(path: Path, h: int = 32) -> np.ndarray:
    """A smooth 16-bit RGB ERP whose low bytes matter, written by pano360 (tested in tests/io)."""
    y, x = np.mgrid[0:h, 0 : 2 * h] / h
    rgb = np.stack([0.5 + 0.4 * np.sin(3 * x + k + y) for k in range(3)])
    write_image(path, torch.from_numpy(rgb).float()[None], bit_depth=16)
    return rgb


def _is_16_bit(path: Path) -> bool:
    img, info = read_image(path, with_info=True)
    samples = (img * 65535).round().long()
    return info.bit_depth == 16 and bool((samples % 257 != 0).any())


@pytest.mark.parametrize(
    "args, outputs",
    [
        (["e2p", "deep.png", "view.png", "--size", "40x30"], ["view.png"]),
        (["rotate", "deep.png", "turned.tif", "--yaw", "40"], ["turned.tif"]),
        (["e2c", "deep.png", "cube.png", "--face-w", "16"], ["cube.png"]),
    ],
    ids=["e2p", "rotate", "e2c"],
)
def test_16_bit_png_stays_16_bit(tmp_path, args, outputs):
    _png16(tmp_path / "deep.png")
    proc = pano360("project", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in outputs:
        assert _is_16_bit(tmp_path / name), name
    if args[0] == "e2c":
        proc = pano360("project", "c2e", "cube.png", "back.png", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert _is_16_bit(tmp_path / "back.png")


def test_16_bit_to_jpeg_is_8_bit_without_complaint(tmp_path):
    _png16(tmp_path / "deep.png")
    proc = pano360("project", "e2p", "deep.png", "view.jpg", "--size", "40x30", cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert read_image(tmp_path / "view.jpg", with_info=True)[1].bit_depth == 8


def test_max_pixels_refuses_a_20000x10000_image_by_default(tmp_path):
    Image.new("1", (20_000, 10_000)).save(tmp_path / "big.png")
    proc = pano360("project", "rotate", "big.png", "out.png", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Warning" not in proc.stderr
    assert proc.stderr.startswith("pano360: error: image 'big.png' is 20000x10000 = 200000000")
    assert "(--max-pixels on the command line)" in proc.stderr
    assert not (tmp_path / "out.png").exists()


def test_max_pixels_lets_a_20000x10000_image_in(tmp_path):
    Image.new("1", (20_000, 10_000)).save(tmp_path / "big.png")
    proc = pano360(
        "project", "e2p", "big.png", "view.png", "--size", "32x24",
        "--max-pixels", "200000000", cwd=tmp_path,
    )  # fmt: skip
    assert (proc.returncode, proc.stderr) == (0, "")
    assert read_image(tmp_path / "view.png").shape == (1, 1, 24, 32)


def test_the_cli_max_pixels_default_is_the_library_s():
    # Written twice so that `--help` needs no torch import; one value.
    from pano360.cli._options import MAX_PIXELS_DEFAULT
    from pano360.io import DEFAULT_MAX_PIXELS

    assert MAX_PIXELS_DEFAULT == DEFAULT_MAX_PIXELS
