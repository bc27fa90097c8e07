"""How saliency metrics weigh the pixels of an ERP map: the four weightings and their two modes.

Convention: see :mod:`pano360.geometry.conventions`. Row i of an (H, W) ERP map spans latitudes
pi/2 - pi i / H down to pi/2 - pi (i + 1) / H; pixel centres sit at
lon = ((x + 0.5) / W - 0.5) 2pi, lat = (0.5 - (y + 0.5) / H) pi.

Weightings (``Weighting.kind``):

``"none"``
    Every pixel counts the same: the planar metrics of the MIT benchmark. Any (H, W).
``"sin-rows"``
    Row i weighs ``sin(pi i / (H - 1))``, the ``sin(linspace(0, pi, H))`` of the Salient360!
    Python tools (2018 and the current toolbox), computed with NumPy exactly as they compute it
    (``numpy.sin(numpy.linspace(0, numpy.pi, H))``, value for value). It is 0 on the first and
    last rows and differs from the row centres' cos(lat) = sin(pi (i + 0.5) / H) by up to half a
    row.
``"solid-angle"``
    Row i weighs the exact solid angle of its pixels,
    ``2 pi (sin lat_top - sin lat_bottom) / W`` (:func:`pano360.geometry.pixel_solid_angle`).
``"sphere-sampled"``
    The maps are read at ``n_points`` quasi-uniform points on the sphere (the golden-angle
    spiral of the Salient360! tools, deterministic, see :func:`sphere_sample_points`) by
    bilinear interpolation with the seam and pole rules, and every point counts the same.

Modes (``Weighting.mode``), for ``"sin-rows"`` and ``"solid-angle"``:

``"measure"``
    The weights are the measure the metric integrates over: weighted means, standard deviations,
    sums and false-positive rates. The map values are unchanged.
``"multiply"``
    The maps are multiplied by the weights (scaled to 1 at their largest, in the maps' own
    precision), then the planar metric runs on the products. This is what the Salient360! tools
    do; note that it changes the prediction itself (a uniform map becomes an equator prior).
``"multiply-unscaled"``
    The Salient360! 2018 tool's arithmetic, operation by operation: the maps are converted to
    float64, multiplied by the weights as they are (not scaled), ``EPS`` is added and the
    products are min-max normalised to [0, 1] (a constant product is left as it is). Same
    metrics as ``"multiply"`` up to rounding, but rounding decides ties, and ties decide AUC-Judd.

``Weighting.power`` raises the row weights to a power (default 1): the Salient360! toolbox's
command line multiplies its maps in place once per weighted metric, so its later metrics see
the weights squared and cubed. ``"none"`` and ``"sphere-sampled"`` ignore the mode and the power.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from .._core import ShapeError, ValueRangeError, check_choice
from ..geometry import lonlat_to_pixel_index, pixel_solid_angle
from ..geometry.sampling import erp_sampling_grid, sample_erp_grid

__all__ = [
    "DEFAULT_SPHERE_POINTS",
    "WEIGHTINGS",
    "WEIGHT_MODES",
    "Weighting",
    "row_weights",
    "sphere_sample_points",
]

#: The weightings every metric accepts.
WEIGHTINGS: tuple[str, ...] = ("none", "sin-rows", "solid-angle", "sphere-sampled")
#: How row weights enter a metric.
WEIGHT_MODES: tuple[str, ...] = ("measure", "multiply", "multiply-unscaled")
#: 100,000 points per steradian (round(4 pi 1e5)), the "Sphere_1256637" sampling of the
#: Salient360! tools.
DEFAULT_SPHERE_POINTS: int = 1_256_637


@dataclass(frozen=True)
class Weighting:
    """Which weighting a metric uses and how (see the module docstring).

    Args:
        kind: ``"none"``, ``"sin-rows"``, ``"solid-angle"`` or ``"sphere-sampled"``.
        mode: ``"measure"``, ``"multiply"`` or ``"multiply-unscaled"`` (only ``"sin-rows"`` and
            ``"solid-angle"`` use it).
        n_points: number of sphere points for ``"sphere-sampled"`` (at least 2).
        power: the row weights are raised to this power (an integer >= 1; only ``"sin-rows"``
            and ``"solid-angle"`` use it).

    Raises:
        ValueError: unknown ``kind`` or ``mode``.
        ValueRangeError: ``n_points`` is not an integer >= 2, or ``power`` not an integer >= 1.

    Example:
        >>> Weighting("sin-rows", "multiply")
        Weighting(kind='sin-rows', mode='multiply', n_points=1256637, power=1)
        >>> Weighting.parse("solid-angle") == Weighting("solid-angle")
        True
    """

    kind: str = "none"
    mode: str = "measure"
    n_points: int = DEFAULT_SPHERE_POINTS
    power: int = 1

    def __post_init__(self) -> None:
        check_choice(self.kind, "weighting kind", WEIGHTINGS)
        check_choice(self.mode, "weighting mode", WEIGHT_MODES)
        n = self.n_points
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ValueRangeError(f"n_points must be an integer >= 2, got {n!r}")
        p = self.power
        if isinstance(p, bool) or not isinstance(p, int) or p < 1:
            raise ValueRangeError(f"power must be an integer >= 1, got {p!r}")

    @classmethod
    def parse(cls, value: str | Weighting) -> Weighting:
        """A Weighting from itself or from a kind name (mode ``"measure"``)."""
        if isinstance(value, Weighting):
            return value
        if isinstance(value, str):
            return cls(value)
        raise TypeError(f"weighting must be a str or a Weighting, got {type(value).__name__}")

    @property
    def per_row(self) -> bool:
        """True when the weighting is a weight per ERP row."""
        return self.kind in ("sin-rows", "solid-angle")

    @property
    def multiplies(self) -> bool:
        """True when the maps are multiplied by row weights before the metric."""
        return self.per_row and self.mode != "measure"

    @property
    def measures(self) -> bool:
        """True when row weights are the metric's measure (the values stay unchanged)."""
        return self.per_row and self.mode == "measure"

    def weights(self, h: int, *, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
        """(H,) row weights of this weighting for an (H, 2H) map: :func:`row_weights` to the
        power ``power``."""
        out = row_weights(self.kind, h, device=device)
        return (out if self.power == 1 else out**self.power).to(dtype)


def row_weights(
    kind: str, h: int, *, dtype: torch.dtype = torch.float64, device=None
) -> torch.Tensor:
    """The weight of each row of an (H, 2H) ERP map.

    Args:
        kind: ``"sin-rows"`` or ``"solid-angle"``.
        h: number of rows H (``"sin-rows"`` needs H >= 2: its weights vanish at both ends).

    Returns:
        (H,) tensor. ``"sin-rows"``: ``numpy.sin(numpy.linspace(0, numpy.pi, H))``, i.e.
        ``sin(pi i / (H - 1))`` rounded as NumPy rounds it; ``"solid-angle"``: the solid angle
        of one pixel of row i in steradians (summing over the 2H columns gives 4 pi).

    Raises:
        ValueError: unknown ``kind``.
        ValueRangeError: ``"sin-rows"`` with H < 2.

    Example:
        >>> [round(v, 4) for v in row_weights("sin-rows", 3).tolist()]
        [0.0, 1.0, 0.0]
    """
    check_choice(kind, "kind", ("sin-rows", "solid-angle"))
    return _row_weights(kind, int(h), dtype, torch.device(device or "cpu"))


@functools.lru_cache(maxsize=32)
def _row_weights(kind: str, h: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    if kind == "sin-rows":
        if h < 2:
            raise ValueRangeError(f"sin-rows weighting needs at least 2 rows, got H = {h}")
        # NumPy's own linspace and sin, so that the weights are the tools' to the last bit.
        out = torch.from_numpy(np.sin(np.linspace(0, np.pi, h))).to(device)
    else:
        out = pixel_solid_angle((h, 2 * h), dtype=torch.float64, device=device)[:, 0]
    return out.to(dtype)


def sphere_sample_points(
    n: int, *, dtype: torch.dtype = torch.float64, device=None
) -> torch.Tensor:
    """Quasi-uniform points on the sphere: the golden-angle spiral of the Salient360! tools.

    Args:
        n: number of points, at least 2.

    Returns:
        (n, 2) (lon, lat) radians. Point i has ``lat = asin(1 - 2 i / (n - 1))`` (from the north
        pole to the south pole, equal steps in sin lat, so equal areas) and
        ``lon = (i ga mod 2pi) - pi`` with the golden angle ``ga = pi (3 - sqrt 5)``.

    Raises:
        ValueRangeError: ``n`` < 2.

    Convention:
        The tools (``uniformSphereSampling``) return colatitude ``acos(1 - 2 i / (n - 1))`` and
        longitude ``i ga mod 2pi`` measured from the left edge of the ERP image; this is the
        same point set in our (lon, lat), whose lon = -pi is that left edge.

    Example:
        >>> sphere_sample_points(3).tolist()[1]
        [-0.7416294238611401, 0.0]
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueRangeError(f"n must be an integer >= 2, got {n!r}")
    i = torch.arange(n, dtype=torch.float64, device=device)
    golden = math.pi * (3 - math.sqrt(5))
    lat = torch.asin((1 - 2 * i / (n - 1)).clamp(-1.0, 1.0))
    lon = torch.remainder(i * golden, 2 * math.pi) - math.pi
    return torch.stack((lon, lat), dim=-1).to(dtype)


@functools.lru_cache(maxsize=8)
def _sphere_plan(
    n: int, h: int, w: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampling grid (for sample_erp_grid, bilinear) and containing pixel of each sphere point."""
    lonlat = sphere_sample_points(n, device=device)
    grid = erp_sampling_grid(lonlat[None, None], (h, w), "bilinear").to(dtype)
    row, col = lonlat_to_pixel_index(lonlat, (h, w))
    return grid, row * w + col


def sample_on_sphere(maps: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Maps read at the sphere points: (B, n) values and the (n,) flat pixel index of each point.

    Bilinear, with the seam and pole rules of :func:`pano360.geometry.sample_erp`.
    """
    b, _, h, w = maps.shape
    if w != 2 * h:
        raise ShapeError(f"sphere-sampled weighting needs W == 2H maps, got {(h, w)}")
    grid, pixel = _sphere_plan(n, h, w, maps.dtype, maps.device)
    return sample_erp_grid(maps, grid, "bilinear").reshape(b, n), pixel
