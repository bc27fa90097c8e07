"""Saliency metrics: loop oracles for every switch, hand-computed presets, degenerate inputs,
errors, conventions and gradients."""

import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck

import pano360.saliency._metric_maps as maps_module
import pano360.saliency._metrics as metrics_module
from pano360 import testing
from pano360.errors import ShapeError, ValueRangeError
from pano360.geometry import pixel_solid_angle
from pano360.saliency import (
    EPS,
    METRICS,
    PRESETS,
    MetricConfig,
    Weighting,
    auc_borji,
    auc_judd,
    auc_shuffled,
    cc,
    compute_metrics,
    information_gain,
    kld,
    list_presets,
    nss,
    row_weights,
    sim,
    sphere_sample_points,
)

D = torch.float64
H, W = 8, 16
WEIGHTINGS = [
    Weighting("none"),
    Weighting("sin-rows"),
    Weighting("sin-rows", "multiply"),
    Weighting("solid-angle"),
    Weighting("solid-angle", "multiply"),
    Weighting("sphere-sampled", n_points=150),
    Weighting("sin-rows", "multiply-unscaled"),
    Weighting("sin-rows", "multiply", power=2),
    Weighting("solid-angle", power=3),
]
WIDS = [f"{w.kind}-{w.mode}-{w.power}" for w in WEIGHTINGS]


def rand(*shape, seed=0, dtype=D):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def fixation_map(b=2, h=H, w=W, p=0.15, seed=1):
    return (rand(b, 1, h, w, seed=seed) < p).to(D)


@pytest.fixture(scope="module")
def data():
    return {
        "pred": rand(2, 1, H, W, seed=0),
        "gt": rand(2, 1, H, W, seed=2) ** 3,
        "fix": fixation_map(),
        "other": fixation_map(p=0.3, seed=3),
        "base": rand(1, 1, H, W, seed=4) + 0.1,
    }


def close(a, b, tol=1e-6):
    assert a.shape == b.shape, (a.shape, b.shape)
    assert torch.allclose(a.double(), b.double(), atol=tol, rtol=0), (a.tolist(), b.tolist())


# --------------------------------------------------------------------------- oracles


@pytest.mark.parametrize("weighting", WEIGHTINGS, ids=WIDS)
@pytest.mark.parametrize("std", ["population", "sample"])
def test_nss_matches_oracle(data, weighting, std):
    got = nss(data["pred"], data["fix"], weighting=weighting, std=std)
    close(got, testing.nss_oracle(data["pred"], data["fix"], weighting=weighting, std=std))


@pytest.mark.parametrize("weighting", WEIGHTINGS, ids=WIDS)
def test_cc_matches_oracle(data, weighting):
    got = cc(data["pred"], data["gt"], weighting=weighting)
    close(got, testing.cc_oracle(data["pred"], data["gt"], weighting=weighting))


@pytest.mark.parametrize("weighting", WEIGHTINGS, ids=WIDS)
@pytest.mark.parametrize("minmax", [True, False])
def test_sim_matches_oracle(data, weighting, minmax):
    got = sim(data["pred"], data["gt"], weighting=weighting, minmax=minmax)
    want = testing.sim_oracle(data["pred"], data["gt"], weighting=weighting, minmax=minmax)
    close(got, want)


@pytest.mark.parametrize("weighting", WEIGHTINGS, ids=WIDS)
@pytest.mark.parametrize(
    ("direction", "symmetric", "form"),
    list(itertools.product(["gt||pred", "pred||gt"], [False, True], ["mit", "ratio"])),
)
def test_kld_matches_oracle(data, weighting, direction, symmetric, form):
    opts = dict(weighting=weighting, direction=direction, symmetric=symmetric, form=form)
    got = kld(data["pred"], data["gt"], **opts)
    close(got, testing.kld_oracle(data["pred"], data["gt"], **opts))


def test_kld_eps_switch_matches_oracle(data):
    # A large eps makes its placement visible; zeros in gt exercise the "ratio" skip.
    gt = data["gt"] * (data["gt"] > 0.2)
    for form in ("mit", "ratio"):
        got = kld(data["pred"], gt, weighting="none", form=form, eps=1e-3)
        close(got, testing.kld_oracle(data["pred"], gt, weighting="none", form=form, eps=1e-3))


@pytest.mark.parametrize("weighting", WEIGHTINGS, ids=WIDS)
@pytest.mark.parametrize("minmax", [True, False])
@pytest.mark.parametrize(("per_image_baseline", "eps"), [(False, EPS), (True, 1e-3)])
def test_information_gain_matches_oracle(data, weighting, minmax, per_image_baseline, eps):
    base = data["base"].expand(2, 1, H, W) * torch.tensor([1.0, 0.5], dtype=D).view(2, 1, 1, 1)
    base = base.contiguous() if per_image_baseline else data["base"]
    opts = dict(weighting=weighting, minmax=minmax, eps=eps)
    got = information_gain(data["pred"], data["fix"], base, **opts)
    close(got, testing.information_gain_oracle(data["pred"], data["fix"], base, **opts))


@pytest.mark.parametrize("weighting", WEIGHTINGS, ids=WIDS)
@pytest.mark.parametrize(
    ("jitter", "scale", "amplitude"),
    [(False, "raw", 1e-7), (True, "raw", 0.05), (True, "range", 0.05), (True, "range", 1e-7)],
)
def test_auc_judd_matches_oracle(data, weighting, jitter, scale, amplitude):
    opts = dict(
        weighting=weighting, jitter=jitter, jitter_scale=scale, jitter_amplitude=amplitude, seed=3
    )
    got = auc_judd(data["pred"], data["fix"], **opts)
    close(got, testing.auc_judd_oracle(data["pred"], data["fix"], **opts))


@pytest.mark.parametrize("weighting", WEIGHTINGS, ids=WIDS)
@pytest.mark.parametrize("step", [0.1, 0.25])
@pytest.mark.parametrize("thresholds", ["inclusive", "exclusive"])
def test_auc_borji_matches_oracle(data, weighting, step, thresholds):
    opts = dict(weighting=weighting, n_splits=12, step=step, thresholds=thresholds, seed=5)
    got = auc_borji(data["pred"], data["fix"], **opts)
    close(got, testing.auc_borji_oracle(data["pred"], data["fix"], **opts))


@pytest.mark.parametrize("weighting", WEIGHTINGS, ids=WIDS)
@pytest.mark.parametrize("thresholds", ["inclusive", "exclusive"])
def test_auc_shuffled_matches_oracle(data, weighting, thresholds):
    opts = dict(weighting=weighting, n_splits=12, step=0.1, thresholds=thresholds, seed=7)
    got = auc_shuffled(data["pred"], data["fix"], data["other"], **opts)
    close(got, testing.auc_shuffled_oracle(data["pred"], data["fix"], data["other"], **opts))


@pytest.mark.parametrize("weighting", ["none", "solid-angle", "sphere-sampled"])
def test_ties_and_zeros_match_oracles(weighting):
    # Quantised maps: many exact ties (AUC-Judd's MIT approximation, thresholds on ties).
    w = Weighting(weighting, n_points=150)
    pred = torch.round(rand(2, 1, H, W, seed=8) * 4) / 4
    fix = fixation_map(seed=9)
    for jitter in (False, True):
        opts = dict(weighting=w, jitter=jitter, jitter_scale="raw", jitter_amplitude=1e-9)
        close(auc_judd(pred, fix, **opts), testing.auc_judd_oracle(pred, fix, **opts))
    close(nss(pred, fix, weighting=w), testing.nss_oracle(pred, fix, weighting=w))
    for thresholds in ("inclusive", "exclusive"):
        opts = dict(weighting=w, n_splits=8, thresholds=thresholds)
        close(auc_borji(pred, fix, **opts), testing.auc_borji_oracle(pred, fix, **opts))


def test_float32_fast_paths_match_float64_oracles():
    # Float32 AUC-Judd with row weights sorts packed value/row keys; -0.0 and ties included.
    pred32 = torch.round(rand(3, 1, 16, 32, seed=10, dtype=torch.float32) * 8) / 8 - 0.5
    pred32[0, 0, :2] = -0.0
    fix = fixation_map(3, 16, 32, p=0.2, seed=11)
    for w in ("solid-angle", "sin-rows", "none"):
        got = auc_judd(pred32, fix, weighting=w, jitter=False)
        assert got.dtype == torch.float32
        want = testing.auc_judd_oracle(pred32.double(), fix, weighting=w, jitter=False)
        close(got, want, 1e-6)
    # Continuous maps for the rest: float32 and float64 then round the same values alike.
    cont32, gt = rand(3, 1, 16, 32, seed=15, dtype=torch.float32), rand(3, 1, 16, 32, seed=12)
    for name in list_presets():
        a = compute_metrics(cont32, gt.float(), fix, preset=name)
        b = compute_metrics(cont32.double(), gt, fix, preset=PRESETS[name])
        for m in a:
            if m != "auc_judd":  # jitter is drawn in the map's dtype
                close(a[m], b[m], 2e-5)


def test_weighted_judd_bins_and_sort_paths_agree():
    # A map large enough for the weighted count's sort of packed keys, against the argsort path.
    x = torch.rand(1, 1, 64, 128, generator=torch.Generator().manual_seed(13))
    fix = (torch.rand(1, 1, 64, 128, generator=torch.Generator().manual_seed(14)) < 0.05).double()
    a = auc_judd(x, fix, weighting="solid-angle", jitter=False)
    b = auc_judd(x.double(), fix, weighting="solid-angle", jitter=False)
    close(a, b, 1e-6)


# --------------------------------------------------------------------------- presets


def one_row(values, h=3, w=6):
    """(1, 1, h, w) map whose row i holds values[i] everywhere."""
    return torch.tensor(values, dtype=D)[:, None].expand(h, w).reshape(1, 1, h, w).clone()


def test_preset_mit_nss_uses_n_minus_1():
    pred = torch.tensor([[[[0.0, 0.0], [0.0, 4.0]]]], dtype=D)
    fix = torch.tensor([[[[0.0, 0.0], [0.0, 1.0]]]], dtype=D)
    # mean 1, squared deviations 1 + 1 + 1 + 9 = 12: sample std 2, population std sqrt(3).
    got = compute_metrics(pred, None, fix, preset="mit", metrics=["nss"])["nss"]
    assert got.item() == pytest.approx(1.5, abs=1e-12)
    got = compute_metrics(pred, None, fix, preset="salient360-toolbox", metrics=["nss"])["nss"]
    assert got.item() == pytest.approx(3 / math.sqrt(3), abs=1e-12)


def test_preset_mit_kld_sim_ig_hand_computed():
    pred = torch.tensor([[[[1.0, 1.0, 1.0, 1.0]]]], dtype=D)
    gt = torch.tensor([[[[0.0, 0.0, 1.0, 1.0]]]], dtype=D)
    out = compute_metrics(pred, gt, preset="mit", metrics=["kld"])["kld"]
    # sum Q log(eps + Q / (P + eps)) with Q = (0, 0, 1/2, 1/2), P = 1/4 everywhere.
    assert out.item() == pytest.approx(math.log(EPS + 0.5 / (0.25 + EPS)), abs=1e-12)
    back = kld(pred, gt, weighting="none", direction="pred||gt").item()
    want = 0.5 * math.log(EPS + 0.25 / EPS) + 0.5 * math.log(EPS + 0.25 / (0.5 + EPS))
    assert back == pytest.approx(want, rel=1e-12)
    # SIM: min-max then sum: (0, 1/6, 1/3, 1/2) against (1/2, 1/3, 1/6, 0).
    a = torch.tensor([[[[0.0, 1.0, 2.0, 3.0]]]], dtype=D)
    out = compute_metrics(a, a.flip(-1) + 5, preset="mit", metrics=["sim"])["sim"]
    assert out.item() == pytest.approx(1 / 3, abs=1e-12)
    # IG over a baseline (1, 1, 1, 2): min-max makes it (0, 0, 0, 1); pred -> (0, 1/6, 1/3, 1/2).
    fix = torch.tensor([[[[0.0, 0.0, 1.0, 0.0]]]], dtype=D)
    base = torch.tensor([[[[1.0, 1.0, 1.0, 2.0]]]], dtype=D)
    out = compute_metrics(
        a + 1, None, fix, preset="mit", metrics=["information_gain"], baseline=base
    )["information_gain"]
    assert out.item() == pytest.approx(math.log2(EPS + 1 / 3) - math.log2(EPS), abs=1e-9)


def test_preset_mit_auc_judd_hand_computed():
    pred = torch.arange(8, dtype=D).reshape(1, 1, 1, 8)
    fix = torch.zeros(1, 1, 1, 8, dtype=D)
    fix[..., 3] = fix[..., 7] = 1
    # Thresholds 7 and 3: (fp, tp) = (0, 1/2), ((5 - 2) / 6, 1): area 0.375 + 0.5.
    out = compute_metrics(pred, None, fix, preset="mit", metrics=["auc_judd"])["auc_judd"]
    assert out.item() == pytest.approx(0.875, abs=1e-9)  # jitter 1e-7 keeps the ranks


def test_preset_mit_auc_borji_follows_documented_draws():
    # One fixated pixel of value 1, the others 0: a split scores 1 unless its random pixel is
    # the fixated one (then tp = fp = 1 at every threshold: 0.5).
    pred = torch.zeros(1, 1, 1, 8, dtype=D)
    pred[..., 5] = 1
    u = torch.rand(100, 1, generator=torch.Generator().manual_seed(0), dtype=D)
    hits = (torch.floor(u * 8) == 5).double().mean().item()
    out = compute_metrics(pred, None, pred, preset="mit", metrics=["auc_borji"])["auc_borji"]
    assert out.item() == pytest.approx(1 - 0.5 * hits, abs=1e-12)


def test_preset_salient360_2018_multiplies_by_sin_rows_and_is_symmetric():
    # H = 3: sin(linspace(0, pi, 3)) = (0, 1, ~1e-16), so only the middle row counts.
    a = one_row([100.0, 0.0, 50.0])
    a[0, 0, 1] = torch.arange(1.0, 7.0)
    g = one_row([7.0, 0.0, 9.0])
    g[0, 0, 1] = torch.arange(6.0, 0.0, -1.0)
    out = compute_metrics(a, g, preset="salient360-2018", metrics=["cc"])["cc"]
    # Pearson of (0 x 6, 1..6, ~0 x 6) and (0 x 6, 6..1, ~0 x 6): (56 - 24.5) / (91 - 24.5).
    assert out.item() == pytest.approx(31.5 / 66.5, abs=1e-9)
    p = one_row([5.0, 1.0, 3.0])
    q = one_row([4.0, 0.0, 8.0])
    q[0, 0, 1, :3] = 2.0
    both = compute_metrics(p, q, preset="salient360-2018", metrics=["kld"])["kld"]
    swapped = compute_metrics(q, p, preset="salient360-2018", metrics=["kld"])["kld"]
    # Middle rows: P = 1/6 everywhere, Q = 1/3 on half; "ratio" form, mean of both directions.
    forward = math.log((1 / 3 + EPS) / (1 / 6 + EPS))
    backward = 0.5 * math.log((1 / 6 + EPS) / (1 / 3 + EPS)) + 0.5 * math.log((1 / 6 + EPS) / EPS)
    assert both.item() == pytest.approx((forward + backward) / 2, abs=1e-9)
    assert swapped.item() == pytest.approx(both.item(), abs=1e-12)


def test_preset_salient360_toolbox_weighted_pearson_and_one_way_kld():
    a = one_row([100.0, 0.0, 50.0])
    a[0, 0, 1] = torch.arange(1.0, 7.0)
    g = one_row([7.0, 0.0, 9.0])
    g[0, 0, 1] = torch.arange(6.0, 0.0, -1.0)
    # Weighted Pearson with weights (0, 1, ~1e-16): the middle rows alone, perfectly reversed.
    out = compute_metrics(a, g, preset="salient360-toolbox", metrics=["cc"])["cc"]
    assert out.item() == pytest.approx(-1.0, abs=1e-9)
    p = one_row([5.0, 1.0, 3.0])
    q = one_row([4.0, 0.0, 8.0])
    q[0, 0, 1, :3] = 2.0
    one = compute_metrics(p, q, preset="salient360-toolbox", metrics=["kld"])["kld"]
    assert one.item() == pytest.approx(math.log((1 / 3 + EPS) / (1 / 6 + EPS)), abs=1e-9)
    other = compute_metrics(q, p, preset="salient360-toolbox", metrics=["kld"])["kld"]
    assert abs(other.item() - one.item()) > 1  # KL(gt || pred) only, not symmetric


def test_preset_sphere_weights_pixels_by_solid_angle():
    # H = 3: rows span 90..30, 30..-30 and -30..-90 degrees: solid angles 1 : 2 : 1.
    fix = torch.zeros(1, 1, 3, 6, dtype=D)
    fix[0, 0, 1, 2] = 1
    pred = one_row([0.0, 1.0, 0.0])
    # Weighted mean 1/2 and std 1/2: NSS (1 - 1/2) / (1/2) = 1; unweighted: (2/3) / sqrt(2/9).
    out = compute_metrics(pred, None, fix, preset="sphere", metrics=["nss"])["nss"]
    assert out.item() == pytest.approx(1.0, abs=1e-12)
    out = compute_metrics(pred, None, fix, preset="salient360-toolbox", metrics=["nss"])["nss"]
    assert out.item() == pytest.approx(math.sqrt(2), abs=1e-12)
    # AUC-Judd, one threshold at 2: fp = (18 - 2) / (24 - 2) in units of the top row's pixel.
    pred = one_row([3.0, 2.0, 1.0])
    sphere = dataclasses.replace(PRESETS["sphere"], auc_jitter=False)
    out = compute_metrics(pred, None, fix, preset=sphere, metrics=["auc_judd"])["auc_judd"]
    assert out.item() == pytest.approx(1 - (16 / 22) / 2, abs=1e-12)
    mit = dataclasses.replace(PRESETS["mit"], auc_jitter=False)
    out = compute_metrics(pred, None, fix, preset=mit, metrics=["auc_judd"])["auc_judd"]
    assert out.item() == pytest.approx(1 - (11 / 17) / 2, abs=1e-12)


def test_constant_prediction_is_chance_on_the_sphere_but_not_after_multiplying():
    # Why "sphere" measures instead of multiplying: a uniform prediction has no information.
    fix = torch.zeros(1, 1, 3, 6, dtype=D)
    fix[0, 0, 1, 2] = 1
    flat = torch.ones(1, 1, 3, 6, dtype=D)
    sphere = compute_metrics(flat, None, fix, preset="sphere", metrics=["nss", "auc_borji"])
    assert sphere["nss"].item() == 0.0 and sphere["auc_borji"].item() == 0.5
    model_only = dataclasses.replace(PRESETS["salient360-2018"], average_with_gt=False)
    multiplied = compute_metrics(flat, None, fix, preset=model_only, metrics=["nss"])
    # Times (0, 1, ~0): mean 1/3, std sqrt(2)/3, the fixation sits on a 1: NSS sqrt(2).
    assert multiplied["nss"].item() == pytest.approx(math.sqrt(2), abs=1e-9)


def test_function_defaults_are_the_sphere_preset(data):
    got = compute_metrics(
        data["pred"], data["gt"], data["fix"], baseline=data["base"], other_fixations=data["other"]
    )
    assert list(got) == list(METRICS)
    close(got["nss"], nss(data["pred"], data["fix"]), 1e-12)
    close(got["cc"], cc(data["pred"], data["gt"]), 1e-12)
    close(got["sim"], sim(data["pred"], data["gt"]), 1e-12)
    close(got["kld"], kld(data["pred"], data["gt"]), 1e-12)
    close(got["auc_judd"], auc_judd(data["pred"], data["fix"]), 1e-12)
    close(got["auc_borji"], auc_borji(data["pred"], data["fix"]), 1e-12)
    close(got["auc_shuffled"], auc_shuffled(data["pred"], data["fix"], data["other"]), 1e-12)
    ig = information_gain(data["pred"], data["fix"], data["base"])
    close(got["information_gain"], ig, 1e-12)


def test_presets_listed_and_described():
    assert list_presets() == [
        "mit",
        "salient360-2018",
        "salient360-toolbox",
        "salient360-toolbox-cli",
        "sphere",
    ]
    for name, cfg in PRESETS.items():
        assert cfg.name == name and cfg.source
    assert PRESETS["sphere"] == dataclasses.replace(
        MetricConfig(), name="sphere", source=PRESETS["sphere"].source
    )


def test_metric_config_is_frozen_and_validated():
    cfg = MetricConfig(cc_weighting="sin-rows")
    assert cfg.cc_weighting == Weighting("sin-rows")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.nss_std = "sample"
    assert cfg.with_weighting("none").kld_weighting == Weighting("none")
    with pytest.raises(ValueError, match="std must be one of"):
        MetricConfig(nss_std="n-1")
    with pytest.raises(ValueRangeError, match=r"eps must be a finite number in \(0, inf\)"):
        MetricConfig(eps=0.0)
    with pytest.raises(ValueError, match="weighting kind must be one of"):
        MetricConfig(sim_weighting="cos")
    assert PRESETS["mit"].options("nss")["std"] == "sample"


# --------------------------------------------------------------------------- degenerate inputs


def test_constant_and_all_zero_predictions_have_documented_values(data):
    fix, gt = data["fix"], data["gt"]
    for value in (0.0, 0.7):
        flat = torch.full((2, 1, H, W), value, dtype=D)
        assert auc_judd(flat, fix, jitter=False).tolist() == [0.5, 0.5]
        assert auc_borji(flat, fix).tolist() == [0.5, 0.5]
        assert auc_shuffled(flat, fix, data["other"]).tolist() == [0.5, 0.5]
        assert nss(flat, fix).tolist() == [0.0, 0.0]
        assert cc(flat, gt).tolist() == [0.0, 0.0]
        uniform = torch.ones_like(flat)
        close(sim(flat, gt), sim(uniform, gt), 1e-12)
        close(kld(flat, gt), kld(uniform, gt), 1e-12)
        close(
            information_gain(flat, fix, data["base"]), information_gain(uniform, fix, data["base"])
        )
    assert not torch.isnan(sim(torch.zeros(2, 1, H, W, dtype=D), gt, minmax=False)).any()


def test_constant_ground_truth_gives_zero_cc(data):
    assert cc(data["pred"], torch.ones(2, 1, H, W, dtype=D)).tolist() == [0.0, 0.0]


def test_nss_accepts_negative_predictions(data):
    close(nss(data["pred"] - 5, data["fix"]), nss(data["pred"], data["fix"]), 1e-9)


@pytest.mark.parametrize("which", ["pred", "gt", "base"])
def test_nan_anywhere_raises(data, which):
    bad = {k: v.clone() for k, v in data.items()}
    bad[which][0, 0, 2, 3] = math.nan
    with pytest.raises(ValueRangeError, match="NaN or infinite"):
        compute_metrics(bad["pred"], bad["gt"], bad["fix"], baseline=bad["base"])


def test_nan_in_fixation_map_raises(data):
    fix = data["fix"].clone()
    fix[1, 0, 0, 0] = math.nan
    with pytest.raises(ValueRangeError, match="fixations has NaN"):
        nss(data["pred"], fix)


def test_no_fixations_raises(data):
    fix = data["fix"].clone()
    fix[1] = 0
    with pytest.raises(ValueRangeError, match="fixations of image 1 has no fixation"):
        nss(data["pred"], fix)
    with pytest.raises(ValueRangeError, match="other_fixations of image 0 has no fixation"):
        auc_shuffled(data["pred"], data["fix"], torch.zeros_like(fix))


def test_all_zero_and_negative_ground_truth_raise(data):
    gt = data["gt"].clone()
    gt[1] = 0
    with pytest.raises(ValueRangeError, match="gt_map of image 1 is zero everywhere"):
        cc(data["pred"], gt)
    with pytest.raises(ValueRangeError, match="gt_map of image 0 has negative values"):
        sim(data["pred"], data["gt"] - 0.5)
    with pytest.raises(ValueRangeError, match="pred of image 0 has negative values"):
        kld(data["pred"] - 0.5, data["gt"])
    with pytest.raises(ValueRangeError, match="baseline of image 0 has negative values"):
        information_gain(data["pred"], data["fix"], data["base"] - 5)


def test_fixations_everywhere_raise_for_auc_judd(data):
    with pytest.raises(ValueRangeError, match="cover every pixel"):
        auc_judd(data["pred"], torch.ones_like(data["pred"]), jitter=False)
    w = Weighting("sphere-sampled", n_points=50)
    with pytest.raises(ValueRangeError, match="cover every sphere point"):
        auc_judd(data["pred"], torch.ones_like(data["pred"]), weighting=w, jitter=False)


def test_sizes_must_match(data):
    small = torch.rand(2, 1, 4, 8, dtype=D)
    with pytest.raises(ShapeError, match="maps are never resized"):
        nss(data["pred"], small)
    with pytest.raises(ShapeError, match="gt_map must have pred's shape"):
        cc(data["pred"], small)
    with pytest.raises(ShapeError, match="baseline must be"):
        information_gain(data["pred"], data["fix"], small)
    with pytest.raises(ShapeError, match=r"must be \(B, 1, H, W\)"):
        nss(torch.rand(2, 3, H, W), data["fix"])
    with pytest.raises(ShapeError, match="one \\(N, 2\\) tensor per map"):
        nss(data["pred"], [torch.zeros(1, 2)])
    with pytest.raises(ShapeError, match="W == 2H"):
        nss(torch.rand(1, 1, 4, 4), torch.ones(1, 1, 4, 4))
    nss(torch.rand(1, 1, 4, 4), torch.ones(1, 1, 4, 4), weighting="none")  # planar maps: fine


def test_type_errors(data):
    with pytest.raises(TypeError, match=r"pred must be a torch\.Tensor"):
        nss(np.zeros((1, 1, 2, 4)), data["fix"])
    with pytest.raises(TypeError, match="floating-point"):
        nss(torch.zeros(2, 1, H, W, dtype=torch.long), data["fix"])
    with pytest.raises(TypeError, match="fixations must be"):
        nss(data["pred"], "fixations.csv")
    with pytest.raises(TypeError, match="weighting must be a str or a Weighting"):
        nss(data["pred"], data["fix"], weighting=3)
    with pytest.raises(TypeError, match="preset must be a name or a MetricConfig"):
        compute_metrics(data["pred"], data["gt"], preset=1)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda d: nss(d["pred"], d["fix"], std="n-1"), ValueError, "std must be one of"),
        (lambda d: kld(d["pred"], d["gt"], direction="a||b"), ValueError, "direction must be"),
        (lambda d: kld(d["pred"], d["gt"], form="log"), ValueError, "form must be one of"),
        (
            lambda d: kld(d["pred"], d["gt"], eps=-1.0),
            ValueRangeError,
            r"eps must be a finite number in \(0, inf\)",
        ),
        (lambda d: kld(d["pred"], d["gt"], eps=math.inf), ValueRangeError, "eps must be a finite"),
        (
            lambda d: auc_judd(d["pred"], d["fix"], jitter_scale="max"),
            ValueError,
            "jitter_scale must be one of",
        ),
        (
            lambda d: auc_judd(d["pred"], d["fix"], jitter_amplitude=0.0),
            ValueRangeError,
            r"jitter_amplitude must be a finite number in \(0, inf\)",
        ),
        (lambda d: auc_borji(d["pred"], d["fix"], n_splits=0), ValueRangeError, "n_splits"),
        (lambda d: auc_borji(d["pred"], d["fix"], step=1.5), ValueRangeError, "step must be in"),
        (lambda d: auc_borji(d["pred"], d["fix"], seed=-1), ValueRangeError, "seed must be"),
        (
            lambda d: auc_borji(d["pred"], d["fix"], thresholds="open"),
            ValueError,
            "thresholds must be one of",
        ),
        (lambda d: nss(d["pred"], d["fix"], weighting="cos"), ValueError, "weighting kind"),
        (
            lambda d: compute_metrics(d["pred"], d["gt"], preset="matlab"),
            ValueError,
            "preset must be one of",
        ),
        (
            lambda d: compute_metrics(d["pred"], d["gt"], metrics=["emd"]),
            ValueError,
            "metric must be one of",
        ),
        (
            lambda d: compute_metrics(d["pred"], d["gt"], metrics=["nss"]),
            ValueError,
            "nss needs fixations",
        ),
        (lambda d: compute_metrics(d["pred"]), ValueError, "no metric can be computed"),
    ],
)
def test_bad_options_raise(data, call, error, match):
    with pytest.raises(error, match=match):
        call(data)


def test_weighting_validation():
    with pytest.raises(ValueError, match="weighting mode must be one of"):
        Weighting("sin-rows", "divide")
    with pytest.raises(ValueRangeError, match="n_points must be an integer >= 2"):
        Weighting("sphere-sampled", n_points=1)
    with pytest.raises(ValueRangeError, match="power must be an integer >= 1"):
        Weighting("sin-rows", "multiply", power=0)
    with pytest.raises(ValueRangeError, match="needs at least 2 rows"):
        row_weights("sin-rows", 1)
    with pytest.raises(ValueError, match="kind must be one of"):
        row_weights("none", 4)
    with pytest.raises(ValueRangeError, match="n must be an integer >= 2"):
        sphere_sample_points(1)


# --------------------------------------------------------------------------- conventions


def test_convention_fixation_lists_fall_in_their_pixel_cells():
    h, w = 4, 8
    # Pixel centres, the seam (lon = pi is column 0) and the south pole (last row).
    lonlat = torch.tensor(
        [
            [((2 + 0.5) / w - 0.5) * 2 * math.pi, (0.5 - (1 + 0.5) / h) * math.pi],
            [math.pi, 0.1],
            [0.3, -math.pi / 2],
        ],
        dtype=D,
    )
    pred = rand(1, 1, h, w, seed=20)
    fix = torch.zeros(1, 1, h, w, dtype=D)
    fix[0, 0, 1, 2] = 1
    fix[0, 0, 1, 0] = 1  # lat 0.1 lies in row 1 (lat from 0 to pi/4)
    fix[0, 0, 3, 4] = 1  # lon 0.3 is column floor((0.3 / 2pi + 0.5) 8) = 4
    assert nss(pred, [lonlat]).item() == pytest.approx(nss(pred, fix).item(), abs=1e-12)


def test_convention_sin_rows_are_the_tools_sin_linspace():
    # Bit for bit: torch's sin of i * (pi / (H - 1)) differs from NumPy's in the last bit for
    # many H (26, 33, 40, ...), and the last bit decides ties in AUC-Judd.
    for h in (2, 3, 8, 26, 33, 1024):
        want = torch.from_numpy(np.sin(np.linspace(0, np.pi, h)))
        assert torch.equal(row_weights("sin-rows", h), want), h


def test_convention_solid_angle_rows_cover_the_sphere():
    for h in (1, 3, 64):
        total = float(row_weights("solid-angle", h).sum()) * 2 * h
        assert total == pytest.approx(4 * math.pi, rel=1e-12)
    close(row_weights("solid-angle", 8), pixel_solid_angle((8, 16), dtype=D)[:, 0], 1e-15)


def test_convention_sphere_points_are_the_tools_spiral():
    n = 1000
    ix = np.arange(n)
    colat = np.arccos(1 - 2 * ix / (n - 1))  # the tools' uniformSphereSampling
    lon_tools = (ix * 2 * np.pi * (1 - 2 / (1 + np.sqrt(5)))) % (2 * np.pi)
    ours = sphere_sample_points(n).numpy()
    np.testing.assert_allclose(ours[:, 1], np.pi / 2 - colat, atol=1e-12)
    np.testing.assert_allclose(ours[:, 0], lon_tools - np.pi, atol=1e-9)
    z = np.sin(ours[:, 1])  # equal-area: sin(lat) equally spaced
    np.testing.assert_allclose(np.diff(z), -2 / (n - 1), atol=1e-12)


def test_sphere_sampling_approaches_the_solid_angle_measure():
    # Many points average over the sphere as the exact pixel areas do.
    pred = testing.smooth_erp((32, 64), 1, seed=3, dtype=D)
    gt = testing.smooth_erp((32, 64), 1, seed=4, dtype=D)
    fine = Weighting("sphere-sampled", n_points=200_000)
    for metric in (cc, sim, kld):
        a = metric(pred, gt, weighting=fine).item()
        b = metric(pred, gt, weighting="solid-angle").item()
        assert a == pytest.approx(b, abs=0.01), metric.__name__
    default = Weighting("sphere-sampled")
    assert default.n_points == 1_256_637
    assert cc(pred, gt, weighting=default).item() == pytest.approx(
        cc(pred, gt, weighting="solid-angle").item(), abs=0.01
    )


def test_yaw_rotation_leaves_the_metrics_unchanged(data):
    # Rolling columns moves content along longitude: every metric is a function on the sphere.
    pred, gt, fix = data["pred"], data["gt"], data["fix"]
    roll = {k: torch.roll(v, 5, -1) for k, v in data.items()}
    for name in list_presets():
        a = compute_metrics(pred, gt, fix, preset=name, metrics=["nss", "cc", "sim", "kld"])
        b = compute_metrics(roll["pred"], roll["gt"], roll["fix"], preset=name, metrics=list(a))
        for m in a:
            close(a[m], b[m], 1e-9)


# --------------------------------------------------------------------------- batching, gradients


def test_chunked_batches_give_the_same_results(data, monkeypatch):
    args = (data["pred"], data["gt"], data["fix"])
    kw = dict(baseline=data["base"], other_fixations=data["other"])
    whole = compute_metrics(*args, **kw)
    monkeypatch.setattr(metrics_module, "_CHUNK_ELEMENTS", H * W)  # one map per chunk
    monkeypatch.setattr(maps_module, "_BLOCK", 2 * W)  # blocks of two rows
    chunked = compute_metrics(*args, **kw)
    for m in whole:
        close(whole[m], chunked[m], 1e-12)
    # Blocks of sphere points, constant (uniform) maps in blocks.
    w = Weighting("sphere-sampled", n_points=150)
    pred = data["pred"].clone()
    pred[1] = 0.3
    for metric in (sim, kld, cc):
        got = metric(pred, data["gt"], weighting=w)
        want = getattr(testing, f"{metric.__name__}_oracle")(pred, data["gt"], weighting=w)
        close(got, want)
    for weighting in ("solid-angle", "none"):
        close(
            sim(pred, data["gt"], weighting=weighting),
            testing.sim_oracle(pred, data["gt"], weighting=weighting),
        )
    single = compute_metrics(*(a[1:] for a in args), baseline=data["base"], metrics=["cc"])
    close(single["cc"], whole["cc"][1:], 1e-12)


def test_outputs_are_per_map_in_the_input_dtype(data):
    out = compute_metrics(data["pred"].float(), data["gt"].float(), data["fix"])
    assert {m: (v.shape, v.dtype) for m, v in out.items()} == dict.fromkeys(
        out, (torch.Size([2]), torch.float32)
    )


GRAD_WEIGHTINGS = [
    Weighting("none"),
    Weighting("solid-angle"),
    Weighting("sin-rows", "multiply"),
    Weighting("sin-rows", "multiply-unscaled"),
    Weighting("sphere-sampled", n_points=60),
]


@pytest.mark.parametrize("weighting", GRAD_WEIGHTINGS, ids=lambda w: f"{w.kind}-{w.mode}")
def test_gradcheck(weighting):
    pred = (rand(1, 1, 4, 8, seed=30) + 0.1).requires_grad_()
    gt = rand(1, 1, 4, 8, seed=31) + 0.1
    fix = fixation_map(1, 4, 8, p=0.3, seed=32)
    base = rand(1, 1, 4, 8, seed=33) + 0.1
    w = weighting
    fns = [
        lambda p: nss(p, fix, weighting=w),
        lambda p: nss(p, fix, weighting=w, std="sample"),
        lambda p: cc(p, gt, weighting=w),
        lambda p: sim(p, gt, weighting=w),
        lambda p: sim(p, gt, weighting=w, minmax=False),
        lambda p: kld(p, gt, weighting=w),
        lambda p: kld(p, gt, weighting=w, direction="pred||gt", form="ratio"),
        lambda p: kld(p, gt, weighting=w, symmetric=True, eps=1e-6),
        lambda p: information_gain(p, fix, base, weighting=w),
    ]
    for fn in fns:
        assert gradcheck(fn, (pred,), eps=1e-6, atol=1e-5)


def test_metrics_backpropagate_through_compute_metrics(data):
    pred = data["pred"].clone().requires_grad_()
    out = compute_metrics(pred, data["gt"], data["fix"], metrics=["nss", "cc", "sim", "kld"])
    sum(v.sum() for v in out.values()).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
