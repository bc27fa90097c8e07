"""Saliency map files (pano360.io): every format written frame by frame and read back, sizes,
nothing left behind on failure, and the documented errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pano360._core import (
    ChoiceError,
    DatasetFormatError,
    ImageIOError,
    OutputExistsError,
    ShapeError,
)
from pano360.io import (
    SALIENCY_MAP_FORMATS,
    SaliencyMapWriter,
    read_saliency_maps,
    saliency_map_path,
    write_image,
)

HW = (16, 32)


def maps(frames: int = 4, hw=HW) -> torch.Tensor:
    """Smooth maps (T, 1, H, W) summing to 1, a blob moving east."""
    h, w = hw
    lat = (0.5 - (torch.arange(h) + 0.5) / h)[:, None] * math.pi
    lon = ((torch.arange(w) + 0.5) / w - 0.5)[None, :] * 2 * math.pi
    out = []
    for t in range(frames):
        d = torch.cos(lat) * torch.cos(lon - 0.4 * t)
        m = torch.exp(4 * (d - 1)) + 0.01
        out.append(m / m.sum())
    return torch.stack(out)[:, None]


# Largest error of a frame scaled to peak 1, as stored (float16: 11 bits; PNG: its steps).
TOLERANCE = {"npy": 1e-7, "npy16": 2**-11, "npz": 2**-11, "png8": 0.5 / 255, "png16": 0.5 / 65535}


@pytest.mark.parametrize("fmt", list(SALIENCY_MAP_FORMATS))
def test_every_format_round_trips_frame_by_frame(tmp_path, fmt):
    m = maps()
    writer = SaliencyMapWriter(tmp_path / "clip_saliency", fmt)
    for frame in m:
        writer.write(frame[None])
    assert not saliency_map_path(tmp_path / "clip_saliency", fmt).exists()  # not before close
    path = writer.close()
    assert path == saliency_map_path(tmp_path / "clip_saliency", fmt)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporaries left
    got = read_saliency_maps(path)
    assert got.shape == m.shape and got.dtype == torch.float32
    want = m if fmt == "npy" else m / m.amax(dim=(-2, -1), keepdim=True)
    torch.testing.assert_close(got, want, rtol=0, atol=TOLERANCE[fmt] * float(want.max()))
    # Each frame divided by its sum is the map summing to 1 again (to the format's steps).
    back = got / got.sum(dim=(-2, -1), keepdim=True)
    torch.testing.assert_close(back, m, rtol=1e-3, atol=2 * TOLERANCE[fmt] * float(m.max()))


def test_float16_halves_the_bytes_and_the_archive_compresses_smooth_maps(tmp_path):
    sizes = {}
    for fmt in ("npy", "npy16", "npz"):
        writer = SaliencyMapWriter(tmp_path / fmt, fmt)
        writer.write(maps(8, (32, 64)))
        sizes[fmt] = writer.close().stat().st_size
    data = 8 * 32 * 64
    assert sizes["npy"] - 4 * data == sizes["npy16"] - 2 * data  # the same .npy header
    assert sizes["npz"] < 0.8 * sizes["npy16"]
    assert read_saliency_maps(tmp_path / "npz.npz").shape == (8, 1, 32, 64)


def test_a_single_map_and_plain_files_are_read_too(tmp_path):
    m = maps(1)
    np.save(tmp_path / "a.npy", m[0, 0].numpy())  # (H, W)
    assert read_saliency_maps(tmp_path / "a.npy").shape == (1, 1, *HW)
    np.savez(tmp_path / "b.npz", other_name=m[:, 0].numpy())  # one array: any key
    torch.testing.assert_close(read_saliency_maps(tmp_path / "b.npz"), m)
    write_image(tmp_path / "c.png", m[0] / m.max())
    assert read_saliency_maps(tmp_path / "c.png").shape == (1, 1, *HW)


def test_aborting_or_failing_leaves_nothing(tmp_path):
    for fmt in SALIENCY_MAP_FORMATS:
        writer = SaliencyMapWriter(tmp_path / "x", fmt)
        writer.write(maps(1))
        writer.abort()
    assert list(tmp_path.iterdir()) == []
    writer = SaliencyMapWriter(tmp_path / "x", "png8")
    with pytest.raises(ValueError, match="no saliency map was written"):
        writer.close()
    assert list(tmp_path.iterdir()) == []


def test_existing_outputs_are_kept_unless_overwrite(tmp_path):
    first = SaliencyMapWriter(tmp_path / "x", "png8")
    first.write(maps(2))
    folder = first.close()
    with pytest.raises(OutputExistsError, match="exists; pass overwrite"):
        SaliencyMapWriter(tmp_path / "x", "png8")
    again = SaliencyMapWriter(tmp_path / "x", "png8", overwrite=True)
    again.write(maps(3))
    assert again.close() == folder and len(list(folder.iterdir())) == 3
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="more than PNG frames"):
        SaliencyMapWriter(tmp_path / "x", "png8", overwrite=True)
    assert (folder / "notes.txt").read_text() == "mine"


def test_writer_errors():
    with pytest.raises(ChoiceError, match="fmt must be one of"):
        saliency_map_path("x", "jpeg")


def test_writer_shape_errors(tmp_path):
    writer = SaliencyMapWriter(tmp_path / "x", "npy")
    with pytest.raises(ShapeError, match=r"maps must be \(H, W\)"):
        writer.write(torch.rand(2, 3, *HW))
    writer.write(maps(1))
    with pytest.raises(ShapeError, match="every frame must be"):
        writer.write(maps(1, (8, 16)))
    writer.abort()


def test_reader_errors(tmp_path):
    with pytest.raises(ImageIOError, match="no such file or folder"):
        read_saliency_maps(tmp_path / "missing.npy")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageIOError, match="holds no PNG or TIFF frames"):
        read_saliency_maps(tmp_path / "empty")
    np.savez(tmp_path / "two.npz", a=np.ones((2, 4)), b=np.ones((2, 4)))
    with pytest.raises(DatasetFormatError, match="must hold one array or one named"):
        read_saliency_maps(tmp_path / "two.npz")
    np.save(tmp_path / "rank.npy", np.ones((1, 2, 2, 4)))
    with pytest.raises(DatasetFormatError, match=r"numeric \(H, W\) or \(T, H, W\)"):
        read_saliency_maps(tmp_path / "rank.npy")
    np.save(tmp_path / "wide.npy", np.ones((4, 6)))
    with pytest.raises(ShapeError, match="must be 2:1"):
        read_saliency_maps(tmp_path / "wide.npy")
    np.save(tmp_path / "neg.npy", -np.ones((4, 8)))
    with pytest.raises(DatasetFormatError, match="finite and non-negative"):
        read_saliency_maps(tmp_path / "neg.npy")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ImageIOError, match="cannot read saliency maps"):
        read_saliency_maps(tmp_path / "bad.npz")
    write_image(tmp_path / "colour.png", torch.rand(1, 3, *HW))
    with pytest.raises(DatasetFormatError, match="must be grayscale"):
        read_saliency_maps(tmp_path / "colour.png")
    frames = tmp_path / "frames"
    frames.mkdir()
    write_image(frames / "0.png", torch.rand(1, 1, *HW))
    write_image(frames / "1.png", torch.rand(1, 1, 8, 16))
    with pytest.raises(ShapeError, match="every frame must have one size"):
        read_saliency_maps(frames)
    (frames / "1.png").unlink()
    write_image(frames / "1.png", torch.rand(1, 3, *HW))
    with pytest.raises(DatasetFormatError, match="must be grayscale"):
        read_saliency_maps(frames)
