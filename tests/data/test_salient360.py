"""Salient360! 2018 readers, on tiny fixtures written here in the dataset's exact formats."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pano360._core import ImageIOError, OutputExistsError, ShapeError, ValueRangeError
from pano360.data import (
    DatasetFormatError,
    Salient360BinInfo,
    Salient360Images,
    Salient360VideoMaps,
    lonlat_to_salient360,
    parse_salient360_bin_name,
    read_salient360_map,
    read_salient360_scanpaths,
    salient360_to_lonlat,
    write_salient360_map,
)
from pano360.io import write_image
from pano360.saliency import binary_fixation_map

W, H = 16, 8

# An image scanpath file as the dataset ships it: header with spaces, Idx restarting per
# observer, normalised lon/lat, start timestamps in milliseconds.
IMAGE_SCANPATHS = """\
Idx, longitude, latitude, start timestamp
0, 0.5, 0.5, 0.0
1, 0.25, 0.25, 312.5
2, 0.999, 0.75, 790.0
0, 0.1, 0.9, 0.0
1, 0.6, 0.4, 250.0
"""

VIDEO_SCANPATHS = """\
Idx, longitude, latitude, start timestamp, duration, start frame, end frame
0, 0.5, 0.5, 0.0, 200.0, 0, 5
1, 0.75, 0.5, 250.0, 300.0, 7, 15
0, 0.2, 0.3, 0.0, 100.0, 0, 2
"""


def _write_bin(path: Path, maps: np.ndarray, dtype="<f4") -> Path:
    """Raw row-major floats, frames back to back, as the dataset stores them."""
    maps.astype(dtype).tofile(path)
    return path


# --- coordinates --------------------------------------------------------------------------------


def test_convention_normalised_coordinates_to_radians():
    uv = torch.tensor([[0.5, 0.5], [0.0, 0.0], [0.25, 0.25], [0.75, 1.0], [1.0, 0.5]])
    lonlat = salient360_to_lonlat(uv.double())
    expected = [
        [0.0, 0.0],  # image centre: straight ahead
        [-math.pi, math.pi / 2],  # top-left corner: lon -180, north pole
        [-math.pi / 2, math.pi / 4],  # left half is lon < 0, top half lat > 0
        [math.pi / 2, -math.pi / 2],
        [-math.pi, 0.0],  # u = 1 is the same meridian as u = 0
    ]
    torch.testing.assert_close(lonlat, torch.tensor(expected, dtype=torch.float64))


def test_convention_fixation_lands_in_its_cell_where_the_toolbox_centres_gaussians():
    # The toolbox's saliency maps centre a fixation's Gaussian window at column int(u W), row
    # int(v H): the pixel whose cell holds it, our "cell" placement.
    gen = torch.Generator().manual_seed(0)
    uv = torch.rand(200, 2, generator=gen, dtype=torch.float64)
    m = binary_fixation_map(salient360_to_lonlat(uv), (H, W), counts=True)[0, 0]
    expected = torch.zeros(H, W)
    for u, v in uv.tolist():
        expected[int(v * H), int(u * W)] += 1
    torch.testing.assert_close(m, expected)


def test_convention_the_tools_fixation_maps_put_fixations_one_pixel_up_and_left():
    # The fixation maps the tools' metrics read (the 2018 tool's main loop, the toolbox's
    # toFixationMap) index int(u W - 1), int(v H - 1), and -1 wraps to the last column or row.
    gen = torch.Generator().manual_seed(1)
    uv = torch.rand(200, 2, generator=gen, dtype=torch.float64)
    uv[:4] = torch.tensor([[0.5 / W, 0.5 / H], [1.5 / W, 1.5 / H], [0.0, 0.0], [1.0, 1.0]])
    m = binary_fixation_map(uv, (H, W), counts=True, placement="salient360", normalized=True)
    expected = torch.zeros(H, W)
    for u, v in uv.tolist():
        expected[int(v * H - 1), int(u * W - 1)] += 1  # Python's -1 is NumPy's -1
    torch.testing.assert_close(m[0, 0], expected)
    assert m[0, 0, 0, 0] >= 2 and m[0, 0, H - 1, W - 1] >= 2  # (0, 0) and (1, 1) both


def test_coordinate_round_trip():
    uv = torch.rand(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    uv[:, 0] = uv[:, 0].clamp(max=0.999)
    torch.testing.assert_close(lonlat_to_salient360(salient360_to_lonlat(uv)), uv)


def test_coordinate_shape_errors():
    with pytest.raises(ShapeError, match=r"uv must be \(\.\.\., 2\)"):
        salient360_to_lonlat(torch.zeros(3))
    with pytest.raises(ShapeError, match=r"lonlat must be \(\.\.\., 2\)"):
        lonlat_to_salient360(torch.zeros(3, 3))


# --- binary maps --------------------------------------------------------------------------------


def test_parse_names():
    assert parse_salient360_bin_name("HEsalmap_23_2048x1024_32b.bin") == Salient360BinInfo(
        "HEsalmap_23", 2048, 1024, None, 32
    )
    info = parse_salient360_bin_name("dir/1_PortoRiverside_2048x1024x500_32b.bin")
    assert (info.name, info.width, info.height, info.frames, info.bits) == (
        "1_PortoRiverside", 2048, 1024, 500, 32
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("salmap.bin", r"salmap.bin: file name must be NAME_\{W\}x\{H\}"),
        ("a_16x8_8b.bin", "must be 16, 32 or 64 bits, got 8"),
        ("a_0x8_32b.bin", "sizes in the file name must be positive"),
    ],
)
def test_parse_name_errors(name, match):
    with pytest.raises(DatasetFormatError, match=match):
        parse_salient360_bin_name(name)


@pytest.mark.parametrize(("bits", "dtype"), [(32, "<f4"), (64, "<f8"), (16, "<f2")])
def test_read_image_map_row_major(tmp_path, bits, dtype):
    data = np.arange(H * W, dtype=np.float64).reshape(H, W) / 16
    path = _write_bin(tmp_path / f"HEsalmap_3_{W}x{H}_{bits}b.bin", data, dtype)
    m = read_salient360_map(path)
    assert m.shape == (1, 1, H, W) and m.dtype == torch.float32
    # Row-major: the second value in the file is row 0, column 1.
    torch.testing.assert_close(m[0, 0], torch.from_numpy(data).float())


def test_read_map_wrong_byte_count_names_file_and_expected_size(tmp_path):
    path = _write_bin(tmp_path / f"Hsalmap_1_{W}x{H}_32b.bin", np.zeros(H * W - 1))
    with pytest.raises(DatasetFormatError, match=rf"Hsalmap_1_16x8_32b.bin: expected {H * W * 4} "
                       rf"bytes .* got {(H * W - 1) * 4}"):  # fmt: skip
        read_salient360_map(path)


def test_read_map_refuses_video_file(tmp_path):
    path = _write_bin(tmp_path / f"v_{W}x{H}x3_32b.bin", np.zeros((3, H, W)))
    with pytest.raises(DatasetFormatError, match="a video of 3 frames"):
        read_salient360_map(path)


def test_video_maps_read_frames_lazily(tmp_path):
    frames = np.random.default_rng(0).random((5, H, W))
    path = _write_bin(tmp_path / f"2_Diner_{W}x{H}x5_32b.bin", frames)
    video = Salient360VideoMaps(path)
    assert len(video) == 5 and video.hw == (H, W)
    expected = torch.from_numpy(frames).float()[:, None]
    torch.testing.assert_close(video[3], expected[3:4])
    torch.testing.assert_close(video[-1], expected[4:5])
    torch.testing.assert_close(video.read(1, 4), expected[1:4])
    torch.testing.assert_close(torch.cat(list(video)), expected)
    assert "5 frames" in repr(video)


def test_video_maps_errors(tmp_path):
    path = _write_bin(tmp_path / f"v_{W}x{H}x5_32b.bin", np.zeros((4, H, W)))
    with pytest.raises(DatasetFormatError, match=rf"expected {5 * H * W * 4} bytes .*x 5 frames"):
        Salient360VideoMaps(path)
    image = _write_bin(tmp_path / f"i_{W}x{H}_32b.bin", np.zeros((H, W)))
    with pytest.raises(DatasetFormatError, match="an image map"):
        Salient360VideoMaps(image)
    good = Salient360VideoMaps(_write_bin(tmp_path / f"g_{W}x{H}x2_32b.bin", np.zeros((2, H, W))))
    with pytest.raises(IndexError, match="frame 2 out of range"):
        good[2]
    with pytest.raises(ValueRangeError, match=r"0 <= start < stop <= 2"):
        good.read(1, 1)


def test_write_then_read_and_refuse_overwrite(tmp_path):
    maps = torch.rand(1, 1, H, W)
    path = write_salient360_map(tmp_path, "HEsalmap_7", maps)
    assert path.name == f"HEsalmap_7_{W}x{H}_32b.bin"
    assert path.stat().st_size == H * W * 4
    torch.testing.assert_close(read_salient360_map(path), maps)
    with pytest.raises(OutputExistsError, match="already exists"):
        write_salient360_map(tmp_path, "HEsalmap_7", maps)
    video = torch.rand(3, 1, H, W)
    vpath = write_salient360_map(tmp_path, "clip", video)
    assert vpath.name == f"clip_{W}x{H}x3_32b.bin"
    torch.testing.assert_close(Salient360VideoMaps(vpath).read(), video)
    with pytest.raises(ShapeError, match="pass video=True"):
        write_salient360_map(tmp_path, "x", video, video=False)
    with pytest.raises(ShapeError, match=r"\(T, 1, H, W\)"):
        write_salient360_map(tmp_path, "x", torch.rand(H, W))


# --- scanpaths ----------------------------------------------------------------------------------


def test_read_image_scanpaths_splits_observers(tmp_path):
    path = tmp_path / "HEscanpath_1.txt"
    path.write_text(IMAGE_SCANPATHS)
    paths = read_salient360_scanpaths(path)
    assert [len(p) for p in paths] == [3, 2]
    first = paths[0]
    assert first.uv.tolist() == [[0.5, 0.5], [0.25, 0.25], [0.999, 0.75]]  # as stored
    torch.testing.assert_close(
        first.lonlat[:2],
        torch.tensor([[0.0, 0.0], [-math.pi / 2, math.pi / 4]], dtype=torch.float64),
    )
    torch.testing.assert_close(
        first.start_s, torch.tensor([0.0, 0.3125, 0.79], dtype=torch.float64)
    )
    assert first.duration_s is None and first.start_frame is None
    assert paths[1].lonlat[0, 1] == pytest.approx((0.5 - 0.9) * math.pi)


def test_read_video_scanpaths(tmp_path):
    path = tmp_path / "1_PortoRiverside_fixations.csv"
    path.write_text(VIDEO_SCANPATHS)
    paths = read_salient360_scanpaths(path)
    assert [len(p) for p in paths] == [2, 1]
    torch.testing.assert_close(paths[0].duration_s, torch.tensor([0.2, 0.3], dtype=torch.float64))
    assert paths[0].start_frame.tolist() == [0, 7] and paths[0].end_frame.tolist() == [5, 15]
    assert paths[0].lonlat[1, 0] == pytest.approx(math.pi / 2)


def test_scanpaths_without_header_and_with_hash_header(tmp_path):
    body = IMAGE_SCANPATHS.split("\n", 1)[1]
    (tmp_path / "a.txt").write_text(body)
    (tmp_path / "b.txt").write_text("# " + IMAGE_SCANPATHS)
    a = read_salient360_scanpaths(tmp_path / "a.txt")
    b = read_salient360_scanpaths(tmp_path / "b.txt")
    assert len(a) == len(b) == 2
    torch.testing.assert_close(a[0].lonlat, b[0].lonlat)
    (tmp_path / "empty.txt").write_text("Idx, longitude, latitude, start timestamp\n")
    assert read_salient360_scanpaths(tmp_path / "empty.txt") == []


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("Idx, lon, lat, time\n0, 0.5, 0.5, 0\n", r"bad.txt:1: bad header 'Idx, lon, lat, time'"),
        (IMAGE_SCANPATHS + "2, 1.5, 0.5, 900\n", r"bad.txt:7: longitude must be in \[0, 1\]"),
        (IMAGE_SCANPATHS + "2, 0.5, -0.1, 900\n", r"bad.txt:7: latitude must be in \[0, 1\]"),
        (IMAGE_SCANPATHS + "2, 0.5, 0.5\n", "bad.txt:7: expected 4 comma-separated values, got 3"),
        (IMAGE_SCANPATHS + "2, 0.5, abc, 900\n", "bad.txt:7: not a number"),
        (IMAGE_SCANPATHS + "2.5, 0.5, 0.5, 900\n", "bad.txt:7: Idx must be an integer"),
        (IMAGE_SCANPATHS + "2, 0.5, 0.5, -1\n", "bad.txt:7: start timestamp must be >= 0"),
        (IMAGE_SCANPATHS + "2, nan, 0.5, 1\n", "bad.txt:7: longitude must be finite"),
        ("0, 0.5, 0.5\n", "bad.txt:1: expected 4 .image. or 7 .video. comma-separated values"),
        (VIDEO_SCANPATHS + "1, 0.5, 0.5, 10, 10, 9, 3\n", "bad.txt:5: end frame 3 is before"),
        (VIDEO_SCANPATHS + "1, 0.5, 0.5, 10, 10, 1.5, 3\n", "bad.txt:5: start frame must be a"),
    ],
)
def test_scanpath_errors_name_file_and_line(tmp_path, text, match):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(DatasetFormatError, match=match):
        read_salient360_scanpaths(path)


def test_missing_scanpath_file(tmp_path):
    with pytest.raises(ImageIOError, match=r"cannot read .*nope\.txt"):
        read_salient360_scanpaths(tmp_path / "nope.txt")


# --- the image dataset --------------------------------------------------------------------------


def test_image_dataset_pairs_files_by_number(tmp_path):
    stimuli, maps, scan = tmp_path / "Stimuli", tmp_path / "SalMaps", tmp_path / "Scanpaths"
    for d in (stimuli, maps, scan):
        d.mkdir()
    for n in (1, 12):
        write_image(stimuli / f"P{n}.png", torch.full((1, 3, H, W), n / 20))
        _write_bin(maps / f"HEsalmap_{n}_{W}x{H}_32b.bin", np.full((H, W), float(n)))
    (scan / "HEscanpath_12.txt").write_text(IMAGE_SCANPATHS)
    (stimuli / "readme.md").write_text("not a stimulus")
    data = Salient360Images(stimuli, maps, scan)
    assert len(data) == 2 and data.numbers == [1, 12]
    first, second = data[0], data[1]
    assert first.name == "1" and first.fixations is None
    assert float(first.saliency.mean()) == 1.0 and first.image.shape == (1, 3, H, W)
    assert second.fixations.shape == (5, 2) and second.times.shape == (5,)
    assert len(second.extra["scanpaths"]) == 2
    assert [s.name for s in data] == ["1", "12"]
    assert "fixation_map" not in second.extra


def test_image_dataset_fixation_maps_with_the_tools_placement(tmp_path):
    stimuli, maps, scan = tmp_path / "Stimuli", tmp_path / "SalMaps", tmp_path / "Scanpaths"
    for d in (stimuli, maps, scan):
        d.mkdir()
    write_image(stimuli / "P5.png", torch.zeros(1, 3, 4, 8))
    _write_bin(maps / f"HEsalmap_5_{W}x{H}_32b.bin", np.ones((H, W)))
    (scan / "HEscanpath_5.txt").write_text(IMAGE_SCANPATHS)
    uv = [(0.5, 0.5), (0.25, 0.25), (0.999, 0.75), (0.1, 0.9), (0.6, 0.4)]
    for placement, pixel in (
        ("salient360", lambda u, v: (int(v * H - 1), int(u * W - 1))),
        ("cell", lambda u, v: (int(v * H), int(u * W))),
    ):
        item = Salient360Images(stimuli, maps, scan, fixation_placement=placement)[0]
        fm = item.extra["fixation_map"]
        assert fm.shape == (1, 1, H, W)  # the saliency map's size, not the stimulus's
        expected = torch.zeros(H, W)
        for u, v in uv:
            expected[pixel(u, v)] += 1
        torch.testing.assert_close(fm[0, 0], expected)
    # Without maps the stimulus gives the size.
    item = Salient360Images(stimuli, None, scan, fixation_placement="salient360")[0]
    assert item.extra["fixation_map"].shape == (1, 1, 4, 8)
    with pytest.raises(ValueError, match="fixation_placement must be one of"):
        Salient360Images(stimuli, maps, scan, fixation_placement="tools")
    write_image(stimuli / "P5.png", torch.zeros(1, 3, 4, 6), overwrite=True)  # not 2:1
    with pytest.raises(ShapeError, match="hw"):
        Salient360Images(stimuli, None, scan, fixation_placement="cell")[0]


def test_image_dataset_errors(tmp_path):
    with pytest.raises(ImageIOError, match="not a directory"):
        Salient360Images(tmp_path / "missing")
    maps = tmp_path / "maps"
    maps.mkdir()
    _write_bin(maps / f"Hsalmap_3_{W}x{H}_32b.bin", np.zeros((H, W)))
    _write_bin(maps / f"HEsalmap_3_{W}x{H}_32b.bin", np.zeros((H, W)))
    with pytest.raises(DatasetFormatError, match="both carry the number 3"):
        Salient360Images(tmp_path, maps)
