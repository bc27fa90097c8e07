"""Inputs of the saliency metrics: checked maps and fixations, weighted fields, chunks of a
batch. The machinery :mod:`._metrics` and :mod:`._auc` compute on (see :mod:`._metrics` for the
conventions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .._core import ShapeError, ValueRangeError
from ._fixations import binary_fixation_map
from ._weights import Weighting, sample_on_sphere

#: The MIT benchmark's eps (MATLAB ``eps``, float64 machine epsilon 2^-52), also the
#: Salient360! tools' ``np.finfo(float).eps``.
EPS: float = 2.220446049250313e-16

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
