"""Benchmark pano360's saliency metrics against per-image NumPy implementations (CPU).

Run from the repository root::

    .venv/bin/python benchmarks/bench_saliency_metrics.py [--repeats N] [--quick] [--threads N]
        [--no-write]
    .venv/bin/python benchmarks/bench_saliency_metrics.py --presets-table [--no-write]
    .venv/bin/python benchmarks/bench_saliency_metrics.py --tools-table [--no-write]

The default run times all eight metrics (AUC-Judd, AUC-Borji, shuffled AUC, NSS, CC, SIM, KLD,
information gain) on 100 synthetic saliency maps of 1024 x 2048 (float32, about 2,000 fixated
pixels each) under the ``sphere`` and ``mit`` presets: pano360's batched
:func:`pano360.saliency.compute_metrics` against two straightforward per-image NumPy
implementations of the same formulas (:func:`numpy_metrics`). ``"tools"`` ports the reference
tools' algorithms vectorised per image (MIT and Salient360!: AUC-Judd counts the pixels above
each fixated value with one pass over the map per threshold; AUC-Borji and the shuffled AUC loop
over splits and thresholds); it is timed on 2 maps and scaled. ``"sorted"`` is our faster NumPy
rewrite (one sort for AUC-Judd, broadcasting over splits and thresholds). Maps stay float32;
sums accumulate in float64. All three draw the same random numbers (the documented torch
generators), so their results are compared as a check. Times are medians of interleaved runs
after a warm-up; a ratio is NumPy time / our time. Each metric is then timed alone on 10 maps.

``--quick``: 8 maps of 256 x 512, one repeat (a smoke run). ``--threads N`` sets torch's thread
count (NumPy runs on one thread). The results are printed and written into docs/benchmarks.md
between the ``bench_saliency_metrics`` markers.

``--presets-table`` instead computes every metric under every preset on the same synthetic
predictions (32 maps of 256 x 512, three predictors) and writes the table of how much the
presets differ into docs/saliency-metrics.md between the ``presets-table`` markers.

``--tools-table`` compares the Salient360! presets with NumPy emulations of the tools (the
``_tool_*`` functions, written from reading the tools) on small maps, with each quirk reproduced
and without it, and writes the table between the ``tools-table`` markers of the same page.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import sys
import time

import numpy as np
import torch
from _common import DOC, ROOT, machine_info, median_times, write_section

from pano360.geometry import erp_directions, pixel_solid_angle
from pano360.saliency import (
    METRICS,
    PRESETS,
    MetricConfig,
    Weighting,
    compute_metrics,
    list_presets,
)

FULL = {"maps": 100, "hw": (1024, 2048), "fixations": 2000, "repeats": 3, "tool_maps": 2}
QUICK = {"maps": 8, "hw": (256, 512), "fixations": 300, "repeats": 1, "tool_maps": 2}
PER_METRIC_MAPS = 10
TABLE_DOC = ROOT / "docs" / "saliency-metrics.md"
EPS = 2.220446049250313e-16


# --------------------------------------------------------------------------- inputs


def _blobs(n: int, hw, k: int, kappa: float, gen: torch.Generator) -> torch.Tensor:
    """n maps, each a sum of k von Mises-Fisher blobs at random directions, near the equator."""
    d = erp_directions(hw)  # (H, W, 3)
    out = torch.empty(n, 1, *hw)
    for i in range(n):
        lon = (torch.rand(k, generator=gen) * 2 - 1) * math.pi
        lat = torch.randn(k, generator=gen) * 0.35
        c = torch.stack(
            (torch.cos(lat) * torch.sin(lon), torch.sin(lat), torch.cos(lat) * torch.cos(lon)), 1
        )
        amp = 0.5 + torch.rand(k, generator=gen)
        out[i, 0] = (torch.exp(kappa * (d @ c.T - 1)) * amp).sum(-1)
    return out


def make_inputs(n: int, hw, n_fix: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Synthetic ground truth, a prediction, fixations sampled from the ground truth on the
    sphere, other images' fixations (the next 10 images) and an equator-bias baseline."""
    gen = torch.Generator().manual_seed(seed)
    h, w = hw
    gt = _blobs(n, hw, 8, 40.0, gen) + 1e-3
    pred = 0.6 * gt + 0.4 * _blobs(n, hw, 6, 20.0, gen)
    area = pixel_solid_angle(hw)  # (H, 1)
    prob = (gt[:, 0] * area).reshape(n, -1)
    fix = torch.zeros(n, h * w)
    fix.scatter_(1, torch.multinomial(prob, n_fix, replacement=True, generator=gen), 1.0)
    fix = fix.reshape(n, 1, h, w) > 0  # bool maps: a quarter of the memory of float32
    other = torch.zeros_like(fix)
    for shift in range(1, min(10, n - 1) + 1):
        other |= torch.roll(fix, shift, 0)
    if n == 1:
        other = torch.roll(fix, w // 2, -1)
    lat = (0.5 - (torch.arange(h) + 0.5) / h) * math.pi
    base = torch.exp(-0.5 * (lat / 0.35) ** 2)[:, None].expand(h, w)[None, None].contiguous()
    return {"pred": pred, "gt": gt, "fix": fix, "other": other, "base": base}


# --------------------------------------------------------------------------- NumPy reference


def _np_row_weights(kind: str, h: int) -> np.ndarray | None:
    if kind == "none":
        return None
    if kind == "sin-rows":
        return np.sin(np.linspace(0, np.pi, h))
    edges = np.pi / 2 - np.arange(h + 1) * (np.pi / h)
    return 2 * np.pi * (np.sin(edges[:-1]) - np.sin(edges[1:])) / (2 * h)


class _NpMap:
    """One map as a weighting reads it: values and location weights (None: all equal)."""

    def __init__(self, x: np.ndarray, weighting) -> None:
        if weighting.mode not in ("measure", "multiply") or weighting.power != 1:
            raise NotImplementedError(f"the NumPy reference does not implement {weighting}")
        h, w = x.shape
        rw = _np_row_weights(weighting.kind, h)
        self.weights = None
        if rw is not None and weighting.mode == "multiply":
            x = x * (rw / rw.max())[:, None].astype(x.dtype)
        elif rw is not None:
            self.weights = np.repeat(rw, w)
        self.v = x.ravel()
        self.total = float(self.v.size if self.weights is None else self.weights.sum())

    def wsum(self, y: np.ndarray) -> float:
        return float(y.sum(dtype=np.float64) if self.weights is None else y @ self.weights)

    def probabilities(self, minmax: bool) -> np.ndarray:
        v = self.v
        if minmax:
            lo, hi = v.min(), v.max()
            v = (v - lo) / (hi - lo) if hi > lo else np.ones_like(v)
        p = v if self.weights is None else v * self.weights
        return (p / p.sum(dtype=np.float64)).astype(np.float32)


def _np_trapz_auc(pos: np.ndarray, neg: np.ndarray, step: float, style: str) -> float:
    """Mean over splits (rows of neg) of the AUC with thresholds 0, step, ... <= the max."""
    if style == "sorted":
        thresholds = np.arange(math.floor(1 / step) + 2) * step
        tp = (pos[:, None] >= thresholds).mean(axis=0)
        fp = (neg[..., None] >= thresholds).mean(axis=1)
        zeros, ones = np.zeros((len(neg), 1)), np.ones((len(neg), 1))
        tp = np.concatenate([zeros, np.broadcast_to(tp[::-1], fp.shape), ones], 1)
        fp = np.concatenate([zeros, fp[:, ::-1], ones], 1)
        return float(np.trapezoid(tp, fp, axis=1).mean())
    aucs = []
    for cur in neg:  # the MIT code: one split at a time, one threshold at a time
        top = max(pos.max(), cur.max())
        thresholds = [k * step for k in range(math.floor(top / step) + 2) if k * step <= top]
        tp, fp = [0.0], [0.0]
        for t in reversed(thresholds):
            tp.append(np.sum(pos >= t) / len(pos))
            fp.append(np.sum(cur >= t) / len(cur))
        aucs.append(np.trapezoid([*tp, 1.0], [*fp, 1.0]))
    return float(np.mean(aucs))


def _np_auc_judd(c: dict, config: MetricConfig, gen, style: str) -> float:
    h, w = c["p"].shape
    m = _NpMap(c["p"], config.auc_weighting)
    if config.auc_jitter:  # added after the multiply, to the values as they are then
        noise = torch.rand((1, h, w), generator=gen, dtype=torch.float32)[0].numpy()
        factor = config.auc_jitter_amplitude
        if config.auc_jitter_scale == "range":
            factor *= m.v.max() - m.v.min()
        m.v = m.v + noise.ravel() * np.float32(factor)
    fixed = c["fixed"]
    k = len(fixed)
    s_fix = m.v[fixed]
    order = np.argsort(-s_fix, kind="stable")
    thr = s_fix[order]
    if style == "tools":  # the MIT code: one pass over the map per threshold
        if m.weights is None:
            above = np.array([np.count_nonzero(m.v >= t) for t in thr], dtype=float)
        else:
            above = np.array([m.weights[m.v >= t].sum() for t in thr])
    elif m.weights is None:
        above = m.v.size - np.searchsorted(np.sort(m.v), thr, side="left")
    else:
        idx = np.argsort(m.v)
        below = np.concatenate(([0.0], np.cumsum(m.weights[idx])))
        above = below[-1] - below[np.searchsorted(m.v[idx], thr, side="left")]
    cum = np.arange(1, k + 1) if m.weights is None else np.cumsum(m.weights[fixed][order])
    tp = np.r_[0, np.arange(1, k + 1) / k, 1]
    fp = np.r_[0, (above - cum) / (m.total - cum[-1]), 1]
    return float(np.trapezoid(tp, fp))


def _np_normalised(c: dict, weighting) -> tuple[_NpMap, np.ndarray]:
    m = _NpMap(c["p"], weighting)
    lo, hi = m.v.min(), m.v.max()
    return m, (m.v - lo) / (hi - lo)


def _np_auc_borji(c: dict, config: MetricConfig, gen, style: str) -> float:
    h, w = c["p"].shape
    m, sn = _np_normalised(c, config.auc_weighting)
    k = len(c["fixed"])
    u = torch.rand(config.auc_splits, k, generator=gen, dtype=torch.float64).numpy()
    if m.weights is None:
        pick = np.minimum(np.floor(u * m.v.size).astype(np.int64), m.v.size - 1)
    else:
        rw = _np_row_weights(config.auc_weighting.kind, h) * w
        ends = np.cumsum(rw)
        t = u * ends[-1]
        row = np.minimum(np.searchsorted(ends, t, side="right"), h - 1)
        col = np.floor((t - (ends - rw)[row]) / (rw[row] / w)).astype(np.int64)
        pick = row * w + np.clip(col, 0, w - 1)
    return _np_trapz_auc(sn[c["fixed"]], sn[pick], config.auc_step, style)


def _np_auc_shuffled(c: dict, config: MetricConfig, gen, style: str) -> float:
    _, sn = _np_normalised(c, config.auc_weighting)
    pool = c["pool"]
    take = min(len(c["fixed"]), len(pool))
    perms = [torch.randperm(len(pool), generator=gen)[:take].numpy() for _ in range(100)]
    return _np_trapz_auc(sn[c["fixed"]], sn[pool[np.stack(perms)]], config.auc_step, style)


def _np_nss(c: dict, config: MetricConfig, gen, style: str) -> float:
    m = _NpMap(c["p"], config.nss_weighting)
    mu = m.wsum(m.v) / m.total
    d = m.v - np.float32(mu)
    ss = m.wsum(d * d)
    if config.nss_std == "population":
        var = ss / m.total
    else:
        sq = float(m.v.size if m.weights is None else (m.weights**2).sum())
        var = ss / (m.total - sq / m.total)
    return float(((m.v[c["fixed"]] - mu) / math.sqrt(var)).mean())


def _np_cc(c: dict, config: MetricConfig, gen, style: str) -> float:
    mp, mg = _NpMap(c["p"], config.cc_weighting), _NpMap(c["g"], config.cc_weighting)
    dp = mp.v - np.float32(mp.wsum(mp.v) / mp.total)
    dg = mg.v - np.float32(mg.wsum(mg.v) / mg.total)
    return mp.wsum(dp * dg) / math.sqrt(mp.wsum(dp * dp) * mp.wsum(dg * dg))


def _np_sim(c: dict, config: MetricConfig, gen, style: str) -> float:
    w = config.sim_weighting
    pp = _NpMap(c["p"], w).probabilities(config.sim_minmax)
    qq = _NpMap(c["g"], w).probabilities(config.sim_minmax)
    return float(np.minimum(pp, qq).sum(dtype=np.float64))


def _np_kl(q: np.ndarray, r: np.ndarray, config: MetricConfig) -> float:
    e = config.eps
    if config.kld_form == "mit":
        return float((q * np.log(e + q / (r + e))).sum(dtype=np.float64))
    return float((q * np.log((q + e) / (r + e))).sum(dtype=np.float64))


def _np_kld(c: dict, config: MetricConfig, gen, style: str) -> float:
    w = config.kld_weighting
    pp, qq = _NpMap(c["p"], w).probabilities(False), _NpMap(c["g"], w).probabilities(False)
    if config.kld_symmetric:
        return (_np_kl(qq, pp, config) + _np_kl(pp, qq, config)) / 2
    if config.kld_direction == "gt||pred":
        return _np_kl(qq, pp, config)
    return _np_kl(pp, qq, config)


def _np_density(m: _NpMap, fixed: np.ndarray, minmax: bool) -> np.ndarray:
    v = m.v.astype(np.float64)
    if minmax:
        v = (v - v.min()) / (v.max() - v.min())
    return v[fixed] * (m.total / v.size) / m.wsum(v)


def _np_information_gain(c: dict, config: MetricConfig, gen, style: str) -> float:
    w, e = config.ig_weighting, config.eps
    p = _np_density(_NpMap(c["p"], w), c["fixed"], config.ig_minmax)
    b = _np_density(_NpMap(c["base"], w), c["fixed"], config.ig_minmax)
    return float(np.mean(np.log2(e + p) - np.log2(e + b)))


_NUMPY = {
    "auc_judd": _np_auc_judd,
    "auc_borji": _np_auc_borji,
    "auc_shuffled": _np_auc_shuffled,
    "nss": _np_nss,
    "cc": _np_cc,
    "sim": _np_sim,
    "kld": _np_kld,
    "information_gain": _np_information_gain,
}


def numpy_metrics(
    inputs: dict[str, torch.Tensor],
    config: MetricConfig,
    style: str = "sorted",
    metrics: tuple[str, ...] = METRICS,
) -> dict[str, np.ndarray]:
    """The metrics one image at a time with NumPy; random draws as documented.

    style ``"sorted"``: our NumPy rewrite (sorting for AUC-Judd, broadcasting over splits and
    thresholds); ``"tools"``: the reference tools' algorithms (AUC-Judd counts the pixels above
    each threshold with one pass over the map, the other AUCs loop over splits and thresholds).
    """
    n = inputs["pred"].shape[0]
    gens = {m: torch.Generator().manual_seed(config.seed) for m in METRICS[:3]}
    out = {m: np.empty(n) for m in metrics}
    base = inputs["base"][0, 0].numpy()
    for b in range(n):
        c = {
            "p": inputs["pred"][b, 0].numpy(),
            "g": inputs["gt"][b, 0].numpy(),
            "base": base,
            "fixed": np.flatnonzero(inputs["fix"][b, 0].numpy().ravel() > 0),
            "pool": np.flatnonzero(inputs["other"][b, 0].numpy().ravel() > 0),
        }
        for m in metrics:
            out[m][b] = _NUMPY[m](c, config, gens.get(m), style)
    return out


# --------------------------------------------------------------------------- runs


def ours(inputs: dict[str, torch.Tensor], config: MetricConfig, metrics=None):
    return compute_metrics(
        inputs["pred"],
        inputs["gt"],
        inputs["fix"],
        preset=config,
        metrics=metrics,
        baseline=inputs["base"],
        other_fixations=inputs["other"],
    )


def subset(inputs: dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    return {k: (v if k == "base" else v[:n]) for k, v in inputs.items()}


def run(size: dict, repeats: int, tool_maps: int) -> dict:
    print(f"  making {size['maps']} maps of {size['hw'][0]}x{size['hw'][1]} ...", flush=True)
    inputs = make_inputs(size["maps"], size["hw"], size["fixations"])
    n = size["maps"]
    fixated = float((inputs["fix"] > 0).reshape(n, -1).sum(1).float().mean())
    result = {"fixated": fixated, "presets": [], "per_metric": [], "tool_maps": tool_maps}
    few = subset(inputs, tool_maps)
    small = subset(inputs, min(PER_METRIC_MAPS, n))
    result["small_maps"] = small["pred"].shape[0]
    for name in ("sphere", "mit"):
        config = PRESETS[name]
        print(f"  timing all metrics on {n} maps, preset {name} ...", flush=True)
        (t_ours, t_np), _ = median_times(
            [lambda c=config: ours(inputs, c), lambda c=config: numpy_metrics(inputs, c)],
            repeats,
            warmup=1 if repeats > 1 else 0,
        )
        print(f"  timing the tools' algorithms on {tool_maps} maps, preset {name} ...", flush=True)
        (t_tools,), _ = median_times([lambda c=config: numpy_metrics(few, c, "tools")], 1, warmup=0)
        a, r = ours(inputs, config), numpy_metrics(inputs, config)
        t = numpy_metrics(few, config, "tools")
        diff = {
            m: max(
                float(np.abs(a[m].double().numpy() - r[m]).max()),
                float(np.abs(a[m][:tool_maps].double().numpy() - t[m]).max()),
            )
            for m in METRICS
        }
        result["presets"].append(
            {"preset": name, "ours": t_ours, "numpy": t_np, "tools": t_tools, "diff": diff}
        )
    config = PRESETS["sphere"]
    for m in METRICS:
        print(f"  timing {m} alone ...", flush=True)
        fns = [
            lambda m=m: ours(small, config, [m]),
            lambda m=m: numpy_metrics(small, config, "sorted", (m,)),
        ]
        (t, t_np), _ = median_times(fns, repeats, warmup=1 if repeats > 1 else 0)
        (t_tools,), _ = median_times(
            [lambda m=m: numpy_metrics(few, config, "tools", (m,))], 1, warmup=0
        )
        result["per_metric"].append({"metric": m, "ours": t, "numpy": t_np, "tools": t_tools})
    return result


def render(res: dict, size: dict, info: dict, command: str, repeats: int) -> str:
    n, (h, w) = size["maps"], size["hw"]
    k, few = res["small_maps"], res["tool_maps"]
    lines = [
        "## Saliency metrics: pano360 vs per-image NumPy (CPU)",
        "",
        f"Generated by `{command}` on {datetime.date.today().isoformat()}.",
        "",
        "Machine: " + "; ".join(f"{k}: {v}" for k, v in info.items()) + ".",
        "",
        f"Input: {n} synthetic saliency maps of {w}x{h}, float32, {res['fixated']:.0f} fixated "
        "pixels per map on average (other images' fixations for the shuffled AUC, an equator "
        "prior as the information-gain baseline). *Ours*: `compute_metrics` on the whole "
        "batch, all eight metrics. Two per-image NumPy implementations of the same formulas "
        "(`numpy_metrics` in the script), with the same random draws: *NumPy, tools' "
        "algorithms* is a vectorised port of the reference tools (MIT and Salient360!: one "
        "pass over the map per AUC-Judd threshold, loops over splits and thresholds for the "
        f"other AUCs), timed on {few} maps and scaled to {n}; *NumPy, sorted* is our own "
        "faster rewrite (a sort for AUC-Judd, broadcasting over splits and thresholds). "
        f"Median of {repeats} interleaved runs (the tools' algorithms: one run). Ratio = NumPy "
        "time / our time; the goal is at least 10x. The last column is the largest difference "
        "between our results and NumPy's, over all metrics.",
        "",
        "| preset | ours (s) | ours per map (ms) | NumPy, tools' algorithms (s) | ratio "
        "| NumPy, sorted (s) | ratio | max difference |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["presets"]:
        tools = r["tools"] * n / few
        lines.append(
            f"| {r['preset']} | {r['ours']:.2f} | {1e3 * r['ours'] / n:.0f} | {tools:.1f} | "
            f"{tools / r['ours']:.1f}x | {r['numpy']:.2f} | {r['numpy'] / r['ours']:.1f}x | "
            f"{max(r['diff'].values()):.1e} |"
        )
    lines += [
        "",
        f"Each metric alone, preset `sphere`, in ms per map (ours and NumPy sorted on {k} maps, "
        f"the tools' algorithms on {few}). Alone, every metric also pays the input checks that "
        "`compute_metrics` shares between metrics:",
        "",
        "| metric | ours | NumPy, tools' algorithms | ratio | NumPy, sorted | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in res["per_metric"]:
        o, t, s = r["ours"] / k, r["tools"] / few, r["numpy"] / k
        lines.append(
            f"| {r['metric']} | {1e3 * o:.1f} | {1e3 * t:.1f} | {t / o:.1f}x | {1e3 * s:.1f} | "
            f"{s / o:.1f}x |"
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- presets table


def presets_table(command: str) -> str:
    n, hw = 32, (256, 512)
    inputs = make_inputs(n, hw, 150, seed=1)
    h, w = hw
    lat = (0.5 - (torch.arange(h) + 0.5) / h) * math.pi
    equator = torch.exp(-0.5 * (lat / 0.35) ** 2)[:, None].expand(h, w)
    rows = torch.arange(h, dtype=torch.float32)[:, None]
    cols = torch.arange(w, dtype=torch.float32)[None, :]
    centre = torch.exp(-(((rows - h / 2) / (h / 4)) ** 2) - ((cols - w / 2) / (w / 4)) ** 2)
    predictors = {
        "model (blobs near the truth)": inputs["pred"],
        "equator prior": equator.expand(n, 1, h, w).contiguous(),
        "planar centre prior": centre.expand(n, 1, h, w).contiguous(),
    }
    names = list_presets()
    lines = [
        f"Generated by `{command}` on {datetime.date.today().isoformat()}: {n} synthetic maps "
        f"of {w}x{h}, fixations drawn from the ground truth on the sphere (about "
        f"{float((inputs['fix'] > 0).sum() / n):.0f} fixated pixels per map). Mean ± standard "
        "deviation over the maps; information gain is over the equator prior, so it is 0 for "
        "that predictor under every preset.",
        "",
    ]
    for label, pred in predictors.items():
        scores = {}
        for name in names:
            scores[name] = compute_metrics(
                pred,
                inputs["gt"],
                inputs["fix"],
                preset=name,
                baseline=inputs["base"],
                other_fixations=inputs["other"],
            )
        lines += [
            f"**{label}**",
            "",
            "| metric | " + " | ".join(f"`{p}`" for p in names) + " | largest gap |",
            "|---|" + "---:|" * (len(names) + 1),
        ]
        for m in METRICS:
            means = [float(scores[p][m].mean()) for p in names]
            cells = [
                f"{float(scores[p][m].mean()):.3f} ± {float(scores[p][m].std()):.3f}" for p in names
            ]
            lines.append(f"| {m} | " + " | ".join(cells) + f" | {max(means) - min(means):.3f} |")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the tools' quirks
#
# NumPy emulations of what the Salient360! tools compute, written from reading them (the 2018
# tool as shipped with the ICCV'21 code, Saliency/saliencyMeasures.py; the salient360Toolbox's
# comparison/saliencyMetrics.py, saliencyCompare.py and generation/scanpath.py). Each takes the
# maps as the tools get them (float32, as read from their .bin files) and does the arithmetic
# they do, in their order. AUC-Borji's random negatives are pano360's documented draws instead
# of NumPy's randint stream, so that only the thresholds can differ.


def _tool_sin(h: int) -> np.ndarray:
    return np.sin(np.linspace(0, np.pi, h))


def _tool_range(x: np.ndarray) -> np.ndarray:
    return (x - np.min(x)) / (np.max(x) - np.min(x))


def _tool_fixation_map(uv: np.ndarray, h: int, w: int) -> np.ndarray:
    """Fixation counts at int(u W - 1), int(v H - 1); NumPy reads -1 as the last index."""
    idx = (uv * np.array([w, h]) - 1).astype(int)
    out = np.zeros((h, w))
    np.add.at(out, (idx[:, 1], idx[:, 0]), 1)
    return out


def _tool_judd(s: np.ndarray, fixations: np.ndarray) -> float:
    s = _tool_range(s).ravel()
    pos = np.sort(s[fixations.ravel() > 0.5])[::-1]
    n = len(pos)
    tp = np.r_[0, np.arange(1, n + 1) / n, 1]
    fp = np.r_[0, [(np.sum(s >= t) - k - 1) / (s.size - n) for k, t in enumerate(pos)], 1]
    return float(np.trapezoid(tp, fp))


def _tool_borji(s: np.ndarray, fixations: np.ndarray, picks: np.ndarray, step=0.1) -> float:
    s = _tool_range(s).ravel()
    pos = s[fixations.ravel() > 0.5]
    aucs = []
    for neg in s[picks]:
        # float(): the threshold count in float64, as NumPy 1.x computed it when the tools were
        # written and used; NumPy 2 computes it in float32 for float32 maps (NEP 50), which
        # can leave out one more threshold.
        levels = np.r_[0 : float(np.max(np.r_[pos, neg])) : step][::-1]
        tp = np.r_[0, [np.sum(pos >= t) / len(pos) for t in levels], 1]
        fp = np.r_[0, [np.sum(neg >= t) / len(pos) for t in levels], 1]
        aucs.append(np.trapezoid(tp, fp))
    return float(np.mean(aucs))


def _tool_nss(s: np.ndarray, fixations: np.ndarray) -> float:
    z = (s - np.mean(s)) / np.std(s)
    return float(np.mean(z[fixations > 0.5]))


def _tool_kld(p: np.ndarray, q: np.ndarray) -> float:
    p, q = p / float(np.sum(p)), q / float(np.sum(q))
    return float(np.sum(np.where(p != 0, p * np.log((p + EPS) / (q + EPS)), 0)))


def _tool_sim(a: np.ndarray, b: np.ndarray) -> float:
    a, b = _tool_range(a), _tool_range(b)
    a, b = a / float(np.sum(a)), b / float(np.sum(b))
    return float(np.sum(np.minimum(a, b)))


def _tool_weighted_cc(a: np.ndarray, b: np.ndarray, weights: np.ndarray) -> float:
    """Standardised maps (in their own precision), then the weighted Pearson correlation."""
    a, b = (a - np.mean(a)) / np.std(a), (b - np.mean(b)) / np.std(b)
    a, b = a.astype(np.float64), b.astype(np.float64)
    w = weights / weights.sum()
    da, db = a - np.sum(w * a), b - np.sum(w * b)
    return float(np.sum(w * da * db) / np.sqrt(np.sum(w * da * da) * np.sum(w * db * db)))


def _tool_2018_prepare(x: np.ndarray) -> np.ndarray:
    """The 2018 main loop: float32 map times sin(linspace) in float64, plus EPSILON, min-max."""
    return _tool_range(x * _tool_sin(x.shape[0])[:, None] + EPS)


def _tool_in_place(a: np.ndarray, b: np.ndarray, weights: np.ndarray, metric) -> float:
    """A toolbox metric that multiplies both (caller's) arrays by the weights in place first."""
    a *= weights
    b *= weights
    return metric(a, b)


def _tool_maps(h: int, w: int, seed: int) -> dict[str, np.ndarray]:
    gen = torch.Generator().manual_seed(seed)
    lat = (0.5 - (np.arange(h) + 0.5) / h) * np.pi
    equator = np.exp(-0.5 * (lat / 0.35) ** 2)[:, None].repeat(w, 1)
    noise = torch.rand(h, w, generator=gen).numpy()
    smooth = _blobs(1, (h, w), 6, 20.0, gen)[0, 0].numpy() + 1e-3
    return {
        "random": noise,
        "smooth": smooth,
        "tied": np.round(noise * 4) / 4,
        "quantised": np.round(smooth / smooth.max() * 255) / 255,
        "equator prior": equator,
        "noisy equator prior": equator + 0.01 * np.round(noise * 3),
    }


def tools_table(command: str) -> str:
    """Largest difference between each Salient360! preset and the emulated tool, with the quirk
    reproduced and with the documented (or MATLAB) behaviour instead."""
    h, w, n_fix, seeds = 64, 128, 50, 6
    rows: dict[tuple[str, str, str], list[float]] = {}

    def note(preset, metric, quirk, ours_with, ours_without, tool):
        key = (preset, metric, quirk)
        got = rows.setdefault(key, [0.0, 0.0])
        got[0] = max(got[0], abs(ours_with - tool))
        got[1] = max(got[1], abs(ours_without - tool))

    def score(pred, gt, fix, config, metric, dtype=torch.float64):
        """pano360's value, the maps given in ``dtype`` (the toolbox computes in the precision
        of the maps it gets, the 2018 tool in float64)."""
        gt_t = None if gt is None else torch.from_numpy(gt)[None, None].to(dtype)
        pred_t = torch.from_numpy(pred)[None, None].to(dtype)
        out = compute_metrics(pred_t, gt_t, fix, preset=config, metrics=[metric])
        return float(out[metric][0])

    def replace(config, **changes):
        return dataclasses.replace(config, **changes)

    f32 = torch.float32
    sin = Weighting("sin-rows", "multiply")
    box, cli = PRESETS["salient360-toolbox"], PRESETS["salient360-toolbox-cli"]
    y18 = replace(PRESETS["salient360-2018"], average_with_gt=False)
    for seed in range(seeds):
        gen = np.random.default_rng(seed)
        uv = gen.random((n_fix, 2))
        uv[:3] = [[0.5, 0.5], [1.5 / w, 0.25], [0.25, 1.5 / h]]  # pixel edges and the centre
        lon, lat = (uv[:, 0] - 0.5) * 2 * np.pi, (0.5 - uv[:, 1]) * np.pi
        lonlat = [torch.from_numpy(np.stack((lon, lat), 1))]
        tool_fix = _tool_fixation_map(uv, h, w)
        fix_map = torch.from_numpy(tool_fix > 0)[None, None].double()
        u = torch.rand(100, int((tool_fix > 0).sum()), generator=torch.Generator().manual_seed(0),
                       dtype=torch.float64)  # fmt: skip
        picks = torch.floor(u * h * w).long().numpy()  # pano360's documented draws
        gt = _tool_maps(h, w, 100 + seed)["smooth"].astype(np.float32)
        wmap = np.repeat(_tool_sin(h)[:, None], w, axis=1)
        for pred in _tool_maps(h, w, seed).values():
            pred = pred.astype(np.float32)
            p18, g18 = _tool_2018_prepare(pred), _tool_2018_prepare(gt)
            quirk = "np.r_[0:max:step] thresholds"
            inclusive = replace(box, auc_thresholds="inclusive")
            note(box.name, "auc_borji", quirk,
                 score(pred, None, fix_map, box, "auc_borji", f32),
                 score(pred, None, fix_map, inclusive, "auc_borji", f32),
                 _tool_borji(pred, tool_fix, picks))  # fmt: skip
            note(y18.name, "auc_borji", quirk,
                 score(pred, None, fix_map, y18, "auc_borji"),
                 score(pred, None, fix_map, replace(y18, auc_thresholds="inclusive"),
                       "auc_borji"),
                 _tool_borji(p18, tool_fix, picks))  # fmt: skip
            # Before: the product scaled to 1, in the prediction's own precision (float32).
            note(y18.name, "auc_judd", "float64 maps times unscaled sin rows",
                 score(pred, None, fix_map, y18, "auc_judd"),
                 score(pred, None, fix_map, replace(y18, auc_weighting=sin), "auc_judd", f32),
                 _tool_judd(p18, tool_fix))  # fmt: skip
            quirk = "fixations at int(u W - 1), int(v H - 1)"
            for metric, fn in (("auc_judd", _tool_judd), ("nss", _tool_nss)):
                note(box.name, metric, quirk,
                     score(pred, None, lonlat, box, metric, f32),
                     score(pred, None, lonlat, replace(box, fixation_placement="cell"), metric,
                           f32),
                     fn(pred, tool_fix))  # fmt: skip
            quirk = "averaged with the ground truth's own score"
            for metric, fn in (("nss", _tool_nss), ("auc_judd", _tool_judd)):
                note("salient360-2018", metric, quirk,
                     score(pred, gt, fix_map, PRESETS["salient360-2018"], metric),
                     score(pred, gt, fix_map, y18, metric),
                     (fn(p18, tool_fix) + fn(g18, tool_fix)) / 2)  # fmt: skip
            # Metrics without a quirk: the same number with and without.
            for metric, tool in (
                ("cc", np.corrcoef(p18.ravel(), g18.ravel())[0, 1]),
                ("sim", _tool_sim(p18, g18)),
                ("kld", (_tool_kld(g18, p18) + _tool_kld(p18, g18)) / 2),
            ):
                value = score(pred, gt, None, y18, metric)
                note(y18.name, metric, "(none)", value, value, tool)
            for metric, tool in (
                ("cc", _tool_weighted_cc(pred, gt, wmap)),
                ("sim", _tool_in_place(pred.copy(), gt.copy(), wmap, _tool_sim)),
                ("kld", _tool_in_place(gt.copy(), pred.copy(), wmap, _tool_kld)),
            ):
                value = score(pred, gt, None, box, metric, f32)
                note(box.name, metric, "(none)", value, value, tool)
            # compareSaliency: SIM both ways, then KLD, on the same arrays multiplied in place.
            a, b = gt.copy(), pred.copy()
            sim_tool = _tool_in_place(a, b, wmap, _tool_sim)
            sim_tool = (sim_tool + _tool_in_place(b, a, wmap, _tool_sim)) / 2
            kld_tool = _tool_in_place(a, b, wmap, _tool_kld)
            plain = replace(cli, in_place_weighting=False)
            for metric, tool in (("sim", sim_tool), ("kld", kld_tool)):
                note(cli.name, metric, "SIM and KLD multiply in place",
                     score(pred, gt, None, cli, metric, f32),
                     score(pred, gt, None, plain, metric, f32), tool)  # fmt: skip
    kinds = ", ".join(_tool_maps(4, 8, 0))
    lines = [
        f"Generated by `{command}` on {datetime.date.today().isoformat()}: {seeds} draws of "
        f"{n_fix} fixations on {len(_tool_maps(4, 8, 0))} kinds of float32 maps of {w}x{h} "
        f"({kinds}), against NumPy emulations of the tools written from reading them (the "
        "script's `_tool_*` functions; AUC-Borji with pano360's documented random negatives). "
        "Largest |pano360 − tool| over the maps: with the preset as it is, and with the quirk "
        "replaced by the documented (or MATLAB) behaviour. The toolbox computes in the "
        "precision of the maps it gets (float32 here; pano360 is given the same float32 maps "
        "in its rows, so its results are float32 too), the 2018 tool in float64.",
        "",
        "| preset | metric | the tool's quirk | preset | without the quirk |",
        "|---|---|---|---:|---:|",
    ]
    for (preset, metric, quirk), (a, b) in rows.items():
        without = "" if quirk == "(none)" else f"{b:.1e}"
        lines.append(f"| `{preset}` | {metric} | {quirk} | {a:.1e} | {without} |")
    return "\n".join(lines) + "\n"


def write_doc_section(path, name: str, section: str) -> None:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{path} has no {start} ... {end} markers")
    before, rest = text.split(start, 1)
    path.write_text(before + start + "\n" + section + end + rest.split(end, 1)[1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per measurement")
    parser.add_argument("--quick", action="store_true", help="8 maps of 256x512, one repeat")
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    parser.add_argument(
        "--presets-table", action="store_true", help="write the preset comparison table instead"
    )
    parser.add_argument(
        "--tools-table",
        action="store_true",
        help="write the table of the Salient360! presets against the tools' emulations instead",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    argv = sys.argv[1:] if argv is None else argv
    command = " ".join([".venv/bin/python benchmarks/bench_saliency_metrics.py", *argv])
    for flag, name, make in (
        (args.presets_table, "presets-table", presets_table),
        (args.tools_table, "tools-table", tools_table),
    ):
        if flag:
            section = make(command)
            print(section)
            if not args.no_write:
                write_doc_section(TABLE_DOC, name, section)
                print(f"wrote the {name} section of {TABLE_DOC.relative_to(ROOT)}")
            return
    size = QUICK if args.quick else FULL
    repeats = args.repeats or size["repeats"]
    info = machine_info()
    print("pano360 saliency metrics benchmark")
    for k, v in info.items():
        print(f"  {k}: {v}")
    start = time.perf_counter()
    res = run(size, repeats, size["tool_maps"])
    section = render(res, size, info, command, repeats)
    print()
    print(section)
    print(f"total {time.perf_counter() - start:.0f} s")
    if not args.no_write:
        write_section("bench_saliency_metrics", section)
        print(f"wrote the bench_saliency_metrics section of {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
