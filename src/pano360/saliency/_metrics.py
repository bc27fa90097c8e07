"""Saliency metrics on ERP maps: AUC-Judd, AUC-Borji, shuffled AUC, NSS, CC, SIM, KLD, IG.

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
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .._core import ShapeError, ValueRangeError, check_choice, check_positive_int
from ._fixations import FIXATION_PLACEMENTS, binary_fixation_map
from ._weights import Weighting, sample_on_sphere

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

#: The MIT benchmark's eps (MATLAB ``eps``, float64 machine epsilon 2^-52), also the
#: Salient360! tools' ``np.finfo(float).eps``.
EPS: float = 2.220446049250313e-16
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
# Locations per block of the elementwise metrics (1 MB in float32).
_BLOCK = 1 << 18

Fixations = torch.Tensor | Sequence[torch.Tensor]


# --------------------------------------------------------------------------- inputs


def _check_map(t: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate a (B, 1, H, W) map; return it (float32 or float64) and its per-map min and max.

    The min and max (which propagate NaN) are the finiteness check and are reused by metrics.
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.ndim != 4 or t.shape[1] != 1 or min(t.shape[-2:]) < 1 or t.shape[0] < 1:
        raise ShapeError(f"{name} must be (B, 1, H, W) saliency maps, got {tuple(t.shape)}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {t.dtype}")
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    flat = t.detach().reshape(t.shape[0], -1)
    lo, hi = flat.amin(dim=1), flat.amax(dim=1)
    bad = ~(torch.isfinite(lo) & torch.isfinite(hi))
    if bool(bad.any()):
        b = int(bad.nonzero()[0, 0])
        raise ValueRangeError(f"{name} of image {b} has NaN or infinite values")
    return t, lo, hi


def _check_nonnegative(lo: torch.Tensor, name: str) -> None:
    neg = lo < 0
    if bool(neg.any()):
        b = int(neg.nonzero()[0, 0])
        raise ValueRangeError(
            f"{name} of image {b} has negative values; saliency maps read as distributions "
            "must be non-negative"
        )


def _fixation_mask(
    fix: Fixations, name: str, shape: torch.Size, device, placement: str = "cell"
) -> torch.Tensor:
    """(B, H W) bool mask of fixated pixels from a fixation map or from lists of (lon, lat)."""
    b, _, h, w = shape
    if isinstance(fix, torch.Tensor):
        if fix.shape != shape:
            raise ShapeError(
                f"{name} must be a (B, 1, H, W) fixation map of pred's shape {tuple(shape)}, got "
                f"{tuple(fix.shape)} (maps are never resized)"
            )
        flat = fix.detach().reshape(b, h * w).to(device)
        if flat.dtype == torch.bool:
            return flat
        if flat.is_floating_point() and bool(torch.isnan(flat.amax(dim=1)).any()):
            raise ValueRangeError(f"{name} has NaN values")
        return flat > 0
    if isinstance(fix, Sequence) and not isinstance(fix, (str, bytes)):
        if len(fix) != b:
            raise ShapeError(f"{name} must hold one (N, 2) tensor per map ({b}), got {len(fix)}")
        if w != 2 * h:
            raise ShapeError(f"fixation lists need W == 2H maps, got (H, W) = {(h, w)}")
        maps = binary_fixation_map(
            list(fix), (h, w), placement=placement, dtype=torch.float32, device=device
        )
        return maps.reshape(b, h * w) > 0
    raise TypeError(
        f"{name} must be a (B, 1, H, W) tensor or a sequence of (N, 2) tensors, got "
        f"{type(fix).__name__}"
    )


@dataclass
class _FixIndex:
    """Fixated pixels of a batch: image and flat pixel of each, in image then pixel order."""

    mask: torch.Tensor  # (B, M) bool
    batch: torch.Tensor  # (K,) long
    pixel: torch.Tensor  # (K,) long
    count: torch.Tensor  # (B,) long
    start: torch.Tensor  # (B + 1,) long: image b's fixations are [start[b], start[b + 1])

    @classmethod
    def of(cls, mask: torch.Tensor) -> _FixIndex:
        if mask.device.type == "cpu":  # NumPy's flatnonzero is much faster than torch's nonzero
            rows = [torch.from_numpy(np.flatnonzero(m)) for m in mask.numpy()]
            pixel = torch.cat(rows)
            count = torch.tensor([r.shape[0] for r in rows], dtype=torch.long)
            batch = torch.repeat_interleave(torch.arange(mask.shape[0]), count)
        else:
            batch, pixel = mask.nonzero().unbind(1)
            count = torch.bincount(batch, minlength=mask.shape[0])
        start = torch.cat((count.new_zeros(1), torch.cumsum(count, 0)))
        return cls(mask, batch, pixel, count, start)

    def of_image(self, b: int) -> torch.Tensor:
        """Fixated pixels of image b (row-major order)."""
        return self.pixel[int(self.start[b]) : int(self.start[b + 1])]

    def images(self, sl: slice) -> _FixIndex:
        """The fixations of images sl.start to sl.stop - 1, renumbered from 0."""
        a, b = int(self.start[sl.start]), int(self.start[sl.stop])
        start = self.start[sl.start : sl.stop + 1] - a
        return _FixIndex(
            self.mask[sl], self.batch[a:b] - sl.start, self.pixel[a:b], self.count[sl], start
        )


def _check_some(index: _FixIndex, name: str, metric: str) -> None:
    empty = index.count == 0
    if bool(empty.any()):
        b = int(empty.nonzero()[0, 0])
        raise ValueRangeError(f"{name} of image {b} has no fixation; {metric} needs at least one")


def _scratch(*tensors: torch.Tensor) -> bool:
    """True when temporaries derived from these tensors may be overwritten (no autograd)."""
    return not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))


# --------------------------------------------------------------------------- maps and fields


class _Maps:
    """A batch of maps as metrics read them: (B, M) pixel values and cached statistics."""

    def __init__(self, maps: torch.Tensor, lo=None, hi=None) -> None:
        b, _, h, w = maps.shape
        self.maps, self.h, self.w = maps, h, w
        self.pix = maps.reshape(b, h * w)
        self._lo, self._hi = lo, hi
        self._rows: torch.Tensor | None = None
        self._sphere: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def lohi(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-map min and max over the pixels (differentiable)."""
        if self._lo is None or (self.pix.requires_grad and not self._lo.requires_grad):
            self._lo, self._hi = self.pix.amin(dim=1), self.pix.amax(dim=1)
        return self._lo, self._hi

    def rows(self) -> torch.Tensor:
        """(B, H) float64 sums of each row."""
        if self._rows is None:
            self._rows = self.pix.reshape(-1, self.h, self.w).sum(dim=-1).double()
        return self._rows

    def sphere(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        if n not in self._sphere:
            self._sphere[n] = sample_on_sphere(self.maps, n)
        return self._sphere[n]


class _Field:
    """One batch of maps under a weighting: the locations a metric integrates over.

    On the grid the locations are the pixels (weighed by the row weights in measure mode);
    with sphere sampling they are the sphere points, all of weight 1.
    """

    def __init__(self, maps: _Maps, weighting: Weighting) -> None:
        self.maps, self.pix = maps, maps.pix
        self.loc_pixel: torch.Tensor | None = None
        self.row_weight: torch.Tensor | None = None  # (rows,) float64
        if weighting.kind == "sphere-sampled":
            self.loc, self.loc_pixel = maps.sphere(weighting.n_points)
            self.rows, self.cols = 1, weighting.n_points
        else:
            self.loc, self.rows, self.cols = maps.pix, maps.h, maps.w
            if weighting.measures:
                self.row_weight = weighting.weights(maps.h, device=maps.pix.device)
        size = self.rows * self.cols
        if self.row_weight is None:
            self.total = self.square_total = float(size)
        else:
            self.total = float(self.row_weight.sum()) * self.cols
            self.square_total = float(self.row_weight.square().sum()) * self.cols
        self._mean: torch.Tensor | None = None
        self._squares: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return self.rows * self.cols

    def loc_sum(self) -> torch.Tensor:
        """(B,) float64 weighted sum of the location values (cached row sums on the grid)."""
        if self.loc_pixel is not None:
            return self.loc.sum(dim=-1).double()
        rows = self.maps.rows()
        return rows.sum(dim=-1) if self.row_weight is None else rows @ self.row_weight

    def mean(self) -> torch.Tensor:
        if self._mean is None:
            self._mean = self.loc_sum() / self.total
        return self._mean

    def blocks(self):
        """(location slice, row weights of the block or None, rows in the block) of consecutive
        blocks of about ``_BLOCK`` locations: small temporaries stay in cache and are reused,
        where whole-map temporaries cost fresh pages every time."""
        if self.rows == 1:
            for a in range(0, self.cols, _BLOCK):
                yield slice(a, min(a + _BLOCK, self.cols)), None, 1
            return
        step = max(1, _BLOCK // self.cols)
        for r in range(0, self.rows, step):
            r1 = min(r + step, self.rows)
            rw = None if self.row_weight is None else self.row_weight[r:r1]
            yield slice(r * self.cols, r1 * self.cols), rw, r1 - r

    def squares(self) -> torch.Tensor:
        """(B,) float64 weighted sum of squared deviations from the mean."""
        if self._squares is None:
            mu = self.mean().to(self.loc.dtype)[:, None]
            total = torch.zeros_like(self.mean())
            for sl, rw, rows in self.blocks():
                d = self.loc[:, sl] - mu
                total = total + _block_sum(d * d, rw, rows)
            self._squares = total
        return self._squares


def _block_sum(x: torch.Tensor, row_weight: torch.Tensor | None, rows: int) -> torch.Tensor:
    """(B, n) block of ``rows`` rows -> (B,) float64 sum of row weight times x."""
    sums = x.reshape(x.shape[0], rows, -1).sum(dim=-1).double()
    return sums.sum(dim=-1) if row_weight is None else sums @ row_weight


class _Chunk:
    """The inputs of a slice of the batch, with the maps and fields built so far."""

    def __init__(self, maps: dict[str, _Maps | None], fix, other) -> None:
        self.raw = maps
        self.fix: _FixIndex | None = fix
        self.other: _FixIndex | None = other
        self._maps: dict[tuple, _Maps] = {}
        self._fields: dict[tuple[str, Weighting], _Field] = {}

    def maps(self, which: str, weighting: Weighting) -> _Maps:
        """The maps a weighting reads: the inputs, or their products with the row weights."""
        if not weighting.multiplies:
            return self.raw[which]
        key = (which, weighting.kind, weighting.mode, weighting.power)
        if key not in self._maps:
            raw = self.raw[which].maps
            h = raw.shape[-2]
            if weighting.mode == "multiply":
                rw = weighting.weights(h, dtype=raw.dtype, device=raw.device)
                self._maps[key] = _Maps(raw * (rw / rw.max())[:, None])
            else:
                rw = weighting.weights(h, device=raw.device)
                self._maps[key] = _Maps(_unscaled_product(raw, rw))
        return self._maps[key]

    def field(self, which: str, weighting: Weighting) -> _Field:
        key = (which, weighting)
        if key not in self._fields:
            self._fields[key] = _Field(self.maps(which, weighting), weighting)
        return self._fields[key]


def _unscaled_product(maps: torch.Tensor, row_weight: torch.Tensor) -> torch.Tensor:
    """The Salient360! 2018 tool's preprocessing, operation by operation: float64 maps times the
    row weights as they are, plus EPS, min-max normalised (a constant product stays as it is)."""
    x = maps.double() * row_weight[:, None] + EPS
    flat = x.reshape(x.shape[0], -1)
    lo, hi = flat.amin(dim=1), flat.amax(dim=1)
    constant = (hi <= lo).detach()
    span = torch.where(constant, torch.ones_like(hi), hi - lo)
    shape = (-1,) + (1,) * (x.ndim - 1)
    normalised = (x - lo.reshape(shape)) / span.reshape(shape)
    return torch.where(constant.reshape(shape), x, normalised)


def _range(maps: _Maps) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per map: min, max - min (1 where constant) and whether the map is constant."""
    lo, hi = maps.lohi()
    constant = (hi <= lo).detach()
    return lo, torch.where(constant, torch.ones_like(hi), hi - lo), constant


class _Dist:
    """A field read as a distribution: P_j = w_j (v_j - offset) / mass, block by block.

    The offset is the map's minimum with min-max normalisation (whose scale cancels), else 0.
    A constant map under min-max, or a map without mass on the weighted locations, is read as
    the uniform map.
    """

    def __init__(self, f: _Field, minmax: bool) -> None:
        self.f = f
        self.offset = None
        if minmax:
            lo, _, constant = _range(f.maps)
            self.offset = lo[:, None]
            mass = torch.zeros_like(f.mean())
            for sl, rw, rows in f.blocks():
                mass = mass + _block_sum(f.loc[:, sl] - self.offset, rw, rows)
        else:
            constant = torch.zeros(f.loc.shape[0], dtype=torch.bool, device=f.loc.device)
            mass = f.loc_sum()
        self.uniform = constant | (mass <= 0).detach()
        self.any_uniform = bool(self.uniform.any())
        self.scale = 1 / torch.where(mass > 0, mass, torch.ones_like(mass))

    def block(self, sl: slice, rw: torch.Tensor | None, rows: int) -> torch.Tensor:
        """(B, n) probabilities of the locations of one block (a new tensor)."""
        x = self.f.loc[:, sl]
        if self.offset is not None:
            x = x - self.offset
        b = x.shape[0]
        factor = self.scale[:, None] if rw is None else self.scale[:, None] * rw[None, :]
        p = (x.reshape(b, rows, -1) * factor.to(x.dtype)[..., None]).reshape(b, -1)
        if self.any_uniform:
            if rw is None:
                even = torch.full_like(p[:1], 1 / self.f.total)
            else:
                even = (rw / self.f.total).to(p.dtype).repeat_interleave(p.shape[1] // rows)[None]
            p = torch.where(self.uniform[:, None], even, p)
        return p


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


def _trapz(fp: torch.Tensor, tp: torch.Tensor) -> torch.Tensor:
    """Area under the polyline through (fp, tp) along the last dimension (numpy.trapz(tp, fp))."""
    return ((fp[..., 1:] - fp[..., :-1]) * (tp[..., 1:] + tp[..., :-1])).sum(dim=-1) / 2


# On the CPU, NumPy's sort, bincount and searchsorted are several times faster than torch's
# (NumPy sorts with SIMD sorting networks); on other devices torch's own are used.


def _sort(x: torch.Tensor) -> torch.Tensor:
    if x.device.type == "cpu":
        return torch.from_numpy(np.sort(x.detach().numpy()))
    return torch.sort(x).values


def _argsort(x: torch.Tensor) -> torch.Tensor:
    if x.device.type == "cpu":
        return torch.from_numpy(np.argsort(x.detach().numpy()))
    return torch.argsort(x)


def _searchsorted(seq: torch.Tensor, v: torch.Tensor, right: bool = False) -> torch.Tensor:
    """Insertion indices of v into the sorted 1-D seq (left: count of elements < v)."""
    if seq.device.type == "cpu":
        side = "right" if right else "left"
        return torch.from_numpy(np.searchsorted(seq.numpy(), v.detach().numpy(), side=side))
    return torch.searchsorted(seq, v, right=right)


def _bincount(idx: torch.Tensor, size: int) -> torch.Tensor:
    """float64 histogram of a 1-D index tensor with values in [0, size)."""
    if idx.device.type == "cpu":
        return torch.from_numpy(np.bincount(idx.numpy(), minlength=size).astype(float))
    return torch.bincount(idx, minlength=size).double()


def _sorted_rows(values: np.ndarray, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Sort float32 values with their rows: int64 keys (order-preserving value bits, row).

    Returns the sorted keys and a view of the row of each sorted value.
    """
    bits = (values + np.float32(0)).view(np.int32)  # + 0 turns -0 into +0
    # Negative floats order backwards as integers: flip their magnitude bits.
    np.bitwise_xor(bits, 0x7FFFFFFF, out=bits, where=bits < 0)
    keys = bits.astype(np.int64)
    keys <<= 32
    keys |= _row_index(values.shape[0] // cols, cols)
    keys.sort()
    rows = keys.view(np.uint32)[0::2] if sys.byteorder == "little" else keys & 0xFFFFFFFF
    return keys, rows


def _probe_keys(thresholds: np.ndarray) -> np.ndarray:
    bits = (thresholds + np.float32(0)).view(np.int32)
    bits = np.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    return bits.astype(np.int64) << 32


@functools.lru_cache(maxsize=8)
def _row_index(rows: int, cols: int) -> np.ndarray:
    return np.repeat(np.arange(rows, dtype=np.int64), cols)


def _prefix_at(weights: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Sum of weights[:p] for each p in positions (0 <= p <= len), without a full cumsum."""
    cuts = np.unique(positions)
    cuts = cuts[(cuts > 0) & (cuts < weights.shape[0])]
    # Sums of the segments [0, c_1), [c_1, c_2), ..., [c_last, end): one pass, no big output.
    seg = np.add.reduceat(weights, np.concatenate(([0], cuts)))
    ends = np.concatenate(([0.0], np.cumsum(seg)))  # prefix at 0, c_1, ..., c_last, end
    at = np.concatenate(([0], cuts, [weights.shape[0]]))
    return ends[np.searchsorted(at, positions)]


def _at_or_above(
    values: torch.Tensor, row_weight: torch.Tensor | None, cols: int, thresholds: torch.Tensor
) -> torch.Tensor:
    """Exact (N,) float64 sums of the weights of the values >= each threshold.

    values: (L,); value l lies in row l // cols, of weight ``row_weight`` (None: all 1).
    Sorted values and a binary search per threshold give the sums. With weights the sort must
    carry each value's row: float32 values on the CPU are sorted as one int64 key per value
    (order-preserving bits of the value, then its row), much faster than an argsort and, unlike
    counting in bins, as fast on flat maps as on varied ones.
    """
    n, dev = values.numel(), values.device
    if row_weight is None:
        below = _searchsorted(_sort(values), thresholds).to(dev)
        return (n - below).double()
    if dev.type == "cpu" and values.dtype == torch.float32:
        keys, rows = _sorted_rows(values.detach().numpy(), cols)
        first = np.searchsorted(keys, _probe_keys(thresholds.detach().numpy()))  # values < t
        w = row_weight.numpy()[rows]
        below = _prefix_at(w, first)
        return torch.from_numpy(float(w.sum()) - below)
    order = _argsort(values).to(dev)
    first = _searchsorted(values[order], thresholds).to(dev)
    cum = torch.cumsum(row_weight[order // cols], 0)  # weight of the i + 1 smallest values
    return cum[-1] - torch.where(first > 0, cum[(first - 1).clamp_(min=0)], 0.0)


def _jitter(x: torch.Tensor, amplitude: float, scale: str, gen: torch.Generator) -> torch.Tensor:
    noise = torch.stack(
        [torch.rand(x.shape[1:], generator=gen, dtype=x.dtype, device=x.device) for _ in x]
    )
    factor = torch.full((x.shape[0], 1, 1, 1), amplitude, dtype=x.dtype, device=x.device)
    if scale == "range":
        flat = x.reshape(x.shape[0], -1)
        factor = factor * (flat.amax(dim=1) - flat.amin(dim=1)).reshape(-1, 1, 1, 1)
    return noise.mul_(factor).add_(x)


def _auc_judd_core(
    ch: _Chunk,
    weighting: Weighting,
    jitter: bool,
    jitter_amplitude: float,
    jitter_scale: str,
    gen: torch.Generator,
) -> torch.Tensor:
    fix = ch.fix
    maps = ch.maps("pred", weighting)
    if jitter:
        maps = _Maps(_jitter(maps.maps, jitter_amplitude, jitter_scale, gen))
    f = _Field(maps, weighting)
    constant = _range(maps)[2]
    out = torch.empty(f.pix.shape[0], dtype=torch.float64, device=f.pix.device)
    for b in range(f.pix.shape[0]):
        if bool(constant[b]):
            out[b] = 0.5
            continue
        pixels = fix.of_image(b)
        n = pixels.shape[0]
        values = f.pix[b, pixels]
        # Thresholds from high to low; the stable sort keeps row-major order among ties.
        order = torch.sort(values, descending=True, stable=True).indices
        thresholds = values[order]
        if f.loc_pixel is not None:
            # Sphere points: the negatives are the points outside fixated pixels (exact count).
            outside = ~fix.mask[b, f.loc_pixel]
            negatives = float(outside.sum())
            if negatives == 0:
                raise ValueRangeError(
                    f"fixations of image {b} cover every sphere point; AUC needs negatives"
                )
            fpr = _at_or_above(f.loc[b][outside], None, 1, thresholds) / negatives
        else:
            rw = f.row_weight
            if rw is None:
                fixed_w = torch.ones(n, dtype=torch.float64, device=out.device)
            else:
                fixed_w = rw[pixels // f.cols]
            cum = torch.cumsum(fixed_w[order], 0)
            negatives = f.total - float(cum[-1])
            if negatives <= 0:
                raise ValueRangeError(
                    f"fixations of image {b} cover every pixel of nonzero weight; AUC needs "
                    "non-fixated pixels"
                )
            fpr = (_at_or_above(f.pix[b], rw, f.cols, thresholds) - cum) / negatives
        tpr = torch.arange(1, n + 1, dtype=torch.float64, device=out.device) / n
        zero, one = tpr.new_zeros(1), tpr.new_ones(1)
        out[b] = _trapz(torch.cat((zero, fpr, one)), torch.cat((zero, tpr, one)))
    return out.to(f.pix.dtype)


def _split_auc(
    pos: torch.Tensor, neg: torch.Tensor, step: float, thresholds: str = "inclusive"
) -> torch.Tensor:
    """Mean over splits of the AUC of positives (n,) against negatives (S, m).

    Thresholds k step run from above 1 down to 0; those above every value of a split sit at
    (0, 0) and add no area, so every split can use the same list. ``"exclusive"`` also drops,
    per split, every k >= ceil(top / step) with top the split's largest value (NumPy's
    ``np.r_[0:top:step]`` has that many elements); their points go to (0, 0) too.
    """
    dev = pos.device
    t = math.floor(1 / step) + 2
    levels = torch.arange(t, dtype=torch.float64, device=dev) * step
    # Index of the highest threshold <= each value: floor(v / step) corrected by exact
    # comparisons, so that v >= levels[k] exactly when the index is >= k.
    ext = torch.cat((levels, levels.new_full((1,), math.inf)))

    def hits(v: torch.Tensor) -> torch.Tensor:  # (rows, width) -> (rows, t) counts >= each
        v = v.double()
        k = torch.floor(v / step).long().clamp_(0, t - 1)
        k -= (ext[k] > v).long()
        k += (ext[k + 1] <= v).long()
        rows = v.shape[0]
        offsets = torch.arange(rows, device=dev)[:, None] * (t + 1)
        hist = _bincount((k + 1 + offsets).reshape(-1), rows * (t + 1))
        hist = hist.to(dev).reshape(rows, t + 1)
        return hist.sum(dim=1, keepdim=True) - torch.cumsum(hist, 1)[:, :-1]

    tp = (hits(pos[None]) / pos.shape[0]).expand(neg.shape[0], -1)
    fp = hits(neg) / neg.shape[1]
    if thresholds == "exclusive":
        top = torch.maximum(neg.amax(dim=1).double(), pos.amax().double())
        count = torch.ceil(top / step)
        keep = torch.arange(t, device=dev)[None, :] < count[:, None]
        tp, fp = tp * keep, fp * keep
    zero = torch.zeros(neg.shape[0], 1, dtype=torch.float64, device=dev)
    tp = torch.cat((zero, tp.flip(1), zero + 1), 1)
    fp = torch.cat((zero, fp.flip(1), zero + 1), 1)
    return _trapz(fp, tp).mean()


class _RowGuide:
    """bisect_right on a short increasing array for many queries: a lookup table of the answer at
    evenly spaced points, then exact steps (torch's and NumPy's binary searches of random
    queries are slow on the CPU)."""

    def __init__(self, ends: torch.Tensor, per_entry: int = 64) -> None:
        self.ends, self.n = ends, ends.shape[0]
        self.size = per_entry * self.n
        self.step = float(ends[-1]) / self.size
        grid = torch.arange(self.size, dtype=ends.dtype, device=ends.device) * self.step
        self.table = torch.searchsorted(ends, grid, right=True).clamp_(max=self.n - 1)

    def find(self, q: torch.Tensor) -> torch.Tensor:
        """Index of the first entry > q (clamped to the last), for each q."""
        i = self.table[torch.floor(q / self.step).long().clamp_(0, self.size - 1)]
        last = self.n - 1
        while True:  # forward while the entry is <= q
            move = (self.ends[i] <= q) & (i < last)
            if not bool(move.any()):
                break
            i = i + move.long()
        while True:  # back while the previous entry is already > q
            move = (i > 0) & (self.ends[(i - 1).clamp_(min=0)] > q)
            if not bool(move.any()):
                break
            i = i - move.long()
        return i


def _auc_borji_core(
    ch: _Chunk,
    weighting: Weighting,
    n_splits: int,
    step: float,
    thresholds: str,
    gen: torch.Generator,
) -> torch.Tensor:
    fix = ch.fix
    f = ch.field("pred", weighting)
    lo, span, constant = _range(f.maps)
    dev = f.pix.device
    if f.row_weight is not None:
        # Inverse CDF in two steps: the row (cumulative row totals), then the column.
        row_total = f.row_weight * f.cols
        row_end = torch.cumsum(row_total, 0)
        row_start = row_end - row_total
        guide = _RowGuide(row_end)
    out = torch.empty(f.pix.shape[0], dtype=torch.float64, device=dev)
    for b in range(f.pix.shape[0]):
        pixels = fix.of_image(b)
        u = torch.rand(n_splits, pixels.shape[0], generator=gen, dtype=torch.float64, device=dev)
        if bool(constant[b]):
            out[b] = 0.5
            continue
        if f.row_weight is None:
            idx = torch.floor(u * f.size).long().clamp_(max=f.size - 1)
        else:
            target = u * row_end[-1]
            row = guide.find(target)
            col = torch.floor((target - row_start[row]) / f.row_weight[row]).long()
            idx = row * f.cols + col.clamp_(0, f.cols - 1)
        pos = (f.pix[b, pixels] - lo[b]) / span[b]
        neg = (f.loc[b][idx] - lo[b]) / span[b]
        out[b] = _split_auc(pos, neg, step, thresholds)
    return out.to(f.pix.dtype)


def _auc_shuffled_core(
    ch: _Chunk,
    weighting: Weighting,
    n_splits: int,
    step: float,
    thresholds: str,
    gen: torch.Generator,
) -> torch.Tensor:
    fix, other = ch.fix, ch.other
    maps = ch.maps("pred", weighting)
    lo, span, constant = _range(maps)
    dev = maps.pix.device
    out = torch.empty(maps.pix.shape[0], dtype=torch.float64, device=dev)
    for b in range(maps.pix.shape[0]):
        pixels, pool = fix.of_image(b), other.of_image(b)
        m = min(pixels.shape[0], pool.shape[0])
        chosen = torch.stack(
            [torch.randperm(pool.shape[0], generator=gen, device=dev)[:m] for _ in range(n_splits)]
        )
        if bool(constant[b]):
            out[b] = 0.5
            continue
        pos = (maps.pix[b, pixels] - lo[b]) / span[b]
        neg = (maps.pix[b, pool[chosen]] - lo[b]) / span[b]
        out[b] = _split_auc(pos, neg, step, thresholds)
    return out.to(maps.pix.dtype)


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


def _check_number(value: float, name: str, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueRangeError(f"{name} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ValueRangeError(f"{name} must be positive, got {value!r}")
    return float(value)


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueRangeError(f"seed must be a non-negative integer, got {seed!r}")
    return seed


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
        o["eps"] = _check_number(o["eps"], "eps")
    if "jitter_scale" in o:
        check_choice(o["jitter_scale"], "jitter_scale", JITTER_SCALES)
        o["jitter_amplitude"] = _check_number(o["jitter_amplitude"], "jitter_amplitude")
    if "n_splits" in o:
        o["n_splits"] = check_positive_int(o["n_splits"], "n_splits")
        step = _check_number(o["step"], "step")
        if step > 1:
            raise ValueRangeError(f"step must be in (0, 1], got {step!r}")
        check_choice(o["thresholds"], "thresholds", AUC_THRESHOLDS)
    if "seed" in o:
        _check_seed(o["seed"])
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
