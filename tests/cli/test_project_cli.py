"""The ``pano360 project`` commands: outputs against the library, and one-line errors (exit 2)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from pano360 import __version__
from pano360.cli import app
from pano360.geometry import (
    CUBE_FACES,
    erp_lonlat_grid,
    erp_to_cubemap,
    erp_to_perspective,
    lonlat_to_xyz,
    perspective_to_erp,
    rotate_erp,
    rotation_matrix,
)
from pano360.io import read_image, write_image
from pano360.testing import file_listing, run_cli

H, W = 64, 128


def _smooth_erp(h: int = H) -> torch.Tensor:
    """A panorama smooth on the sphere (no seam or pole discontinuity), different everywhere."""
    xyz = lonlat_to_xyz(erp_lonlat_grid((h, 2 * h), dtype=torch.float64)).permute(2, 0, 1)
    phase = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)[:, None, None]
    return (0.5 + 0.45 * torch.sin(2 * xyz + 3 * xyz.roll(1, 0) + phase))[None].float()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A directory holding pano.png (an H x W ERP), rgba.png, wide.png (not 2:1), text.png."""
    monkeypatch.chdir(tmp_path)
    write_image("pano.png", _smooth_erp())
    write_image("rgba.png", torch.rand(1, 4, H, W, generator=torch.Generator().manual_seed(0)))
    write_image("wide.png", torch.rand(1, 3, H, W + 10))
    Path("text.png").write_text("not an image")
    return tmp_path


def _quantised(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round() / 255


# --- each command produces what the library computes --------------------------------------------


def test_e2p_equals_erp_to_perspective(workdir):
    code, out, err = run_cli(
        "project", "e2p", "pano.png", "view.png", "--fov", "75", "--yaw", "-120",
        "--pitch", "20", "--roll", "10", "--size", "40x30", "--mode", "bicubic",
    )  # fmt: skip
    assert (code, out, err) == (0, "wrote view.png (40x30)\n", "")
    view = read_image("view.png")
    assert view.shape == (1, 3, 30, 40)
    angles = [math.radians(a) for a in (-120, 20, 10)]
    expected = erp_to_perspective(
        read_image("pano.png"), math.radians(75), (30, 40), *angles, mode="bicubic"
    )
    torch.testing.assert_close(view, _quantised(expected), atol=1 / 255 + 1e-6, rtol=0)


def test_e2p_defaults(workdir):
    assert run_cli("project", "e2p", "pano.png", "view.jpg")[0] == 0
    assert read_image("view.jpg").shape == (1, 3, 600, 800)


def test_negative_angles_as_separate_values(workdir):
    assert run_cli("project", "e2p", "pano.png", "a.png", "--yaw", "-90", "--size", "8x6")[0] == 0
    assert run_cli("project", "e2p", "pano.png", "b.png", "--yaw=-90", "--size", "8x6")[0] == 0
    torch.testing.assert_close(read_image("a.png"), read_image("b.png"))


def test_p2e_with_mask(workdir):
    run_cli("project", "e2p", "pano.png", "view.png", "--size", "32x24", "--yaw", "30")
    code, _, err = run_cli(
        "project", "p2e", "view.png", "back.png", "--yaw", "30", "--size", "128x64",
        "--mask", "mask.png",
    )  # fmt: skip
    assert (code, err) == (0, "")
    erp, mask = read_image("back.png"), read_image("mask.png")
    assert erp.shape == (1, 3, 64, 128) and mask.shape == (1, 1, 64, 128)
    expected_erp, expected_mask = perspective_to_erp(
        read_image("view.png"), math.pi / 2, (64, 128), math.radians(30)
    )
    torch.testing.assert_close(erp, _quantised(expected_erp), atol=1 / 255 + 1e-6, rtol=0)
    torch.testing.assert_close(mask, expected_mask)
    assert bool((erp[:, :, mask[0, 0] == 0] == 0).all())  # uncovered pixels are black


def test_p2e_default_size(workdir):
    assert run_cli("project", "p2e", "pano.png", "back.png")[0] == 0
    assert read_image("back.png").shape[-2:] == (1024, 2048)


@pytest.mark.parametrize(
    ("layout", "face_w", "shape"),
    [("dice", None, (96, 128)), ("dice", 8, (24, 32)), ("horizon", 16, (16, 96))],
)
def test_e2c_single_file(workdir, layout, face_w, shape):
    args = ["--face-w", str(face_w)] if face_w else []
    assert run_cli("project", "e2c", "pano.png", "cube.png", "--layout", layout, *args)[0] == 0
    cube = read_image("cube.png")
    assert cube.shape[-2:] == shape
    expected = erp_to_cubemap(read_image("pano.png"), face_w or H // 2, layout=layout)
    torch.testing.assert_close(cube, _quantised(expected), atol=1 / 255 + 1e-6, rtol=0)


@pytest.mark.parametrize("layout", ["dict", "list"])
def test_e2c_six_files_named_by_face_letter(workdir, layout):
    Path("faces").mkdir()
    code, _, err = run_cli("project", "e2c", "pano.png", "faces/c_{face}.png", "--layout", layout)
    assert (code, err) == (0, "")
    assert sorted(os.listdir("faces")) == sorted(f"c_{f}.png" for f in CUBE_FACES)
    expected = erp_to_cubemap(read_image("pano.png"), H // 2, layout="dict")
    for f in CUBE_FACES:
        face = read_image(f"faces/c_{f}.png")
        torch.testing.assert_close(face, _quantised(expected[f]), atol=1 / 255 + 1e-6, rtol=0)


@pytest.mark.parametrize("layout", ["dice", "horizon", "dict"])
def test_c2e_round_trip(workdir, layout):
    cube = "c_{face}.png" if layout == "dict" else "cube.png"
    assert run_cli("project", "e2c", "pano.png", cube, "--layout", layout)[0] == 0
    code, _, err = run_cli("project", "c2e", cube, "back.png", "--layout", layout)
    assert (code, err) == (0, "")
    back = read_image("back.png")
    assert back.shape == (1, 3, H, W)  # default 4 x face_w by 2 x face_w
    assert (back - read_image("pano.png")).abs().mean() < 0.02


def test_c2e_size(workdir):
    run_cli("project", "e2c", "pano.png", "cube.png", "--face-w", "8")
    assert run_cli("project", "c2e", "cube.png", "back.png", "--size", "40x20")[0] == 0
    assert read_image("back.png").shape[-2:] == (20, 40)


def test_rotate_equals_rotate_erp_with_the_transpose(workdir):
    code, _, err = run_cli(
        "project", "rotate", "pano.png", "turned.png", "--yaw", "70", "--pitch", "30",
        "--roll", "15",
    )  # fmt: skip
    assert (code, err) == (0, "")
    turned = read_image("turned.png")
    R = rotation_matrix(*(math.radians(a) for a in (70, 30, 15)), dtype=torch.float64)
    expected = rotate_erp(read_image("pano.png"), R.T)
    torch.testing.assert_close(turned, _quantised(expected), atol=1 / 255 + 1e-6, rtol=0)


def test_convention_rotate_brings_the_camera_view_to_the_front(workdir):
    # What --help promises: 'e2p OUT' with no angles shows what 'e2p IN' shows with the angles.
    angles = ["--yaw", "70", "--pitch", "30", "--roll", "15"]
    assert run_cli("project", "rotate", "pano.png", "turned.png", *angles)[0] == 0
    assert (
        run_cli("project", "e2p", "turned.png", "a.png", "--fov", "60", "--size", "32x24")[0] == 0
    )
    assert (
        run_cli("project", "e2p", "pano.png", "b.png", "--fov", "60", "--size", "32x24", *angles)[0]
        == 0
    )
    diff = (read_image("a.png") - read_image("b.png")).abs()
    assert diff.mean() < 0.01 and diff.max() < 0.05
    # The opposite rotation would show something else entirely.
    assert (
        run_cli("project", "rotate", "pano.png", "wrong.png", "--yaw", "-70", "--pitch", "-30")[0]
        == 0
    )
    assert run_cli("project", "e2p", "wrong.png", "c.png", "--fov", "60", "--size", "32x24")[0] == 0
    assert (read_image("c.png") - read_image("b.png")).abs().mean() > 0.05


def test_overwrite_replaces_the_output(workdir):
    Path("view.png").write_bytes(b"old")
    assert run_cli("project", "e2p", "pano.png", "view.png", "--size", "8x6", "--overwrite")[0] == 0
    assert read_image("view.png").shape == (1, 3, 6, 8)


def test_rgba_input_keeps_alpha(workdir):
    assert run_cli("project", "rotate", "rgba.png", "turned.png", "--yaw", "90")[0] == 0
    assert read_image("turned.png").shape == (1, 4, H, W)


# --- bad input: exit 2, one line on stderr, no output file --------------------------------------

E2P = ("project", "e2p", "pano.png", "out.png")

BAD_INPUTS = {
    "fov too large": ([*E2P, "--fov", "200"], "--fov must be in (0, 180) degrees, got 200"),
    "fov zero": ([*E2P, "--fov", "0"], "--fov must be in (0, 180) degrees, got 0"),
    "fov 180": ([*E2P, "--fov", "180"], "--fov must be in (0, 180) degrees, got 180"),
    "fov negative": ([*E2P, "--fov", "-5"], "--fov must be in (0, 180) degrees, got -5"),
    "fov nan": ([*E2P, "--fov", "nan"], "--fov must be in (0, 180) degrees, got nan"),
    "fov not a number": ([*E2P, "--fov", "wide"], "Invalid value for '--fov'"),
    "yaw inf": ([*E2P, "--yaw", "inf"], "--yaw must be a finite number of degrees, got inf"),
    "size syntax": ([*E2P, "--size", "800"], "--size must be WIDTHxHEIGHT in pixels"),
    "size separator": ([*E2P, "--size", "800,600"], "--size must be WIDTHxHEIGHT in pixels"),
    "size zero": ([*E2P, "--size", "0x10"], "--size must have a positive width and height"),
    "unknown mode": ([*E2P, "--mode", "cubic"], "--mode must be one of 'nearest', 'bilinear'"),
    "unknown option": ([*E2P, "--zoom", "2"], "No such option: --zoom"),
    "option of another command": ([*E2P, "--face-w", "8"], "No such option: --face-w"),
    "missing OUT": (["project", "e2p", "pano.png"], "Missing argument 'OUT'"),
    "unknown command": (["project", "e2x", "pano.png", "out.png"], "No such command 'e2x'"),
    "missing IN": (
        ["project", "e2p", "nope.png", "out.png"],
        "cannot read image 'nope.png': no such file or directory",
    ),
    "IN not an image": (
        ["project", "e2p", "text.png", "out.png"],
        "cannot read image 'text.png': not an image",
    ),
    "IN not 2:1": (
        ["project", "e2p", "wide.png", "out.png"],
        "IN 'wide.png' must be an equirectangular panorama with width = 2 x height, got 138x64",
    ),
    "rotate IN not 2:1": (
        ["project", "rotate", "wide.png", "out.png"],
        "must be an equirectangular panorama",
    ),
    "e2c IN not 2:1": (["project", "e2c", "wide.png", "out.png"], "got 138x64"),
    "OUT is IN": (
        ["project", "e2p", "pano.png", "pano.png", "--overwrite"],
        "OUT 'pano.png' is the same file as the input",
    ),
    "OUT is IN by another name": (
        ["project", "rotate", "pano.png", "./sub/../pano.png", "--overwrite"],
        "is the same file as the input",
    ),
    "OUT exists": (
        ["project", "e2p", "pano.png", "rgba.png"],
        "OUT 'rgba.png' already exists; pass --overwrite to replace it",
    ),
    "OUT under a file": (
        ["project", "e2p", "pano.png", "rgba.png/out.png"],
        "cannot write OUT 'rgba.png/out.png': 'rgba.png' is not a folder",
    ),
    "bad IN, OUT in missing folders": (  # the folders created for OUT are removed again
        ["project", "e2c", "wide.png", "new/faces/c_{face}.png", "--layout", "dict"],
        "IN 'wide.png' must be an equirectangular panorama",
    ),
    "OUT is a directory": (["project", "e2p", "pano.png", "sub"], "'sub': it is a directory"),
    "OUT extension": (
        ["project", "e2p", "pano.png", "out.bmp"],
        "unsupported extension '.bmp'; supported: .jpeg, .jpg, .png, .tif, .tiff, .webp",
    ),
    "RGBA to JPEG": (
        ["project", "e2p", "rgba.png", "out.jpg"],
        "cannot write image 'out.jpg': JPEG cannot store an alpha channel",
    ),
    "p2e size not 2:1": (
        ["project", "p2e", "pano.png", "out.png", "--size", "100x60"],
        "--size must be 2:1 (width = 2 x height) for an equirectangular image, got 100x60",
    ),
    "p2e mask is OUT": (
        ["project", "p2e", "pano.png", "out.png", "--mask", "out.png"],
        "OUT and --mask are the same file 'out.png'",
    ),
    "p2e mask exists": (
        ["project", "p2e", "pano.png", "out.png", "--mask", "rgba.png"],
        "--mask 'rgba.png' already exists",
    ),
    "unknown layout": (
        ["project", "e2c", "pano.png", "out.png", "--layout", "cross"],
        "--layout must be one of 'dict', 'list', 'horizon', 'dice', got 'cross'",
    ),
    "face-w zero": (
        ["project", "e2c", "pano.png", "out.png", "--face-w", "0"],
        "--face-w must be a positive integer, got 0",
    ),
    "dict without placeholder": (
        ["project", "e2c", "pano.png", "out.png", "--layout", "dict"],
        "--layout dict uses six files, so OUT must contain {face}",
    ),
    "dice with placeholder": (
        ["project", "e2c", "pano.png", "c_{face}.png"],
        "OUT contains {face}, which only --layout dict or list use",
    ),
    "one face exists": (
        ["project", "e2c", "pano.png", "cube_{face}.png", "--layout", "list"],
        "OUT (face U) 'cube_U.png' already exists",
    ),
    "c2e not a dice": (
        ["project", "c2e", "pano.png", "out.png"],
        "IN 'pano.png' must be a dice cube map (a 4 x 3 grid of square faces",
    ),
    "c2e not a horizon": (
        ["project", "c2e", "pano.png", "out.png", "--layout", "horizon"],
        "must be a horizon cube map (six square faces in a row, width = 6 x height), got 128x64",
    ),
    "c2e missing face": (
        ["project", "c2e", "cube_{face}.png", "out.png", "--layout", "dict"],
        "cannot read image 'cube_F.png': no such file",
    ),
    "c2e size not 2:1": (
        ["project", "c2e", "pano.png", "out.png", "--size", "64x64"],
        "--size must be 2:1",
    ),
}


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_exits_2_with_one_line_and_no_output(workdir, args, message):
    Path("sub").mkdir()
    Path("cube_U.png").write_bytes(b"precious")
    before = file_listing(workdir)
    contents = {p: (workdir / p).read_bytes() for p in before if (workdir / p).is_file()}
    code, out, err = run_cli(*args)
    assert code == 2
    assert out == ""
    assert err.startswith("pano360: error: ") and err.endswith("\n")
    assert err.count("\n") == 1, err
    assert message in err
    assert file_listing(workdir) == before  # no output, no temporary file
    assert {p: (workdir / p).read_bytes() for p in contents} == contents


def test_c2e_faces_of_different_sizes(workdir):
    run_cli("project", "e2c", "pano.png", "c_{face}.png", "--layout", "list")
    write_image("c_U.png", torch.rand(1, 3, 8, 8), overwrite=True)
    code, _, err = run_cli("project", "c2e", "c_{face}.png", "out.png", "--layout", "list")
    assert code == 2 and err.count("\n") == 1
    assert "the six cube faces must be square images of one size and channel count" in err
    assert "face U is 8x8" in err
    assert not Path("out.png").exists()


def test_failure_while_writing_leaves_nothing(workdir, monkeypatch):
    from PIL import Image

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    before = file_listing(workdir)
    code, _, err = run_cli("project", "e2c", "pano.png", "c_{face}.png", "--layout", "dict")
    assert code == 2
    assert err == "pano360: error: cannot write image 'c_F.png': no space left on device\n"
    assert file_listing(workdir) == before


# --- help and version --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--help"],
        ["project"],
        ["project", "-h"],
        *(["project", c, "--help"] for c in ("e2p", "p2e", "e2c", "c2e", "rotate")),
    ],
)
def test_help_at_every_level(args):
    code, out, err = run_cli(*args)
    assert (code, err) == (0, "")
    assert "Usage: pano360" in out and "Example" in out


def test_command_help_says_units_signs_and_defaults():
    _, out, _ = run_cli("project", "e2p", "--help")
    for text in ("degrees", "> 0 looks right", "> 0 looks up", "clockwise", "800x600", "90"):
        assert text in out
    _, out, _ = run_cli("project", "rotate", "--help")
    assert "rotation_matrix(yaw, pitch, roll).T" in out
    _, out, _ = run_cli("project", "e2c", "--help")
    assert "{face}" in out and "F, R, B, L, U, D" in out


def test_version():
    assert run_cli("--version") == (0, f"pano360 {__version__}\n", "")


def test_typer_app_runs_under_cli_runner(workdir):
    result = CliRunner().invoke(app, ["project", "e2p", "pano.png", "v.png", "--size", "8x6"])
    assert result.exit_code == 0, result.output
    assert read_image("v.png").shape == (1, 3, 6, 8)


# --- real processes: exit codes and no traceback -----------------------------------------------


def _console_script() -> Path:
    script = Path(sys.executable).parent / "pano360"
    if not script.exists():
        pytest.skip("the pano360 console script is not installed next to this Python")
    return script


def test_python_m_pano360_bad_fov(workdir):
    proc = subprocess.run(
        [sys.executable, "-m", "pano360", "project", "e2p", "pano.png", "out.png", "--fov", "200"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == "pano360: error: --fov must be in (0, 180) degrees, got 200\n"
    assert not Path("out.png").exists()


def test_console_script_usage_error_and_success(workdir):
    script = str(_console_script())
    proc = subprocess.run(
        [script, "project", "rotate", "pano.png", "out.png", "--yaw", "right"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("pano360: error: Invalid value for '--yaw'")
    proc = subprocess.run(
        [script, "project", "e2p", "pano.png", "out.webp", "--size", "16x12"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "wrote out.webp (16x12)\n", "")
    assert read_image("out.webp").shape == (1, 3, 12, 16)
