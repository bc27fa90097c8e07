"""Test panoramas and image assertions: smooth ERPs, PSNR, yaw equivariance, seam continuity."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from .._core import check_hw
from ..geometry import erp_directions

__all__ = [
    "assert_psnr_at_least",
    "assert_seam_continuous",
    "assert_yaw_equivariant",
    "psnr",
    "smooth_erp",
]


def smooth_erp(
    hw: Sequence[int],
    channels: int = 3,
    *,
    degree: int = 6,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device=None,
) -> torch.Tensor:
    """A smooth random panorama: a polynomial of the pixel directions, mapped into (0, 1).

    Being a function of the unit vector (x, y, z), it is continuous across the seam and the poles,
    so resampling errors come only from interpolation.

    Args:
        hw: (H, W) with W == 2H.
        channels: number of channels C.
        degree: total degree of the polynomial in (x, y, z) (higher: more detail).
        seed: seed of the random coefficients.

    Returns:
        (1, C, H, W) tensor with values in (0, 1).

    Example:
        >>> img = smooth_erp((8, 16), channels=2)
        >>> img.shape, bool(img.min() > 0), bool(img.max() < 1)
        (torch.Size([1, 2, 8, 16]), True, True)
    """
    h, w = check_hw(hw, "hw", erp=True)
    gen = torch.Generator().manual_seed(seed)
    d = erp_directions((h, w), dtype=torch.float64).to(device)
    x, y, z = d.unbind(-1)
    monomials = [
        x**i * y**j * z ** (k - i - j)
        for k in range(1, degree + 1)
        for i in range(k + 1)
        for j in range(k + 1 - i)
    ]
    basis = torch.stack(monomials, dim=0)  # (M, H, W)
    coef = torch.randn(channels, basis.shape[0], generator=gen, dtype=torch.float64)
    coef = coef.to(basis.device) * (3 / math.sqrt(basis.shape[0]))
    img = torch.sigmoid(torch.einsum("cm,mhw->chw", coef, basis))
    return img[None].to(dtype)


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB between two tensors of the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"psnr needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)


def assert_psnr_at_least(actual: torch.Tensor, expected: torch.Tensor, min_db: float) -> None:
    """Raise AssertionError unless ``psnr(actual, expected) >= min_db``."""
    value = psnr(actual, expected)
    if not value >= min_db:
        raise AssertionError(f"PSNR {value:.2f} dB is below the required {min_db:.2f} dB")


def assert_yaw_equivariant(
    fn: Callable[[torch.Tensor], torch.Tensor],
    erp: torch.Tensor,
    shifts: Sequence[int] = (1, 5),
    *,
    stride: int = 1,
    atol: float = 1e-6,
    rtol: float = 1e-5,
) -> None:
    """Check that rolling ERP columns commutes with ``fn``.

    Args:
        fn: maps (B, C, H, W) to (B, C', H', W / stride).
        erp: input panorama.
        shifts: output column shifts k to try; the input is rolled by k * stride.
        stride: the layer's horizontal stride.
    """
    out = fn(erp)
    for k in shifts:
        rolled = fn(torch.roll(erp, k * stride, dims=-1))
        torch.testing.assert_close(
            rolled, torch.roll(out, k, dims=-1), atol=atol, rtol=rtol, msg=f"roll by {k}"
        )


def assert_seam_continuous(
    fn: Callable[[torch.Tensor], torch.Tensor],
    erp: torch.Tensor | None = None,
    *,
    factor: float = 2.0,
    atol: float = 1e-6,
) -> None:
    """Check that ``fn``'s output has no seam: the step between its last and first columns is
    no larger than ``factor`` times the largest step between neighbouring columns away from the
    seam (columns 1 to W' - 2).

    Args:
        fn: maps (B, C, H, W) to (B, C', H', W').
        erp: input; default a smooth random 32 x 64 panorama (continuous across the seam).
        factor: how much larger the seam step may be than the largest interior step.
        atol: absolute slack.
    """
    if erp is None:
        erp = smooth_erp((32, 64))
    with torch.no_grad():
        out = fn(erp)
    # Steps away from the seam's own neighbours, which a seam artefact would also disturb.
    interior = (out[..., 2:-1] - out[..., 1:-2]).abs().amax()
    seam = (out[..., 0] - out[..., -1]).abs().amax()
    if not seam <= factor * interior + atol:
        raise AssertionError(
            f"seam step {float(seam):.3g} exceeds {factor} x the largest interior step "
            f"{float(interior):.3g}"
        )
