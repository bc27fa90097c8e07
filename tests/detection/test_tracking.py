"""SphereTracker: tracks survive the seam and the poles, are held through misses and ahead of
their first detection, and are smoothed; settings and inputs are checked."""

from __future__ import annotations

import math

import pytest
import torch

from pano360._core import ShapeError, ValueRangeError
from pano360.detection import SphereTracker, frames_for_seconds, widen_boxes
from pano360.geometry import lonlat_to_xyz, xyz_to_lonlat

NONE = torch.zeros(0, 4)


def box(lon_deg: float, lat_deg: float, size_deg: float = 10.0) -> torch.Tensor:
    return torch.tensor(
        [[math.radians(lon_deg), math.radians(lat_deg)] + [math.radians(size_deg)] * 2]
    )


def run(tracker, frames):
    out = []
    for i, boxes in enumerate(frames):
        out += tracker.push(i, boxes, torch.ones(len(boxes)))
    return out + tracker.flush()


def angle_deg(a: torch.Tensor, b: torch.Tensor) -> float:
    u, v = lonlat_to_xyz(a[..., :2].double()), lonlat_to_xyz(b[..., :2].double())
    return math.degrees(float(torch.acos((u * v).sum().clamp(-1, 1))))


def test_convention_a_face_over_the_pole_keeps_its_track():
    # Up the meridian 30 degrees east, over the north pole, down the meridian at -150.
    path = [box(30, lat) for lat in (70, 76, 82, 88)] + [box(-150, lat) for lat in (86, 80, 74)]
    out = run(SphereTracker(max_missed=2), path)
    assert [tracks.ids.tolist() for _, tracks in out] == [[0]] * len(path)
    assert all(tracks.detected.all() for _, tracks in out)


def test_convention_a_face_across_the_seam_keeps_its_track():
    path = [box(lon, 5) for lon in (172, 176, 180, -176, -172)]
    out = run(SphereTracker(max_missed=0), path)
    assert [tracks.ids.tolist() for _, tracks in out] == [[0]] * len(path)


def test_missed_frames_are_bridged_at_the_predicted_position():
    # A face moving 4 degrees per frame east, missed in frames 3 and 4.
    lons = [0, 4, 8, None, None, 20]
    frames = [NONE if lon is None else box(lon, 0) for lon in lons]
    out = run(SphereTracker(max_missed=2, smoothing=1.0), frames)
    assert [t.ids.tolist() for _, t in out] == [[0]] * 6
    assert [t.detected.tolist() for _, t in out] == [[True]] * 3 + [[False]] * 2 + [[True]]
    # While missed, the box moves on at the track's speed and grows to cover the uncertainty.
    for k, (_, tracks) in enumerate(out[3:5], start=3):
        assert angle_deg(tracks.boxes[0], box(4 * k, 0)[0]) < 0.5
        assert tracks.boxes[0, 2] > math.radians(10)
        assert math.isnan(tracks.scores[0])


def test_a_track_is_dropped_after_max_missed_frames():
    frames = [box(0, 0), NONE, NONE, NONE, box(0, 0)]
    out = run(SphereTracker(max_missed=2), frames)
    assert [t.ids.tolist() for _, t in out] == [[0], [0], [0], [], [1]]


def test_lead_reports_a_track_before_its_first_detection():
    frames = [NONE, NONE, NONE, box(40, -20), box(41, -20)]
    tracker = SphereTracker(max_missed=0, lead=2)
    first = tracker.push(0, NONE, torch.ones(0))
    assert first == []  # held back: a track may start within `lead` frames
    out = first
    for i, boxes in enumerate(frames[1:], start=1):
        out += tracker.push(i, boxes, torch.ones(len(boxes)))
    out += tracker.flush()
    assert [item for item, _ in out] == [0, 1, 2, 3, 4]
    assert [t.ids.tolist() for _, t in out] == [[], [0], [0], [0], [0]]
    assert [t.detected.tolist() for _, t in out][1:3] == [[False], [False]]


def test_two_faces_keep_their_own_tracks_and_smoothing_damps_jitter():
    jitter = [0.6, -0.6] * 4
    frames = [torch.cat((box(10 + j, 0), box(-100, 30 - j))) for j in jitter]
    out = run(SphereTracker(max_missed=1, smoothing=0.3), frames)
    assert [t.ids.tolist() for _, t in out] == [[0, 1]] * len(frames)
    spread = [math.degrees(float(t.boxes[0, 0])) for _, t in out[2:]]
    assert max(spread) - min(spread) < 1.2  # the detections jump by 1.2 degrees


def test_far_detection_starts_a_new_track():
    out = run(SphereTracker(max_missed=3), [box(0, 0), box(60, 0)])
    assert out[1][1].ids.tolist() == [0, 1]  # track 0 held (missed), track 1 new


def test_frames_for_seconds():
    assert frames_for_seconds(0.5, 30) == 15
    assert frames_for_seconds(0.01, 10) == 1
    assert frames_for_seconds(0, 24) == 0
    with pytest.raises(ValueRangeError, match="fps"):
        frames_for_seconds(0.5, 0)


def test_widen_boxes():
    out = widen_boxes(box(0, 0, 100), 2.0)
    assert out[0, 2] == pytest.approx(0.95 * math.pi) and out[0, 0] == 0
    with pytest.raises(ValueRangeError, match="scale"):
        widen_boxes(box(0, 0), 0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_missed": -1}, "max_missed"),
        ({"max_missed": 1.5}, "max_missed"),
        ({"max_missed": 1, "lead": -2}, "lead"),
        ({"max_missed": 1, "gate": 0}, "gate"),
        ({"max_missed": 1, "smoothing": 0}, "smoothing"),
        ({"max_missed": 1, "smoothing": 1.5}, "smoothing"),
    ],
)
def test_settings_are_checked(kwargs, match):
    with pytest.raises(ValueRangeError, match=match):
        SphereTracker(**kwargs)


def test_push_checks_its_inputs():
    tracker = SphereTracker(max_missed=1)
    with pytest.raises(ShapeError, match=r"boxes must be \(N, 4\) BFoV, got \(1, 5\)"):
        tracker.push(0, torch.zeros(1, 5), torch.ones(1))
    with pytest.raises(ShapeError, match=r"scores must be \(1,\)"):
        tracker.push(0, box(0, 0), torch.ones(2))
    with pytest.raises(ValueRangeError, match="boxes"):
        tracker.push(0, torch.tensor([[0.0, 0.0, -0.1, 0.1]]), torch.ones(1))
    assert repr(tracker).startswith("SphereTracker(max_missed=1, lead=0")


def test_frames_not_searched_follow_the_tracks_without_counting_misses():
    tracker = SphereTracker(max_missed=0, smoothing=1.0)
    out = []
    for i, lon in enumerate([0, 3, None, None, 12, None]):
        boxes = None if lon is None else box(lon, 0)
        out += tracker.push(i, boxes, None if lon is None else torch.ones(1))
    assert [t.ids.tolist() for _, t in out] == [[0]] * 6  # max_missed=0, yet never dropped
    assert [bool(t.detected[0]) for _, t in out] == [True, True, False, False, True, False]
    assert angle_deg(out[3][1].boxes[0], box(9, 0)[0]) < 0.5  # moved on at 3 degrees a frame


def test_held_frames_between_two_detections_are_interpolated_across_the_seam():
    # Offline, the frames the detector skipped (or missed the face in) lie between two known
    # detections: their box is interpolated, not predicted. The face is still (velocity 0 from
    # its first detection), then jumps 8 degrees across the seam in 4 frames, and grows.
    tracker = SphereTracker(max_missed=5, lead=4, smoothing=1.0)
    frames = [box(176, 10), None, NONE, None, box(-176, 14, 14.0), None]
    out = []
    for i, boxes in enumerate(frames):
        out += tracker.push(i, boxes, None if boxes is None else torch.ones(len(boxes)))
    out += tracker.flush()
    assert [t.ids.tolist() for _, t in out] == [[0]] * 6
    assert [bool(t.detected[0]) for _, t in out] == [True, False, False, False, True, False]
    start, end = (lonlat_to_xyz(b[0, :2].double()) for b in (box(176, 10), box(-176, 14)))
    for k in (1, 2, 3):
        t = k / 4
        centre = (1 - t) * start + t * end
        got = out[k][1].boxes[0]
        assert angle_deg(got, xyz_to_lonlat(centre / centre.norm())) < 1e-6
        assert got[2:].tolist() == pytest.approx([math.radians(10 + 4 * t)] * 2)
    # Without lead nothing is held back: the skipped frames keep their predicted boxes.
    live = run(SphereTracker(max_missed=5, smoothing=1.0), [box(176, 10), NONE, box(-176, 14)])
    assert live[1][1].boxes[0].tolist() == pytest.approx(box(176, 10)[0].double().tolist())
