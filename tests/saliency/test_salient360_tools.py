"""The Salient360! presets reproduce the official tools, quirks included: each quirk pinned on a
small hand-made example, and every preset against the loop oracles.

The tools are the 2018 Python tool (as shipped with the ICCV'21 code) and the salient360Toolbox
(metric functions, and its command-line comparison ``compareSaliency``). Where a tool draws
random numbers (AUC-Borji's negatives) the expected values use pano360's documented draws.
"""

import dataclasses
import math

import numpy as np
import pytest
import torch

from pano360 import testing
from pano360.errors import ShapeError, ValueRangeError
from pano360.saliency import (
    EPS,
    FIXATION_PLACEMENTS,
    GT_AVERAGED_METRICS,
    PRESETS,
    MetricConfig,
    Weighting,
    auc_borji,
    binary_fixation_map,
    compute_metrics,
    list_presets,
)

D = torch.float64
TOOL_PRESETS = ["salient360-2018", "salient360-toolbox", "salient360-toolbox-cli"]


def rand(*shape, seed=0, dtype=D):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def model_only(name):
    return dataclasses.replace(PRESETS[name], average_with_gt=False)


# ---------------------------------------------------------------- 1. AUC-Borji's np.r_ thresholds


def test_auc_borji_thresholds_leave_out_a_tied_maximum_like_numpy():
    # The fixated pixel holds the maximum (1 after normalisation); six pixels hold 0.95, just
    # below it, one holds the minimum. A split whose random pixel is at 0.95 scores 1 with
    # MATLAB's 0:0.1:1 (threshold 1 separates them) but 0.5 with NumPy's r_[0:1:0.1], which
    # stops at 0.9. A split that drew the fixated pixel scores 0.5, one that drew the minimum 1.
    pred = torch.full((1, 1, 2, 4), 0.95, dtype=D)
    pred[0, 0, 0, 0], pred[0, 0, 1, 3] = 1.0, 0.0
    fix = torch.zeros_like(pred)
    fix[0, 0, 0, 0] = 1
    u = torch.rand(100, 1, generator=torch.Generator().manual_seed(0), dtype=D)
    pixel = torch.floor(u * 8).long()[:, 0]
    at_max, at_min = (pixel == 0).double().mean(), (pixel == 7).double().mean()
    below = 1 - at_max - at_min
    matlab = 0.5 * at_max + below + at_min
    numpy_ = 0.5 * at_max + 0.5 * below + at_min
    assert abs(matlab - numpy_) > 0.2  # the example separates the two rules
    for name in ("salient360-toolbox", "salient360-toolbox-cli"):
        got = compute_metrics(pred, None, fix, preset=model_only(name), metrics=["auc_borji"])
        assert got["auc_borji"].item() == pytest.approx(float(numpy_), abs=1e-12), name
    mit = compute_metrics(pred, None, fix, preset="mit", metrics=["auc_borji"])["auc_borji"]
    assert mit.item() == pytest.approx(float(matlab), abs=1e-12)  # MIT keeps MATLAB's
    assert auc_borji(pred, fix, weighting="none", thresholds="exclusive").item() == pytest.approx(
        float(numpy_), abs=1e-12
    )


def _np_borji(values, fixated, pixels, step=0.1):
    """The tools' AUC_Borji on a normalised map, negatives given: thresholds np.r_[0:max:step]."""
    pos, out = values[fixated], []
    for neg in values[pixels]:
        levels = np.r_[0 : np.max(np.r_[pos, neg]) : step][::-1]
        tp = np.r_[0, [np.mean(pos >= t) for t in levels], 1]
        fp = np.r_[0, [np.mean(neg >= t) for t in levels], 1]
        out.append(np.sum(np.diff(fp) * (tp[1:] + tp[:-1]) / 2))
    return float(np.mean(out))


def test_auc_borji_matches_numpy_thresholds_on_an_equator_prior():
    # Rows of an equator prior: many values just below the tied maximum of the two middle rows.
    h, w = 16, 32
    lat = (0.5 - (torch.arange(h, dtype=D) + 0.5) / h) * math.pi
    pred = torch.exp(-0.5 * (lat / 0.7) ** 2)[:, None].expand(h, w).reshape(1, 1, h, w)
    fix = (rand(1, 1, h, w, seed=4) < 0.1).to(D)
    values = ((pred - pred.min()) / (pred.max() - pred.min())).reshape(-1).numpy()
    fixated = np.flatnonzero(fix.reshape(-1).numpy())
    u = torch.rand(100, len(fixated), generator=torch.Generator().manual_seed(0), dtype=D)
    pixels = torch.floor(u * h * w).long().numpy()
    want = _np_borji(values, fixated, pixels)
    got = compute_metrics(pred, None, fix, preset="salient360-toolbox", metrics=["auc_borji"])
    assert got["auc_borji"].item() == pytest.approx(want, abs=1e-12)
    inclusive = auc_borji(pred, fix, weighting="none").item()
    assert abs(inclusive - want) > 1e-3


# ------------------------------------------------ 2. the 2018 tool's AUC-Judd arithmetic (ties)


def _np_judd(values, fixated):
    """The MIT AUC_Judd as the tools port it, without jitter, on a flat array."""
    s = (values - values.min()) / (values.max() - values.min())
    pos = np.sort(s[fixated])[::-1]
    n, total = len(pos), len(s)
    tp = np.r_[0, np.arange(1, n + 1) / n, 1]
    fp = np.r_[0, [(np.sum(s >= t) - k - 1) / (total - n) for k, t in enumerate(pos)], 1]
    return float(np.sum(np.diff(fp) * (tp[1:] + tp[:-1]) / 2))


def _np_2018(maps):
    """The 2018 main loop's preprocessing: float64 times sin(linspace(0, pi, H)) + eps, min-max."""
    x = maps.astype(np.float64) * np.sin(np.linspace(0, np.pi, maps.shape[0]))[:, None] + EPS
    return (x - x.min()) / (x.max() - x.min())


def test_auc_judd_2018_multiplies_mirrored_rows_unscaled_in_float64():
    # A constant float32 map on 4 rows: sin(linspace(0, pi, 4)) gives the two middle rows
    # sin(pi / 3) and sin(2 pi / 3), which differ in the last bit in float64, so the tool sees
    # one row above the other. Scaled to 1 and rounded to float32 they tie.
    weights = np.sin(np.linspace(0, np.pi, 4))
    assert weights[1] != weights[2]
    pred = torch.ones(1, 1, 4, 8, dtype=torch.float32)
    fix = torch.zeros(1, 1, 4, 8, dtype=D)
    fix[0, 0, 1, 3] = fix[0, 0, 2, 5] = 1
    # Thresholds: the upper row (8 pixels, 1 fixated) then the lower one (16, 2), 30 negatives.
    untied = 0.5 * (7 / 30) / 2 + 0.75 * (7 / 30) + (16 / 30)
    tied = 0.25 * (15 / 30) - 0.75 * (1 / 30) + (16 / 30)
    # The tool reads float32 maps and multiplies them in float64: so does the preset (results
    # come back in pred's dtype, so pred is given in float64 here).
    got = compute_metrics(
        pred.double(), None, fix, preset=model_only("salient360-2018"), metrics=["auc_judd"]
    )
    assert got["auc_judd"].item() == pytest.approx(untied, abs=1e-12)
    scaled = dataclasses.replace(
        model_only("salient360-2018"), auc_weighting=Weighting("sin-rows", "multiply")
    )
    old = compute_metrics(pred, None, fix, preset=scaled, metrics=["auc_judd"])["auc_judd"]
    assert old.item() == pytest.approx(tied, abs=1e-7)


def test_auc_judd_2018_matches_the_tools_arithmetic_on_quantised_symmetric_maps():
    # Maps symmetric about the equator with few levels: many exact ties that the tool's float64
    # products break or keep.
    h, w = 16, 32
    top = torch.round(rand(1, 1, h // 2, w, seed=7, dtype=torch.float32) * 3) / 3
    pred = torch.cat((top, top.flip(-2)), dim=-2)
    fix = (rand(1, 1, h, w, seed=8) < 0.15).to(D)
    want = _np_judd(_np_2018(pred[0, 0].numpy()).ravel(), np.flatnonzero(fix.numpy().ravel()))
    cfg = model_only("salient360-2018")
    got = compute_metrics(pred.double(), None, fix, preset=cfg, metrics=["auc_judd"])["auc_judd"]
    assert got.item() == pytest.approx(want, abs=1e-12)
    float32 = compute_metrics(pred, None, fix, preset=cfg, metrics=["auc_judd"])["auc_judd"]
    assert float32.dtype == torch.float32 and float32.item() == pytest.approx(want, abs=1e-7)
    scaled = dataclasses.replace(cfg, auc_weighting=Weighting("sin-rows", "multiply"))
    old = compute_metrics(pred, None, fix, preset=scaled, metrics=["auc_judd"])["auc_judd"]
    assert abs(old.item() - want) > 1e-4


# -------------------------------------------------------------- 3. the tools' fixation placement


def test_convention_salient360_placement_is_int_u_w_minus_1():
    h, w = 4, 8
    uv = torch.tensor(
        [
            [0.5 / w, 0.5 / h],  # inside the first cell: both rules give (0, 0)
            [1.5 / w, 2.5 / h],  # the tools: one pixel left and up, (1, 0); cells: (2, 1)
            [0.5, 0.5],  # the centre: (1, 3) against (2, 4)
            [0.0, 0.75],  # the left edge: column -1 is the last column; cells: column 0
            [0.25, 0.0],  # the top edge: row -1 is the last row (the south pole!); cells: row 0
            [1.0, 1.0],  # the corner: (3, 7) for both
        ],
        dtype=D,
    )
    tools = [(0, 0), (1, 0), (1, 3), (2, 7), (3, 1), (3, 7)]
    cells = [(0, 0), (2, 1), (2, 4), (3, 0), (0, 2), (3, 0)]
    for placement, want in (("salient360", tools), ("cell", cells)):
        for k, pixel in enumerate(want):
            m = binary_fixation_map(uv[k : k + 1], (h, w), placement=placement, normalized=True)
            assert divmod(int(m.argmax()), w) == pixel and m.sum() == 1, (placement, k)
    # (lon, lat) of the same points (away from exact pixel edges, where the u -> lon -> u round
    # trip can move an integer u W by one ulp) land in the same pixels.
    lonlat = torch.stack(((uv[:, 0] - 0.5) * 2 * math.pi, (0.5 - uv[:, 1]) * math.pi), -1)
    for placement in FIXATION_PLACEMENTS:
        a = binary_fixation_map(lonlat, (h, w), placement=placement, counts=True)
        b = binary_fixation_map(uv, (h, w), placement=placement, normalized=True, counts=True)
        assert torch.equal(a, b), placement
        want = testing.binary_fixation_map_oracle([uv], (h, w), placement=placement,
                                                  normalized=True, counts=True)  # fmt: skip
        assert torch.equal(b.double(), want)
        assert torch.equal(
            a.double(),
            testing.binary_fixation_map_oracle([lonlat], (h, w), placement=placement, counts=True),
        )


def test_salient360_presets_place_fixation_lists_as_the_tools_do():
    h, w = 8, 16
    pred = rand(1, 1, h, w, seed=2)
    uv = torch.tensor([[1.5 / w, 3.5 / h], [0.31, 0.42], [0.77, 0.61]], dtype=D)
    lonlat = torch.stack(((uv[:, 0] - 0.5) * 2 * math.pi, (0.5 - uv[:, 1]) * math.pi), -1)
    tool_map = torch.zeros(1, 1, h, w, dtype=D)
    for u, v in uv.tolist():
        tool_map[0, 0, int(v * h - 1), int(u * w - 1)] = 1
    cell_map = binary_fixation_map(lonlat, (h, w), dtype=D)
    assert not torch.equal(tool_map, cell_map)
    for name in ("salient360-toolbox", "salient360-toolbox-cli", "salient360-2018"):
        cfg = model_only(name)
        a = compute_metrics(pred, None, [lonlat], preset=cfg, metrics=["nss", "auc_judd"])
        b = compute_metrics(pred, None, tool_map, preset=cfg, metrics=["nss", "auc_judd"])
        for m in a:
            assert a[m].item() == pytest.approx(b[m].item(), abs=1e-12), (name, m)
    for name in ("mit", "sphere"):
        a = compute_metrics(pred, None, [lonlat], preset=name, metrics=["nss"])["nss"]
        b = compute_metrics(pred, None, cell_map, preset=name, metrics=["nss"])["nss"]
        assert a.item() == pytest.approx(b.item(), abs=1e-12)


# ------------------------------------------- 4. averaging with the ground truth's own score


def test_average_with_gt_scores_the_ground_truth_against_the_fixations_too():
    gt = torch.zeros(1, 1, 2, 4, dtype=D)
    gt[0, 0, 1, 3] = 4.0
    fix = (gt > 0).to(D)
    flat = torch.ones_like(gt)
    # The ground truth's own NSS: mean 1/2, population std sqrt(7) / 2, so (4 - 1/2) / std.
    own = math.sqrt(7)
    cli = compute_metrics(flat, gt, fix, preset="salient360-toolbox-cli", metrics=["nss", "cc"])
    assert cli["nss"].item() == pytest.approx((0 + own) / 2, abs=1e-12)
    assert cli["cc"].item() == 0.0  # map metrics are not averaged with anything
    alone = compute_metrics(flat, gt, fix, preset="salient360-toolbox", metrics=["nss"])["nss"]
    assert alone.item() == 0.0
    # A ground truth scored against itself: both terms are the same.
    g = rand(1, 1, 8, 16, seed=3) ** 4
    fix = (rand(1, 1, 8, 16, seed=4) < 0.1).to(D)
    for name in ("salient360-2018", "salient360-toolbox-cli"):
        both = compute_metrics(g, g, fix, preset=name, metrics=list(GT_AVERAGED_METRICS[:2]))
        one = compute_metrics(g, g, fix, preset=model_only(name), metrics=list(both))
        for m in both:
            assert both[m].item() == pytest.approx(one[m].item(), abs=1e-12), (name, m)
    # gt_fixations: the ground truth is scored on another fixation set (the tools' second file).
    other = (rand(1, 1, 8, 16, seed=5) < 0.1).to(D)
    pred = rand(1, 1, 8, 16, seed=6)
    cfg = PRESETS["salient360-toolbox-cli"]
    got = compute_metrics(pred, g, fix, preset=cfg, metrics=["nss"], gt_fixations=other)["nss"]
    terms = [
        compute_metrics(p, None, f, preset=model_only(cfg.name), metrics=["nss"])["nss"]
        for p, f in ((pred, fix), (g, other))
    ]
    assert got.item() == pytest.approx((terms[0] + terms[1]).item() / 2, abs=1e-12)


def test_average_with_gt_needs_the_ground_truth_map():
    pred = rand(1, 1, 4, 8)
    fix = (rand(1, 1, 4, 8, seed=1) < 0.3).to(D)
    with pytest.raises(ValueError, match="needs gt_map"):
        compute_metrics(pred, None, fix, preset="salient360-2018", metrics=["nss"])
    with pytest.raises(ShapeError, match="gt_map must have pred's shape"):
        compute_metrics(pred, rand(1, 1, 8, 16), fix, preset="salient360-2018", metrics=["nss"])
    # Without fixation metrics the switch needs nothing.
    out = compute_metrics(pred, pred, preset="salient360-2018", metrics=["cc"])
    assert out["cc"].item() == pytest.approx(1.0, abs=1e-12)


# --------------------------------------------- 5. compareSaliency's in-place multiplication


def test_toolbox_cli_weights_sim_twice_and_kld_three_times():
    # H = 5: row weights w = sin(linspace(0, pi, 5)) = (0, 0.707, 1, 0.707, ~0). A uniform
    # prediction and a ground truth on the middle row: after multiplying by w^k, P's middle row
    # holds 1 / S_k of its mass, S_k = sum of w^k, and Q all of it. So KL(Q || P) = log S_k and
    # SIM = 1 / S_k. The toolbox's functions use k = 1; its command line multiplies the same
    # arrays again on every call: SIM's second direction sees k = 2 and KLD k = 3.
    w = np.sin(np.linspace(0, np.pi, 5))
    s = {k: float(np.sum(w**k)) for k in (1, 2, 3)}
    pred = torch.ones(1, 1, 5, 10, dtype=D)
    gt = torch.zeros(1, 1, 5, 10, dtype=D)
    gt[0, 0, 2] = 1.0
    tool = compute_metrics(pred, gt, preset="salient360-toolbox", metrics=["sim", "kld"])
    cli = compute_metrics(pred, gt, preset="salient360-toolbox-cli", metrics=["sim", "kld"])
    assert tool["sim"].item() == pytest.approx(1 / s[1], abs=1e-12)
    assert tool["kld"].item() == pytest.approx(math.log(s[1]), abs=1e-12)
    assert cli["sim"].item() == pytest.approx((1 / s[1] + 1 / s[2]) / 2, abs=1e-12)
    assert cli["kld"].item() == pytest.approx(math.log(s[3]), abs=1e-12)


# ------------------------------------------------------------------ the presets and the oracles


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_matches_the_oracles(name):
    h, w = 6, 12
    pred = rand(2, 1, h, w, seed=10)
    gt = rand(2, 1, h, w, seed=11) ** 3
    base = rand(1, 1, h, w, seed=12) + 0.1
    gen = torch.Generator().manual_seed(13)
    lists = [
        torch.stack(((torch.rand(9, generator=gen) - 0.5) * 2 * math.pi,
                     (torch.rand(9, generator=gen) - 0.5) * math.pi), -1).to(D)
        for _ in range(2)
    ]  # fmt: skip
    other = [lists[1], lists[0]]
    gt_fix = [lists[1], lists[1]]
    metrics = ["auc_judd", "auc_borji", "auc_shuffled", "nss", "cc", "sim", "kld"]
    metrics.append("information_gain")
    cfg = dataclasses.replace(PRESETS[name], auc_splits=5)
    kw = dict(preset=cfg, metrics=metrics, baseline=base, other_fixations=other)
    got = compute_metrics(pred, gt, lists, **kw, gt_fixations=gt_fix)
    want = testing.compute_metrics_oracle(pred, gt, lists, **kw, gt_fixations=gt_fix)
    for m in metrics:
        assert torch.allclose(got[m], want[m], atol=1e-9, rtol=0), (m, got[m], want[m])


def test_preset_switches_are_validated():
    with pytest.raises(ValueError, match="fixation_placement must be one of"):
        MetricConfig(fixation_placement="centre")
    with pytest.raises(TypeError, match="average_with_gt must be a bool"):
        MetricConfig(average_with_gt=1)
    with pytest.raises(ValueError, match="thresholds must be one of"):
        MetricConfig(auc_thresholds="matlab")
    with pytest.raises(ValueError, match="placement must be one of"):
        binary_fixation_map(torch.zeros(1, 2, dtype=D), (2, 4), placement="tools")
    with pytest.raises(ValueRangeError, match=r"normalised \(u, v\) in \[0, 1\]"):
        binary_fixation_map(torch.tensor([[0.5, 1.5]], dtype=D), (2, 4), normalized=True)
    for name in TOOL_PRESETS:
        cfg = PRESETS[name]
        assert cfg.fixation_placement == "salient360" and cfg.auc_thresholds == "exclusive"
    assert PRESETS["salient360-toolbox-cli"].in_place_weighting
    assert [n for n in list_presets() if PRESETS[n].average_with_gt] == [
        "salient360-2018",
        "salient360-toolbox-cli",
    ]
