"""Saliency metrics on ERP maps: AUC-Judd, AUC-Borji, shuffled AUC, NSS, CC, SIM, KLD, IG.

One module on purpose (about 730 lines): the per-metric cores, the option checks and the chunked
driver ``evaluate_metrics`` are one mechanism, and the public functions at the end are its
documented entry points (half the lines are their docstrings); split, every file would import
the others' privates. The AUC family and the fixation/weighting rules already live apart
(``_auc.py``, ``_fixations.py``, ``_weights.py``).

Every metric takes predicted maps ``pred`` (B, 1, H, W) and ground truth (a density map or
fixations) and returns a (B,) tensor, one value per map, in pred's dtype. Each formula and each
switch is written out in ``docs/saliency-metrics.md``; the loop oracles in
:mod:`pano360.testing` (``*_oracle``) implement the same formulas one pixel at a time.

Convention: see :mod:`pano360.geometry.conventions`. Fixations are either a binary fixation map
(B, 1, H, W), where every pixel with a value > 0 is fixated (a pixel fixated several times counts
once, as in every reference tool), or a sequence of B tensors (N_i, 2) of (lon, lat) radians,
each fixation falling in the pixel whose cell contains it (column floor((lon / 2pi + 0.5) W)
mod W, row floor((0.5 - lat / pi) H), lat = -pi/2 in the last row), or with the ``"salient360"``
placement of :func:`evaluate_metrics` where the Salient360! tools put it (see
:func:`pano360.saliency._fixations.binary_fixation_map`). Maps are never resized: pred, the
ground truth and the fixation maps must have the same (H, W).

Weighting: every metric takes ``weighting`` (a :class:`Weighting` or a kind name), see
:mod:`pano360.saliency._weights`. On the ERP grid the locations a metric integrates over are the
pixels, weighed by the row weights in ``"measure"`` mode; with ``"sphere-sampled"`` they are the
sphere points. Values at fixations are always the pixel values of the fixated pixels.

Degenerate inputs never give a silent NaN. A NaN or infinite value anywhere, a map of the wrong
shape, negative values where a map is read as a distribution (SIM, KLD, IG and every ground
truth map), a ground-truth map that is zero everywhere, or an image without fixations raise a
typed error naming the image. A prediction that is constant (all-zero included) has a documented
value: AUC 0.5, NSS 0, CC 0; SIM, KLD and IG read it as the uniform map.

This module holds the eight public metrics (most of its length is their documented formulas),
their options and the batched driver; the maps and fields they read are in
:mod:`._metric_maps`, the AUC cores in :mod:`._auc`.
"""

from __future__ import annotations

import torch

from .._core import (
    ShapeError,
    ValueRangeError,
    check_choice,
    check_number,
    check_positive_int,
    check_seed,
)
from ._auc import _auc_borji_core, _auc_judd_core, _auc_shuffled_core
from ._fixations import FIXATION_PLACEMENTS
from ._metric_maps import (
    EPS,
    Fixations,
    _block_sum,
    _check_map,
    _check_nonnegative,
    _check_some,
    _Chunk,
    _Dist,
    _Field,
    _fixation_mask,
    _FixIndex,
    _Maps,
    _range,
    _scratch,
)
from ._weights import Weighting

__all__ = [
    "AUC_THRESHOLDS",
    "EPS",
    "JITTER_SCALES",
    "KL_DIRECTIONS",
    "KL_FORMS",
    "METRICS",
    "NSS_STDS",
    "auc_borji",
    "auc_judd",
    "auc_shuffled",
    "cc",
    "evaluate_metrics",
    "information_gain",
    "kld",
    "nss",
    "sim",
]

#: Every metric, in the order :func:`pano360.saliency.compute_metrics` reports them.
METRICS: tuple[str, ...] = (
    "auc_judd",
    "auc_borji",
    "auc_shuffled",
    "nss",
    "cc",
    "sim",
    "kld",
    "information_gain",
)
#: Standard deviations NSS can divide by.
NSS_STDS: tuple[str, ...] = ("population", "sample")
#: KL directions: ``"gt||pred"`` is KL(ground truth || prediction), the benchmarks' choice.
KL_DIRECTIONS: tuple[str, ...] = ("gt||pred", "pred||gt")
#: Where eps enters the KL sum (see :func:`kld`).
KL_FORMS: tuple[str, ...] = ("mit", "ratio")
#: What AUC-Judd's jitter amplitude is relative to.
JITTER_SCALES: tuple[str, ...] = ("raw", "range")
#: Which thresholds 0, step, 2 step, ... AUC-Borji and the shuffled AUC use, up to the largest
#: value of a split: ``"inclusive"`` (MATLAB's ``0:step:max``, the MIT code) or ``"exclusive"``
#: (NumPy's ``np.r_[0:max:step]``, the Salient360! tools: without max itself).
AUC_THRESHOLDS: tuple[str, ...] = ("inclusive", "exclusive")

# Metrics that read maps as distributions (their inputs must be non-negative).
_DISTRIBUTIONS = ("sim", "kld", "information_gain")
_NEEDS = {
    "auc_judd": ("fixations",),
    "auc_borji": ("fixations",),
    "auc_shuffled": ("fixations", "other_fixations"),
    "nss": ("fixations",),
    "cc": ("gt_map",),
    "sim": ("gt_map",),
    "kld": ("gt_map",),
    "information_gain": ("fixations", "baseline"),
}
# Elements of one (B, H W) chunk: bounds the temporaries of a large batch (8 MB in float32).
_CHUNK_ELEMENTS = 1 << 21


# --------------------------------------------------------------------------- cores


def _nss_core(ch: _Chunk, weighting: Weighting, std: str) -> torch.Tensor:
    f = ch.field("pred", weighting)
    fix = ch.fix
    constant = _range(f.maps)[2]
    mu = f.mean()
    if std == "population":
        var = f.squares() / f.total
    else:
        var = f.squares() / (f.total - f.square_total / f.total)
    flat = constant | (var <= 0).detach()
    sigma = torch.where(flat, torch.ones_like(var), var).sqrt()
    z = (f.pix[fix.batch, fix.pixel].double() - mu[fix.batch]) / sigma[fix.batch]
    per = torch.zeros_like(mu).index_add(0, fix.batch, z) / fix.count.double()
    return torch.where(flat, torch.zeros_like(per), per).to(f.pix.dtype)


def _cc_core(ch: _Chunk, weighting: Weighting) -> torch.Tensor:
    fp, fg = ch.field("pred", weighting), ch.field("gt", weighting)
    mp, mg = fp.mean().to(fp.loc.dtype)[:, None], fg.mean().to(fg.loc.dtype)[:, None]
    cov = vp = vg = torch.zeros_like(fp.mean())
    for sl, rw, rows in fp.blocks():
        dp, dg = fp.loc[:, sl] - mp, fg.loc[:, sl] - mg
        cov = cov + _block_sum(dp * dg, rw, rows)
        vp = vp + _block_sum(dp * dp, rw, rows)
        vg = vg + _block_sum(dg * dg, rw, rows)
    flat = _range(fp.maps)[2] | _range(fg.maps)[2] | (vp <= 0).detach() | (vg <= 0).detach()
    denom = torch.where(flat, torch.ones_like(vp), vp * vg).sqrt()
    return torch.where(flat, torch.zeros_like(cov), cov / denom).to(fp.pix.dtype)


def _sim_core(ch: _Chunk, weighting: Weighting, minmax: bool) -> torch.Tensor:
    f = ch.field("pred", weighting)
    p, q = _Dist(f, minmax), _Dist(ch.field("gt", weighting), minmax)
    out = torch.zeros_like(f.mean())
    for sl, rw, rows in f.blocks():
        a, b = p.block(sl, rw, rows), q.block(sl, rw, rows)
        both = torch.minimum(a, b, out=a) if _scratch(a) else torch.minimum(a, b)
        out = out + _block_sum(both, None, rows)
    return out.to(f.pix.dtype)


def _kl(q: torch.Tensor, p: torch.Tensor, form: str, eps: float, scratch: bool) -> torch.Tensor:
    """Terms q log(eps + q / (p + eps)) ("mit") or q log((q + eps) / (p + eps)) ("ratio")."""
    if not scratch:
        if form == "mit":
            return q * torch.log(eps + q / (p + eps))
        return q * torch.log((q + eps) / (p + eps))
    # p is a temporary: overwrite it step by step instead of allocating more.
    p = p.add_(eps)
    if form == "mit":
        torch.div(q, p, out=p)
        p.add_(eps)
    else:
        torch.div(q + eps, p, out=p)
    return p.log_().mul_(q)


def _kld_core(
    ch: _Chunk, weighting: Weighting, direction: str, symmetric: bool, form: str, eps: float
) -> torch.Tensor:
    f = ch.field("pred", weighting)
    pd, qd = _Dist(f, False), _Dist(ch.field("gt", weighting), False)
    out = torch.zeros_like(f.mean())
    for sl, rw, rows in f.blocks():
        p, q = pd.block(sl, rw, rows), qd.block(sl, rw, rows)
        scratch = _scratch(p, q)
        if symmetric:
            terms = (_kl(q, p, form, eps, False) + _kl(p, q, form, eps, scratch)) / 2
        elif direction == "gt||pred":
            terms = _kl(q, p, form, eps, scratch)
        else:
            terms = _kl(p, q, form, eps, scratch)
        out = out + _block_sum(terms, None, rows)
    return out.to(f.pix.dtype)


def _density_at(f: _Field, minmax: bool, batch: torch.Tensor, pixel: torch.Tensor):
    """(K,) float64 probability of a location of mean weight holding each pixel's value."""
    d = _Dist(f, minmax)
    v = f.pix[batch, pixel].double()
    if d.offset is not None:
        v = v - d.offset[batch, 0].double()
    p = v * d.scale[batch] * (f.total / f.size)
    return torch.where(d.uniform[batch], torch.full_like(p, 1 / f.size), p)


def _ig_core(ch: _Chunk, weighting: Weighting, minmax: bool, eps: float) -> torch.Tensor:
    fix = ch.fix
    fp, fb = ch.field("pred", weighting), ch.field("baseline", weighting)
    p = _density_at(fp, minmax, fix.batch, fix.pixel)
    bb = fix.batch if fb.pix.shape[0] > 1 else torch.zeros_like(fix.batch)
    b = _density_at(fb, minmax, bb, fix.pixel)
    gain = torch.log2(eps + p) - torch.log2(eps + b)
    out = torch.zeros(fp.pix.shape[0], dtype=torch.float64, device=p.device)
    return (out.index_add(0, fix.batch, gain) / fix.count.double()).to(fp.pix.dtype)


_CORES = {
    "auc_judd": _auc_judd_core,
    "auc_borji": _auc_borji_core,
    "auc_shuffled": _auc_shuffled_core,
    "nss": _nss_core,
    "cc": _cc_core,
    "sim": _sim_core,
    "kld": _kld_core,
    "information_gain": _ig_core,
}
_RANDOM = ("auc_judd", "auc_borji", "auc_shuffled")


# --------------------------------------------------------------------------- options


def _check_options(metric: str, options: dict) -> dict:
    """Validated keyword options of one metric core (the seed stays for the generator)."""
    o = dict(options)
    o["weighting"] = Weighting.parse(o["weighting"])
    if "std" in o:
        check_choice(o["std"], "std", NSS_STDS)
    if "direction" in o:
        check_choice(o["direction"], "direction", KL_DIRECTIONS)
        check_choice(o["form"], "form", KL_FORMS)
    if "eps" in o:
        o["eps"] = check_number(o["eps"], "eps", lo=0, lo_open=True)
    if "jitter_scale" in o:
        check_choice(o["jitter_scale"], "jitter_scale", JITTER_SCALES)
        o["jitter_amplitude"] = check_number(
            o["jitter_amplitude"], "jitter_amplitude", lo=0, lo_open=True
        )
    if "n_splits" in o:
        o["n_splits"] = check_positive_int(o["n_splits"], "n_splits")
        step = check_number(o["step"], "step", lo=0, lo_open=True)
        if step > 1:
            raise ValueRangeError(f"step must be in (0, 1], got {step!r}")
        check_choice(o["thresholds"], "thresholds", AUC_THRESHOLDS)
    if "seed" in o:
        check_seed(o["seed"])
    return o


# --------------------------------------------------------------------------- driver


def evaluate_metrics(
    pred: torch.Tensor,
    requests: dict[str, dict],
    *,
    gt_map: torch.Tensor | None = None,
    fixations: Fixations | None = None,
    baseline: torch.Tensor | None = None,
    other_fixations: Fixations | None = None,
    placement: str = "cell",
) -> dict[str, torch.Tensor]:
    """Run several metrics on one batch, sharing validated inputs and per-map statistics.

    Args:
        pred: (B, 1, H, W) predicted saliency maps.
        requests: metric name -> its keyword options (those of the public function of that
            name, all given explicitly).
        gt_map, fixations, baseline, other_fixations: as in the metric functions.
        placement: the pixel of each fixation given as (lon, lat), see
            :func:`pano360.saliency.binary_fixation_map` (``"cell"`` or ``"salient360"``).

    Returns:
        metric name -> (B,) tensor in pred's dtype.
    """
    for name in requests:
        check_choice(name, "metric", METRICS)
    check_choice(placement, "placement", FIXATION_PLACEMENTS)
    opts = {name: _check_options(name, o) for name, o in requests.items()}
    given = {
        "gt_map": gt_map is not None,
        "fixations": fixations is not None,
        "baseline": baseline is not None,
        "other_fixations": other_fixations is not None,
    }
    for name in opts:
        missing = [need for need in _NEEDS[name] if not given[need]]
        if missing:
            raise ValueError(f"{name} needs {' and '.join(missing)}, which were not given")
    pred, lo, hi = _check_map(pred, "pred")
    if any(n in _DISTRIBUTIONS for n in opts):
        _check_nonnegative(lo, "pred")
    shape = pred.shape
    b, _, h, w = shape
    if any(o["weighting"].kind != "none" for o in opts.values()) and w != 2 * h:
        raise ShapeError(f"weighted metrics need ERP maps with W == 2H, got (H, W) = {(h, w)}")
    maps = {"pred": (pred, lo, hi)}
    if any(n in ("cc", "sim", "kld") for n in opts):
        gt_map, glo, ghi = _check_map(gt_map, "gt_map")
        if gt_map.shape != shape:
            raise ShapeError(
                f"gt_map must have pred's shape {tuple(shape)}, got {tuple(gt_map.shape)} (maps "
                "are never resized)"
            )
        _check_nonnegative(glo, "gt_map")
        zero = ghi <= 0
        if bool(zero.any()):
            k = int(zero.nonzero()[0, 0])
            raise ValueRangeError(f"gt_map of image {k} is zero everywhere: no ground truth")
        maps["gt"] = (gt_map.to(pred.dtype), glo.to(pred.dtype), ghi.to(pred.dtype))
    fix = other = None
    if any("fixations" in _NEEDS[n] for n in opts):
        fix = _FixIndex.of(_fixation_mask(fixations, "fixations", shape, pred.device, placement))
        _check_some(fix, "fixations", next(n for n in opts if "fixations" in _NEEDS[n]))
    if "auc_shuffled" in opts:
        other = _FixIndex.of(
            _fixation_mask(other_fixations, "other_fixations", shape, pred.device, placement)
        )
        _check_some(other, "other_fixations", "auc_shuffled")
    if "information_gain" in opts:
        baseline, blo, bhi = _check_map(baseline, "baseline")
        if baseline.shape[0] not in (1, b) or baseline.shape[1:] != shape[1:]:
            raise ShapeError(
                f"baseline must be (1, 1, H, W) or (B, 1, H, W) with pred's (B, H, W) = "
                f"{(b, h, w)}, got {tuple(baseline.shape)}"
            )
        _check_nonnegative(blo, "baseline")
        maps["baseline"] = (baseline.to(pred.dtype), blo.to(pred.dtype), bhi.to(pred.dtype))
    gens = {}
    for name in opts:
        if name in _RANDOM:
            seed = opts[name].pop("seed")
            gens[name] = torch.Generator(device=pred.device).manual_seed(seed)
    results: dict[str, list[torch.Tensor]] = {name: [] for name in opts}
    # Chunks of about one 1024 x 2048 map keep every temporary small enough to be reused.
    size = max(1, _CHUNK_ELEMENTS // (h * w))
    for start in range(0, b, size):
        sl = slice(start, min(start + size, b))

        def part(t, sl=sl):
            return t[sl] if t.shape[0] == b else t

        ch = _Chunk(
            {k: _Maps(*(part(t) for t in v)) for k, v in maps.items()},
            fix.images(sl) if fix is not None else None,
            other.images(sl) if other is not None else None,
        )
        for name, o in opts.items():
            if name in _RANDOM:
                with torch.no_grad():
                    results[name].append(_CORES[name](ch, **o, gen=gens[name]))
            else:
                results[name].append(_CORES[name](ch, **o))
    return {name: torch.cat(parts).to(pred.dtype) for name, parts in results.items()}


# --------------------------------------------------------------------------- public metrics

_SOLID = Weighting("solid-angle")


def auc_judd(
    pred: torch.Tensor,
    fixations: Fixations,
    *,
    weighting: str | Weighting = _SOLID,
    jitter: bool = True,
    jitter_amplitude: float = 1e-7,
    jitter_scale: str = "range",
    seed: int = 0,
) -> torch.Tensor:
    """AUC-Judd: area under the ROC curve with the fixated values as thresholds.

    Args:
        pred: (B, 1, H, W) predicted saliency (any real values).
        fixations: (B, 1, H, W) fixation map (> 0 is fixated) or B tensors (N_i, 2) (lon, lat).
        weighting: how negatives (non-fixated locations) are counted; see the module docstring.
        jitter: add uniform noise in [0, jitter_amplitude) (times the map's range with
            ``jitter_scale="range"``, as is with ``"raw"``) to break ties, as the MIT code does.
        seed: seed of the jitter's generator.

    Returns:
        (B,) AUC in [0, 1]; 0.5 for a constant map (after jitter).

    Raises:
        ShapeError: a map or the fixations have the wrong shape or size.
        ValueRangeError: NaN/inf values, an image without fixations, fixations covering every
            location, or a bad option value.
        ValueError: unknown ``jitter_scale`` or weighting.

    Convention:
        Thresholds t_1 >= ... >= t_N are the values at the N fixated pixels (ties in row-major
        pixel order). With location weights w (1 for ``"none"``) and fixated-pixel weights
        w_(i) in that order: tp_i = i / N and fp_i = (sum of w over locations with value >=
        t_i - sum_{j <= i} w_(j)) / (sum of w - sum of w over fixated pixels): exactly the MIT
        ``AUC_Judd`` (with w = 1). With ``"sphere-sampled"`` the negatives are the sphere
        points outside fixated pixels and fp_i is the share of them at or above t_i. The area
        is the trapezoid rule through (0, 0), the N points and (1, 1). The noise of image b is
        ``torch.rand((1, H, W), generator=g)`` in pred's dtype, drawn in batch order from one
        ``torch.Generator(device=pred.device).manual_seed(seed)``; it is added after the
        ``"multiply"`` weighting.

    Example:
        >>> pred = torch.arange(8.0).reshape(1, 1, 2, 4)
        >>> fix = torch.zeros(1, 1, 2, 4); fix[0, 0, 1, 3] = 1
        >>> auc_judd(pred, fix, weighting="none", jitter=False).item()
        1.0
    """
    opts = dict(
        weighting=weighting,
        jitter=bool(jitter),
        jitter_amplitude=jitter_amplitude,
        jitter_scale=jitter_scale,
        seed=seed,
    )
    return evaluate_metrics(pred, {"auc_judd": opts}, fixations=fixations)["auc_judd"]


def auc_borji(
    pred: torch.Tensor,
    fixations: Fixations,
    *,
    weighting: str | Weighting = _SOLID,
    n_splits: int = 100,
    step: float = 0.1,
    thresholds: str = "inclusive",
    seed: int = 0,
) -> torch.Tensor:
    """AUC-Borji: fixated values against as many random locations, averaged over splits.

    Args:
        pred: (B, 1, H, W) predicted saliency.
        fixations: fixation map or lists of (lon, lat), see :func:`auc_judd`.
        weighting: where the random negatives are drawn: uniformly over the pixels
            (``"none"``, the MIT code), in proportion to the row weights (``"measure"``;
            ``"solid-angle"`` is uniform on the sphere), or uniformly over the sphere points.
        n_splits: number of random draws of negatives (MIT: 100).
        step: threshold step in (0, 1] on the min-max normalised map (MIT: 0.1).
        thresholds: ``"inclusive"`` (MATLAB's ``0:step:max``, the MIT code) or
            ``"exclusive"`` (NumPy's ``np.r_[0:max:step]``, the Salient360! tools, which leaves
            out the last threshold when max is a multiple of step, e.g. whenever a split holds
            the map's maximum, 1 after normalisation).
        seed: seed of the negatives' generator.

    Returns:
        (B,) mean AUC over the splits; 0.5 for a constant map.

    Raises:
        ShapeError, ValueRangeError, ValueError: as :func:`auc_judd`.

    Convention:
        The map is min-max normalised to [0, 1]. With N fixated pixels, each split draws N
        locations with replacement from ``u = torch.rand(n_splits, N, dtype=float64,
        generator=g)``, per image in batch order from one ``torch.Generator(device=pred.device)
        .manual_seed(seed)``: with equal weights location ``floor(u L)``; with row weights the
        row r is the first whose cumulative row total exceeds t = u * (sum of all weights), and
        the column ``floor((t - total of the rows above r) / w_r)``. Thresholds are k step for
        k = 0, 1, ... up to the largest value m of the split: k step <= m (``"inclusive"``) or
        k < ceil(m / step), computed in float64 (``"exclusive"``, the length of NumPy's
        ``arange(0, m, step)``); tp and fp are the shares of positives and negatives >= the
        threshold; trapezoid area through (0, 0), the thresholds from high to low, and (1, 1).

    Example:
        >>> pred = torch.arange(8.0).reshape(1, 1, 2, 4)
        >>> fix = torch.zeros(1, 1, 2, 4); fix[0, 0, 1, 3] = 1
        >>> round(auc_borji(pred, fix, weighting="none").item(), 4)
        0.96
    """
    opts = dict(weighting=weighting, n_splits=n_splits, step=step, thresholds=thresholds, seed=seed)
    return evaluate_metrics(pred, {"auc_borji": opts}, fixations=fixations)["auc_borji"]


def auc_shuffled(
    pred: torch.Tensor,
    fixations: Fixations,
    other_fixations: Fixations,
    *,
    weighting: str | Weighting = _SOLID,
    n_splits: int = 100,
    step: float = 0.1,
    thresholds: str = "inclusive",
    seed: int = 0,
) -> torch.Tensor:
    """Shuffled AUC: fixated values against fixated locations of other images.

    Args:
        pred: (B, 1, H, W) predicted saliency.
        fixations: the images' own fixations (map or lists, see :func:`auc_judd`).
        other_fixations: per image, the fixations of other images (the MIT code takes the union
            of 10 other images' fixation maps), as a map or lists.
        weighting: only ``"multiply"`` changes the result (the map is multiplied first); both
            positives and negatives are fixations, so measure weights and sphere points do not
            enter.
        n_splits, step, thresholds, seed: as :func:`auc_borji`.

    Returns:
        (B,) mean AUC over the splits; 0.5 for a constant map.

    Raises:
        ShapeError, ValueRangeError, ValueError: as :func:`auc_judd`; ValueRangeError also when
            an image has no other fixations.

    Convention:
        As :func:`auc_borji`, but each split takes m = min(N, number of other fixated pixels)
        negatives without replacement, as MATLAB's ``randperm`` does: split s of image b takes
        the other fixated pixels (row-major order) at the first m entries of
        ``torch.randperm(count, generator=g)``, drawn for the splits in order, then the images
        in batch order; fp is divided by m.

    Example:
        >>> pred = torch.arange(8.0).reshape(1, 1, 2, 4)
        >>> fix = torch.zeros(1, 1, 2, 4); fix[0, 0, 1, 3] = 1
        >>> other = torch.zeros(1, 1, 2, 4); other[0, 0, 0, :2] = 1
        >>> auc_shuffled(pred, fix, other, weighting="none").item()
        1.0
    """
    opts = dict(weighting=weighting, n_splits=n_splits, step=step, thresholds=thresholds, seed=seed)
    return evaluate_metrics(
        pred, {"auc_shuffled": opts}, fixations=fixations, other_fixations=other_fixations
    )["auc_shuffled"]


def nss(
    pred: torch.Tensor,
    fixations: Fixations,
    *,
    weighting: str | Weighting = _SOLID,
    std: str = "population",
) -> torch.Tensor:
    """Normalized scanpath saliency: mean of the standardised map at the fixated pixels.

    Args:
        pred: (B, 1, H, W) predicted saliency.
        fixations: fixation map or lists of (lon, lat), see :func:`auc_judd`.
        weighting: the measure of the mean and standard deviation.
        std: ``"population"`` (divide by the total weight; numpy's ``np.std``) or ``"sample"``
            (MATLAB's ``std``, N - 1; with weights, V1 - V2 / V1 for V1 = sum w, V2 = sum w^2).

    Returns:
        (B,) NSS; 0 for a constant map. Differentiable with respect to pred.

    Raises:
        ShapeError, ValueRangeError, ValueError: as :func:`auc_judd`.

    Convention:
        mu = sum w p / sum w, sigma^2 = sum w (p - mu)^2 / D; NSS = mean over fixated pixels f
        of (p_f - mu) / sigma.

    Example:
        >>> pred = torch.tensor([[[[0.0, 0.0], [0.0, 4.0]]]])
        >>> fix = torch.tensor([[[[0.0, 0.0], [0.0, 1.0]]]])
        >>> nss(pred, fix, weighting="none", std="sample").item()
        1.5
    """
    opts = dict(weighting=weighting, std=std)
    return evaluate_metrics(pred, {"nss": opts}, fixations=fixations)["nss"]


def cc(
    pred: torch.Tensor, gt_map: torch.Tensor, *, weighting: str | Weighting = _SOLID
) -> torch.Tensor:
    """Pearson's linear correlation coefficient between predicted and ground-truth maps.

    Args:
        pred: (B, 1, H, W) predicted saliency.
        gt_map: (B, 1, H, W) ground-truth density (non-negative, not all zero).
        weighting: with row weights in ``"measure"`` mode this is the weighted Pearson
            correlation (statsmodels ``DescrStatsW.corrcoef``, the Salient360! toolbox).

    Returns:
        (B,) CC in [-1, 1]; 0 when either map is constant. Differentiable with respect to pred.

    Raises:
        ShapeError: wrong shapes. ValueRangeError: NaN/inf, negative or all-zero ground truth.
        ValueError: unknown weighting.

    Convention:
        cov_w(p, g) / sqrt(var_w(p) var_w(g)) with weighted means; the normalisation of the
        variances cancels.

    Example:
        >>> g = torch.rand(2, 1, 8, 16, dtype=torch.float64)
        >>> [round(v, 6) for v in cc(3 * g + 1, g).tolist()]
        [1.0, 1.0]
    """
    return evaluate_metrics(pred, {"cc": dict(weighting=weighting)}, gt_map=gt_map)["cc"]


def sim(
    pred: torch.Tensor,
    gt_map: torch.Tensor,
    *,
    weighting: str | Weighting = _SOLID,
    minmax: bool = True,
) -> torch.Tensor:
    """Similarity (histogram intersection) of the two maps read as distributions.

    Args:
        pred: (B, 1, H, W) predicted saliency, non-negative.
        gt_map: (B, 1, H, W) ground-truth density, non-negative, not all zero.
        weighting: the measure of the distributions.
        minmax: min-max normalise each map before the sum normalisation (the MIT code, so that
            a constant offset earns nothing).

    Returns:
        (B,) SIM in [0, 1]. A constant pred (or one without mass) is read as uniform.
        Differentiable with respect to pred.

    Raises:
        ShapeError, ValueRangeError, ValueError: as :func:`cc`; also negative pred values.

    Convention:
        P_j = w_j p~_j / sum w p~ with p~ the (min-max normalised) map; SIM = sum_j min(P_j, Q_j).

    Example:
        >>> g = torch.rand(1, 1, 8, 16)
        >>> round(sim(g, g).item(), 5)
        1.0
    """
    opts = dict(weighting=weighting, minmax=bool(minmax))
    return evaluate_metrics(pred, {"sim": opts}, gt_map=gt_map)["sim"]


def kld(
    pred: torch.Tensor,
    gt_map: torch.Tensor,
    *,
    weighting: str | Weighting = _SOLID,
    direction: str = "gt||pred",
    symmetric: bool = False,
    form: str = "mit",
    eps: float = EPS,
) -> torch.Tensor:
    """Kullback-Leibler divergence between the two maps read as distributions.

    Args:
        pred: (B, 1, H, W) predicted saliency, non-negative.
        gt_map: (B, 1, H, W) ground-truth density, non-negative, not all zero.
        weighting: the measure of the distributions (for KL, ``"measure"`` and ``"multiply"``
            give the same value).
        direction: ``"gt||pred"`` (the benchmarks') or ``"pred||gt"``.
        symmetric: the mean of both directions (the Salient360! 2018 scoring).
        form: where eps enters, with Q the first and P the second distribution:
            ``"mit"``: sum_j Q_j log(eps + Q_j / (P_j + eps)) (MIT ``KLdiv``);
            ``"ratio"``: sum over Q_j > 0 of Q_j log((Q_j + eps) / (P_j + eps)) (Salient360!).
        eps: the regulariser (default MATLAB's eps).

    Returns:
        (B,) KL divergence (>= 0 up to eps). A pred without mass is read as uniform.
        Differentiable with respect to pred.

    Raises:
        ShapeError, ValueRangeError, ValueError: as :func:`sim`.

    Convention:
        P_j = w_j p_j / sum w p (no min-max), likewise Q from gt_map.

    Example:
        >>> g = torch.rand(1, 1, 8, 16)
        >>> abs(kld(g, g).item()) < 1e-6
        True
    """
    opts = dict(weighting=weighting, direction=direction, symmetric=bool(symmetric), form=form)
    opts["eps"] = eps
    return evaluate_metrics(pred, {"kld": opts}, gt_map=gt_map)["kld"]


def information_gain(
    pred: torch.Tensor,
    fixations: Fixations,
    baseline: torch.Tensor,
    *,
    weighting: str | Weighting = _SOLID,
    minmax: bool = True,
    eps: float = EPS,
) -> torch.Tensor:
    """Information gain of pred over a baseline map at the fixated pixels, in bits.

    Args:
        pred: (B, 1, H, W) predicted saliency, non-negative.
        fixations: fixation map or lists of (lon, lat), see :func:`auc_judd`.
        baseline: (1, 1, H, W) or (B, 1, H, W) baseline map (e.g. a centre or equator prior),
            non-negative.
        weighting: the measure of the distributions.
        minmax: min-max normalise both maps first (MIT ``InfoGain``; the Salient360! toolbox
            does not).
        eps: the regulariser.

    Returns:
        (B,) mean of log2(eps + P_f) - log2(eps + B_f) over fixated pixels f. Differentiable
        with respect to pred.

    Raises:
        ShapeError, ValueRangeError, ValueError: as :func:`auc_judd` and :func:`sim`.

    Convention:
        P_f = p~_f / sum_j (w_j / mean w) p~_j: the probability of a location of mean weight
        holding the fixated pixel's value (for ``"none"``, p~_f / sum p~, the MIT formula);
        likewise B from the baseline.

    Example:
        >>> fix = torch.zeros(1, 1, 8, 16); fix[0, 0, 4, 8] = 1
        >>> base = torch.ones(1, 1, 8, 16)
        >>> information_gain(base, fix, base).item()
        0.0
    """
    opts = dict(weighting=weighting, minmax=bool(minmax), eps=eps)
    return evaluate_metrics(
        pred, {"information_gain": opts}, fixations=fixations, baseline=baseline
    )["information_gain"]
