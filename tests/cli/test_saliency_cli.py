"""``pano360 saliency``: outputs against the library, videos, one-line errors, no partial files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from pano360._core import ImageIOError
from pano360.io import read_image, video_info, write_image, write_video
from pano360.saliency import equator_bias, predict_saliency
from pano360.testing import file_listing, run_cli, smooth_erp

ROOT = Path(__file__).resolve().parents[2]
H, W = 32, 64


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """pano.png (an ERP), wide.png (not 2:1), clip.mp4 (4 frames, 10 fps), wide.mp4."""
    monkeypatch.chdir(tmp_path)
    write_image("pano.png", smooth_erp((H, W), seed=1))
    write_image("wide.png", torch.rand(1, 3, H, W + 6))
    frames = torch.cat([smooth_erp((H, W), seed=s) for s in range(4)])
    write_video("clip.mp4", frames, fps=10)
    write_video("wide.mp4", torch.rand(2, 3, H, H), fps=10)
    return tmp_path


def _outputs(out: str, stem: str, video: bool = False) -> list[str]:
    names = [f"{stem}_overlay.jpg", f"{stem}_saliency.npy", f"{stem}_saliency.png"]
    names += [f"{stem}_overlay.mp4"] if video else []
    return sorted(f"{out}/{n}" for n in names)


# --- images -------------------------------------------------------------------------------------


def test_image_outputs_equal_the_library(workdir):
    code, out, err = run_cli("saliency", "pano.png", "--out", "res")
    written = "res/pano_saliency.png, res/pano_saliency.npy, res/pano_overlay.jpg"
    assert (code, out, err) == (0, f"spectral saliency of pano.png: wrote {written}\n", "")
    assert [p for p in file_listing(workdir) if p.startswith("res/")] == _outputs("res", "pano")
    erp = read_image("pano.png")
    expected = predict_saliency(erp, "spectral")
    npy = np.load("res/pano_saliency.npy")
    assert npy.shape == (H, W) and npy.dtype == np.float32
    torch.testing.assert_close(torch.from_numpy(npy), expected[0, 0], rtol=1e-4, atol=1e-7)
    png = read_image("res/pano_saliency.png")
    assert png.shape == (1, 1, H, W)
    torch.testing.assert_close(png, expected / expected.max(), atol=0.5 / 255 + 1e-6, rtol=0)
    overlay = read_image("res/pano_overlay.jpg")
    assert overlay.shape == (1, 3, H, W)


def test_image_model_option(workdir):
    assert run_cli("saliency", "pano.png", "--model", "equator", "--out", "eq")[0] == 0
    npy = torch.from_numpy(np.load("eq/pano_saliency.npy"))
    torch.testing.assert_close(npy, equator_bias((H, W))[0, 0])


def test_embedded_example(tmp_path):
    code, _, err = run_cli(
        "saliency", str(ROOT / "examples" / "panorama.jpg"), "--out", str(tmp_path)
    )
    assert (code, err) == (0, "")
    npy = np.load(tmp_path / "panorama_saliency.npy")
    assert npy.shape == (1024, 2048)
    assert float(npy.sum()) == pytest.approx(1.0, rel=1e-4)
    assert read_image(tmp_path / "panorama_overlay.jpg").shape == (1, 3, 1024, 2048)


def test_overwrite(workdir):
    assert run_cli("saliency", "pano.png")[0] == 0  # default --out: the current folder
    before = Path("pano_saliency.npy").read_bytes()
    code, _, err = run_cli("saliency", "pano.png", "--model", "uniform")
    assert code == 2
    assert err == (
        "pano360: error: output 'pano_saliency.png' already exists; pass --overwrite to "
        "replace it\n"
    )
    assert Path("pano_saliency.npy").read_bytes() == before
    assert run_cli("saliency", "pano.png", "--model", "uniform", "--overwrite")[0] == 0
    assert np.load("pano_saliency.npy").std() == 0.0


# --- videos -------------------------------------------------------------------------------------


def test_video_outputs(workdir):
    code, _, err = run_cli("saliency", "clip.mp4", "--out", "res", "--quiet")
    assert (code, err) == (0, "")
    assert [p for p in file_listing(workdir) if p.startswith("res/")] == _outputs(
        "res", "clip", True
    )
    maps = np.load("res/clip_saliency.npy")
    assert maps.shape == (4, H, W)
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), np.ones(4), rtol=1e-4)
    # Frame by frame, the same model as on images (up to the codec's loss).
    from pano360.io import read_video

    frames, _ = read_video("clip.mp4")
    expected = predict_saliency(frames[2:3])[0, 0]
    torch.testing.assert_close(torch.from_numpy(maps[2]), expected, rtol=1e-4, atol=1e-7)
    info = video_info("res/clip_overlay.mp4")
    assert (info.hw, info.num_frames, info.fps) == ((H, W), 4, 10.0)
    mean = torch.from_numpy(maps.mean(0))
    png = read_image("res/clip_saliency.png")[0, 0]
    torch.testing.assert_close(png, mean / mean.max(), atol=0.5 / 255 + 1e-6, rtol=0)


def test_video_fps_max_frames_and_progress_bar(workdir):
    code, _, err = run_cli("saliency", "clip.mp4", "--out", "a", "--fps", "5", terminal=True)
    assert code == 0 and "clip.mp4" in err and "2/2" in err  # tqdm progress on stderr
    assert np.load("a/clip_saliency.npy").shape == (2, H, W)
    assert video_info("a/clip_overlay.mp4").fps == 5.0
    # No bar with -q, nor when stderr is not a terminal; -q also drops the success line.
    code, out, err = run_cli("saliency", "clip.mp4", "--out", "b", "--max-frames", "3", "-q")
    assert (code, out, err) == (0, "", "")
    assert np.load("b/clip_saliency.npy").shape == (3, H, W)
    code, out, err = run_cli("saliency", "clip.mp4", "--out", "c", "--max-frames", "1")
    assert (code, err) == (0, "") and out.startswith("spectral saliency of clip.mp4: wrote ")


def test_video_overlay_keeps_the_audio_bit_for_bit(workdir):
    from pano360.testing import audio_packets, write_video_with_tone

    sent = write_video_with_tone("tone.mp4", torch.rand(6, 3, H, W), fps=10)
    assert sent
    code, _, err = run_cli("saliency", "tone.mp4", "--out", "res", "--quiet")
    assert (code, err) == (0, "")
    assert audio_packets("res/tone_overlay.mp4") == sent
    assert video_info("res/tone_overlay.mp4").num_frames == 6
    assert np.load("res/tone_saliency.npy").shape == (6, H, W)
    assert not [p for p in file_listing(workdir) if "staged" in p or p.endswith(".tmp")]
    # Resampled, the overlay no longer matches the sound: it has none.
    code, _, _ = run_cli("saliency", "tone.mp4", "--out", "half", "--fps", "5", "--quiet")
    assert code == 0 and audio_packets("half/tone_overlay.mp4") == []


# --- errors: one line, exit 2, nothing written -------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["wide.png"], "IN 'wide.png' must be an equirectangular panorama with width = 2 x "
         "height, got 70x32"),
        (["wide.mp4"], "IN 'wide.mp4' must be an equirectangular video with width = 2 x height, "
         "got 32x32"),
        (["pano.png", "--model", "deep"], "--model must be one of 'equator', 'planar_unet', "
         "'spectral', 'spherical_unet', 'spherical_unet_tangent', 'uniform', got 'deep'"),
        (["pano.png", "--fps", "5"], "--fps and --max-frames apply to videos only; IN is an image"),
        (["clip.mp4", "--fps", "0"], "--fps must be a positive number of frames per second, got 0"),
        (["clip.mp4", "--max-frames", "0"], "--max-frames must be a positive number of frames, "
         "got 0"),
        (["missing.png"], "cannot read IN 'missing.png': no such file"),
        (["res"], "cannot read IN 'res': it is a directory"),
        (["notes.png"], "cannot read image 'notes.png': not an image Pillow can decode"),
        (
            ["notes.mp4"],
            "cannot read video 'notes.mp4': not a video PyAV can decode (or truncated/corrupt)",
        ),
        (["pano.png", "--out", "file.txt"], "--out 'file.txt' is not a folder"),
        (["pano.png", "--out", "file.txt/sub"], "--out 'file.txt/sub' cannot be created: "
         "'file.txt' is not a folder"),
        (["wide.png", "--out", "new/sub"], "IN 'wide.png' must be an equirectangular panorama "
         "with width = 2 x height, got 70x32"),  # and new/sub is not left behind
        (["clip.mp4", "--map-format", "jpeg"], "--map-format must be one of 'npy', 'npy16', "
         "'npz', 'png8', 'png16', got 'jpeg'"),
        (["clip.mp4", "--map-size", "30x20"], "--map-size must be 2:1 (width = 2 x height) for an "
         "equirectangular image, got 30x20"),
        (["clip.mp4", "--map-size", "big"], "--map-size must be WIDTHxHEIGHT in pixels, e.g. "
         "800x600, got 'big'"),
    ],
)  # fmt: skip
def test_errors_are_one_line_and_write_nothing(workdir, args, message):
    Path("res").mkdir()
    Path("notes.png").write_text("text")
    Path("notes.mp4").write_text("text")
    Path("file.txt").write_text("text")
    before = file_listing(workdir)
    code, out, err = (
        run_cli("saliency", *args, "--out", "res")
        if "--out" not in args
        else run_cli("saliency", *args)
    )
    assert (code, out) == (2, "")
    assert err == f"pano360: error: {message}\n"
    assert file_listing(workdir) == before


@pytest.mark.parametrize(
    "src, fmt", [("pano.png", "npy"), ("clip.mp4", "npy"), ("clip.mp4", "npz")]
)
def test_a_failure_while_writing_leaves_no_output(workdir, monkeypatch, src, fmt):
    import pano360.cli._saliency as cli
    import pano360.io._saliency_maps as maps_io

    def broken(path, write, overwrite):
        raise ImageIOError(f"cannot write '{path}': disk full")

    monkeypatch.setattr(cli, "write_atomic", broken)
    monkeypatch.setattr(maps_io, "write_atomic", broken)  # the video maps' writer
    code, _, err = run_cli("saliency", src, "--out", "res", "-q", "--map-format", fmt)
    assert code == 2 and "disk full" in err
    assert not (workdir / "res").exists()  # created by the command, removed with its files
    Path("res").mkdir()
    code, _, err = run_cli("saliency", src, "--out", "res", "-q", "--map-format", fmt)
    assert code == 2 and "disk full" in err
    assert os.listdir(workdir / "res") == []  # no output, no temporary file


def test_a_failure_while_writing_png_frames_leaves_no_output(workdir, monkeypatch):
    import pano360.io._saliency_maps as maps_io

    calls = []

    def broken(path, image, bit_depth=8):
        calls.append(path)
        if len(calls) == 3:
            raise ImageIOError(f"cannot write '{path}': disk full")
        return maps_io.__dict__["_real_write_image"](path, image, bit_depth=bit_depth)

    monkeypatch.setitem(maps_io.__dict__, "_real_write_image", maps_io.write_image)
    monkeypatch.setattr(maps_io, "write_image", broken)
    Path("res").mkdir()
    code, _, err = run_cli("saliency", "clip.mp4", "--out", "res", "-q", "--map-format", "png16")
    assert code == 2 and "disk full" in err and len(calls) == 3
    assert os.listdir(workdir / "res") == []  # no frames folder, no temporary one


def test_video_map_formats_and_sizes_are_read_back_by_eval(workdir):
    from pano360.data import write_saliency_sample
    from pano360.io import read_saliency_maps

    code, _, err = run_cli("saliency", "clip.mp4", "--out", "npy", "-q", "--map-size", "32x16")
    assert (code, err) == (0, "")
    ref = torch.from_numpy(np.load("npy/clip_saliency.npy"))
    assert ref.shape == (4, 16, 32)  # --map-size
    torch.testing.assert_close(ref.sum(dim=(1, 2)), torch.ones(4), rtol=1e-5, atol=0)
    write_saliency_sample(Path("gt"), "clip", saliency=ref[:, None])
    paths = {"npy16": "clip_saliency.npy", "npz": "clip_saliency.npz"}
    steps = {"npy16": 2**-11, "npz": 2**-11, "png8": 0.5 / 255, "png16": 0.5 / 65535}
    sizes = {"npy": Path("npy/clip_saliency.npy").stat().st_size}
    for fmt, step in steps.items():
        args = ("--map-size", "32x16", "--map-format", fmt)
        code, _, err = run_cli("saliency", "clip.mp4", "--out", fmt, "-q", *args)
        assert (code, err) == (0, ""), fmt
        path = Path(fmt) / paths.get(fmt, "clip_saliency")
        got = read_saliency_maps(path)[:, 0]
        peak = ref.amax(dim=(1, 2), keepdim=True)
        torch.testing.assert_close(got, ref / peak, rtol=0, atol=step)  # each frame to peak 1
        if fmt in paths:
            sizes[fmt] = path.stat().st_size
        # eval saliency reads every format: the same maps up to scale, CC 1.
        code, _, err = run_cli("eval", "saliency", "--pred", fmt, "--gt", "gt", "--out", f"e_{fmt}")
        assert code == 0, err
        cc = json.loads(Path(f"e_{fmt}/saliency_eval.json").read_text())["summary"]["cc"]
        assert cc["n"] == 1 and cc["mean"] == pytest.approx(
            1.0, abs=1e-3 if fmt != "png8" else 1e-2
        )
    assert sizes["npz"] < sizes["npy16"] < sizes["npy"]
    # Without --map-size: the model's working resolution, never more than the video's.
    from pano360.cli._saliency import _map_hw, _saliency_model

    assert _saliency_model("spectral")[1] == (128, 256)  # spectral's work_height
    assert _saliency_model("equator")[1] is None  # a function of latitude: any size
    assert _map_hw(None, (128, 256), (1024, 2048), video=True) == (128, 256)
    assert _map_hw(None, (128, 256), (32, 64), video=True) == (32, 64)
    assert _map_hw(None, (128, 256), (1024, 2048), video=False) == (1024, 2048)
    assert _map_hw(None, None, (1024, 2048), video=True) == (1024, 2048)
    assert _map_hw("input", (128, 256), (1024, 2048), video=True) == (1024, 2048)
    assert _map_hw("64x32", (128, 256), (1024, 2048), video=True) == (32, 64)
    code, _, _ = run_cli("saliency", "clip.mp4", "--out", "default", "-q", "--max-frames", "1")
    assert code == 0 and np.load("default/clip_saliency.npy").shape == (1, H, W)


def test_image_maps_in_the_frame_formats(workdir):
    from pano360.io import read_saliency_maps

    code, _, err = run_cli("saliency", "pano.png", "--out", "r", "-q", "--map-format", "png16")
    assert (code, err) == (0, "")
    assert sorted(p.name for p in Path("r").iterdir()) == [
        "pano_overlay.jpg", "pano_saliency", "pano_saliency.png",
    ]  # fmt: skip
    assert read_saliency_maps("r/pano_saliency").shape == (1, 1, H, W)
    code, _, err = run_cli("saliency", "pano.png", "--out", "r", "-q", "--map-format", "png16")
    assert code == 2 and "already exists; pass --overwrite" in err
    code, _, err = run_cli("saliency", "pano.png", "--out", "r", "-q", "--map-format", "png16",
                       "--overwrite")  # fmt: skip
    assert (code, err) == (0, "")


def test_help_lists_models_and_outputs():
    code, out, _ = run_cli("saliency", "--help")
    assert code == 0
    for text in ("--model NAME", "NAME_saliency.npy", "--overwrite"):
        assert text in out
    flat = " ".join(out.split())  # the help text is wrapped
    for name in ("equator", "spectral", "uniform"):
        assert f"{name}: Training-free" in flat
