"""Greedy NMS, planar and spherical, with class groups: against the plain-loop oracle."""

import functools
import math

import pytest
import torch

from pano360.detection import batched_nms, batched_sph_nms, nms, sph_nms
from pano360.errors import ShapeError, ValueRangeError
from pano360.geometry import lonlat_to_pixel, sph_iou_exact, sph_iou_fov
from pano360.testing import box_iou_oracle, nms_oracle

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
D = torch.float64
deg = math.radians
# Rows of overlaps computed at once; 1 walks the boxes one by one.
BLOCK = "pano360.detection._nms._PAIRS_PER_BLOCK"


def planar_boxes(n, seed, size=25.0, extent=40.0):
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=gen, dtype=D) * extent
    wh = torch.rand(n, 2, generator=gen, dtype=D) * size
    return torch.cat((xy, xy + wh), dim=1)


def sph_boxes(n, seed, *, roll=False, max_fov=1.0, lat_max=1.2):
    gen = torch.Generator().manual_seed(seed)

    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=D)

    cols = [u(-math.pi, math.pi), u(-lat_max, lat_max), u(0.05, max_fov), u(0.05, max_fov)]
    if roll:
        cols.append(u(-math.pi, math.pi))
    return torch.stack(cols, -1)


def tied_scores(n, seed, levels=12):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, levels, (n,), generator=gen).to(D)  # many ties


def sph_oracle(boxes, scores, thr, classes=None, *, method="exact", denominator="union"):
    """The loop oracle over the public pairwise IoU (the oracle checks the greedy rule)."""
    if method == "fov":
        matrix = sph_iou_fov(boxes, boxes)
    else:
        matrix = sph_iou_exact(boxes.double(), boxes.double(), denominator)
    index = [[i] for i in range(len(boxes))]  # rows the overlap below understands
    return nms_oracle(index, scores, thr, lambda a, b: float(matrix[a[0], b[0]]), classes)


def merged_per_class(run, boxes, scores, classes):
    """Run a single-class NMS on each class alone; merge by decreasing score, then index."""
    kept = []
    for c in torch.unique(classes).tolist():
        members = torch.nonzero(classes == c).flatten()
        kept += members[run(boxes[members], scores[members])].tolist()
    return sorted(kept, key=lambda i: (-float(scores[i]), i))


# --------------------------------------------------------------------------------------------
# Planar
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("denominator", ["union", "min"])
@pytest.mark.parametrize("block", [None, 1, 300])
def test_nms_matches_greedy_oracle(seed, denominator, block, monkeypatch):
    if block is not None:
        monkeypatch.setattr(BLOCK, block)
    n = 60
    boxes = planar_boxes(n, seed)
    scores = tied_scores(n, 100 + seed)
    groups = torch.randint(0, 3, (n,), generator=torch.Generator().manual_seed(seed))
    groups = groups if seed % 2 else None
    threshold = [0.0, 0.3, 0.5, 0.7, 0.9, 1.0][seed]
    got = nms(boxes, scores, threshold, groups, denominator)
    assert got.dtype == torch.long
    overlap = functools.partial(box_iou_oracle, denominator=denominator)
    assert got.tolist() == nms_oracle(boxes, scores, threshold, overlap, groups)


@pytest.mark.parametrize("device", DEVICES)
def test_nms_on_device_and_empty(device):
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], device=device)
    got = nms(boxes, torch.tensor([0.8, 0.9, 0.7], device=device), 0.5)
    assert got.device.type == device and got.tolist() == [1, 2]
    empty = nms(torch.zeros(0, 4, device=device), torch.zeros(0, device=device), 0.5)
    assert empty.shape == (0,) and empty.dtype == torch.long
    classes = torch.zeros(0, dtype=torch.long, device=device)
    empty = batched_nms(
        torch.zeros(0, 4, device=device), torch.zeros(0, device=device), classes, 0.5
    )
    assert empty.shape == (0,) and empty.dtype == torch.long


def test_nms_groups_are_independent():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [0]
    assert nms(boxes, scores, 0.5, groups=torch.tensor([0, 1, 0])).tolist() == [0, 1]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("denominator", ["union", "min"])
def test_batched_nms_is_nms_per_class_merged(seed, denominator, monkeypatch):
    n = 80
    boxes = planar_boxes(n, seed, extent=30.0)
    scores = tied_scores(n, seed, levels=30)
    classes = torch.randint(-2, 4, (n,), generator=torch.Generator().manual_seed(seed))
    got = batched_nms(boxes, scores, classes, 0.4, denominator=denominator)
    assert got.tolist() == merged_per_class(
        lambda b, s: nms(b, s, 0.4, denominator=denominator), boxes, scores, classes
    )
    assert got.tolist() == nms(boxes, scores, 0.4, classes, denominator).tolist()
    overlap = functools.partial(box_iou_oracle, denominator=denominator)
    assert got.tolist() == nms_oracle(boxes, scores, 0.4, overlap, classes)
    monkeypatch.setattr(BLOCK, 1)
    assert (
        batched_nms(boxes, scores, classes, 0.4, denominator=denominator).tolist() == got.tolist()
    )


def test_batched_nms_never_suppresses_across_classes():
    boxes = torch.tensor([[0.0, 0, 10, 10]]).repeat(5, 1)
    scores = torch.tensor([0.5, 0.9, 0.7, 0.8, 0.6])
    got = batched_nms(boxes, scores, torch.arange(5), 0.0)
    assert got.tolist() == [1, 3, 2, 4, 0]  # all kept, by decreasing score
    assert batched_nms(boxes, scores, torch.zeros(5, dtype=torch.long), 0.0).tolist() == [1]


def test_nms_errors():
    boxes = torch.zeros(3, 4)
    with pytest.raises(ShapeError, match=r"scores must be \(3,\), got \(2,\)"):
        nms(boxes, torch.zeros(2), 0.5)
    with pytest.raises(ShapeError, match=r"groups must be \(3,\), got \(3, 1\)"):
        nms(boxes, torch.zeros(3), 0.5, groups=torch.zeros(3, 1, dtype=torch.long))
    with pytest.raises(TypeError, match=r"groups must be an integer tensor, got torch\.float32"):
        nms(boxes, torch.zeros(3), 0.5, groups=torch.zeros(3))
    with pytest.raises(TypeError, match=r"scores must be a real tensor, got torch\.bool"):
        nms(boxes, torch.zeros(3, dtype=torch.bool), 0.5)
    with pytest.raises(ShapeError, match=r"boxes must be \(N, 4\) xyxy"):
        nms(torch.zeros(3, 3), torch.zeros(3), 0.5)
    with pytest.raises(
        ValueRangeError, match=r"iou_threshold must be a finite number in \[0, 1\], got 1.5"
    ):
        nms(boxes, torch.zeros(3), 1.5)
    with pytest.raises(ValueError, match="denominator must be one of 'union', 'min', got 'area'"):
        nms(boxes, torch.zeros(3), 0.5, denominator="area")


def test_batched_nms_errors():
    boxes, scores = torch.zeros(3, 4), torch.zeros(3)
    with pytest.raises(ShapeError, match=r"boxes must be \(N, 4\) xyxy, got \(3, 5\)"):
        batched_nms(torch.zeros(3, 5), scores, torch.zeros(3, dtype=torch.long), 0.5)
    with pytest.raises(ShapeError, match=r"scores must be \(3,\), got \(3, 1\)"):
        batched_nms(boxes, scores[:, None], torch.zeros(3, dtype=torch.long), 0.5)
    with pytest.raises(ShapeError, match=r"classes must be \(3,\), got \(2,\)"):
        batched_nms(boxes, scores, torch.zeros(2, dtype=torch.long), 0.5)
    with pytest.raises(TypeError, match=r"classes must be an integer tensor, got torch\.bool"):
        batched_nms(boxes, scores, torch.zeros(3, dtype=torch.bool), 0.5)
    with pytest.raises(TypeError, match="scores must be a real tensor"):
        batched_nms(boxes, scores.to(torch.complex64), torch.zeros(3, dtype=torch.long), 0.5)
    with pytest.raises(ValueRangeError, match="iou_threshold must be a finite number"):
        batched_nms(boxes, scores, torch.zeros(3, dtype=torch.long), True)
    with pytest.raises(ValueError, match="denominator must be one of"):
        batched_nms(boxes, scores, torch.zeros(3, dtype=torch.long), 0.5, denominator="max")


# --------------------------------------------------------------------------------------------
# Spherical
# --------------------------------------------------------------------------------------------


def test_sph_nms_merges_a_face_detected_on_both_sides_of_the_seam():
    hw = (512, 1024)
    face = [deg(12), deg(15)]
    left = torch.tensor([[deg(179.2), deg(5.0), *face]])  # the face near the right edge ...
    right = torch.tensor([[deg(-179.6), deg(5.3), *face]])  # ... and again at the left edge
    other = torch.tensor([[deg(60.0), deg(5.0), *face]])
    boxes = torch.cat((left, right, other))
    scores = torch.tensor([0.9, 0.95, 0.8])
    # On the ERP the two detections are centred at opposite ends of the image.
    cx = lonlat_to_pixel(boxes[:, :2], hw)[:, 0]
    assert cx[0] > 1015 and cx[1] < 5
    for method in ("exact", "fov"):
        assert sph_nms(boxes, scores, 0.5, method=method).tolist() == [1, 2]


@pytest.mark.parametrize("block", [None, 1, 150])
def test_sph_nms_matches_greedy_oracle(block, monkeypatch):
    if block is not None:
        monkeypatch.setattr(BLOCK, block)
    boxes = sph_boxes(40, seed=11, roll=True)
    boxes[20:, :2] = boxes[:20, :2] + 0.1  # near-duplicates
    scores = torch.rand(40, generator=torch.Generator().manual_seed(1), dtype=D)
    scores[5] = scores[25]  # a tie: the earlier index ranks first
    for thr in (0.1, 0.3, 0.6):
        keep = sph_nms(boxes, scores, thr)
        assert keep.dtype == torch.long
        assert keep.tolist() == sph_oracle(boxes, scores, thr)
        assert (scores[keep][1:] <= scores[keep][:-1]).all()
    keep = sph_nms(boxes, scores, 0.3, denominator="min")
    assert keep.tolist() == sph_oracle(boxes, scores, 0.3, denominator="min")
    keep_fov = sph_nms(boxes[:, :4], scores, 0.3, method="fov")
    assert keep_fov.tolist() == sph_oracle(boxes[:, :4], scores, 0.3, method="fov")
    assert 3 < len(keep_fov) < 40
    assert sph_nms(boxes[:0], scores[:0], 0.5).shape == (0,)


def test_sph_nms_exact_is_computed_in_float64():
    boxes = sph_boxes(30, seed=4)
    boxes[15:, :2] = boxes[:15, :2] + 0.08
    boxes = boxes.float().double()  # values a float32 tensor holds exactly
    scores = torch.rand(30, generator=torch.Generator().manual_seed(2))
    for thr in (0.2, 0.5):
        want = sph_nms(boxes, scores, thr).tolist()
        assert sph_nms(boxes.float(), scores, thr).tolist() == want


def test_sph_nms_over_the_smaller_box_removes_a_box_inside_a_better_one():
    boxes = torch.tensor([[1.0, 0.5, 0.4, 0.4], [1.0, 0.5, 0.1, 0.1], [-2.0, 0.0, 0.2, 0.2]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert sph_nms(boxes, scores, 0.7).tolist() == [0, 1, 2]  # IoU about 1/16
    assert sph_nms(boxes, scores, 0.7, denominator="min").tolist() == [0, 2]


@pytest.mark.parametrize("method", ["exact", "fov"])
@pytest.mark.parametrize("seed", range(3))
def test_batched_sph_nms_is_sph_nms_per_class_merged(method, seed):
    n = 45
    boxes = sph_boxes(n, seed=seed, max_fov=0.8)
    boxes[n // 2 :, :2] = boxes[: n - n // 2, :2] + 0.05
    scores = tied_scores(n, seed, levels=20)
    classes = torch.randint(0, 3, (n,), generator=torch.Generator().manual_seed(seed))
    got = batched_sph_nms(boxes, scores, classes, 0.3, method=method)
    want = merged_per_class(lambda b, s: sph_nms(b, s, 0.3, method=method), boxes, scores, classes)
    assert got.tolist() == want
    assert got.tolist() == sph_oracle(boxes, scores, 0.3, classes, method=method)
    assert len(got) < len(batched_sph_nms(boxes, scores, torch.arange(n), 0.3, method=method))


def test_batched_sph_nms_across_the_seam_and_around_a_pole():
    face = [deg(20.0), deg(20.0)]
    boxes = torch.tensor(
        [
            [deg(179.0), deg(3.0), *face],  # the same face at both ends of the ERP
            [deg(-179.5), deg(3.5), *face],
            [deg(0.0), deg(89.0), deg(40.0), deg(40.0)],  # around the north pole, seen from
            [deg(180.0), deg(88.0), deg(40.0), deg(40.0)],  # opposite sides
            [deg(0.0), deg(-90.0), deg(30.0), deg(30.0)],  # aimed at the south pole from
            [deg(90.0), deg(-90.0), deg(30.0), deg(30.0)],  # two longitudes: one square
        ],
        dtype=D,
    )
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], dtype=D)
    same = torch.zeros(6, dtype=torch.long)
    # Pixel boxes would not overlap: the pole boxes are centred half an ERP apart.
    assert sph_nms(boxes, scores, 0.5).tolist() == [0, 2, 4]
    assert batched_sph_nms(boxes, scores, same, 0.5).tolist() == [0, 2, 4]
    assert batched_sph_nms(boxes, scores, same, 0.5, method="fov").tolist() == [0, 2, 4]
    # Other classes at the same places are kept.
    assert batched_sph_nms(boxes, scores, torch.arange(6), 0.5).tolist() == list(range(6))
    face_or_person = torch.tensor([0, 1, 0, 1, 0, 1])
    assert batched_sph_nms(boxes, scores, face_or_person, 0.5).tolist() == list(range(6))


def test_batched_sph_nms_with_rolled_boxes_never_suppresses_across_classes():
    boxes = torch.tensor([[0.3, 0.2, 0.5, 0.3, 0.7]], dtype=D).repeat(4, 1)
    boxes[:, 4] += torch.tensor([0.0, 0.01, 0.02, 0.03], dtype=D)
    scores = torch.tensor([0.1, 0.4, 0.3, 0.2], dtype=D)
    classes = torch.tensor([5, 5, 9, 9])
    assert batched_sph_nms(boxes, scores, classes, 0.5).tolist() == [1, 2]
    assert batched_sph_nms(boxes, scores, classes, 0.5, denominator="min").tolist() == [1, 2]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sph_nms_devices_and_dtypes(device, dtype):
    boxes = sph_boxes(6, seed=12).to(device=device, dtype=dtype)
    scores = torch.arange(6.0, device=device)
    for keep in (
        sph_nms(boxes, scores, 0.5),
        sph_nms(boxes, scores, 0.5, method="fov"),
        batched_sph_nms(boxes, scores, torch.zeros(6, dtype=torch.long, device=device), 0.5),
    ):
        assert keep.device.type == device and keep.dtype == torch.long


def test_sph_nms_errors():
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5, 0.1]])
    with pytest.raises(ShapeError, match=r"scores must be \(1,\), got \(2,\)"):
        sph_nms(boxes, torch.zeros(2), 0.5)
    with pytest.raises(ValueError, match="method must be one of 'exact', 'fov', got 'soft'"):
        sph_nms(boxes, torch.zeros(1), 0.5, method="soft")
    with pytest.raises(ShapeError, match=r"\(N, 4\) BFoV with method=\"fov\" .*no roll"):
        sph_nms(boxes, torch.zeros(1), 0.5, method="fov")
    with pytest.raises(ValueRangeError, match="iou_threshold must be a finite number, got nan"):
        sph_nms(boxes, torch.zeros(1), math.nan)
    with pytest.raises(
        ShapeError, match=r"boxes must be \(N, 4\) BFoV or \(N, 5\) RBFoV, got \(5,\)"
    ):
        sph_nms(boxes[0], torch.zeros(1), 0.5)
    with pytest.raises(TypeError, match="boxes must be a floating-point tensor"):
        sph_nms(boxes.long(), torch.zeros(1), 0.5)
    with pytest.raises(TypeError, match="scores must be a real tensor"):
        sph_nms(boxes, torch.zeros(1, dtype=torch.bool), 0.5)
    with pytest.raises(ValueRangeError, match=r"boxes fov_x and fov_y must be in \(0, pi\)"):
        sph_nms(torch.tensor([[0.0, 0.0, 20.0, 20.0]]), torch.zeros(1), 0.5)
    with pytest.raises(ValueError, match='denominator="min" needs method="exact"'):
        sph_nms(boxes[:, :4], torch.zeros(1), 0.7, method="fov", denominator="min")
    with pytest.raises(ValueError, match="denominator must be one of"):
        sph_nms(boxes, torch.zeros(1), 0.7, denominator="max")


def test_batched_sph_nms_errors():
    boxes, scores = torch.tensor([[0.0, 0.0, 0.5, 0.5]] * 2), torch.zeros(2)
    labels = torch.zeros(2, dtype=torch.long)
    with pytest.raises(ShapeError, match=r"classes must be \(2,\), got \(2, 1\)"):
        batched_sph_nms(boxes, scores, labels[:, None], 0.5)
    with pytest.raises(TypeError, match=r"classes must be an integer tensor, got torch\.float32"):
        batched_sph_nms(boxes, scores, labels.float(), 0.5)
    with pytest.raises(ShapeError, match=r"scores must be \(2,\)"):
        batched_sph_nms(boxes, scores[:1], labels, 0.5)
    with pytest.raises(ShapeError, match=r"boxes must be \(N, 4\) BFoV or \(N, 5\) RBFoV"):
        batched_sph_nms(boxes[:, :3], scores, labels, 0.5)
    with pytest.raises(TypeError, match="boxes must be a floating-point tensor"):
        batched_sph_nms(boxes.int(), scores, labels, 0.5)
    with pytest.raises(TypeError, match="scores must be a real tensor"):
        batched_sph_nms(boxes, scores.bool(), labels, 0.5)
    with pytest.raises(ValueRangeError, match=r"boxes lat must be in \[-pi/2, pi/2\]"):
        batched_sph_nms(torch.tensor([[0.0, 2.0, 0.5, 0.5]] * 2), scores, labels, 0.5)
    with pytest.raises(ValueRangeError, match=r"iou_threshold must be a finite number in \[0, 1\]"):
        batched_sph_nms(boxes, scores, labels, -0.1)
    with pytest.raises(ShapeError, match="no roll"):
        batched_sph_nms(
            torch.tensor([[0.0, 0.0, 0.5, 0.5, 0.0]] * 2), scores, labels, 0.5, method="fov"
        )
    with pytest.raises(ValueError, match="method must be one of"):
        batched_sph_nms(boxes, scores, labels, 0.5, method="soft")
    with pytest.raises(ValueError, match='denominator="min" needs method="exact"'):
        batched_sph_nms(boxes, scores, labels, 0.5, method="fov", denominator="min")
