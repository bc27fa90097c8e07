"""Video saliency data: the ECCV'18 layout, clips for training, synthetic videos."""

from __future__ import annotations

import logging
import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from pano360._core import OutputExistsError, ShapeError, ValueRangeError
from pano360.data import (
    DatasetFormatError,
    ECCV18Videos,
    FolderVideos,
    Salient360Videos,
    SyntheticSaliencyVideos,
    VideoSaliencyClips,
    gaze_saliency_map,
    write_eccv18_videos,
    write_saliency_sample,
    write_salient360_map,
)
from pano360.geometry import erp_directions, lonlat_to_xyz, resize_erp
from pano360.io import write_image, write_video
from pano360.saliency import cc, equator_bias, fixation_map

HW = (16, 32)


def _synthetic(n_videos=2, n_frames=12, seed=0, **kw):
    return SyntheticSaliencyVideos(n_videos, n_frames, HW, seed, n_viewers=4, **kw)


def _eccv18(root, vinfo, frames):
    """Write an ECCV'18 dataset: ``frames`` {video: [frame ids]} as random jpgs."""
    for video, ids in frames.items():
        (root / video).mkdir(parents=True)
        for fid in ids:
            write_image(root / video / f"{fid}.jpg", torch.rand(1, 3, *HW))
    (root / "vinfo.pkl").write_bytes(pickle.dumps(vinfo))
    return root


# --- targets ------------------------------------------------------------------------------------


def test_gaze_maps_are_the_mean_of_unit_peak_gaussians():
    point = torch.tensor([[0.3, 1.2]], dtype=torch.float64)
    other = torch.tensor([[-2.0, -0.4]], dtype=torch.float64)
    one = fixation_map(point, HW, 9.0, normalize="none")
    both = gaze_saliency_map(torch.cat([point, point, other]), HW)
    expected = (2 * one + fixation_map(other, HW, 9.0, normalize="none")) / 3
    torch.testing.assert_close(both, expected)
    # Unit peak: the pixel value at distance d is exp(-d^2 / 2 sigma^2).
    d = torch.acos((erp_directions(HW, dtype=torch.float64) @ lonlat_to_xyz(point)[0]).clamp(-1, 1))
    torch.testing.assert_close(
        gaze_saliency_map(point, HW)[0, 0].double(),
        torch.exp(-(d**2) / (2 * math.radians(9.0) ** 2)),
        atol=1e-5,  # fixation_map cuts the Gaussian at 5 sigma (below 4e-6)
        rtol=1e-5,
    )
    empty = gaze_saliency_map([torch.zeros(0, 2), point], HW)
    assert torch.equal(empty[0], torch.zeros(1, *HW)) and empty[1].max() > 0.8


# --- the ECCV'18 layout -------------------------------------------------------------------------


def test_convention_eccv18_x_runs_east_from_the_left_edge_and_y_down_from_the_top(tmp_path):
    # (x, y) = (0.75, 0.25): three quarters across (lon +90 degrees), a quarter down (lat +45).
    root = _eccv18(tmp_path, {"v": {"0001": [(0.75, 0.25)]}}, {"v": ["0001"]})
    data = ECCV18Videos(root)
    lon, lat = data.gaze("v", 1)[0].tolist()
    assert lon == pytest.approx(math.pi / 2) and lat == pytest.approx(math.pi / 4)
    target = data.target_maps("v", [1], (64, 128))[0, 0]
    row, col = divmod(int(target.argmax()), 128)
    assert (row, col) in [(15, 95), (15, 96), (16, 95), (16, 96)]


def test_eccv18_round_trip_through_the_writer(tmp_path):
    source = _synthetic()
    vinfo = write_eccv18_videos(tmp_path / "ds", source, quality=98)
    data = ECCV18Videos(tmp_path / "ds")
    assert vinfo.name == "vinfo.pkl" and data.videos == source.videos
    for video in data.videos:
        assert data.frame_indices(video).tolist() == list(range(12))
        for i in (0, 7):
            torch.testing.assert_close(data.gaze(video, i), source.gaze(video, i))
        torch.testing.assert_close(
            data.target_maps(video, [3, 11], HW), source.target_maps(video, [3, 11], HW)
        )
        diff = (data.read_frames(video, [5]) - source.read_frames(video, [5])).abs().mean()
        assert diff < 0.03  # JPEG
    with pytest.raises(OutputExistsError, match=r"vinfo\.pkl' already exists"):
        write_eccv18_videos(tmp_path / "ds", source)
    write_eccv18_videos(tmp_path / "ds", source, overwrite=True, progress=True)


def test_eccv18_frames_without_gaze_are_skipped_counted_and_logged(tmp_path, caplog):
    vinfo = {"v": {"0001": [(0.5, 0.5)], "0002": [], "0003": np.array([[0.1, 0.2]])}}
    root = _eccv18(tmp_path, vinfo, {"v": ["0001", "0002", "0003", "0004"]})
    with caplog.at_level(logging.INFO, logger="pano360.data"):
        data = ECCV18Videos(root)
    assert data.frame_indices("v").tolist() == [1, 3]
    assert data.skipped == {"v": 2}
    assert "skipped 2 frames without gaze" in caplog.text
    assert data.gaze("v", 2) is None and data.gaze("v", 4) is None
    assert torch.equal(data.target_maps("v", [2, -3], HW), torch.zeros(2, 1, *HW))


@pytest.mark.parametrize(
    ("vinfo", "frames", "match"),
    [
        ({"v": {"0001": [(0.5, 0.5)]}}, {"v": ["0001"], "w": ["0001"]}, "video 'w' has no gaze"),
        ({"v": {"0001": [(0.5, 0.5)]}, "w": {}}, {"v": ["0001"]}, "missing frame folder .*'w'"),
        ({"v": {"0001": []}}, {"v": ["0001"]}, "video 'v' has no frame with gaze"),
        ({"v": {"0001": [(0.5, 0.5)], "0002": [(0.5, 0.5)]}}, {"v": ["0001"]}, "0002.jpg: missing"),
        ([("v", 1)], {"v": ["0001"]}, r"vinfo\.pkl: expected a dict"),
        ({"v": [(0.5, 0.5)]}, {"v": ["0001"]}, "video 'v' must map frame ids"),
        ({"v": {"0001": [(0.5, 1.5)]}}, {"v": ["0001"]}, r"frame '0001': gaze point 0 .*\[0, 1\]"),
        ({"v": {"0001": [(0.5,)]}}, {"v": ["0001"]}, "frame '0001': gaze must be a list of"),
        ({"v": {"0001": ["a b"]}}, {"v": ["0001"]}, "frame '0001': gaze must be a list of"),
        ({"v": {"one": [(0.5, 0.5)]}}, {"v": ["0001"]}, "frame 'one': a frame id must be a num"),
        ({"v": {"0001": [(0.5, 0.5)]}}, {"v": ["0001", "x"]}, r"x\.jpg: a frame's name must"),
    ],
)
def test_eccv18_format_errors_name_the_file_video_and_frame(tmp_path, vinfo, frames, match):
    root = _eccv18(tmp_path, vinfo, frames)
    with pytest.raises(DatasetFormatError, match=match):
        ECCV18Videos(root)


def test_eccv18_a_corrupt_or_vanished_frame_is_named_when_read(tmp_path):
    root = _eccv18(
        tmp_path, {"v": {"0001": [(0.5, 0.5)], "0002": [(0.5, 0.5)]}}, {"v": ["0001", "0002"]}
    )
    data = ECCV18Videos(root)
    (root / "v" / "0001.jpg").write_bytes(b"not a jpeg")
    (root / "v" / "0002.jpg").unlink()
    with pytest.raises(DatasetFormatError, match=r"0001\.jpg: corrupt frame"):
        data.read_frames("v", [1])
    with pytest.raises(DatasetFormatError, match=r"0002\.jpg: missing frame"):
        VideoSaliencyClips(data, frame_step=1, size=HW)[1]


def test_eccv18_a_refused_pickle_stops_the_reader(tmp_path):
    root = _eccv18(tmp_path, {}, {})
    (root / "vinfo.pkl").write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    with pytest.raises(DatasetFormatError, match=r"refused to unpickle the global 'os\.system'"):
        ECCV18Videos(root)


# --- clips --------------------------------------------------------------------------------------


def test_clips_shapes_dtypes_and_frame_grid():
    source = _synthetic(n_frames=23)
    clips = VideoSaliencyClips(source, clip_len=3, frame_step=2, size=(8, 16), prior_offset=4)
    # Per video: starts 0, 6, 12, 18 (every 3 sampled frames); 18 + 4 = 22 is the last frame.
    assert len(clips) == 8
    assert [clips.clip(i)[1] for i in range(4)] == [
        [0, 2, 4],
        [6, 8, 10],
        [12, 14, 16],
        [18, 20, 22],
    ]
    item = clips[5]
    assert item["video"] == "video_001"
    assert item["frames"].shape == (3, 3, 8, 16) and item["frames"].dtype == torch.float32
    assert item["saliency"].shape == item["prior"].shape == (3, 1, 8, 16)
    assert item["saliency"].dtype == item["prior"].dtype == torch.float32
    assert item["frame_index"].dtype == torch.int64 and item["frame_index"].tolist() == [6, 8, 10]
    assert item["frames"].min() >= 0 and item["frames"].max() <= 1


def test_clips_prior_is_the_target_of_the_frame_prior_offset_earlier():
    source = _synthetic(n_frames=8)
    clips = VideoSaliencyClips(source, frame_step=1, size=HW, prior_offset=5)
    items = [clips[i] for i in range(len(clips))]
    by_frame = {(item["video"], int(item["frame_index"][0])): item for item in items}
    for (video, k), item in by_frame.items():
        if k >= 5:
            assert torch.equal(item["prior"], by_frame[video, k - 5]["saliency"])
        else:
            assert torch.equal(item["prior"], torch.zeros(1, 1, *HW))
        assert item["saliency"].max() > 0.2
    assert not VideoSaliencyClips(source, size=HW, prior_offset=None)[3]["prior"].any()


def test_clips_sample_by_fps_when_the_source_has_one():
    source = _synthetic(n_frames=30, fps=30.0)
    clips = VideoSaliencyClips(source, clip_len=2, fps=10.0, size=HW)
    assert clips.clip(0)[1] == [0, 3] and clips.clip(1)[1] == [6, 9]


def test_clips_resize_frames_on_the_sphere_and_make_maps_at_the_size():
    source = _synthetic(n_videos=1, n_frames=1)
    item = VideoSaliencyClips(source, size=(8, 16))[0]
    torch.testing.assert_close(
        item["frames"], resize_erp(source.read_frames("video_000", [0]), (8, 16))
    )
    torch.testing.assert_close(item["saliency"], source.target_maps("video_000", [0], (8, 16)))


def test_clips_through_a_dataloader_with_two_workers():
    clips = VideoSaliencyClips(_synthetic(n_frames=10), clip_len=2, frame_step=2, size=(8, 16))
    loader = DataLoader(clips, batch_size=3, num_workers=2)
    batches = list(loader)
    assert sum(len(b["video"]) for b in batches) == len(clips) == 4
    first = batches[0]
    assert first["frames"].shape == (3, 2, 3, 8, 16) and first["frame_index"].shape == (3, 2)
    for j in range(3):
        assert torch.equal(first["frames"][j], clips[j]["frames"])
        assert torch.equal(first["prior"][j], clips[j]["prior"])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"clip_len": 0}, ValueRangeError, "clip_len must be a positive integer"),
        ({"frame_step": 1.5}, ValueRangeError, "frame_step must be an integer"),
        ({"size": (8, 8)}, ShapeError, "size must satisfy W == 2H"),
        ({"prior_offset": 0}, ValueRangeError, "prior_offset must be a positive integer"),
        ({"fps": -1.0}, ValueRangeError, "fps must be"),
        ({"clip_stride": 0}, ValueRangeError, "clip_stride must be a positive integer"),
    ],
)
def test_clips_parameter_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        VideoSaliencyClips(_synthetic(), **kwargs)
    with pytest.raises(TypeError, match="source must be a VideoSaliencySource"):
        VideoSaliencyClips([1, 2, 3])


# --- synthetic videos ---------------------------------------------------------------------------


def test_synthetic_videos_are_deterministic_and_independent_of_the_count():
    a, b = _synthetic(n_videos=2), _synthetic(n_videos=3)
    assert torch.equal(a.read_frames("video_001", [4]), b.read_frames("video_001", [4]))
    assert torch.equal(a.gaze("video_001", 9), b.gaze("video_001", 9))
    other = _synthetic(seed=1)
    assert not torch.equal(a.gaze("video_001", 9), other.gaze("video_001", 9))
    assert a.gaze("video_000", 12) is None and a.gaze("video_000", -1) is None
    with pytest.raises(KeyError, match="no video named 'nope'"):
        a.frame_indices("nope")


def test_synthetic_objects_and_gaze_reach_beyond_60_degrees_of_latitude():
    source = SyntheticSaliencyVideos(24, 30, HW, seed=3, n_viewers=6)
    objects = np.concatenate([source.plan(v)["objects"][..., 1].ravel() for v in source.videos])
    gaze = np.concatenate([source.plan(v)["gaze"][..., 1].ravel() for v in source.videos])
    for lat in (objects, gaze):
        assert (np.abs(lat) > math.radians(60)).mean() > 0.03
        assert (lat > math.radians(60)).any() and (lat < -math.radians(60)).any()


def test_polar_videos_circle_the_poles_and_leave_the_other_videos_unchanged():
    plain = _synthetic(n_videos=4, n_frames=20)
    mixed = _synthetic(n_videos=4, n_frames=20, polar_share=0.5)
    assert [mixed.is_polar(v) for v in mixed.videos] == [False, True, False, True]
    assert not any(plain.is_polar(v) for v in plain.videos)
    for video in ("video_000", "video_002"):  # not polar: as without the option
        assert not mixed.plan(video)["polar"]
        np.testing.assert_array_equal(mixed.plan(video)["gaze"], plain.plan(video)["gaze"])
        assert torch.equal(mixed.read_frames(video, [3]), plain.read_frames(video, [3]))
    lo, hi = math.radians(60), math.radians(85)
    for video in ("video_001", "video_003"):
        plan = mixed.plan(video)
        assert plan["polar"]
        lat = np.abs(plan["objects"][..., 1])
        assert lat.min() >= lo - 1e-9 and lat.max() <= hi + 1e-9
        # Each photo keeps its latitude and moves in longitude.
        np.testing.assert_allclose(lat, np.broadcast_to(lat[:1], lat.shape), atol=1e-9)
        assert np.abs(np.diff(plan["objects"][..., 0], axis=0)).max() > 0
        # Most frames: the median viewer looks into the 60-85 band.
        median = np.median(np.abs(plan["gaze"][..., 1]), axis=1)
        assert ((median >= lo) & (median <= hi)).mean() > 0.5
    narrow = _synthetic(n_videos=1, polar_share=1.0, polar_lat_deg=(70.0, 71.0))
    lat = np.degrees(np.abs(narrow.plan("video_000")["objects"][..., 1]))
    assert lat.min() >= 70 - 1e-6 and lat.max() <= 71 + 1e-6


def test_synthetic_gaze_follows_the_objects_a_frame_predicts_it_better_than_the_equator():
    source = SyntheticSaliencyVideos(6, 8, (32, 64), seed=5, n_viewers=12)
    frame_score, equator_score = [], []
    prior = equator_bias((32, 64))
    for video in source.videos:
        frames = source.read_frames(video, [0, 7])
        target = source.target_maps(video, [0, 7], (32, 64))
        # A saliency guess from the pixels alone: distance from the background's median colour,
        # blurred (seam wrapped), no knowledge of the generator's state.
        background = frames.flatten(2).median(dim=2).values[..., None, None]
        contrast = (frames - background).abs().sum(1, keepdim=True)
        blurred = F.avg_pool2d(F.pad(contrast, (3, 3, 0, 0), mode="circular"), (7, 7), 1, (3, 0))
        frame_score.append(cc(blurred, target))
        equator_score.append(cc(prior.expand_as(target), target))
    frame_cc, equator_cc = torch.cat(frame_score).mean(), torch.cat(equator_score).mean()
    assert frame_cc > equator_cc + 0.15, (frame_cc, equator_cc)
    # Viewers attend objects most of the time, and their gaze is near the attended object.
    plan = source.plan("video_000")
    attended = plan["attended"]
    assert 0.6 < (attended >= 0).mean() < 0.95


def test_synthetic_parameter_errors():
    with pytest.raises(ValueRangeError, match="n_videos must be a positive integer"):
        SyntheticSaliencyVideos(0, 3, HW)
    with pytest.raises(ShapeError, match="size must satisfy W == 2H"):
        SyntheticSaliencyVideos(1, 3, (8, 8))
    with pytest.raises(ValueRangeError, match="free_share must be"):
        SyntheticSaliencyVideos(1, 3, HW, free_share=1.5)
    with pytest.raises(ValueError, match="background must be one of"):
        SyntheticSaliencyVideos(1, 3, HW, background="space")
    with pytest.raises(ValueRangeError, match="polar_share must be"):
        SyntheticSaliencyVideos(1, 3, HW, polar_share=-0.1)
    with pytest.raises(ValueRangeError, match="polar_lat_deg"):
        SyntheticSaliencyVideos(1, 3, HW, polar_lat_deg=(60.0, 95.0))


# --- video files: the generic folder format and Salient360! ---------------------------------------


def _grey_video(path, n=6, fps=10):
    """A video whose frame k is a uniform grey of k / n (survives any codec)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = torch.arange(n, dtype=torch.float32)[:, None, None, None].expand(n, 3, *HW) / n
    write_video(path, frames.contiguous(), fps=fps)
    return path


def test_folder_videos_with_fixation_times(tmp_path):
    _grey_video(tmp_path / "videos" / "clip.mp4")
    fix = torch.tensor([[0.5, 0.2], [-1.0, -1.2], [2.0, 0.0]], dtype=torch.float64)
    write_saliency_sample(tmp_path, "clip", fixations=fix, times=torch.tensor([0.05, 0.35, 0.38]))
    data = FolderVideos(tmp_path, window_s=0.1)  # frame k pools [k / 10, (k + 1) / 10)
    assert data.videos == ("clip",) and data.fps("clip") == pytest.approx(10.0)
    assert data.frame_indices("clip").tolist() == [0, 3]
    torch.testing.assert_close(data.gaze("clip", 3), fix[1:])
    torch.testing.assert_close(data.target_maps("clip", [3], HW), gaze_saliency_map(fix[1:], HW))
    frames = data.read_frames("clip", [3, 0])
    assert frames.shape == (2, 3, *HW)
    assert frames[0].mean().item() == pytest.approx(0.5, abs=0.02)
    assert frames[1].mean().item() == pytest.approx(0.0, abs=0.02)
    clips = VideoSaliencyClips(data, frame_step=3, size=(8, 16), prior_offset=3)
    assert len(clips) == 2 and torch.equal(clips[1]["prior"], clips[0]["saliency"])
    with pytest.raises(DatasetFormatError, match=r"clip\.mp4: missing frame 9 \(the video has 6"):
        data.read_frames("clip", [9])


def test_folder_videos_with_map_files_are_memory_mapped_and_resized(tmp_path):
    _grey_video(tmp_path / "videos" / "clip.mp4", n=4)
    maps = torch.rand(4, 1, 8, 16)
    write_saliency_sample(tmp_path, "clip", saliency=maps)
    data = FolderVideos(tmp_path)
    assert data.frame_indices("clip").tolist() == [0, 1, 2, 3] and data.gaze("clip", 0) is None
    torch.testing.assert_close(data.target_maps("clip", [2, 7], (8, 16))[0], maps[2])
    assert not data.target_maps("clip", [2, 7], (8, 16))[1].any()
    torch.testing.assert_close(data.target_maps("clip", [1], (4, 8)), resize_erp(maps[1:2], (4, 8)))


def test_folder_videos_errors(tmp_path):
    _grey_video(tmp_path / "videos" / "a.mp4", n=2)
    with pytest.raises(DatasetFormatError, match=r"a\.mp4: video without gaze"):
        FolderVideos(tmp_path)
    write_saliency_sample(tmp_path, "a", fixations=torch.zeros(1, 2))
    with pytest.raises(DatasetFormatError, match=r"a\.csv: a video's fixations need times"):
        FolderVideos(tmp_path)
    write_saliency_sample(
        tmp_path, "a", fixations=torch.zeros(1, 2), times=torch.tensor([9.0]), overwrite=True
    )
    with pytest.raises(DatasetFormatError, match=r"a\.csv: no fixation falls within the video"):
        FolderVideos(tmp_path)
    (tmp_path / "videos" / "a.mp4").write_bytes(b"garbage")
    with pytest.raises(DatasetFormatError, match=r"a\.mp4: corrupt video"):
        FolderVideos(tmp_path)
    with pytest.raises(DatasetFormatError, match="no video named 'b'"):
        FolderVideos(tmp_path, videos=["b"])


def test_salient360_videos_from_scanpaths_or_maps(tmp_path):
    _grey_video(tmp_path / "stimuli" / "3_Cows.mp4", n=5)
    _grey_video(tmp_path / "stimuli" / "4_Other.mp4", n=5)  # neither scanpaths nor maps: left out
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "3_Cows_fixations.csv").write_text(
        "Idx, longitude, latitude, start timestamp, duration, start frame, end frame\n"
        "0, 0.75, 0.25, 0, 100, 1, 2\n"
        "1, 0.5, 0.5, 100, 100, 2, 2\n"
        "0, 0.25, 0.5, 0, 100, 4, 4\n"
    )
    data = Salient360Videos(tmp_path / "stimuli", scanpaths=tmp_path / "scan")
    assert data.videos == ("3_Cows",) and data.frame_indices("3_Cows").tolist() == [1, 2, 4]
    assert data.gaze("3_Cows", 2).shape == (2, 2)
    lon, lat = data.gaze("3_Cows", 1)[0].tolist()
    assert lon == pytest.approx(math.pi / 2) and lat == pytest.approx(math.pi / 4)
    (tmp_path / "maps").mkdir()
    maps = torch.rand(5, 1, 8, 16)
    write_salient360_map(tmp_path / "maps", "3_Cows", maps)
    by_maps = Salient360Videos(tmp_path / "stimuli", maps=tmp_path / "maps")
    assert by_maps.frame_indices("3_Cows").tolist() == [0, 1, 2, 3, 4]
    torch.testing.assert_close(by_maps.target_maps("3_Cows", [3], (8, 16)), maps[3:4])
    with pytest.raises(ValueError, match="needs scanpaths or maps"):
        Salient360Videos(tmp_path / "stimuli")
