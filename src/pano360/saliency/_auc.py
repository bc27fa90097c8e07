"""The AUC metrics' cores (AUC-Judd, AUC-Borji, shuffled AUC) on chunks of maps: sorting,
thresholds and trapezoids (see :mod:`._metrics` for the definitions and conventions)."""

from __future__ import annotations

import functools
import math
import sys

import numpy as np
import torch

from .._core import ValueRangeError
from ._metric_maps import _Chunk, _Field, _Maps, _range
from ._weights import Weighting


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
