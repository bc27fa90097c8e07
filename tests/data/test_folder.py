"""The generic saliency folder format: exact file formats, round trips, and errors by line."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from pano360._core import ImageIOError, OutputExistsError, ShapeError, ValueRangeError
from pano360.data import (
    DatasetFormatError,
    SaliencyFolder,
    read_fixations_csv,
    read_saliency_map,
    write_atomic,
    write_fixations_csv,
    write_saliency_map,
    write_saliency_sample,
)
from pano360.io import write_image

H, W = 8, 16


# --- fixations ----------------------------------------------------------------------------------


def test_read_fixations_in_degrees_as_radians(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("lon,lat,t\n0,0,0.0\n90,45,0.5\n-180,-90,1.25\n180,90,2\n")
    fix, times = read_fixations_csv(path)
    expected = [
        [0, 0],
        [math.pi / 2, math.pi / 4],
        [-math.pi, -math.pi / 2],
        [math.pi, math.pi / 2],
    ]
    torch.testing.assert_close(fix, torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(times, torch.tensor([0.0, 0.5, 1.25, 2.0], dtype=torch.float64))


def test_read_fixations_without_times_and_with_spaces(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text(" LON , Lat \n10, -20\n\n")
    fix, times = read_fixations_csv(path)
    assert times is None
    torch.testing.assert_close(fix, torch.tensor([[math.radians(10), math.radians(-20)]],
                                                 dtype=torch.float64))  # fmt: skip


def test_fixations_round_trip_wraps_longitude(tmp_path):
    gen = torch.Generator().manual_seed(0)
    fix = torch.stack(
        (torch.rand(20, generator=gen, dtype=torch.float64) * 6 - 3,
         torch.rand(20, generator=gen, dtype=torch.float64) * 3 - 1.5), dim=-1
    )  # fmt: skip
    times = torch.rand(20, generator=gen, dtype=torch.float64) * 10
    write_fixations_csv(tmp_path / "f.csv", fix, times)
    assert (tmp_path / "f.csv").read_text().startswith("lon,lat,t\n")
    back, t = read_fixations_csv(tmp_path / "f.csv")
    torch.testing.assert_close(back, fix, rtol=0, atol=1e-12)
    torch.testing.assert_close(t, times)
    fix[0, 0] = 4.0  # beyond pi: written wrapped
    write_fixations_csv(tmp_path / "g.csv", fix, overwrite=False)
    assert read_fixations_csv(tmp_path / "g.csv")[0][0, 0] == pytest.approx(4.0 - 2 * math.pi)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", r"f.csv: empty file"),
        ("x,y\n1,2\n", r"f.csv:1: bad header 'x,y'; expected 'lon,lat' or 'lon,lat,t'"),
        ("lon,lat\n0,0\n181,0\n", r"f.csv:3: lon must be in \[-180, 180\], got 181"),
        ("lon,lat\n0,95\n", r"f.csv:2: lat must be in \[-90, 90\], got 95"),
        ("lon,lat,t\n0,0,-1\n", r"f.csv:2: t must be >= 0, got -1"),
        ("lon,lat,t\n0,0,inf\n", r"f.csv:2: t must be >= 0, got inf"),
        ("lon,lat\n0,0,3\n", "f.csv:2: expected 2 comma-separated values, got 3"),
        ("lon,lat\n\n0,zero\n", r"f.csv:3: not a number in '0,zero'"),
    ],
)
def test_fixation_errors_name_file_and_line(tmp_path, text, match):
    path = tmp_path / "f.csv"
    path.write_text(text)
    with pytest.raises(DatasetFormatError, match=match):
        read_fixations_csv(path)


def test_write_fixations_errors(tmp_path):
    with pytest.raises(ShapeError, match=r"fixations must be \(N, 2\)"):
        write_fixations_csv(tmp_path / "a.csv", torch.zeros(3))
    with pytest.raises(ValueRangeError, match="latitudes"):
        write_fixations_csv(tmp_path / "a.csv", torch.tensor([[0.0, 2.0]]))
    with pytest.raises(ShapeError, match=r"times must be \(1,\)"):
        write_fixations_csv(tmp_path / "a.csv", torch.zeros(1, 2), torch.zeros(2))
    with pytest.raises(ValueRangeError, match="times must be finite and >= 0"):
        write_fixations_csv(tmp_path / "a.csv", torch.zeros(1, 2), torch.tensor([-1.0]))
    write_fixations_csv(tmp_path / "a.csv", torch.zeros(1, 2))
    with pytest.raises(OutputExistsError, match="already exists"):
        write_fixations_csv(tmp_path / "a.csv", torch.zeros(1, 2))
    with pytest.raises(ImageIOError, match="does not exist"):
        write_fixations_csv(tmp_path / "no" / "a.csv", torch.zeros(1, 2))
    with pytest.raises(ImageIOError, match="cannot read"):
        read_fixations_csv(tmp_path / "missing.csv")


# --- maps ---------------------------------------------------------------------------------------


def test_maps_npy_and_png_round_trip(tmp_path):
    m = torch.rand(1, 1, H, W, generator=torch.Generator().manual_seed(1))
    write_saliency_map(tmp_path / "m.npy", m)
    assert np.load(tmp_path / "m.npy").shape == (H, W)  # stored as a plain (H, W) array
    torch.testing.assert_close(read_saliency_map(tmp_path / "m.npy"), m)
    write_saliency_map(tmp_path / "m.png", m)
    png = read_saliency_map(tmp_path / "m.png")
    torch.testing.assert_close(png, m / m.max(), atol=0.5 / 255 + 1e-6, rtol=0)
    video = torch.rand(3, 1, H, W)
    write_saliency_map(tmp_path / "v.npy", video)
    assert np.load(tmp_path / "v.npy").shape == (3, H, W)
    torch.testing.assert_close(read_saliency_map(tmp_path / "v.npy"), video)


def test_read_maps_written_by_other_tools(tmp_path):
    arr = np.arange(H * W, dtype=np.float64).reshape(H, W)
    np.save(tmp_path / "a.npy", arr)
    torch.testing.assert_close(
        read_saliency_map(tmp_path / "a.npy")[0, 0], torch.from_numpy(arr).float()
    )
    np.save(tmp_path / "i.npy", arr.astype(np.uint8))
    assert read_saliency_map(tmp_path / "i.npy").dtype == torch.float32


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: np.save(p / "x.npy", np.zeros((2, 2, H, W))), r"expected a numeric \(H, W\)"),
        (lambda p: np.save(p / "x.npy", np.zeros((H, H))), r"must be 2:1 \(W == 2H\), got 8x8"),
        (lambda p: np.save(p / "x.npy", -np.ones((H, W))), "finite and non-negative"),
        (lambda p: write_image(p / "x.png", torch.rand(1, 3, H, W)), "must be grayscale"),
        (lambda p: (p / "x.txt").write_text("1"), "unsupported saliency map extension '.txt'"),
    ],
)
def test_read_map_errors(tmp_path, make, match):
    make(tmp_path)
    path = next(p for p in tmp_path.iterdir() if p.stem == "x")
    with pytest.raises(DatasetFormatError, match=match):
        read_saliency_map(path)


def test_write_map_errors(tmp_path):
    with pytest.raises(ShapeError, match="a PNG holds one map"):
        write_saliency_map(tmp_path / "v.png", torch.rand(2, 1, H, W))
    with pytest.raises(ShapeError, match=r"maps must be \(T, 1, H, W\)"):
        write_saliency_map(tmp_path / "v.npy", torch.rand(2, 2, H, W))
    with pytest.raises(ValueRangeError, match="finite and non-negative"):
        write_saliency_map(tmp_path / "v.npy", -torch.ones(H, W))
    with pytest.raises(ImageIOError, match=r"written as \.npy or \.png"):
        write_saliency_map(tmp_path / "v.bin", torch.ones(H, W))
    with pytest.raises(ImageIOError, match="cannot read"):
        (tmp_path / "bad.npy").write_bytes(b"not numpy")
        read_saliency_map(tmp_path / "bad.npy")


def test_write_atomic_leaves_nothing_on_failure(tmp_path):
    def fail(f):
        f.write(b"partial")
        raise RuntimeError("encoder crashed")

    with pytest.raises(RuntimeError, match="encoder crashed"):
        write_atomic(tmp_path / "out.npy", fail, overwrite=False)
    assert os.listdir(tmp_path) == []
    (tmp_path / "out.npy").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        write_atomic(tmp_path / "out.npy", fail, overwrite=True)
    assert (tmp_path / "out.npy").read_bytes() == b"old" and os.listdir(tmp_path) == ["out.npy"]
    write_atomic(tmp_path / "out.npy", lambda f: f.write(b"new"), overwrite=True)
    assert (tmp_path / "out.npy").read_bytes() == b"new"


# --- the folder ---------------------------------------------------------------------------------


def test_folder_round_trip(tmp_path):
    img = torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(2))
    sal = torch.rand(1, 1, H, W)
    fix = torch.tensor([[0.1, 0.2], [-1.0, 0.5]], dtype=torch.float64)
    write_saliency_sample(tmp_path, "room", image=img, saliency=sal, fixations=fix)
    write_saliency_sample(tmp_path, "hall", saliency=sal, map_format=".png")
    video_maps = torch.rand(4, 1, H, W)
    write_saliency_sample(tmp_path, "clip", saliency=video_maps, fixations=fix,
                          times=torch.tensor([0.0, 0.4], dtype=torch.float64))  # fmt: skip
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "clip.mp4").write_bytes(b"")  # not decoded by the folder reader
    data = SaliencyFolder(tmp_path)
    assert data.names == ["clip", "hall", "room"] and len(data) == 3
    room = data["room"]
    torch.testing.assert_close(room.image, (img * 255).round() / 255)
    torch.testing.assert_close(room.saliency, sal)
    torch.testing.assert_close(room.fixations, fix)
    assert room.times is None and room.video is None
    clip = data[0]
    assert clip.video == tmp_path / "videos" / "clip.mp4" and clip.image is None
    assert clip.saliency.shape == (4, 1, H, W) and clip.times.tolist() == [0.0, 0.4]
    assert data["hall"].saliency.shape == (1, 1, H, W)
    assert [s.name for s in data] == data.names
    assert repr(data) == f"SaliencyFolder('{tmp_path}', 3 items)"


def test_folder_errors(tmp_path):
    with pytest.raises(ImageIOError, match="not a directory"):
        SaliencyFolder(tmp_path / "none")
    (tmp_path / "maps").mkdir()
    np.save(tmp_path / "maps" / "a.npy", np.zeros((H, W)))
    write_image(tmp_path / "maps" / "a.png", torch.zeros(1, 1, H, W))
    with pytest.raises(DatasetFormatError, match=r"'a\.npy' and 'a\.png' have the same name"):
        SaliencyFolder(tmp_path)
    (tmp_path / "maps" / "a.png").unlink()
    with pytest.raises(KeyError, match="no item named 'b'"):
        SaliencyFolder(tmp_path)["b"]
    (tmp_path / "images").mkdir()
    (tmp_path / "videos").mkdir()
    write_image(tmp_path / "images" / "c.png", torch.zeros(1, 3, H, W))
    (tmp_path / "videos" / "c.mp4").write_bytes(b"")
    with pytest.raises(DatasetFormatError, match="'c' is both an image and a video"):
        SaliencyFolder(tmp_path)
    with pytest.raises(ValueRangeError, match="name must be a plain file stem"):
        write_saliency_sample(tmp_path, "../x", saliency=torch.zeros(H, W))


def test_python_blocks_in_saliency_data_doc_run(tmp_path, monkeypatch):
    doc = Path(__file__).resolve().parents[2] / "docs" / "saliency-data.md"
    # Blocks after "<!-- not run: reason -->" are skipped, as in tests/test_docs_and_example.py.
    text = re.sub(r"<!-- not run:[^>]*-->\s*```python\n.*?```", "", doc.read_text(), flags=re.S)
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, str(doc), "exec"), {})
