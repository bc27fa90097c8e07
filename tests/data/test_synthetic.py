"""Synthetic spherical scenes: ground-truth boxes against where the photos really landed."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import pano360
from pano360.data import (
    Placement,
    SaliencyFolder,
    SaliencySceneConfig,
    SceneConfig,
    SyntheticFaceScenes,
    SyntheticSaliencyScenes,
    collate_scenes,
    make_face_scene,
    make_saliency_scene,
    render_scene,
    write_face_scenes,
    write_saliency_scenes,
)
from pano360.data.synthetic import (
    FACE_ASSETS,
    OBJECT_ASSETS,
    SCENE_ASSETS,
    load_asset,
    placement_cap,
    placement_view,
    scene_background,
)
from pano360.errors import ImageIOError, OutputExistsError, ShapeError, ValueRangeError
from pano360.geometry import (
    caps_apart,
    erp_lonlat_grid,
    erp_to_perspective,
    lonlat_to_xyz,
    perspective_to_erp,
    pixel_solid_angle,
)
from pano360.testing import assert_seam_continuous, psnr

DEG = math.pi / 180
HW = (128, 256)
SMALL = SceneConfig(erp_hw=HW, n_faces=(3, 4), n_objects=(1, 2))
ASSETS_DIR = Path(pano360.__file__).parent / "data" / "assets"


def window_of(p: Placement) -> tuple[float, float, float, float]:
    if p.window is not None:
        return tuple(p.window)
    h, w = SCENE_ASSETS[p.asset].size_hw
    return (0.0, 0.0, float(w), float(h))


def oracle_view(p: Placement, fov_x: float, out_hw: tuple[int, int]) -> torch.Tensor:
    """What a pinhole view aimed like the item's camera (lon, lat, roll) and ``fov_x`` wide
    shows of the item on a black background: the photo under an affine map, no sphere involved.

    View pixel (j, i) looks along ((2j + 1 - w) / w t, -(2i + 1 - h) / w t, 1), t = tan(fov_x / 2)
    (the pinhole rule of the conventions); the item's camera puts the anchor on the axis with a
    focal length that makes the box ``p.width`` wide, so that ray meets the photo at
    anchor + (+-tx, -ty) * focal.
    """
    asset = SCENE_ASSETS[p.asset]
    img = load_asset(p.asset).double()
    h, w = out_hw
    x0, y0, x1, y1 = window_of(p)
    bx0, by0, bx1, by1 = asset.face_xyxy if asset.kind == "face" else (x0, y0, x1, y1)
    ax, ay = (bx0 + bx1) / 2, (by0 + by1) / 2
    focal = (bx1 - bx0) / 2 / math.tan(p.width / 2)
    t = math.tan(fov_x / 2)
    tx = (2 * torch.arange(w, dtype=torch.float64) + 1 - w) / w * t
    ty = -(2 * torch.arange(h, dtype=torch.float64) + 1 - h) / w * t
    xs = ax + (-tx if p.flip else tx) * focal
    ys = ay - ty * focal
    ih, iw = img.shape[-2:]
    step = 2 * t * focal / w
    if step > 1:
        size = (round(ih / step), round(iw / step))
        img = F.interpolate(img, size=size, mode="bilinear", antialias=True)
    grid = torch.stack(torch.meshgrid(2 * xs / iw - 1, 2 * ys / ih - 1, indexing="xy"), -1)
    rgb = F.grid_sample(img, grid[None], padding_mode="border", align_corners=False)
    inside = ((ys >= y0) & (ys <= y1))[:, None] & ((xs >= x0) & (xs <= x1))[None, :]
    return (rgb * p.brightness).clamp(0, 1) * inside


def alpha_of(placements, hw=HW, supersample=2) -> torch.Tensor:
    """(H, W) share of each pixel covered by the pasted items: composited over black and white,
    black = a c and white = a c + (1 - a), so a = 1 - (white - black)."""
    black = render_scene(placements, hw, background=torch.zeros(3, *hw), supersample=supersample)
    white = render_scene(placements, hw, background=torch.ones(3, *hw), supersample=supersample)
    return (1 - (white.erp - black.erp)).mean(0).clamp(0, 1)


def view_hw(fx: float, fy: float, w: int = 48) -> tuple[int, int]:
    return round(w * math.tan(fy / 2) / math.tan(fx / 2)), w


# --- assets ------------------------------------------------------------------------------------


def test_assets_load_with_their_sizes_face_boxes_and_licences():
    total = 0
    licences = (ASSETS_DIR / "LICENSES.md").read_text()
    for name, asset in SCENE_ASSETS.items():
        img = load_asset(name)
        channels = 1 if asset.kind == "texture" else 3
        assert img.shape == (1, channels, *asset.size_hw) and img.dtype == torch.float32
        assert img.min() >= 0 and img.max() <= 1
        if asset.kind == "face":
            x0, y0, x1, y1 = asset.face_xyxy
            h, w = asset.size_hw
            assert 0 < x0 < x1 < w and 0 < y0 < y1 < h
        assert asset.file in licences and asset.licence in ("public domain", "CC0")
        total += (ASSETS_DIR / asset.file).stat().st_size
    assert total < 400_000
    assert set(FACE_ASSETS) | set(OBJECT_ASSETS) < set(SCENE_ASSETS)


def test_load_asset_returns_a_copy_and_rejects_unknown_names():
    a = load_asset("coffee")
    a.zero_()
    assert load_asset("coffee").max() > 0
    with pytest.raises(ValueError, match="name must be one of"):
        load_asset("lena")


# --- geometry of the ground truth --------------------------------------------------------------

CASES = {
    "front": Placement(
        "astronaut", lon=0.3, lat=0.1, width=22 * DEG, roll=-0.15, window=(30, 10, 250, 320)
    ),
    "seam_rolled_flipped": Placement(
        "astronaut",
        lon=math.pi - 0.02,
        lat=0.3,
        width=25 * DEG,
        roll=0.3,
        flip=True,
        brightness=1.1,
        window=(40, 20, 230, 300),
    ),
    "north_pole": Placement(
        "grace_hopper", lon=-2.0, lat=82 * DEG, width=20 * DEG, roll=-0.3, window=(30, 30, 200, 260)
    ),
    "south_seam": Placement(
        "grace_hopper",
        lon=-math.pi,
        lat=-68 * DEG,
        width=18 * DEG,
        roll=0.2,
        window=(20, 0, 230, 280),
    ),
    "object_south": Placement(
        "coffee", lon=1.0, lat=-70 * DEG, width=30 * DEG, roll=0.2, flip=True
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_convention_rbfov_view_shows_the_pasted_photo(name):
    """A view aimed at the RBFoV (and 1.6 times wider, showing the photo's edges) equals the
    oracle; with the roll negated or the photo mirrored it does not, so the test can fail."""
    p = CASES[name]
    hw = (256, 512)
    scene = render_scene([p], hw, background=torch.zeros(3, *hw))
    lon, lat, fx, fy, roll = scene.rbfov[0].tolist()
    assert math.isclose(lat, p.lat) and math.isclose(roll, p.roll) and math.isclose(fx, p.width)
    assert -math.pi <= lon < math.pi and abs(math.remainder(lon - p.lon, 2 * math.pi)) < 1e-12
    erp = scene.erp[None].double()
    for widen in (1.0, 1.6):
        fov = 2 * math.atan(widen * math.tan(fx / 2))
        out_hw = view_hw(fx, fy)
        expected = oracle_view(p, fov, out_hw)
        view = erp_to_perspective(erp, fov, out_hw, lon, lat, roll)
        good = psnr(view, expected)
        assert good >= 25, f"{name}, fov x {widen}: PSNR {good:.1f} dB"
        wrong_roll = psnr(erp_to_perspective(erp, fov, out_hw, lon, lat, -roll), expected)
        mirrored = psnr(view, expected.flip(-1))
        assert max(wrong_roll, mirrored) < good - 6, (good, wrong_roll, mirrored)


@pytest.mark.parametrize("name", ["front", "seam_rolled_flipped", "north_pole", "south_seam"])
def test_face_fills_its_box_and_the_box_is_tight(name):
    p = CASES[name]
    scene = render_scene([p], HW)
    alpha = alpha_of([p])[None, None].double()
    lon, lat, fx, fy, roll = scene.rbfov[0].tolist()
    out_hw = view_hw(fx, fy, 24)
    inside = erp_to_perspective(alpha, fx, out_hw, lon, lat, roll)
    assert inside.min() > 0.97  # the face box view is all pasted photo
    # Beyond the window's margins there is no photo: the box is the face's, not the tile's.
    x0, _, x1, _ = window_of(p)
    fx0, _, fx1, _ = SCENE_ASSETS[p.asset].face_xyxy
    margin_x = max(fx0 - x0, x1 - fx1) / (fx1 - fx0)
    wider = 2 * math.atan((1 + 2 * margin_x + 1.0) * math.tan(fx / 2))
    far = erp_to_perspective(alpha, wider, (15, 15), lon, lat, roll)
    assert far[..., :, 0].max() < 0.02 and far[..., :, -1].max() < 0.02
    assert far[..., 7, 7] > 0.97


@pytest.mark.parametrize(("asset", "lat"), [("astronaut", 0.2), ("grace_hopper", -75 * DEG)])
def test_box_is_the_face_box_exactly(asset, lat):
    """Paste only the face box: a view 0.93 times the RBFoV is full; one 1.1 times wider (outer
    pixel centres 7% out) has photo-free edges on all four sides: fov_x and fov_y are right to
    a few percent."""
    p = Placement(
        asset, lon=2.5, lat=lat, width=50 * DEG, roll=-0.25, window=SCENE_ASSETS[asset].face_xyxy
    )
    scene = render_scene([p], (256, 512))
    lon, lat, fx, fy, roll = scene.rbfov[0].tolist()
    alpha = alpha_of([p], (256, 512))[None, None].double()
    out_hw = view_hw(fx, fy, 40)
    inner_fov = 2 * math.atan(0.93 * math.tan(fx / 2))
    assert erp_to_perspective(alpha, inner_fov, out_hw, lon, lat, roll).min() > 0.97
    outer = erp_to_perspective(alpha, 2 * math.atan(1.1 * math.tan(fx / 2)), out_hw, lon, lat, roll)
    for edge in (outer[..., 0, :], outer[..., -1, :], outer[..., :, 0], outer[..., :, -1]):
        assert edge.max() < 0.02


def test_convention_positive_lon_lands_right_and_positive_roll_turns_the_top_clockwise():
    # A thin upright bar (a 20-pixel-wide strip of a photo), 10 times taller than wide.
    bar = {
        "asset": "coffee",
        "lon": 0.5,
        "lat": 0.0,
        "width": 6 * DEG,
        "window": (110, 0, 130, 200),
    }
    lonlat = erp_lonlat_grid(HW, dtype=torch.float64)
    lon, lat = lonlat[..., 0], lonlat[..., 1]

    def top_and_bottom_lon(roll: float) -> tuple[float, float, float]:
        alpha = alpha_of([Placement(**bar, roll=roll)]).double()
        upper, lower = alpha * (lat > 0.15), alpha * (lat < -0.15)
        return (
            float((alpha * lon).sum() / alpha.sum()),
            float((upper * lon).sum() / upper.sum()),
            float((lower * lon).sum() / lower.sum()),
        )

    centre, top, bottom = top_and_bottom_lon(0.0)
    assert abs(centre - 0.5) < 0.01 and abs(top - 0.5) < 0.01 and abs(bottom - 0.5) < 0.01
    # Clockwise as seen from the centre: the bar's top moves right (east), its bottom left.
    centre, top, bottom = top_and_bottom_lon(0.35)
    assert abs(centre - 0.5) < 0.01 and top > 0.5 + 0.05 and bottom < 0.5 - 0.05


def angles_to(centre: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """(H, W) angle from a (lon, lat) centre to every pixel centre."""
    dirs = lonlat_to_xyz(erp_lonlat_grid(hw, dtype=torch.float64))
    return torch.arccos((dirs @ lonlat_to_xyz(centre.double())).clamp(-1, 1))


@pytest.mark.parametrize("name", ["front", "seam_rolled_flipped", "north_pole", "object_south"])
def test_render_is_perspective_to_erp_of_the_placement_view_within_its_cap(name):
    """render_scene pastes placement_view with perspective_to_erp's mapping, evaluated only where
    the placement's cap reaches: the same numbers as a full-sphere perspective_to_erp, averaged
    over the supersampling blocks; and the cap holds every pixel the photo changes (the overlap
    check of the scene generators relies on it)."""
    p = CASES[name]
    hw, ss = (64, 128), 2
    big = (hw[0] * ss, hw[1] * ss)
    scene = render_scene([p], hw, background=torch.zeros(3, *hw), supersample=ss)
    lon, lat, _, _, roll = scene.rbfov[0].tolist()
    view, fov = placement_view(p, hw, ss)
    full, _ = perspective_to_erp(view, fov, big, lon, lat, roll)
    expected = F.avg_pool2d(full, ss)[0]
    torch.testing.assert_close(scene.erp, expected[:3].clamp(0, 1), atol=2e-5, rtol=0)
    torch.testing.assert_close(alpha_of([p], hw, ss), expected[3], atol=2e-5, rtol=0)
    centre, radius = placement_cap(p, hw, ss)
    assert float(angles_to(centre, hw)[expected[3] > 0].max()) <= float(radius)
    assert float(angles_to(centre, big)[full[0, 3] > 0].max()) <= float(radius)


# --- scenes ------------------------------------------------------------------------------------


def test_same_seed_same_scene_and_other_seeds_differ():
    a, b = make_face_scene(11, SMALL), make_face_scene(11, SMALL)
    assert torch.equal(a.erp, b.erp) and torch.equal(a.rbfov, b.rbfov) and a.labels == b.labels
    c = make_face_scene(12, SMALL)
    assert not torch.equal(a.erp, c.erp)
    assert a.rbfov.shape != c.rbfov.shape or not torch.equal(a.rbfov, c.rbfov)
    assert not torch.equal(make_face_scene((11, 0), SMALL).erp, a.erp)


TINY = SceneConfig(erp_hw=(32, 64), n_faces=(2, 3), n_objects=(0, 1))


def test_dataset_items_depend_only_on_seed_and_index():
    data = SyntheticFaceScenes(5, seed=3, config=TINY)
    late_first = [data[4], data[0]]
    fresh = SyntheticFaceScenes(5, seed=3, config=TINY)
    for got, i in zip(late_first, (4, 0), strict=True):
        assert torch.equal(got.erp, fresh[i].erp) and torch.equal(got.bfov, fresh[i].bfov)
        assert torch.equal(got.erp, make_face_scene((3, i), TINY).erp)
        assert got.seed == (3, i)
    assert torch.equal(data[-1].erp, late_first[0].erp)
    assert not torch.equal(SyntheticFaceScenes(5, seed=4, config=TINY)[0].erp, data[0].erp)
    assert not torch.equal(make_face_scene(3, TINY).erp, data[0].erp)
    assert torch.equal(SyntheticFaceScenes(9, seed=3, config=TINY)[4].erp, late_first[0].erp)
    assert "n=5, seed=3" in repr(data)


def test_scene_fields_and_ranges():
    cfg = SceneConfig(erp_hw=HW, n_faces=(4, 4), n_objects=(2, 2), face_width=(9 * DEG, 20 * DEG))
    scene = make_face_scene(5, cfg)
    n = len(scene.placements)
    assert scene.erp.shape == (3, *HW) and scene.erp.dtype == torch.float32
    assert scene.erp.min() >= 0 and scene.erp.max() <= 1
    assert scene.bfov.shape == (n, 4) and scene.rbfov.shape == (n, 5) and scene.band.shape == (n,)
    assert n + scene.dropped == 6 and scene.labels.count("face") == 4 - min(scene.dropped, 4)
    torch.testing.assert_close(scene.rbfov[:, :4], scene.bfov)
    faces = scene.face_rbfov
    assert torch.equal(faces, scene.rbfov[scene.is_face])
    assert ((faces[:, 2] >= 9 * DEG) & (faces[:, 2] <= 20 * DEG)).all()
    assert (faces[:, 3] > faces[:, 2]).all()  # both portraits' face boxes are taller than wide
    assert (faces[:, 4].abs() <= 20 * DEG).all() and (faces[:, 1].abs() <= 85 * DEG).all()
    assert all(
        a in FACE_ASSETS for a, lab in zip(scene.assets, scene.labels, strict=True) if lab == "face"
    )
    assert (scene.band[~scene.is_face] == -1).all()


def test_items_never_overlap():
    """Nine big items (the polar caps included): each rendered alone, no pixel gets two."""
    cfg = SceneConfig(
        erp_hw=(64, 128), n_faces=(6, 6), n_objects=(3, 3), face_width=(15 * DEG, 25 * DEG)
    )
    scene = make_face_scene(0, cfg)
    assert len(scene.placements) == 9 and max(scene.bfov[:, 1].abs()) > 70 * DEG
    caps = [placement_cap(p, (64, 128), cfg.supersample) for p in scene.placements]
    centres, radii = torch.stack([c for c, _ in caps]), torch.stack([r for _, r in caps])
    apart = caps_apart(centres, radii, centres, radii, cfg.min_gap)
    assert torch.equal(apart, ~torch.eye(9, dtype=torch.bool))  # min_gap apart, each pair
    alphas = [alpha_of([p], (64, 128)) > 1e-4 for p in scene.placements]
    assert all(a.any() for a in alphas)
    assert torch.stack(alphas).sum(0).max() <= 1, "two items share a pixel"
    # And together they are what the scene shows.
    together = alpha_of(list(scene.placements), (64, 128)) > 1e-4
    assert torch.equal(together, torch.stack(alphas).any(0))


@pytest.mark.parametrize("seed", range(6))
def test_balanced_bands_hold_their_faces(seed):
    cfg = SceneConfig(erp_hw=(64, 128), n_faces=(5, 5), n_objects=(0, 0))
    scene = make_face_scene(seed, cfg)
    assert scene.dropped == 0
    counts = torch.bincount(scene.band, minlength=3)
    assert counts.max() - counts.min() <= 1
    for (lon, lat), band in zip(scene.bfov[:, :2].tolist(), scene.band.tolist(), strict=True):
        lo, hi = cfg.lat_bands[band]
        assert lo <= abs(lat) <= hi and -math.pi <= lon < math.pi


@pytest.mark.parametrize("mode", ["uniform", "area"])
def test_other_lat_samplings_stay_in_their_bands(mode):
    bands = ((10 * DEG, 20 * DEG), (70 * DEG, 80 * DEG))
    cfg = SceneConfig(
        erp_hw=(32, 64),
        n_faces=(4, 4),
        n_objects=(0, 0),
        lat_bands=bands,
        lat_sampling=mode,
        face_width=(8 * DEG, 10 * DEG),
    )
    lats = []
    for seed in range(4):
        scene = make_face_scene(seed, cfg)
        for lat, band in zip(scene.bfov[:, 1].tolist(), scene.band.tolist(), strict=True):
            lo, hi = bands[band]
            assert lo <= abs(lat) <= hi
            lats.append(lat)
    assert min(lats) < 0 < max(lats)  # both hemispheres


def test_scene_is_continuous_across_the_seam_and_the_poles():
    p = CASES["seam_rolled_flipped"]
    scene = render_scene([p], HW, seed=4)
    erp = scene.erp[None]
    assert_seam_continuous(lambda _: erp, erp)
    # Stronger: the step across the seam is like the steps of the columns next to it.
    steps = (erp - erp.roll(1, -1)).abs().mean(dim=(0, 1, 2))  # step into each column
    neighbours = torch.cat((steps[1:4], steps[-3:]))
    assert steps[0] < 2 * neighbours.mean()
    bg = scene_background((64, 128), seed=2)
    assert_seam_continuous(lambda _: bg, bg)
    # Across a pole, row 0 at column c meets row 0 at column c + W/2.
    for row in (0, -1):
        across = (bg[..., row, :] - bg[..., row, :].roll(64, -1)).abs().max()
        along = (bg[..., row, :] - bg[..., row + (1 if row == 0 else -1), :]).abs().max()
        assert across < 2 * along + 0.02


def test_default_size_scene_has_detectable_faces():
    scene = make_face_scene(0)
    assert scene.erp.shape == (3, 512, 1024)
    faces = scene.face_rbfov
    assert len(faces) >= 3 and scene.dropped == 0
    px = faces[:, 2] / (2 * math.pi) * 1024  # face width in pixels along the latitude circle
    assert (px >= 8 / 360 * 1024 - 1e-6).all()  # >= 22.8 px: MTCNN's 20 px minimum
    # Crisp at the native face size: a view of the face box against the oracle of its photo.
    p = next(p for p in scene.placements if p.kind == "face")
    i = scene.placements.index(p)
    lon, lat, fx, fy, roll = scene.rbfov[i].tolist()
    out_hw = view_hw(fx, fy, max(16, round(fx / (2 * math.pi) * 1024)))
    view = erp_to_perspective(scene.erp[None].double(), fx, out_hw, lon, lat, roll)
    assert psnr(view, oracle_view(p, fx, out_hw)) > 24


# --- saliency scenes ---------------------------------------------------------------------------

SAL = SaliencySceneConfig(erp_hw=(64, 128), n_fixations=120)


def test_saliency_scene_is_a_density_on_the_sphere_made_of_fixations_on_the_photos():
    s = make_saliency_scene(3, SAL)
    assert s.saliency.shape == (1, 64, 128) and s.object_mask.shape == (1, 64, 128)
    assert s.fixations.shape == (120, 2) and (s.saliency >= 0).all()
    area = pixel_solid_angle((64, 128), dtype=torch.float64)
    assert abs(float((s.saliency[0].double() * area).sum()) - 1) < 1e-3
    assert (s.fixations[:, 0] >= -math.pi).all() and (s.fixations[:, 0] < math.pi).all()
    # Every fixation lies on a pasted photo (nearest pixel of the mask).
    col = ((s.fixations[:, 0] / (2 * math.pi) + 0.5) * 128 - 0.5).round().long() % 128
    row = ((-s.fixations[:, 1] / math.pi + 0.5) * 64 - 0.5).round().long().clamp(0, 63)
    assert (s.object_mask[0, row, col] > 0).all()
    assert s.object_mask.max() <= 1 and 0 < s.object_mask.mean() < 0.5
    again = make_saliency_scene(3, SAL)
    assert torch.equal(again.saliency, s.saliency) and torch.equal(again.fixations, s.fixations)


def test_saliency_kernel_has_the_configured_width():
    """One fixation: the map is the von Mises-Fisher density around it, kappa / (2 pi (1 -
    e^-2kappa)) exp(kappa (cos - 1)) with kappa = 1 / sigma^2, half of its peak at the angle
    where kappa (1 - cos) = ln 2 (about 1.18 sigma), integrating to 1 over the sphere."""
    sigma = 4 * DEG
    kappa = 1 / sigma**2
    cfg = SaliencySceneConfig(erp_hw=(90, 180), n_objects=(1, 1), n_fixations=1, sigma=sigma)
    scene = make_saliency_scene(2, cfg)
    density = scene.saliency[0].double()
    dirs = lonlat_to_xyz(erp_lonlat_grid((90, 180), dtype=torch.float64))
    centre = lonlat_to_xyz(scene.fixations[0])
    peak = kappa / (2 * math.pi * (1 - math.exp(-2 * kappa)))
    cos = dirs @ centre
    torch.testing.assert_close(density, peak * torch.exp(kappa * (cos - 1)), rtol=1e-5, atol=1e-9)
    angle = torch.arccos(cos.clamp(-1, 1))
    half = math.acos(1 - math.log(2) / kappa)
    assert abs(half / sigma - 1.18) < 0.01
    # Above half the peak exactly inside the half angle (a ring of pixels on either side).
    clear = (angle - half).abs() > 1e-6
    assert torch.equal((density > peak / 2)[clear], (angle < half)[clear])
    assert ((angle < half) & (angle > half - 2 * DEG)).sum() >= 5
    assert ((angle > half) & (angle < half + 2 * DEG)).sum() >= 5
    area = pixel_solid_angle((90, 180), dtype=torch.float64)
    assert abs(float((density * area).sum()) - 1) < 1e-3


def test_faces_get_face_weight_times_more_fixations():
    cfg = SaliencySceneConfig(
        erp_hw=(32, 64),
        n_objects=(4, 4),
        assets=("astronaut", "coffee"),
        face_weight=3.0,
        n_fixations=300,
    )
    s = make_saliency_scene(0, cfg)
    assert "face" in s.labels and "object" in s.labels
    # 300 split in proportion 3 : 1 per face : other photo, largest remainders first.
    weights = [3.0 if lab == "face" else 1.0 for lab in s.labels]
    share = [300 * w / sum(weights) for w in weights]
    expected = [math.floor(v) for v in share]
    by_remainder = sorted(range(len(share)), key=lambda i: -(share[i] - expected[i]))
    for i in by_remainder[: 300 - sum(expected)]:
        expected[i] += 1
    # Count fixations per photo: the bounding caps of the photos are disjoint.
    fix = lonlat_to_xyz(s.fixations)
    got = []
    for p in s.placements:
        centre, radius = placement_cap(p, (32, 64), cfg.supersample)
        got.append(int((torch.arccos((fix @ lonlat_to_xyz(centre)).clamp(-1, 1)) <= radius).sum()))
    assert got == expected and sum(got) == 300


# --- writing scene sets ------------------------------------------------------------------------


def test_write_face_scenes_writes_images_and_ground_truth_in_degrees(tmp_path):
    cfg = SceneConfig(erp_hw=(32, 64), n_faces=(2, 2), n_objects=(1, 1))
    gt = write_face_scenes(tmp_path / "set", 2, seed=5, config=cfg, image_ext=".png")
    meta = json.loads(gt.read_text())
    assert meta["format"] == "pano360-synthetic-faces/1" and meta["seed"] == 5
    assert meta["config"]["face_width_deg"] == pytest.approx([8, 25])
    from pano360.io import read_image

    for i, rec in enumerate(meta["scenes"]):
        scene = make_face_scene((5, i), cfg)
        assert rec["image"] == f"scene_{i:05d}.png" and rec["seed"] == [5, i]
        image = read_image(tmp_path / "set" / rec["image"])
        assert (image[0] - scene.erp).abs().max() <= 0.5 / 255 + 1e-6
        rbfov = torch.tensor([item["rbfov"] for item in rec["items"]], dtype=torch.float64)
        torch.testing.assert_close(torch.deg2rad(rbfov), scene.rbfov)
        assert [item["label"] for item in rec["items"]] == list(scene.labels)
    before = gt.read_text()
    with pytest.raises(OutputExistsError, match="already exists"):
        write_face_scenes(tmp_path / "set", 2, seed=6, config=cfg, image_ext=".png")
    assert gt.read_text() == before
    write_face_scenes(tmp_path / "set", 2, seed=6, config=cfg, image_ext=".png", overwrite=True)
    assert json.loads(gt.read_text())["seed"] == 6
    with pytest.raises(ImageIOError, match="unsupported extension"):
        write_face_scenes(tmp_path / "other", 1, config=cfg, image_ext=".gif")
    with pytest.raises(ValueRangeError, match="n must be a positive integer"):
        write_face_scenes(tmp_path / "other", 0, config=cfg)


def test_write_saliency_scenes_makes_a_saliency_folder(tmp_path):
    cfg = SaliencySceneConfig(erp_hw=(32, 64), n_fixations=30)
    path = write_saliency_scenes(tmp_path, 2, seed=1, config=cfg)
    assert json.loads(path.read_text())["format"] == "pano360-synthetic-saliency/1"
    folder = SaliencyFolder(tmp_path)
    assert folder.names == ["scene_00000", "scene_00001"]
    for i, sample in enumerate(folder):
        scene = make_saliency_scene((1, i), cfg)
        torch.testing.assert_close(sample.saliency.reshape(1, 32, 64), scene.saliency)
        torch.testing.assert_close(sample.fixations, scene.fixations, atol=1e-9, rtol=0)
        assert sample.image.shape == (1, 3, 32, 64)
    with pytest.raises(OutputExistsError, match="already exists"):
        write_saliency_scenes(tmp_path, 2, seed=1, config=cfg)


def test_collate_scenes_and_saliency_dataset():
    data = SyntheticSaliencyScenes(2, seed=0, config=SaliencySceneConfig(erp_hw=(16, 32)))
    erp, scenes = collate_scenes([data[0], data[1]])
    assert erp.shape == (2, 3, 16, 32) and len(scenes) == 2
    assert torch.equal(data[1].saliency, make_saliency_scene((0, 1), data.config).saliency)
    other = make_face_scene(0, SceneConfig(erp_hw=(32, 64), n_faces=(1, 1), n_objects=(0, 0)))
    with pytest.raises(ShapeError, match="same erp shape"):
        collate_scenes([data[0], other])


def test_render_scene_on_a_given_background_keeps_it_where_nothing_lands():
    bg = torch.rand(3, 32, 64, generator=torch.Generator().manual_seed(0))
    p = Placement("chelsea", lon=0.0, lat=0.0, width=40 * DEG)
    scene = render_scene([p], (32, 64), background=bg)
    alpha = alpha_of([p], (32, 64))
    untouched = alpha == 0
    assert untouched.float().mean() > 0.5
    assert torch.equal(scene.erp[:, untouched], bg[:, untouched])
    assert scene.seed is None and (scene.band == -1).all()


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"asset": "grass"}, ValueError, "Placement.asset must be one of"),
        ({"lon": float("inf")}, ValueRangeError, "Placement.lon"),
        ({"lat": 2.0}, ValueRangeError, "Placement.lat"),
        ({"width": 0.0}, ValueRangeError, "Placement.width"),
        ({"width": 3.0}, ValueRangeError, "Placement.width"),
        ({"roll": 4.0}, ValueRangeError, "Placement.roll"),
        ({"brightness": -1.0}, ValueRangeError, "Placement.brightness"),
        ({"flip": "yes"}, ValueRangeError, "Placement.flip"),
        ({"window": (0, 0, 10)}, ValueRangeError, "Placement.window must be"),
        ({"window": (0, 0, 1000, 100)}, ValueRangeError, r"Placement.window must satisfy"),
        ({"window": (100, 0, 200, 300)}, ValueRangeError, "must contain the face box"),
    ],
)
def test_bad_placement_raises_naming_the_field(kwargs, error, match):
    args = {"asset": "astronaut", "lon": 0.0, "lat": 0.0, "width": 0.2, **kwargs}
    with pytest.raises(error, match=match):
        Placement(**args)


def test_bad_calls_raise_typed_errors():
    p = Placement("coffee", lon=0.0, lat=0.0, width=0.3)
    with pytest.raises(ShapeError, match="erp_hw"):
        render_scene([p], (32, 60))
    with pytest.raises(ValueError, match="background must be one of"):
        render_scene([p], (16, 32), background="night")
    with pytest.raises(ShapeError, match="background must be"):
        render_scene([p], (16, 32), background=torch.zeros(3, 8, 16))
    with pytest.raises(TypeError, match="background must be a style name or a float tensor"):
        render_scene([p], (16, 32), background=torch.zeros(3, 16, 32, dtype=torch.uint8))
    with pytest.raises(ValueRangeError, match="supersample"):
        render_scene([p], (16, 32), supersample=0)
    with pytest.raises(TypeError, match="placements must hold Placement"):
        render_scene([("coffee", 0, 0, 0.3)], (16, 32))
    for bad in (-1, 1.5, "0", (), (1, -2), True):
        with pytest.raises(ValueRangeError, match="seed must be"):
            make_face_scene(bad, SMALL)
    with pytest.raises(ValueRangeError, match="seed must be"):
        make_saliency_scene(-3, SAL)
    with pytest.raises(TypeError, match="config must be a SceneConfig"):
        make_face_scene(0, SAL)
    with pytest.raises(TypeError, match="config must be a SaliencySceneConfig"):
        make_saliency_scene(0, SMALL)
    with pytest.raises(TypeError, match="config must be a SceneConfig"):
        SyntheticFaceScenes(3, config=SAL)
    with pytest.raises(TypeError, match="config must be a SaliencySceneConfig"):
        SyntheticSaliencyScenes(3, config=SMALL)
    with pytest.raises(ValueRangeError, match="n must be a non-negative integer"):
        SyntheticFaceScenes(-1)
    with pytest.raises(ValueRangeError, match="seed must be a non-negative integer"):
        SyntheticFaceScenes(2, seed=(1, 2))
    data = SyntheticFaceScenes(2, config=SMALL)
    with pytest.raises(IndexError, match="out of range"):
        data[2]
    with pytest.raises(TypeError, match="index must be an integer"):
        data["0"]
    with pytest.raises(ShapeError, match="erp_hw"):
        scene_background((8, 8))
    with pytest.raises(ValueError, match="style must be one of"):
        scene_background((8, 16), style="night")
    with pytest.raises(ValueRangeError, match="contrast"):
        scene_background((8, 16), style="plain", contrast=1.0)
    assert np.isfinite(scene_background((8, 16), style="plain").numpy()).all()


def test_damaged_or_missing_asset_raises_image_io_error(tmp_path):
    """A damaged installation (a copy of the package): an asset of the wrong size, one that is
    no image, one that is missing; the others still load."""
    from pano360.io import write_image

    shutil.copytree(
        Path(pano360.__file__).parent,
        tmp_path / "pano360",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    assets = tmp_path / "pano360" / "data" / "assets"
    write_image(assets / "rocket.jpg", torch.zeros(1, 3, 5, 5), overwrite=True)
    (assets / "coffee.jpg").write_bytes(b"not a jpeg")
    (assets / "chelsea.jpg").unlink()
    code = (
        "from pano360.data.synthetic import load_asset\n"
        "for name in ('rocket', 'coffee', 'chelsea', 'astronaut'):\n"
        "    try:\n"
        "        print(name, tuple(load_asset(name).shape))\n"
        "    except Exception as e:\n"
        "        print(name, type(e).__name__, e)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0].startswith("rocket ImageIOError") and "is damaged" in out[0]
    assert out[1].startswith("coffee ImageIOError") and "cannot read image" in out[1]
    assert out[2].startswith("chelsea ImageIOError") and "chelsea.jpg" in out[2]
    assert out[3] == "astronaut (1, 3, 330, 270)"
    assert str(tmp_path) in out[1]  # the copy was loaded, not the installed package


def test_writers_and_saliency_dataset_reject_bad_arguments(tmp_path):
    cfg = SaliencySceneConfig(erp_hw=(16, 32), n_fixations=10)
    with pytest.raises(ImageIOError, match="unsupported extension"):
        write_saliency_scenes(tmp_path / "a", 1, config=cfg, image_ext=".gif")
    with pytest.raises(ValueRangeError, match="n must be a positive integer"):
        write_saliency_scenes(tmp_path / "a", 0, config=cfg)
    with pytest.raises(ValueRangeError, match="seed must be"):
        write_saliency_scenes(tmp_path / "a", 1, seed=-2, config=cfg)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ImageIOError, match="cannot create folder"):
        write_face_scenes(blocker / "sub", 1, config=SMALL)
    with pytest.raises(ValueRangeError, match="seed must be"):
        write_face_scenes(tmp_path / "b", 1, seed=-1, config=SMALL)
    with pytest.raises(ValueRangeError, match="n must be a non-negative integer"):
        SyntheticSaliencyScenes(-2)
    with pytest.raises(ValueRangeError, match="seed must be"):
        SyntheticSaliencyScenes(2, seed=-1)
    with pytest.raises(ValueRangeError, match="seed must be"):
        render_scene([], (16, 32), seed=-1)
    with pytest.raises(ValueRangeError, match="seed must be"):
        scene_background((16, 32), seed=(1, -1))
