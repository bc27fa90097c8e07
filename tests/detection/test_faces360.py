"""360° face detection: MTCNN with every transfer strategy, boxes and landmarks on the sphere."""

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from pano360 import detect_faces
from pano360.detection import (
    FaceDetection,
    _faces360,
    check_detections,
    erp_pyramid_levels,
    face_detection_memory,
    face_detections,
    tangent_crops,
    view_boxes_to_bfov,
)
from pano360.errors import ShapeError, ValueRangeError
from pano360.geometry import erp_to_perspective, rotation_matrix, sph_iou_exact
from pano360.io import read_image

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def panorama():
    """The embedded example at 512 x 1024 and its eight faces as BFoV (radians)."""
    erp = F.interpolate(read_image(EXAMPLES / "panorama.jpg"), size=(512, 1024), mode="area")
    meta = json.loads((EXAMPLES / "panorama.json").read_text())
    faces = {p["name"]: p["face"]["rbfov"][:4] for p in meta["placements"] if "face" in p}
    gt = torch.tensor([[math.radians(v) for v in box] for box in faces.values()])
    return erp, list(faces), gt


def _best_iou(gt, found):
    """found: a list of one detection result (what detect_faces returns for one image)."""
    (result,) = found
    check_detections(result, box_dim=4, num_keypoints=5)
    if len(result["boxes"]) == 0:
        return torch.zeros(len(gt))
    return sph_iou_exact(gt, result["boxes"]).max(dim=1).values


def test_spherical_finds_every_face_of_the_example_once(panorama):
    erp, names, gt = panorama
    found = detect_faces(erp, "spherical")
    best = _best_iou(gt, found)
    assert (best > 0.5).all(), dict(zip(names, best.tolist(), strict=True))
    assert len(found[0]["boxes"]) == len(gt)  # one per face: the seam face is not split in two
    assert bool((found[0]["labels"] == 0).all())
    for det in face_detections(found[0]):  # the landmarks lie inside the face's box
        centre = torch.tensor(det.box[:2])
        marks = torch.tensor(det.landmarks)
        cos = torch.cos(marks[:, 1]) * torch.cos(centre[1]) * torch.cos(marks[:, 0] - centre[0])
        dist = torch.acos((cos + torch.sin(marks[:, 1]) * torch.sin(centre[1])).clamp(-1, 1))
        assert (dist < max(det.box[2:])).all()


def test_spherical_finds_the_same_faces_at_four_times_the_resolution(panorama):
    # The pyramid is sized in degrees, and a large panorama is halved before it is resized.
    erp, names, gt = panorama
    big = F.interpolate(erp, scale_factor=4, mode="bilinear", align_corners=False)
    found = detect_faces(big.clamp(0, 1), "spherical")
    best = _best_iou(gt, found)
    assert (best > 0.5).all(), dict(zip(names, best.tolist(), strict=True))
    assert len(found[0]["boxes"]) == len(gt)


def test_a_batch_gives_one_result_per_image(panorama):
    erp, _, _ = panorama
    blank = torch.full_like(erp, 0.5)
    found = detect_faces(torch.cat((blank, erp, blank)), "spherical")
    alone = detect_faces(erp, "spherical")[0]
    assert len(found) == 3 and len(found[0]["boxes"]) == len(found[2]["boxes"]) == 0
    for key in ("boxes", "scores", "labels", "keypoints"):
        torch.testing.assert_close(found[1][key], alone[key])


def test_direct_misses_the_polar_and_seam_faces_that_spherical_finds(panorama):
    erp, names, gt = panorama
    best = dict(zip(names, _best_iou(gt, detect_faces(erp, "direct")).tolist(), strict=True))
    assert best["astronaut_front"] > 0.5  # at the equator the ERP is nearly undistorted
    polar = [n for n in names if n.endswith(("68n", "70n", "70s"))]
    assert all(best[n] < 0.5 for n in polar), best


@pytest.mark.parametrize("strategy", ["cubemap", "multiview"])
def test_view_strategies_map_detections_back_to_the_sphere(panorama, strategy):
    erp, names, gt = panorama
    best = dict(zip(names, _best_iou(gt, detect_faces(erp, strategy)).tolist(), strict=True))
    assert best["astronaut_front"] > 0.5
    assert best["astronaut_seam"] > 0.5  # the face across the seam, seen whole in a view


def test_convention_a_box_filling_a_view_is_that_view():
    fov = torch.tensor([0.8, 1.2])
    yaw, pitch = torch.tensor([2.5, -1.0]), torch.tensor([0.3, -1.2])
    rot = rotation_matrix(yaw, pitch, torch.zeros(2))
    size = (40, 40)
    boxes = torch.tensor([[-0.5, -0.5, 39.5, 39.5]] * 2)
    bfov = view_boxes_to_bfov(boxes, size, fov, rot)
    expected = torch.stack((yaw, pitch, fov, fov), dim=-1)
    torch.testing.assert_close(bfov, expected, atol=1e-6, rtol=0)
    # A box in the right half of the view lies to the east (lon grows) at the equator.
    ahead = rotation_matrix(torch.zeros(1), torch.zeros(1), torch.zeros(1))
    right = view_boxes_to_bfov(torch.tensor([[25.0, 14.5, 35.0, 24.5]]), size, fov[:1], ahead)
    assert right[0, 0] > 0 and abs(right[0, 1]) < 1e-6


def _smooth_erp(h: int) -> torch.Tensor:
    # Band-limited content (a few cycles per side), so every resampling of it agrees closely.
    lat = torch.linspace(1.5, -1.5, h)[:, None]
    lon = torch.linspace(-3.1, 3.1, 2 * h)[None, :]
    chans = [0.5 + 0.4 * torch.sin(f * lon + g * lat) for f, g in ((3, 2), (5, 1), (2, 4))]
    return torch.stack(chans)[None]


def test_tangent_crops_sample_a_small_box_at_one_sample_per_pixel():
    erp = _smooth_erp(256)
    boxes = torch.tensor([[0.4, -0.3, 0.1, 0.1], [-3.1, 1.2, 0.12, 0.12]])  # < 24 px wide
    expected = erp_to_perspective(erp, boxes[:, 2], (24, 24), yaw=boxes[:, 0], pitch=boxes[:, 1])
    torch.testing.assert_close(tangent_crops(erp, boxes, 24), expected)


def test_tangent_crops_from_mipmaps_agree_with_supersampling_the_full_image():
    erp = _smooth_erp(512)
    pyramid = [F.interpolate(erp, size=(h, 2 * h), mode="area") for h in (270, 192, 136, 96)]
    boxes = torch.tensor([[1.0, 0.2, 0.6, 0.6], [3.1, -0.9, 0.35, 0.35], [-2.0, 1.3, 0.25, 0.25]])
    direct = tangent_crops(erp, boxes, 24)
    mipmapped = tangent_crops(erp, boxes, 24, pyramid)
    assert (mipmapped - direct).abs().mean() < 0.003
    assert (mipmapped - direct).abs().max() < 0.02
    with pytest.raises(ShapeError, match="pyramid"):
        tangent_crops(erp, boxes, 24, [torch.rand(1, 3, 64, 100)])


def test_tangent_crops_in_chunks_are_the_crops_in_one_call(monkeypatch):
    erp = _smooth_erp(256)
    boxes = torch.tensor([[0.1 * k - 1.0, 0.05 * k - 0.5, 0.3, 0.3] for k in range(7)])
    whole = tangent_crops(erp, boxes, 24)
    monkeypatch.setattr(_faces360, "_CROP_SAMPLES", 2 * 24 * 24)  # two crops per call
    torch.testing.assert_close(tangent_crops(erp, boxes, 24), whole, atol=0, rtol=0)


@pytest.mark.parametrize("strategy", ["spherical", "direct"])
def test_progress_reports_the_share_done_up_to_one(strategy):
    shares = []
    detect_faces(torch.full((2, 3, 64, 128), 0.5), strategy, progress=shares.append)
    assert shares == sorted(shares) and shares[-1] == 1.0 and shares[0] > 0
    assert 0.5 in shares  # the first of the two images is done half-way
    if strategy == "spherical":  # the pyramid, then each level, then stages 2 and 3
        assert len(shares) == 2 * (2 + len(erp_pyramid_levels()))


def test_memory_estimate_follows_the_finest_level_and_checks_its_arguments():
    hw = (1024, 2048)
    base = face_detection_memory(hw, 8.0)
    finer = face_detection_memory(hw, 1.0)
    (h8, w8), (h1, w1) = erp_pyramid_levels(8.0)[0], erp_pyramid_levels(1.0)[0]
    # Most of the difference is stage 1 on the finest level, which grows as 1 / min_face^2.
    assert finer - base >= _faces360._PNET_BYTES_PER_PIXEL * (h1 * w1 - h8 * w8)
    assert face_detection_memory((4096, 8192), 8.0) > base  # the panorama's halvings
    with pytest.raises(ShapeError, match="erp_hw"):
        face_detection_memory((100, 100))
    with pytest.raises(ValueRangeError, match="min_face_deg"):
        face_detection_memory(hw, 0.0)


def test_to_dict_uses_degrees():
    det = FaceDetection((math.pi / 2, -math.pi / 4, 0.1, 0.2), 0.987654321, ((0.0, 0.0),) * 5)
    d = det.to_dict()
    assert d["bfov"][:2] == [90.0, -45.0] and d["score"] == 0.98765
    assert len(d["landmarks"]) == 5


def test_errors():
    erp = torch.rand(1, 3, 32, 64)
    with pytest.raises(ValueError, match="strategy"):
        detect_faces(erp, "bogus")
    with pytest.raises(ValueError, match="students"):
        detect_faces(erp, "distilled")
    with pytest.raises(ShapeError, match="W == 2H"):
        detect_faces(torch.rand(1, 3, 32, 48))
    with pytest.raises(ShapeError, match=r"RGB images \(B, 3, H, W\)"):
        detect_faces(torch.rand(2, 4, 32, 64))
    with pytest.raises(ValueRangeError, match="min_face_deg"):
        detect_faces(erp, min_face_deg=0)
    with pytest.raises(ValueRangeError, match="thresholds"):
        detect_faces(erp, thresholds=(0.5, 0.5))


def test_blank_panorama_has_no_faces():
    for strategy in ("direct", "spherical", "cubemap"):
        (found,) = detect_faces(torch.full((1, 3, 64, 128), 0.5), strategy)
        check_detections(found, box_dim=4, num_keypoints=5)
        assert found["boxes"].shape == (0, 4) and found["keypoints"].shape == (0, 5, 2)


def test_distilled_strategy_uses_one_student_per_pyramid_level(panorama, tmp_path):
    from pano360.detection import erp_pyramid_levels, load_pnet_students
    from pano360.training import distill
    from pano360.transfer import DistillConfig, model_stack

    erp = panorama[0]
    levels = erp_pyramid_levels(min_face_deg=40, max_face_deg=60)
    assert levels == [(54, 108), (38, 76)]
    stack = model_stack("mtcnn_pnet")
    config = DistillConfig(epochs=1, rows_per_image=2)
    for h, w in levels[:1]:
        images = F.interpolate(erp, size=(h, w), mode="area")
        distill(stack, images, config, tmp_path / f"{w}x{h}", progress=False)
    with pytest.raises(ValueRangeError, match="76x38"):  # a level without its student
        detect_faces(erp, "distilled", min_face_deg=40, students=tmp_path)
    images = F.interpolate(erp, size=levels[1], mode="area")
    distill(stack, images, config, tmp_path / "second", progress=False)
    assert sorted(load_pnet_students(tmp_path)) == sorted(levels)
    (found,) = detect_faces(erp, "distilled", min_face_deg=40, students=tmp_path)
    check_detections(found, box_dim=4, num_keypoints=5)
    with pytest.raises(ValueRangeError, match="no finished distill run"):
        load_pnet_students(tmp_path / "second" / "nothing")


def test_the_shipped_stage_1_is_built_once_per_process():
    # Building the spherical P-Net of every level is the slow part of a first call.
    before = _faces360._shipped_stage1.cache_info()
    for _ in range(2):
        detect_faces(torch.zeros(3, 32, 64), min_face_deg=24)
    after = _faces360._shipped_stage1.cache_info()
    assert after.hits >= before.hits + 1 and after.currsize >= 1
