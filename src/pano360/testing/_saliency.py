"""Slow, obviously-correct saliency metrics: plain Python loops written from the formulas.

The fast metrics of :mod:`pano360.saliency` are checked against these, one pixel (or sphere
point) at a time. Each oracle takes the same inputs and switches as the metric of the same name
(fixations as (B, 1, H, W) maps only) and returns a (B,) float64 tensor. The formulas are those of
``docs/saliency-metrics.md``; random draws follow the documented procedure (one
``torch.Generator(device="cpu").manual_seed(seed)`` per call, images in batch order) so that the
oracles see the same jitter and the same random negatives as the metrics.

Use small maps (8 x 16 is plenty): the AUC oracles loop over thresholds times locations.

:func:`binary_fixation_map_oracle` places fixations one at a time under each placement, and
:func:`compute_metrics_oracle` runs these oracles under a whole
:class:`pano360.saliency.MetricConfig`, with the switches that combine metrics (averaging with
the ground truth's own score, the toolbox command line's in-place weighting).
"""

from __future__ import annotations

import bisect
import math

import numpy as np
import torch

from ..saliency import GT_AVERAGED_METRICS, PRESETS, MetricConfig
from ._conv import _bilinear_on_sphere

__all__ = [
    "auc_borji_oracle",
    "auc_judd_oracle",
    "auc_shuffled_oracle",
    "binary_fixation_map_oracle",
    "cc_oracle",
    "compute_metrics_oracle",
    "information_gain_oracle",
    "kld_oracle",
    "nss_oracle",
    "sim_oracle",
]

_EPS = 2.220446049250313e-16


def _parse(weighting) -> tuple[str, str, int, int]:
    if isinstance(weighting, str):
        return weighting, "measure", 1_256_637, 1
    return weighting.kind, weighting.mode, weighting.n_points, weighting.power


def _row_weight(kind: str, i: int, h: int) -> float:
    if kind == "sin-rows":
        # The tools' sin(linspace(0, pi, H)), rounded as NumPy rounds it.
        return float(np.sin(np.linspace(0, np.pi, h))[i])
    top = math.pi / 2 - math.pi * i / h
    bottom = math.pi / 2 - math.pi * (i + 1) / h
    return 2 * math.pi * (math.sin(top) - math.sin(bottom)) / (2 * h)


class _Locations:
    """One map under a weighting: its pixel values and the (value, weight, pixel) locations."""

    def __init__(self, img, weighting, jitter=None) -> None:
        kind, mode, n_points, power = _parse(weighting)
        h, w = img.shape
        grid = [[float(img[i, j]) for j in range(w)] for i in range(h)]
        per_row = kind in ("sin-rows", "solid-angle")
        row_w = [_row_weight(kind, i, h) ** power if per_row else 1.0 for i in range(h)]
        if per_row and mode == "multiply":
            top = max(row_w)
            grid = [[grid[i][j] * (row_w[i] / top) for j in range(w)] for i in range(h)]
        elif per_row and mode == "multiply-unscaled":
            # The 2018 tool: float64 values times the weights as they are, plus eps, min-max.
            grid = [[grid[i][j] * row_w[i] + _EPS for j in range(w)] for i in range(h)]
            lo = min(min(row) for row in grid)
            hi = max(max(row) for row in grid)
            if hi > lo:
                grid = [[(v - lo) / (hi - lo) for v in row] for row in grid]
        if jitter is not None:
            grid = jitter(grid)
        self.h, self.w, self.grid = h, w, grid
        self.values, self.weights, self.pixels = [], [], []
        if kind == "sphere-sampled":
            arr = torch.tensor(grid, dtype=torch.float64).numpy()
            golden = math.pi * (3 - math.sqrt(5))
            for k in range(n_points):
                lat = math.asin(1 - 2 * k / (n_points - 1))
                lon = (k * golden) % (2 * math.pi) - math.pi
                x = (lon / (2 * math.pi) + 0.5) * w - 0.5
                y = (-lat / math.pi + 0.5) * h - 0.5
                self.values.append(float(_bilinear_on_sphere(arr, x, y)))
                self.weights.append(1.0)
                col = math.floor((lon / (2 * math.pi) + 0.5) * w) % w
                row = min(math.floor((0.5 - lat / math.pi) * h), h - 1)
                self.pixels.append(row * w + col)
            self.sampled = True
            return
        self.sampled = False
        measure = per_row and mode == "measure"
        for i in range(h):
            for j in range(w):
                self.values.append(grid[i][j])
                self.weights.append(row_w[i] if measure else 1.0)
                self.pixels.append(i * w + j)

    def pixel(self, p: int) -> float:
        return self.grid[p // self.w][p % self.w]

    def lo_hi(self) -> tuple[float, float]:
        flat = [v for row in self.grid for v in row]
        return min(flat), max(flat)

    def total(self) -> float:
        return sum(self.weights)


def _images(t: torch.Tensor) -> list:
    return [t[b, 0].detach().to("cpu", torch.float64) for b in range(t.shape[0])]


def _fixated(fix: torch.Tensor, b: int) -> list[int]:
    """Fixated pixels of image b in row-major order."""
    m = fix[b, 0]
    h, w = m.shape
    return [i * w + j for i in range(h) for j in range(w) if float(m[i, j]) > 0]


def _trapz(fp: list[float], tp: list[float]) -> float:
    return sum((fp[k + 1] - fp[k]) * (tp[k + 1] + tp[k]) / 2 for k in range(len(fp) - 1))


def _normalised(loc: _Locations, minmax: bool):
    """Normalised value function and mass: min-max (constant -> 1), then empty mass -> uniform."""
    lo, hi = loc.lo_hi()
    constant = minmax and hi <= lo

    def value(v: float) -> float:
        if constant:
            return 1.0
        return (v - lo) / (hi - lo) if minmax else v

    mass = sum(wt * value(v) for v, wt in zip(loc.values, loc.weights, strict=True))
    if mass <= 0:
        return (lambda v: 1.0), loc.total()
    return value, mass


def _probabilities(loc: _Locations, minmax: bool) -> list[float]:
    value, mass = _normalised(loc, minmax)
    return [wt * value(v) / mass for v, wt in zip(loc.values, loc.weights, strict=True)]


def nss_oracle(pred, fixations, *, weighting="solid-angle", std="population") -> torch.Tensor:
    """NSS: mean over fixated pixels of (p - mu) / sigma with weighted mu and sigma."""
    out = []
    for b, img in enumerate(_images(pred)):
        loc = _Locations(img, weighting)
        total = loc.total()
        mu = sum(w * v for v, w in zip(loc.values, loc.weights, strict=True)) / total
        ss = sum(w * (v - mu) ** 2 for v, w in zip(loc.values, loc.weights, strict=True))
        if std == "population":
            var = ss / total
        else:
            var = ss / (total - sum(w * w for w in loc.weights) / total)
        lo, hi = loc.lo_hi()
        if hi <= lo or var <= 0:
            out.append(0.0)
            continue
        fixed = _fixated(fixations, b)
        out.append(sum((loc.pixel(p) - mu) / math.sqrt(var) for p in fixed) / len(fixed))
    return torch.tensor(out, dtype=torch.float64)


def cc_oracle(pred, gt_map, *, weighting="solid-angle") -> torch.Tensor:
    """CC: weighted Pearson correlation; 0 when either map is constant."""
    out = []
    for img, ref in zip(_images(pred), _images(gt_map), strict=True):
        a, g = _Locations(img, weighting), _Locations(ref, weighting)
        total = a.total()
        ma = sum(w * v for v, w in zip(a.values, a.weights, strict=True)) / total
        mg = sum(w * v for v, w in zip(g.values, g.weights, strict=True)) / total
        cov = va = vg = 0.0
        for x, y, w in zip(a.values, g.values, a.weights, strict=True):
            cov += w * (x - ma) * (y - mg)
            va += w * (x - ma) ** 2
            vg += w * (y - mg) ** 2
        flat = a.lo_hi()[0] >= a.lo_hi()[1] or g.lo_hi()[0] >= g.lo_hi()[1]
        out.append(0.0 if flat or va <= 0 or vg <= 0 else cov / math.sqrt(va * vg))
    return torch.tensor(out, dtype=torch.float64)


def sim_oracle(pred, gt_map, *, weighting="solid-angle", minmax=True) -> torch.Tensor:
    """SIM: sum over locations of min(P, Q) of the weighted distributions."""
    out = []
    for img, ref in zip(_images(pred), _images(gt_map), strict=True):
        p = _probabilities(_Locations(img, weighting), minmax)
        q = _probabilities(_Locations(ref, weighting), minmax)
        out.append(sum(min(x, y) for x, y in zip(p, q, strict=True)))
    return torch.tensor(out, dtype=torch.float64)


def _kl(q: list[float], p: list[float], form: str, eps: float) -> float:
    total = 0.0
    for qj, pj in zip(q, p, strict=True):
        if form == "mit":
            total += qj * math.log(eps + qj / (pj + eps))
        elif qj != 0:
            total += qj * math.log((qj + eps) / (pj + eps))
    return total


def kld_oracle(
    pred,
    gt_map,
    *,
    weighting="solid-angle",
    direction="gt||pred",
    symmetric=False,
    form="mit",
    eps=_EPS,
) -> torch.Tensor:
    """KLD between the weighted distributions (no min-max), in either direction or both."""
    out = []
    for img, ref in zip(_images(pred), _images(gt_map), strict=True):
        p = _probabilities(_Locations(img, weighting), False)
        q = _probabilities(_Locations(ref, weighting), False)
        if symmetric:
            out.append((_kl(q, p, form, eps) + _kl(p, q, form, eps)) / 2)
        elif direction == "gt||pred":
            out.append(_kl(q, p, form, eps))
        else:
            out.append(_kl(p, q, form, eps))
    return torch.tensor(out, dtype=torch.float64)


def information_gain_oracle(
    pred, fixations, baseline, *, weighting="solid-angle", minmax=True, eps=_EPS
) -> torch.Tensor:
    """IG: mean over fixated pixels of log2(eps + P_f) - log2(eps + B_f)."""
    bases = _images(baseline)
    out = []
    for b, img in enumerate(_images(pred)):
        lp = _Locations(img, weighting)
        lb = _Locations(bases[b if len(bases) > 1 else 0], weighting)
        share = lp.total() / len(lp.values)
        vp, mp = _normalised(lp, minmax)
        vb, mb = _normalised(lb, minmax)
        gains = []
        for f in _fixated(fixations, b):
            pf = vp(lp.pixel(f)) * share / mp
            bf = vb(lb.pixel(f)) * share / mb
            gains.append(math.log2(eps + pf) - math.log2(eps + bf))
        out.append(sum(gains) / len(gains))
    return torch.tensor(out, dtype=torch.float64)


def auc_judd_oracle(
    pred,
    fixations,
    *,
    weighting="solid-angle",
    jitter=True,
    jitter_amplitude=1e-7,
    jitter_scale="range",
    seed=0,
) -> torch.Tensor:
    """AUC-Judd as the MIT code computes it, with location weights for the negatives."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for b, img in enumerate(_images(pred)):
        h, w = img.shape
        jit = None
        if jitter:
            noise = torch.rand((1, h, w), generator=gen, dtype=pred.dtype)[0].tolist()

            def jit(grid, noise=noise):
                flat = [v for row in grid for v in row]
                factor = jitter_amplitude
                if jitter_scale == "range":
                    factor = factor * (max(flat) - min(flat))
                return [
                    [v + n * factor for v, n in zip(*rows, strict=True)]
                    for rows in zip(grid, noise, strict=True)
                ]

        loc = _Locations(img, weighting, jit)
        lo, hi = loc.lo_hi()
        if hi <= lo:
            out.append(0.5)
            continue
        fixed = _fixated(fixations, b)
        n = len(fixed)
        fixed_set = set(fixed)
        order = sorted(fixed, key=lambda p: -loc.pixel(p))  # stable: row-major among ties
        pixel_w = {p: wt for p, wt in zip(loc.pixels, loc.weights, strict=True)}
        tp, fp = [0.0], [0.0]
        if loc.sampled:
            negatives = [
                v for v, p in zip(loc.values, loc.pixels, strict=True) if p not in fixed_set
            ]
            for i, p in enumerate(order, start=1):
                t = loc.pixel(p)
                tp.append(i / n)
                fp.append(sum(1 for v in negatives if v >= t) / len(negatives))
        else:
            total = loc.total()
            fixed_w = sum(pixel_w[p] for p in fixed)
            cum = 0.0
            for i, p in enumerate(order, start=1):
                t = loc.pixel(p)
                cum += pixel_w[p]
                above = sum(wt for v, wt in zip(loc.values, loc.weights, strict=True) if v >= t)
                tp.append(i / n)
                fp.append((above - cum) / (total - fixed_w))
        tp.append(1.0)
        fp.append(1.0)
        out.append(_trapz(fp, tp))
    return torch.tensor(out, dtype=torch.float64)


def _draw(loc: _Locations, weighting, x: float) -> int:
    """The location a uniform draw x in [0, 1) picks, with probability proportional to weight.

    Equal weights: floor(x L). Row weights: the row by the cumulative row totals, then the
    column along the row (the documented two-step inverse CDF).
    """
    kind, mode, _, power = _parse(weighting)
    if kind not in ("sin-rows", "solid-angle") or mode != "measure":
        return min(math.floor(x * len(loc.values)), len(loc.values) - 1)
    row_w = [_row_weight(kind, i, loc.h) ** power for i in range(loc.h)]
    ends, run = [], 0.0
    for rw in row_w:
        run += rw * loc.w
        ends.append(run)
    t = x * run
    r = min(bisect.bisect_right(ends, t), loc.h - 1)
    start = ends[r] - row_w[r] * loc.w
    c = min(max(math.floor((t - start) / row_w[r]), 0), loc.w - 1)
    return r * loc.w + c


def _split_auc(
    pos: list[float], negs: list[list[float]], step: float, thresholds: str = "inclusive"
) -> float:
    aucs = []
    for neg in negs:
        top = max(pos + neg)
        if thresholds == "inclusive":
            levels = []
            k = 0
            while k * step <= top:  # MATLAB's 0:step:max
                levels.append(k * step)
                k += 1
        else:  # NumPy's r_[0:top:step]: ceil(top / step) values k * step
            levels = [k * step for k in range(math.ceil(top / step))]
        tp, fp = [0.0], [0.0]
        for t in reversed(levels):
            tp.append(sum(1 for v in pos if v >= t) / len(pos))
            fp.append(sum(1 for v in neg if v >= t) / len(neg))
        tp.append(1.0)
        fp.append(1.0)
        aucs.append(_trapz(fp, tp))
    return sum(aucs) / len(aucs)


def auc_borji_oracle(
    pred,
    fixations,
    *,
    weighting="solid-angle",
    n_splits=100,
    step=0.1,
    thresholds="inclusive",
    seed=0,
) -> torch.Tensor:
    """AUC-Borji: positives against random locations drawn by weight, MATLAB thresholds."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for b, img in enumerate(_images(pred)):
        loc = _Locations(img, weighting)
        fixed = _fixated(fixations, b)
        n = len(fixed)
        u = torch.rand(n_splits, n, generator=gen, dtype=torch.float64).tolist()
        lo, hi = loc.lo_hi()
        if hi <= lo:
            out.append(0.5)
            continue
        negs = []
        for s in range(n_splits):
            negs.append([(loc.values[_draw(loc, weighting, x)] - lo) / (hi - lo) for x in u[s]])
        pos = [(loc.pixel(p) - lo) / (hi - lo) for p in fixed]
        out.append(_split_auc(pos, negs, step, thresholds))
    return torch.tensor(out, dtype=torch.float64)


def auc_shuffled_oracle(
    pred,
    fixations,
    other_fixations,
    *,
    weighting="solid-angle",
    n_splits=100,
    step=0.1,
    thresholds="inclusive",
    seed=0,
) -> torch.Tensor:
    """Shuffled AUC: positives against other images' fixated pixels, a randperm per split."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for b, img in enumerate(_images(pred)):
        loc = _Locations(img, weighting)
        fixed, pool = _fixated(fixations, b), _fixated(other_fixations, b)
        m = min(len(fixed), len(pool))
        perms = [torch.randperm(len(pool), generator=gen).tolist() for _ in range(n_splits)]
        lo, hi = loc.lo_hi()
        if hi <= lo:
            out.append(0.5)
            continue
        negs = [[(loc.pixel(pool[j]) - lo) / (hi - lo) for j in perm[:m]] for perm in perms]
        pos = [(loc.pixel(p) - lo) / (hi - lo) for p in fixed]
        out.append(_split_auc(pos, negs, step, thresholds))
    return torch.tensor(out, dtype=torch.float64)


def binary_fixation_map_oracle(
    fixations, hw, *, placement="cell", normalized=False, counts=False
) -> torch.Tensor:
    """Fixations placed one at a time: a (B, 1, H, W) float64 map (1 or counts where hit).

    ``fixations``: a list of B (N_i, 2) tensors of (lon, lat) radians, or of (u, v) in [0, 1]
    with ``normalized=True``. ``"cell"``: the pixel whose cell holds the fixation;
    ``"salient360"``: the Salient360! tools' ``int(u W - 1)``, ``int(v H - 1)``, a -1 indexing
    the last column or row as Python lists do.
    """
    h, w = hw
    out = torch.zeros(len(fixations), 1, h, w, dtype=torch.float64)
    for b, fix in enumerate(fixations):
        grid = [[0.0] * w for _ in range(h)]
        for a, c in fix.tolist():
            if normalized:
                u, v = a, c
            else:
                u = ((a + math.pi) % (2 * math.pi)) / (2 * math.pi)
                v = 0.5 - c / math.pi
            if placement == "salient360":
                row, col = int(v * h - 1), int(u * w - 1)
            elif normalized:
                row, col = min(math.floor(v * h), h - 1), math.floor(u * w) % w
            else:
                col = math.floor((a / (2 * math.pi) + 0.5) * w) % w
                row = min(max(math.floor((0.5 - c / math.pi) * h), 0), h - 1)
            grid[row][col] = grid[row][col] + 1 if counts else 1.0
        out[b, 0] = torch.tensor(grid, dtype=torch.float64)
    return out


_ORACLES = {
    "auc_judd": auc_judd_oracle,
    "auc_borji": auc_borji_oracle,
    "auc_shuffled": auc_shuffled_oracle,
    "nss": nss_oracle,
    "cc": cc_oracle,
    "sim": sim_oracle,
    "kld": kld_oracle,
    "information_gain": information_gain_oracle,
}


def _power(weighting, times: int):
    kind, mode, n_points, power = _parse(weighting)
    if kind not in ("sin-rows", "solid-angle"):
        return weighting
    return type(weighting)(kind, mode, n_points, power * times)


def compute_metrics_oracle(
    pred,
    gt_map=None,
    fixations=None,
    *,
    preset="sphere",
    metrics=("nss", "cc"),
    baseline=None,
    other_fixations=None,
    gt_fixations=None,
) -> dict[str, torch.Tensor]:
    """The oracles under a whole convention (a preset name or a MetricConfig), metric by metric.

    Fixation lists are placed with :func:`binary_fixation_map_oracle` under the convention's
    ``fixation_placement``. With ``average_with_gt`` each metric of
    ``GT_AVERAGED_METRICS`` is the mean of its oracle on ``pred`` and on ``gt_map`` (scored on
    ``gt_fixations``, default ``fixations``); with ``in_place_weighting`` SIM is the mean of
    SIM under the weights and under their square, and KLD runs under their cube.
    """
    config = PRESETS[preset] if isinstance(preset, str) else preset
    if not isinstance(config, MetricConfig):
        raise TypeError(f"preset must be a name or a MetricConfig, got {type(preset).__name__}")
    hw = tuple(pred.shape[-2:])

    def as_map(fix):
        if fix is None or isinstance(fix, torch.Tensor):
            return fix
        return binary_fixation_map_oracle(fix, hw, placement=config.fixation_placement)

    fix, other = as_map(fixations), as_map(other_fixations)
    gt_fix = fix if gt_fixations is None else as_map(gt_fixations)
    out = {}
    for m in metrics:
        opts = config.options(m)
        oracle = _ORACLES[m]

        def run(maps, fixated, opts=opts, oracle=oracle, m=m):
            if m in ("cc", "sim", "kld"):
                return oracle(maps, gt_map, **opts)
            if m == "auc_shuffled":
                return oracle(maps, fixated, other, **opts)
            if m == "information_gain":
                return oracle(maps, fixated, baseline, **opts)
            return oracle(maps, fixated, **opts)

        if config.in_place_weighting and m == "kld":
            opts["weighting"] = _power(opts["weighting"], 3)
        value = run(pred, fix)
        if config.in_place_weighting and m == "sim":
            value = value + run(pred, fix, dict(opts, weighting=_power(opts["weighting"], 2)))
            value = value / 2
        if config.average_with_gt and m in GT_AVERAGED_METRICS:
            value = (value + run(gt_map, gt_fix)) / 2
        out[m] = value
    return out
