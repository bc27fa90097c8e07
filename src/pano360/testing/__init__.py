"""Oracles and assertions for testing spherical code, ours and yours.

These helpers are public so users can check their own layers the way we check ours: smooth test
panoramas that are continuous across the seam and the poles, PSNR, yaw-equivariance and
seam-continuity checks, and slow loop-based oracles that fast ops are compared with.
"""

from ._conv import exact_conv2d
from ._images import (
    assert_psnr_at_least,
    assert_seam_continuous,
    assert_yaw_equivariant,
    psnr,
    smooth_erp,
)

__all__ = [
    "assert_psnr_at_least",
    "assert_seam_continuous",
    "assert_yaw_equivariant",
    "exact_conv2d",
    "psnr",
    "smooth_erp",
]
