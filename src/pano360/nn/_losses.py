"""Losses on ERP maps that measure on the sphere: every pixel counts by its solid angle.

Convention: see :mod:`pano360.geometry.conventions`. A pixel of row i of an (H, W) ERP grid
weighs ``m_i = pixel_solid_angle((H, W))[i] / (4 pi)``; the weights of a map sum to 1, so a sum
``sum(m * f)`` is the mean of f over the sphere. The losses are therefore comparable across
resolutions (a map and its nearest-upsampled copy give the same value) and do not over-count the
stretched polar rows as plain per-pixel losses do. Any (H, W) is accepted: an ERP grid spans the
whole sphere whatever its aspect ratio.
"""

from __future__ import annotations

import torch
from torch import nn

from .._core import ShapeError, ValueRangeError, check_choice, check_number
from ._area import area_weights

__all__ = [
    "REDUCTIONS",
    "SphericalCCLoss",
    "SphericalKLDLoss",
    "SphericalMSELoss",
    "spherical_cc",
    "spherical_cc_loss",
    "spherical_kld",
    "spherical_mse",
]

#: Reductions every loss accepts: over the (B, C) per-map values.
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")


def _check_pair(pred: torch.Tensor, target: torch.Tensor, reduction: str) -> torch.Tensor:
    """Validate the inputs; return the (H, 1) area weights in pred's dtype."""
    for name, t in (("pred", pred), ("target", target)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 4 or min(t.shape[-2:]) < 1:
            raise ShapeError(f"{name} must be (B, C, H, W), got {tuple(t.shape)}")
    if pred.shape != target.shape:
        raise ShapeError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    check_choice(reduction, "reduction", REDUCTIONS)
    h, w = pred.shape[-2:]
    return area_weights(h, w, pred.dtype, pred.device)


def _reduce(per_map: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_map.mean()
    if reduction == "sum":
        return per_map.sum()
    return per_map


def _sphere_mean(f: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over the sphere of every (B, C) map: (B, C, H, W) -> (B, C)."""
    return (f * weights).sum(dim=(-2, -1))


def spherical_mse(
    pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Mean squared error over the sphere: squared errors weighted by pixel solid angle.

    Per map, ``sum(a * (pred - target)**2) / 4 pi`` with a the pixel solid angles, i.e. the
    mean of the squared error over the sphere. A constant error e gives e**2, as
    ``torch.nn.functional.mse_loss`` does; an error near the poles counts less than the same
    error at the equator.

    Args:
        pred, target: (B, C, H, W) of the same shape (any H, W >= 1).
        reduction: "mean" (over B and C), "sum" or "none" (a (B, C) tensor).

    Returns:
        The loss, differentiable with respect to both inputs.

    Raises:
        ShapeError: an input is not (B, C, H, W), or the shapes differ.
        ValueError: unknown reduction.

    Example:
        >>> pred = torch.zeros(1, 1, 4, 8)
        >>> pred[:, :, 0] = 1.0  # an error on the polar row, 1/4 of the pixels
        >>> round(float(spherical_mse(pred, torch.zeros_like(pred))), 4)  # its share of the area
        0.1464
    """
    weights = _check_pair(pred, target, reduction)
    return _reduce(_sphere_mean((pred - target) ** 2, weights), reduction)


def _normalise_density(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """x divided by its mean over the sphere (a density of mean 1); an all-zero map stays 0."""
    # Scaling by the maximum first keeps tiny maps from underflowing to a zero mean; where()
    # keeps the gradient finite for all-zero maps (x / 0 would be NaN).
    peak = x.amax(dim=(-2, -1), keepdim=True)
    x = x / torch.where(peak > 0, peak, torch.ones_like(peak))
    total = _sphere_mean(x, weights)[..., None, None]
    return x / torch.where(total > 0, total, torch.ones_like(total))


def spherical_kld(
    pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-7, reduction: str = "mean"
) -> torch.Tensor:
    """KL divergence KL(target || pred) between saliency maps taken as distributions on the sphere.

    Each map becomes a density on the sphere: divided by its area-weighted mean, it is the
    probability per unit solid angle times 4 pi, so a uniform map is 1 everywhere. Then, as in
    the saliency benchmarks (MIT/Tuebingen ``KLdiv``) but with each pixel weighted by its area::

        KL = sum_i m_i Q_i log(eps + Q_i / (P_i + eps))

    with P, Q the densities of pred and target and m_i the pixel's share of the sphere. Because
    eps is added to densities of mean 1 (not to per-pixel probabilities), its effect does not
    depend on the resolution. The value is invariant to scaling either map.

    Args:
        pred: (B, C, H, W) predicted saliency, non-negative (usually C = 1).
        target: (B, C, H, W) ground-truth saliency (a fixation density), non-negative.
        eps: regulariser, positive: where pred is 0 and target is not, the log ratio is
            ``log(eps + Q / eps)`` (about 16 for Q = 1 and the default 1e-7), finite.
        reduction: "mean" (over B and C), "sum" or "none" (a (B, C) tensor).

    Returns:
        The divergence, differentiable with respect to both maps. Edge cases: an all-zero
        target gives 0 (there is no mass to explain); an all-zero pred is treated as zero
        density, so the loss is about ``log(1 / eps)`` with a finite gradient. Never NaN.

    Raises:
        ShapeError: a map is not (B, C, H, W), or the shapes differ.
        ValueRangeError: eps is not positive and finite, or a map has negative values.
        ValueError: unknown reduction.

    Example:
        >>> target = torch.rand(2, 1, 8, 16)
        >>> float(spherical_kld(target, target)) < 1e-6
        True
    """
    weights = _check_pair(pred, target, reduction)
    check_number(eps, "eps", lo=0, lo_open=True)
    for name, t in (("pred", pred), ("target", target)):
        if bool((t.detach() < 0).any()):
            raise ValueRangeError(f"{name} must be non-negative (a saliency map)")
    p = _normalise_density(pred, weights)
    q = _normalise_density(target, weights)
    return _reduce(_sphere_mean(q * torch.log(eps + q / (p + eps)), weights), reduction)


def _centre_scale(x: torch.Tensor, weights: torch.Tensor):
    """Centred map scaled to max |value| 1 and whether it varies at all (per map)."""
    # Subtracting one of its own pixels makes a constant map exactly zero (no rounding noise).
    x = x - x[..., :1, :1]
    scale = x.abs().amax(dim=(-2, -1), keepdim=True)
    varies = scale > 0
    x = x / torch.where(varies, scale, torch.ones_like(scale))
    return x - _sphere_mean(x, weights)[..., None, None], varies[..., 0, 0]


def spherical_cc(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Pearson correlation of two maps over the sphere (each pixel weighted by its area).

    ``cc = cov(pred, target) / (std(pred) std(target))`` where means, variances and the
    covariance are area-weighted means over the sphere. Higher is better; see
    :func:`spherical_cc_loss` for a loss.

    Args:
        pred, target: (B, C, H, W) of the same shape (saliency maps are (B, 1, H, W)); values
            may be negative.
        reduction: "mean" (over B and C), "sum" or "none" (a (B, C) tensor).

    Returns:
        Correlations in [-1, 1], differentiable. A constant map (every pixel equal, an all-zero
        map included) has no direction to correlate: its cc is 0 with a zero gradient, never NaN.
        The value is invariant to shifting or positively scaling either map, including tiny
        scales (maps are rescaled before the products, so nothing underflows).

    Raises:
        ShapeError: a map is not (B, C, H, W), or the shapes differ.
        ValueError: unknown reduction.

    Example:
        >>> x = torch.rand(1, 1, 8, 16)
        >>> round(float(spherical_cc(x, 3 * x + 1)), 4), float(spherical_cc(x, torch.ones_like(x)))
        (1.0, 0.0)
    """
    weights = _check_pair(pred, target, reduction)
    p, p_varies = _centre_scale(pred, weights)
    t, t_varies = _centre_scale(target, weights)
    ok = p_varies & t_varies
    one = torch.ones((), dtype=p.dtype, device=p.device)
    # A map that varies spans 1 after scaling, so its variance is at least half its smallest
    # pixel weight (> 0): the sqrt is safe.
    var_p = torch.where(ok, _sphere_mean(p * p, weights), one)
    var_t = torch.where(ok, _sphere_mean(t * t, weights), one)
    cc = _sphere_mean(p * t, weights) / (var_p.sqrt() * var_t.sqrt())
    cc = torch.where(ok, cc.clamp(-1.0, 1.0), torch.zeros_like(cc))
    return _reduce(cc, reduction)


def spherical_cc_loss(
    pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """``1 - spherical_cc(pred, target)``: 0 for perfectly correlated maps, at most 2.

    Takes the arguments of :func:`spherical_cc` (a constant map gives 1); the reduction applies
    to the per-map losses.
    """
    return _reduce(
        1 - spherical_cc(pred, target, "none"), check_choice(reduction, "reduction", REDUCTIONS)
    )


class SphericalMSELoss(nn.Module):
    """Module form of :func:`spherical_mse`.

    Example:
        >>> SphericalMSELoss()
        SphericalMSELoss(reduction='mean')
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_choice(reduction, "reduction", REDUCTIONS)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return spherical_mse(pred, target, self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class SphericalKLDLoss(nn.Module):
    """Module form of :func:`spherical_kld` (KL(target || pred)).

    Example:
        >>> SphericalKLDLoss()
        SphericalKLDLoss(eps=1e-07, reduction='mean')
    """

    def __init__(self, eps: float = 1e-7, reduction: str = "mean") -> None:
        super().__init__()
        self.eps = check_number(eps, "eps", lo=0, lo_open=True)
        self.reduction = check_choice(reduction, "reduction", REDUCTIONS)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return spherical_kld(pred, target, self.eps, self.reduction)

    def extra_repr(self) -> str:
        return f"eps={self.eps!r}, reduction={self.reduction!r}"


class SphericalCCLoss(nn.Module):
    """Module form of :func:`spherical_cc_loss` (1 - correlation).

    Example:
        >>> SphericalCCLoss()
        SphericalCCLoss(reduction='mean')
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_choice(reduction, "reduction", REDUCTIONS)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return spherical_cc_loss(pred, target, self.reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
