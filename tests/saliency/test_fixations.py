"""Fixation maps: geodesic Gaussians against a per-pixel loop oracle, binary maps, video pooling."""

from __future__ import annotations

import math

import pytest
import torch

from pano360._core import ShapeError, ValueRangeError
from pano360.geometry import pixel_solid_angle, pixel_to_lonlat
from pano360.saliency import (
    SIGMA_HEAD_DEG,
    SIGMA_HEAD_EYE_DEG,
    binary_fixation_map,
    fixation_map,
    frame_fixation_indices,
    normalize_saliency,
    video_fixation_maps,
)

H, W = 12, 24


def _random_fixations(n: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lon = torch.rand(n, generator=g, dtype=dtype) * 2 * math.pi - math.pi
    lat = torch.asin(torch.rand(n, generator=g, dtype=dtype) * 2 - 1)
    return torch.stack((lon, lat), dim=-1)


def _oracle_map(fix: torch.Tensor, hw, sigma_deg: float) -> torch.Tensor:
    """Sum of exp(-d^2 / 2 sigma^2), d the great-circle angle, pixel by pixel in plain Python."""
    h, w = hw
    sigma = math.radians(sigma_deg)
    out = torch.zeros(h, w, dtype=torch.float64)
    for i in range(h):
        for j in range(w):
            lon, lat = pixel_to_lonlat(torch.tensor([j, i], dtype=torch.float64), hw).tolist()
            for f_lon, f_lat in fix.tolist():
                cos_d = math.sin(lat) * math.sin(f_lat) + math.cos(lat) * math.cos(
                    f_lat
                ) * math.cos(lon - f_lon)
                d = math.acos(max(-1.0, min(1.0, cos_d)))
                out[i, j] += math.exp(-(d * d) / (2 * sigma * sigma))
    return out


# --- fixation_map ------------------------------------------------------------------------------


def test_defaults_are_the_salient360_widths():
    assert (SIGMA_HEAD_EYE_DEG, SIGMA_HEAD_DEG) == (2.0, 3.34)
    # ... and the map builders use the head+eye width when given none.
    fix = _random_fixations(3)
    for sigma, same in ((2.0, True), (3.34, False)):
        explicit = fixation_map(fix, (H, W), sigma)
        assert torch.equal(fixation_map(fix, (H, W)), explicit) == same
    start = torch.zeros(3, dtype=torch.float64)
    default = video_fixation_maps(fix, start, 2, 1.0, (H, W))
    torch.testing.assert_close(default, video_fixation_maps(fix, start, 2, 1.0, (H, W), 2.0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_loop_oracle(dtype):
    fix = _random_fixations(5)
    expected = _oracle_map(fix, (H, W), 20.0)
    got = fixation_map(fix.to(dtype), (H, W), 20.0, normalize="none", truncate=None, dtype=dtype)
    assert got.shape == (1, 1, H, W) and got.dtype == dtype
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(got[0, 0].double(), expected, atol=tol, rtol=tol)


def test_truncation_drops_only_tiny_values():
    fix = _random_fixations(40, seed=1)
    exact = fixation_map(fix, (32, 64), 8.0, normalize="none", truncate=None, dtype=torch.float64)
    cut = fixation_map(fix, (32, 64), 8.0, normalize="none", dtype=torch.float64)
    assert float((exact - cut).abs().max()) <= 40 * math.exp(-12.5)
    assert bool((cut <= exact + 1e-12).all())


def test_convention_blob_at_the_pixel_of_the_fixation():
    # lon > 0 is right of the centre, lat > 0 above it: pixel (row 2, column 17).
    lonlat = pixel_to_lonlat(torch.tensor([17.0, 2.0]), (H, W))
    assert lonlat[0] > 0 and lonlat[1] > 0
    m = fixation_map(lonlat[None], (H, W), 5.0)
    assert divmod(int(m.argmax()), W) == (2, 17)


def test_convention_seam_wraps_and_yaw_shift_rolls_columns():
    fix = torch.tensor([[-math.pi + 0.01, 0.3]], dtype=torch.float64)
    m = fixation_map(fix, (H, W), 15.0, truncate=None, dtype=torch.float64)
    # The blob straddles the seam: both edge columns carry it.
    assert m[0, 0, :, 0].max() > 0.5 * m.max() and m[0, 0, :, -1].max() > 0.5 * m.max()
    shifted = fixation_map(fix + torch.tensor([2 * math.pi * 5 / W, 0.0]), (H, W), 15.0,
                           truncate=None, dtype=torch.float64)  # fmt: skip
    torch.testing.assert_close(shifted, torch.roll(m, 5, dims=-1))


def test_convention_pole_fixation_is_constant_along_rows():
    m = fixation_map(torch.tensor([[1.0, math.pi / 2]]), (H, W), 20.0, dtype=torch.float64)
    torch.testing.assert_close(m[0, 0], m[0, 0, :, :1].expand(H, W))
    assert bool((m[0, 0, 0] > m[0, 0, 1]).all())


def test_density_integrates_to_one_and_small_gaussian_has_area_two_pi_sigma_squared():
    fix = torch.tensor([[0.4, -0.2]], dtype=torch.float64)
    area = pixel_solid_angle((180, 360), dtype=torch.float64)
    raw = fixation_map(fix, (180, 360), 3.0, normalize="none", dtype=torch.float64)
    sigma = math.radians(3.0)
    assert float((raw * area).sum()) == pytest.approx(2 * math.pi * sigma**2, rel=1e-3)
    dens = fixation_map(fix, (180, 360), 3.0, normalize="density", dtype=torch.float64)
    assert float((dens * area).sum()) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(("normalize", "check"), [("sum", "sum"), ("max", "amax")])
def test_normalisations(normalize, check):
    m = fixation_map(_random_fixations(3), (H, W), 10.0, normalize=normalize)
    assert float(getattr(m, check)()) == pytest.approx(1.0, abs=1e-6)


def test_batches_as_tensor_and_ragged_sequence_agree_with_single_maps():
    a, b = _random_fixations(4, seed=2), _random_fixations(4, seed=3)
    batched = fixation_map(torch.stack((a, b)), (H, W), 10.0)
    ragged = fixation_map([a, b[:2]], (H, W), 10.0)
    assert batched.shape == ragged.shape == (2, 1, H, W)
    torch.testing.assert_close(batched[1:], fixation_map(b, (H, W), 10.0))
    torch.testing.assert_close(ragged[1:], fixation_map(b[:2], (H, W), 10.0))


def test_weight_two_equals_a_duplicated_fixation():
    fix = _random_fixations(3, seed=4)
    weighted = fixation_map(fix, (H, W), 10.0, weights=torch.tensor([1.0, 2.0, 1.0]))
    duplicated = fixation_map(torch.cat((fix, fix[1:2])), (H, W), 10.0)
    torch.testing.assert_close(weighted, duplicated)


def test_no_fixation_gives_a_zero_map():
    m = fixation_map(torch.zeros(0, 2), (H, W))
    assert m.shape == (1, 1, H, W) and float(m.abs().sum()) == 0.0


def test_gradcheck_float64():
    fix = _random_fixations(3, seed=5).requires_grad_()
    wts = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64, requires_grad=True)

    def fn(f, w_):
        return fixation_map(f, (6, 12), 25.0, weights=w_, truncate=None, dtype=torch.float64)

    assert torch.autograd.gradcheck(fn, (fix, wts))


def test_gradient_is_finite_when_a_fixation_sits_on_a_pixel_centre():
    fix = pixel_to_lonlat(torch.tensor([[3.0, 2.0]], dtype=torch.float64), (6, 12))
    fix.requires_grad_()
    fixation_map(fix, (6, 12), 10.0, normalize="none", dtype=torch.float64).sum().backward()
    assert bool(torch.isfinite(fix.grad).all())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"fixations": torch.zeros(3, 3)}, ShapeError, r"fixations must be \(N, 2\)"),
        ({"fixations": torch.zeros(1, 2, 3, 2)}, ShapeError, "fixations must be"),
        ({"fixations": []}, ShapeError, "at least one map"),
        ({"fixations": torch.tensor([[0.0, 2.0]])}, ValueRangeError, r"latitudes must be in"),
        ({"fixations": torch.tensor([[math.nan, 0.0]])}, ValueRangeError, "must be finite"),
        ({"fixations": torch.tensor([[0, 0]])}, TypeError, "floating-point"),
        ({"hw": (10, 10)}, ShapeError, "W == 2H"),
        ({"sigma_deg": 0.0}, ValueRangeError, "sigma_deg must be a positive"),
        ({"truncate": -1.0}, ValueRangeError, "truncate must be a positive"),
        ({"normalize": "l2"}, ValueError, "normalize must be one of"),
        ({"weights": torch.tensor([-1.0])}, ValueRangeError, "non-negative"),
        ({"weights": torch.tensor([1.0, 1.0])}, ShapeError, "one weight per fixation"),
        ({"weights": [torch.ones(1), torch.ones(1)]}, ShapeError, "one entry per map"),
    ],
)
def test_errors(kwargs, error, match):
    args = {"fixations": torch.zeros(1, 2), "hw": (H, W)} | kwargs
    with pytest.raises(error, match=match):
        fixation_map(**args)


def test_normalize_saliency_keeps_zero_maps_and_rejects_unknown():
    maps = torch.zeros(2, 1, 4, 8)
    maps[1, 0, 1, 2] = 4.0
    out = normalize_saliency(maps)
    assert float(out[0].sum()) == 0.0 and float(out[1].sum()) == 1.0
    with pytest.raises(ValueError, match="normalize must be one of"):
        normalize_saliency(maps, "softmax")


# --- binary_fixation_map -----------------------------------------------------------------------


def _binary_oracle(fix: torch.Tensor, hw) -> torch.Tensor:
    """Count fixations per pixel by testing each pixel's cell edges in degrees."""
    h, w = hw
    out = torch.zeros(h, w)
    for lon, lat in fix.tolist():
        lon_deg = (math.degrees(lon) + 180) % 360 - 180
        for j in range(w):
            left = -180 + 360 * j / w
            if left <= lon_deg < left + 360 / w:
                break
        for i in range(h):
            top = 90 - 180 * i / h
            if top >= math.degrees(lat) > top - 180 / h or (i == h - 1 and lat <= -math.pi / 2):
                break
        out[i, j] += 1
    return out


def test_binary_map_matches_oracle_and_counts():
    fix = _random_fixations(60, seed=6)
    counts = binary_fixation_map(fix, (H, W), counts=True)
    torch.testing.assert_close(counts[0, 0], _binary_oracle(fix, (H, W)))
    hits = binary_fixation_map(fix, (H, W))
    torch.testing.assert_close(hits, (counts > 0).float())


def test_convention_binary_map_edges():
    fix = torch.tensor(
        [[-math.pi, math.pi / 2], [math.pi, 0.01], [3.0, -math.pi / 2]], dtype=torch.float64
    )
    m = binary_fixation_map(fix, (4, 8), counts=True)[0, 0]
    # lon = -pi: column 0; lon = +pi is the same meridian: column 0; lat = -pi/2: last row.
    assert m[0, 0] == 1 and m[1, 0] == 1 and m[3, 7] == 1 and m.sum() == 3


def test_binary_map_errors():
    with pytest.raises(ValueRangeError, match="latitudes"):
        binary_fixation_map(torch.tensor([[0.0, -1.6]]), (H, W))
    with pytest.raises(ShapeError, match="W == 2H"):
        binary_fixation_map(torch.zeros(1, 2), (H, H))
    with pytest.raises(ShapeError, match="at least one map"):
        binary_fixation_map([], (H, W))


# --- video pooling ------------------------------------------------------------------------------


def _windows_oracle(start, end, n, fps, window):
    out = []
    for k in range(n):
        c = (k + 0.5) / fps
        lo, hi = c - window / 2, c + window / 2
        out.append([i for i, (s, e) in enumerate(zip(start, end, strict=True))
                    if s < hi and (s >= lo or e > lo)])  # fmt: skip
    return out


def test_frame_indices_match_oracle():
    g = torch.Generator().manual_seed(7)
    start = torch.rand(50, generator=g, dtype=torch.float64) * 3
    end = start + torch.rand(50, generator=g, dtype=torch.float64) * 0.4
    got = frame_fixation_indices(start, 30, 10.0, end_s=end, window_s=0.2)
    assert [g_.tolist() for g_ in got] == _windows_oracle(
        start.tolist(), end.tolist(), 30, 10.0, 0.2
    )
    points = frame_fixation_indices(start, 30, 10.0)
    assert [p.tolist() for p in points] == _windows_oracle(
        start.tolist(), start.tolist(), 30, 10.0, 0.2
    )


def test_convention_frame_window_is_centred_on_the_frame():
    # 2 fps: frame 1 is shown during [0.5, 1.0), its 200 ms window is [0.65, 0.85).
    start = torch.tensor([0.64, 0.66, 0.84, 0.86], dtype=torch.float64)
    assert frame_fixation_indices(start, 2, 2.0)[1].tolist() == [1, 2]
    # A long fixation that started before the window and is still on counts.
    assert frame_fixation_indices(torch.tensor([0.1]), 2, 2.0, end_s=torch.tensor([0.7]))[
        1
    ].tolist() == [0]


def test_video_maps_pool_each_frames_fixations():
    fix = _random_fixations(20, seed=8)
    start = torch.linspace(0, 1.9, 20, dtype=torch.float64)
    maps = video_fixation_maps(fix, start, 10, 4.0, (H, W), 10.0, window_s=0.5)
    assert maps.shape == (10, 1, H, W)
    per_frame = frame_fixation_indices(start, 10, 4.0, window_s=0.5)
    for k in range(10):
        expected = fixation_map(fix[per_frame[k]], (H, W), 10.0)
        torch.testing.assert_close(maps[k : k + 1], expected)
    subset = video_fixation_maps(fix, start, 10, 4.0, (H, W), 10.0, window_s=0.5, frames=[7, 2])
    torch.testing.assert_close(subset, maps[[7, 2]])
    # Frame 9's window [2.125, 2.625) s holds no fixation (the last is at 1.9 s): zero map.
    assert float(maps[-1].sum()) == 0.0 and float(maps[-2].sum()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: frame_fixation_indices(torch.zeros(2), 0, 10.0), ValueRangeError, "num_frames"),
        (lambda: frame_fixation_indices(torch.zeros(2), 3, 0.0), ValueRangeError, "fps must"),
        (lambda: frame_fixation_indices(torch.zeros(2), 3, 5.0, window_s=0), ValueRangeError,
         "window_s must"),
        (lambda: frame_fixation_indices(torch.zeros(2), 3, 5.0, end_s=torch.zeros(3)), ShapeError,
         "matching"),
        (lambda: frame_fixation_indices(torch.ones(2), 3, 5.0, end_s=torch.zeros(2)),
         ValueRangeError, "end_s must not be before"),
        (lambda: frame_fixation_indices(torch.tensor([math.inf]), 3, 5.0), ValueRangeError,
         "finite"),
        (lambda: video_fixation_maps(torch.zeros(3, 2), torch.zeros(2), 3, 5.0, (H, W)),
         ShapeError, "same length"),
        (lambda: video_fixation_maps(torch.zeros(2, 2), torch.zeros(2), 3, 5.0, (H, W),
                                     frames=[3]), ValueRangeError, r"frames must be in \[0, 3\)"),
        (lambda: video_fixation_maps(torch.zeros(2, 2), torch.zeros(2), 3, 5.0, (H, W),
                                     weights=torch.ones(3)), ShapeError, "weights must be"),
    ],
)  # fmt: skip
def test_video_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
