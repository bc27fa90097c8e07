"""MTCNN on perspective images: it finds the faces of the example panorama; stages and contracts."""

import json
import math
from pathlib import Path

import pytest
import torch

from pano360.detection import (
    FaceCandidates,
    MTCNNFaceDetector,
    crop_candidates,
    detect_faces_planar,
    mtcnn_pyramid_scales,
    mtcnn_stage1,
    mtcnn_stage2,
    mtcnn_stage3,
    pnet_map_to_boxes,
)
from pano360.errors import ShapeError, ValueRangeError
from pano360.geometry import erp_to_perspective, lonlat_to_xyz, rotation_matrix
from pano360.io import read_image
from pano360.models import create_model

ROOT = Path(__file__).resolve().parents[2]
META = json.loads((ROOT / "examples" / "panorama.json").read_text())
FACES = {p["name"]: p["face"] for p in META["placements"] if "face" in p}
VIEW = 160  # pixels; the view's fov is 2.5 times the face's, so faces are ~62 px wide
FOV_FACTOR = 2.5


@pytest.fixture(scope="module")
def nets():
    return tuple(
        create_model(n, pretrained=True) for n in ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet")
    )


@pytest.fixture(scope="module")
def erp():
    return read_image(ROOT / "examples" / "panorama.jpg")


@pytest.fixture(scope="module")
def views(erp):
    """(8, 3, 160, 160) views of the example panorama, each aimed at one face, rolled upright."""
    lon, lat, fov_x, _, roll = (
        torch.tensor([f["rbfov"][i] for f in FACES.values()]) for i in range(5)
    )
    rad = torch.deg2rad
    return erp_to_perspective(
        erp, rad(FOV_FACTOR * fov_x), (VIEW, VIEW), yaw=rad(lon), pitch=rad(lat), roll=rad(roll)
    )


@pytest.fixture(scope="module")
def found(views, nets):
    return dict(zip(FACES, detect_faces_planar(views, nets=nets), strict=True))


@pytest.mark.parametrize("name", list(FACES))
def test_finds_the_face_in_a_view_aimed_at_it(name, found):
    face = FACES[name]
    fov_x, fov_y = (math.radians(v) for v in face["rbfov"][2:4])
    view_tan = math.tan(FOV_FACTOR * fov_x / 2)
    width = VIEW * math.tan(fov_x / 2) / view_tan  # expected face size in view pixels
    height = VIEW * math.tan(fov_y / 2) / view_tan
    det = found[name]
    assert len(det.boxes) == 1, det.boxes  # one face in the view, one detection
    box, score, points = det.boxes[0], det.scores[0], det.landmarks[0]
    assert score > 0.99
    centre = (box[:2] + box[2:]) / 2
    expected = (VIEW - 1) / 2  # the view is aimed at the face centre
    assert (centre - expected).abs().max() < 0.15 * width, (centre, width)
    assert 0.8 < (box[2] - box[0]) / width < 1.25
    assert 0.8 < (box[3] - box[1]) / height < 1.25
    assert ((points >= box[:2]) & (points <= box[2:])).all()


@pytest.mark.parametrize("name", ["astronaut_front", "grace_hopper_35n", "astronaut_68n"])
def test_face_off_centre_in_a_wide_view_is_where_the_camera_model_puts_it(name, erp, nets):
    """Pins x = column, y = row and the pixel-centre origin end to end (not a centred square)."""
    face = FACES[name]
    lon, lat, fov_x, _, roll = (math.radians(v) for v in face["rbfov"])
    h, w, fov = 150, 220, 3.5 * fov_x
    yaw, pitch = lon - 0.22 * fov, lat + 0.1 * fov  # the face lands right of and below centre
    view = erp_to_perspective(erp, fov, (h, w), yaw=yaw, pitch=pitch, roll=roll)
    # Where the pinhole model of pano360.geometry.conventions puts the face centre.
    cam = rotation_matrix(yaw, pitch, roll, dtype=torch.float64).T @ lonlat_to_xyz(
        torch.tensor([lon, lat], dtype=torch.float64)
    )
    f = (w / 2) / math.tan(fov / 2)
    u, v = (w - 1) / 2 + f * cam[0] / cam[2], (h - 1) / 2 - f * cam[1] / cam[2]
    assert u > w / 2 + 20 and v > h / 2 + 5
    det = detect_faces_planar(view, nets=nets)[0]
    width = w * math.tan(fov_x / 2) / math.tan(fov / 2)
    assert len(det.boxes) == 1
    centre = (det.boxes[0, :2] + det.boxes[0, 2:]) / 2
    assert abs(centre[0] - u) < 0.15 * width and abs(centre[1] - v) < 0.15 * width, (centre, u, v)


@pytest.mark.parametrize("name", list(FACES))
def test_convention_landmarks_are_xy_in_image_order(name, found):
    """Eyes left to right and above the nose, the nose above the mouth: (x, y), upright images."""
    (eye_l, eye_r, nose, mouth_l, mouth_r) = found[name].landmarks[0]
    assert eye_l[0] < nose[0] < eye_r[0] and mouth_l[0] < mouth_r[0]
    assert max(eye_l[1], eye_r[1]) < nose[1] < min(mouth_l[1], mouth_r[1])


def test_stages_compose_to_detect_faces_planar(views, nets, found):
    pnet, rnet, onet = nets
    images = views[:3]
    with torch.no_grad():
        c1 = mtcnn_stage1(pnet, images, 20, 0.6, 0.709)
        c2 = mtcnn_stage2(rnet, crop_candidates(images, c1, 24), c1, 0.7)
        c3 = mtcnn_stage3(onet, crop_candidates(images, c2, 48), c2, 0.7)
    assert len(c1.boxes) > len(c2.boxes) >= len(c3.boxes) == 3
    assert c2.landmarks is None and c3.landmarks.shape == (3, 5, 2)
    side = c1.boxes[:, 2:] - c1.boxes[:, :2]
    torch.testing.assert_close(side[:, 0], side[:, 1])  # stage 1 and 2 hand on squares
    for b, det in enumerate(list(found.values())[:3]):
        torch.testing.assert_close(c3.boxes[c3.batch_idx == b], det.boxes)
        torch.testing.assert_close(c3.landmarks[c3.batch_idx == b], det.landmarks)


def test_a_batch_gives_what_single_images_give(views, nets, found):
    alone = detect_faces_planar(views[5:6], nets=nets)[0]
    batched = found[list(FACES)[5]]
    torch.testing.assert_close(alone.boxes, batched.boxes, atol=1e-3, rtol=0)
    torch.testing.assert_close(alone.scores, batched.scores, atol=1e-5, rtol=0)


def test_detector_module_matches_the_function(views, found):
    detector = MTCNNFaceDetector(thresholds=(0.6, 0.7, 0.7))
    assert (
        repr(detector)
        == "MTCNNFaceDetector(min_face_px=20.0, thresholds=(0.6, 0.7, 0.7), factor=0.709)"
    )
    det = detector(views[:1])[0]
    # Batch 1 and batch 8 convolutions round differently: close, not equal.
    torch.testing.assert_close(det.boxes, found[next(iter(FACES))].boxes, atol=1e-3, rtol=0)


def test_blank_tiny_and_float64_images(nets):
    blank = detect_faces_planar(torch.full((2, 3, 40, 50), 0.5), nets=nets)
    assert [len(d.boxes) for d in blank] == [0, 0]
    assert blank[0].landmarks.shape == (0, 5, 2) and blank[0].scores.shape == (0,)
    tiny = detect_faces_planar(torch.rand(1, 3, 15, 30), min_face_px=20, nets=nets)[0]
    assert tiny.boxes.shape == (0, 4)  # smaller than the smallest face: no pyramid level


def test_default_networks_follow_the_image_dtype(views):
    det = detect_faces_planar(views[:1].double())[0]
    assert det.boxes.dtype == torch.float64 and len(det.boxes) == 1


# Pyramid and P-Net windows.


def test_pyramid_scales_match_the_definition():
    for hw, min_face, factor in [
        ((160, 160), 20, 0.709),
        ((480, 640), 40, 0.5),
        ((30, 100), 10, 0.8),
    ]:
        want, s = [], 12 / min_face
        while min(hw) * s >= 12 - 1e-9:
            want.append(s)
            s *= factor
        got = mtcnn_pyramid_scales(hw, min_face, factor)
        assert len(got) == len(want) and all(
            math.isclose(a, b) for a, b in zip(got, want, strict=True)
        )
    assert mtcnn_pyramid_scales((11, 100), 12) == []


def test_convention_pnet_cell_maps_to_its_12x12_window():
    prob = torch.zeros(2, 5, 7)
    prob[1, 3, 4] = 0.9
    prob[0, 0, 0] = 0.6  # exactly at the threshold: kept
    prob[0, 1, 1] = 0.59
    deltas = torch.arange(2 * 4 * 5 * 7, dtype=torch.float32).reshape(2, 4, 5, 7)
    win = pnet_map_to_boxes(prob, deltas, (0.5, 0.25), 0.6)
    assert win.batch_idx.tolist() == [0, 1] and win.scores.tolist() == pytest.approx([0.6, 0.9])
    # Cell (i, j) = (3, 4): columns 8..19 of the image P-Net saw, edges [8, 20] / 0.5, minus 0.5.
    assert win.boxes[1].tolist() == [16 - 0.5, 24 - 0.5, 40 - 0.5, 72 - 0.5]
    assert win.boxes[0].tolist() == [-0.5, -0.5, 24 - 0.5, 48 - 0.5]
    assert win.deltas[1].tolist() == deltas[1, :, 3, 4].tolist()


def test_errors_of_the_stage_functions():
    with pytest.raises(ShapeError, match=r"face_prob must be \(B, h, w\) and box_deltas"):
        pnet_map_to_boxes(torch.zeros(1, 5, 5), torch.zeros(1, 4, 5, 6), 1.0, 0.5)
    with pytest.raises(ValueRangeError, match=r"scale must be positive, got \(1.0, 0.0\)"):
        pnet_map_to_boxes(torch.zeros(1, 5, 5), torch.zeros(1, 4, 5, 5), (1.0, 0.0), 0.5)
    with pytest.raises(ValueRangeError, match="min_face_px must be a positive number, got 0"):
        mtcnn_pyramid_scales((100, 100), 0)
    with pytest.raises(ValueRangeError, match=r"factor must be in \(0, 1\), got 1.0"):
        mtcnn_pyramid_scales((100, 100), 20, 1.0)
    cand = FaceCandidates(torch.zeros(2, 4), torch.zeros(2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ShapeError, match=r"crops must be \(2, 3, 24, 24\), got \(2, 3, 48, 48\)"):
        mtcnn_stage2(None, torch.zeros(2, 3, 48, 48), cand)
    with pytest.raises(ShapeError, match=r"crops must be \(2, 3, 48, 48\), got \(1, 3, 48, 48\)"):
        mtcnn_stage3(None, torch.zeros(1, 3, 48, 48), cand)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"images": torch.zeros(3, 40, 40)}, ShapeError, r"images must be \(B, 3, H, W\) RGB"),
        ({"images": torch.zeros(1, 4, 40, 40)}, ShapeError, r"got \(1, 4, 40, 40\)"),
        (
            {"images": torch.zeros(1, 3, 40, 40, dtype=torch.uint8)},
            ValueRangeError,
            "must be float in \\[0, 1\\], got dtype torch.uint8 \\(divide 8-bit images by 255\\)",
        ),
        (
            {"images": torch.full((1, 3, 40, 40), 255.0)},
            ValueRangeError,
            r"values in \[255.0, 255.0\]",
        ),
        ({"min_face_px": -5}, ValueRangeError, "min_face_px must be a positive number, got -5"),
        ({"factor": 0}, ValueRangeError, r"factor must be in \(0, 1\), got 0"),
        ({"thresholds": (0.6, 0.7)}, ValueRangeError, "thresholds must be three probabilities"),
        ({"thresholds": (0.6, 0.7, 1.2)}, ValueRangeError, r"got \(0.6, 0.7, 1.2\)"),
    ],
)
def test_detect_faces_planar_errors(kwargs, error, match, nets):
    kwargs = {"images": torch.zeros(1, 3, 40, 40), "nets": nets} | kwargs
    with pytest.raises(error, match=match):
        detect_faces_planar(**kwargs)


def test_detector_module_errors():
    with pytest.raises(ValueRangeError, match=r"factor must be in \(0, 1\), got 1.5"):
        MTCNNFaceDetector(factor=1.5, pretrained=False)
    with pytest.raises(ValueRangeError, match="thresholds must be three probabilities"):
        MTCNNFaceDetector(thresholds=(0.5,), pretrained=False)
