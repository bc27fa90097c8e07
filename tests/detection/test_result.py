"""The detection result contract: checks, empty results, concatenation, selection, face views."""

import math

import pytest
import torch

from pano360.detection import (
    DETECTION_KEYS,
    FaceDetection,
    batched_sph_nms,
    cat_detections,
    check_detections,
    empty_detections,
    face_detections,
    select_detections,
)
from pano360.errors import ShapeError, ValueRangeError

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def result(n=3, box_dim=4, k=5, dtype=torch.float32, device="cpu", seed=0):
    """A valid result with n rows; keypoints (n, k, 2), or none when k is None."""
    gen = torch.Generator().manual_seed(seed)

    def u(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(*shape, generator=gen, dtype=torch.float64)

    cols = [u(-math.pi, math.pi, n), u(-1.5, 1.5, n), u(0.1, 1.0, n), u(0.1, 1.0, n)]
    if box_dim == 5:
        cols.append(u(-math.pi, math.pi, n))
    out = {
        "boxes": torch.stack(cols, -1),
        "scores": u(0, 1, n),
        "labels": torch.randint(0, 4, (n,), generator=gen),
    }
    if k is not None:
        out["keypoints"] = torch.stack((u(-math.pi, math.pi, n, k), u(-1.5, 1.5, n, k)), -1)
    return {
        key: v.to(device=device, dtype=dtype if v.dtype.is_floating_point else v.dtype)
        for key, v in out.items()
    }


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("box_dim, k", [(4, 5), (5, None), (4, 1)])
def test_valid_results_pass_unchanged(device, dtype, box_dim, k):
    r = result(4, box_dim, k, dtype, device)
    assert check_detections(r, box_dim=box_dim, num_keypoints=k) is r
    empty = empty_detections(box_dim, k, dtype=dtype, device=device)
    assert check_detections(empty, box_dim=box_dim, num_keypoints=k) is empty
    assert set(empty) == set(DETECTION_KEYS[:3] if k is None else DETECTION_KEYS)
    assert empty["boxes"].shape == (0, box_dim) and empty["labels"].dtype == torch.long
    assert all(v.device.type == device for v in empty.values())
    assert empty["scores"].dtype == dtype


def test_convention_angles_at_the_ends_of_their_ranges_are_valid():
    r = {
        "boxes": torch.tensor([[-math.pi, -math.pi / 2, 1e-3, 3.14, math.pi]], dtype=torch.float64),
        "scores": torch.tensor([-5.0]),  # logits are fine: only finite is required
        "labels": torch.tensor([0]),
        "keypoints": torch.tensor([[[math.pi, math.pi / 2], [-math.pi, -math.pi / 2]]]),
    }
    check_detections(r)
    r["boxes"][0, 0] = math.pi + 1e-3  # lon must be wrapped
    with pytest.raises(ValueRangeError, match=r"result\['boxes'\] lon must be in \[-pi, pi\]"):
        check_detections(r)


def test_check_detections_errors():
    with pytest.raises(TypeError, match="dets must be a dict of tensors, got list"):
        check_detections([result()], "dets")
    with pytest.raises(ShapeError, match=r"missing \['labels'\], unknown \[\]"):
        check_detections({k: v for k, v in result().items() if k != "labels"})
    with pytest.raises(ShapeError, match=r"missing \[\], unknown \['keypoint'\]"):
        check_detections({**result(k=None), "keypoint": torch.zeros(3, 5, 2)})
    with pytest.raises(TypeError, match=r"result\['scores'\] must be a torch\.Tensor, got list"):
        check_detections({**result(), "scores": [0.5, 0.5, 0.5]})
    with pytest.raises(ShapeError, match=r"result\['boxes'\] must be \(N, 4\) BFoV or \(N, 5\)"):
        check_detections({**result(), "boxes": torch.zeros(3, 6)})
    with pytest.raises(ShapeError, match=r"result\['scores'\] must be \(3,\) like the boxes"):
        check_detections({**result(), "scores": torch.zeros(2)})
    with pytest.raises(ShapeError, match=r"result\['labels'\] must be \(3,\) like the boxes"):
        check_detections({**result(), "labels": torch.zeros(3, 1, dtype=torch.long)})
    with pytest.raises(ShapeError, match=r"result\['keypoints'\] must be \(3, K, 2\)"):
        check_detections({**result(), "keypoints": torch.zeros(3, 5, 3)})
    with pytest.raises(TypeError, match=r"result\['boxes'\] must be a floating-point tensor"):
        check_detections({**result(), "boxes": torch.ones(3, 4, dtype=torch.long)})
    with pytest.raises(TypeError, match=r"result\['scores'\] must be a floating-point tensor"):
        check_detections({**result(), "scores": torch.ones(3, dtype=torch.long)})
    with pytest.raises(TypeError, match=r"result\['keypoints'\] must be a floating-point"):
        check_detections({**result(), "keypoints": torch.zeros(3, 5, 2, dtype=torch.int32)})
    with pytest.raises(
        TypeError, match=r"result\['labels'\] must be an int64 tensor, got torch\.int32"
    ):
        check_detections({**result(), "labels": torch.zeros(3, dtype=torch.int32)})


def test_check_detections_expectations():
    with pytest.raises(ShapeError, match=r"result\['boxes'\] must be \(N, 4\), got \(3, 5\)"):
        check_detections(result(box_dim=5), box_dim=4)
    with pytest.raises(
        ShapeError, match=r"result\['keypoints'\] must be \(3, 5, 2\), got no keypoints"
    ):
        check_detections(result(k=None), num_keypoints=5)
    with pytest.raises(ShapeError, match=r"must be \(3, 5, 2\), got \(3, 4, 2\)"):
        check_detections(result(k=4), num_keypoints=5)


@pytest.mark.parametrize(
    "key, index, value, message",
    [
        ("boxes", (0, 2), math.nan, r"result\['boxes'\] must be finite"),
        ("boxes", (1, 3), 3.2, r"result\['boxes'\] fov_x and fov_y must be in \(0, pi\)"),
        ("boxes", (2, 1), -1.6, r"result\['boxes'\] lat must be in \[-pi/2, pi/2\]"),
        ("boxes", (0, 0), 90.0, r"result\['boxes'\] lon must be in \[-pi, pi\] radians, got \[90"),
        ("scores", (1,), math.inf, r"result\['scores'\] must be finite"),
        ("labels", (2,), -1, r"result\['labels'\] must be >= 0, got \[-1\]"),
        ("keypoints", (0, 1, 0), math.nan, r"result\['keypoints'\] must be finite"),
        ("keypoints", (0, 1, 0), -3.2, r"result\['keypoints'\] lon must be in \[-pi, pi\]"),
        ("keypoints", (2, 4, 1), 1.6, r"result\['keypoints'\] lat must be in \[-pi/2, pi/2\]"),
    ],
)
def test_check_detections_value_errors(key, index, value, message):
    r = result()
    r[key][index] = value
    with pytest.raises(ValueRangeError, match=message):
        check_detections(r)


def test_rolled_box_roll_must_be_wrapped():
    r = result(box_dim=5)
    r["boxes"][1, 4] = 4.0
    with pytest.raises(ValueRangeError, match=r"result\['boxes'\] roll must be in \[-pi, pi\]"):
        check_detections(r)


def test_empty_detections_errors():
    with pytest.raises(ValueRangeError, match=r"box_dim must be 4 \(BFoV\) or 5 \(RBFoV\), got 3"):
        empty_detections(3)
    with pytest.raises(ValueRangeError, match="box_dim must be 4"):
        empty_detections(True)
    with pytest.raises(ValueRangeError, match="num_keypoints must be a positive integer, got 0"):
        empty_detections(num_keypoints=0)
    with pytest.raises(TypeError, match=r"dtype must be a floating-point torch\.dtype"):
        empty_detections(dtype=torch.long)


def test_cat_and_select_rows():
    a, b = result(3, seed=1), result(2, seed=2)
    both = cat_detections([a, empty_detections(num_keypoints=5, dtype=torch.float32), b])
    check_detections(both, num_keypoints=5)
    for key in a:
        assert torch.equal(both[key], torch.cat((a[key], b[key])))
    picked = select_detections(both, torch.tensor([4, 0]))
    for key in a:
        assert torch.equal(picked[key][0], b[key][1]) and torch.equal(picked[key][1], a[key][0])
    mask = both["scores"] > 0.5
    assert torch.equal(select_detections(both, mask)["scores"], both["scores"][mask])
    assert select_detections(both, torch.zeros(0, dtype=torch.long))["boxes"].shape == (0, 4)


def test_a_detector_builds_its_result_with_nms_and_select():
    r = result(6, k=5, dtype=torch.float64, seed=3)
    r["boxes"][3:] = r["boxes"][:3] + 0.01  # every box twice
    r["labels"][3:] = r["labels"][:3]
    keep = batched_sph_nms(r["boxes"], r["scores"], r["labels"], 0.5)
    out = check_detections(select_detections(r, keep), num_keypoints=5)
    assert len(out["scores"]) == 3 and (out["scores"][1:] <= out["scores"][:-1]).all()


def test_cat_and_select_errors():
    a = result()
    with pytest.raises(ValueRangeError, match="results must be a non-empty sequence"):
        cat_detections([])
    with pytest.raises(ValueRangeError, match="results must be a non-empty sequence"):
        cat_detections(a)
    with pytest.raises(ShapeError, match=r"results\[1\] must have the keys, box width"):
        cat_detections([a, result(k=None)])
    with pytest.raises(ShapeError, match=r"results\[1\] must have the keys, box width"):
        cat_detections([a, result(box_dim=5)])
    with pytest.raises(ShapeError, match=r"results\[2\] must have the keys, box width"):
        cat_detections([a, a, result(k=4)])
    with pytest.raises(ShapeError, match=r"results\[1\]\['scores'\] must be \(3,\)"):
        cat_detections([a, {**a, "scores": torch.zeros(1)}])
    with pytest.raises(TypeError, match=r"results\[0\] must be a dict of tensors"):
        cat_detections([None])
    with pytest.raises(
        TypeError, match=r"index must be an integer or bool tensor, got torch\.float32"
    ):
        select_detections(a, torch.tensor([0.0]))
    with pytest.raises(TypeError, match="index must be an integer or bool tensor, got list"):
        select_detections(a, [0])
    with pytest.raises(ShapeError, match=r"index must be \(3,\) bool, got \(2,\)"):
        select_detections(a, torch.tensor([True, False]))
    with pytest.raises(ShapeError, match=r"index must be \(K,\), got \(1, 1\)"):
        select_detections(a, torch.tensor([[0]]))
    with pytest.raises(ShapeError, match=r"result\['boxes'\] must be \(N, 4\) BFoV"):
        select_detections({**a, "boxes": torch.zeros(3)}, torch.tensor([0]))


def test_face_detections_are_views_of_the_rows():
    r = result(3, k=5, dtype=torch.float64)
    faces = face_detections(r)
    assert len(faces) == 3 and all(isinstance(f, FaceDetection) for f in faces)
    for i, face in enumerate(faces):
        assert face.box == tuple(r["boxes"][i].tolist())
        assert face.score == r["scores"][i].item()
        assert face.landmarks == tuple(map(tuple, r["keypoints"][i].tolist()))
        # to_dict is the JSON form, in degrees.
        assert face.to_dict()["bfov"][2] == round(math.degrees(r["boxes"][i, 2].item()), 4)
    bare = face_detections(result(2, k=None))
    assert [f.landmarks for f in bare] == [(), ()]
    assert face_detections(empty_detections(num_keypoints=5)) == []


def test_face_detections_errors():
    with pytest.raises(ShapeError, match=r"result\['boxes'\] must be \(N, 4\), got \(3, 5\)"):
        face_detections(result(box_dim=5))
    with pytest.raises(TypeError, match="result must be a dict of tensors"):
        face_detections([FaceDetection((0.0, 0.0, 0.1, 0.1), 0.9, ())])
    bad = result()
    bad["scores"][0] = math.nan
    with pytest.raises(ValueRangeError, match=r"result\['scores'\] must be finite"):
        face_detections(bad)
