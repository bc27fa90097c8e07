"""The module form of spherical padding; the function lives in :mod:`pano360.geometry.padding`
(geometry's samplers need it and may not import nn), re-exported here as
``pano360.nn.spherical_pad``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..geometry.padding import as_padding, check_feature_map, spherical_pad

__all__ = ["SphericalPad2d", "check_feature_map", "spherical_pad"]


class SphericalPad2d(nn.Module):
    """Pads ERP feature maps with :func:`spherical_pad` (seam wraps, poles continue).

    Args:
        padding: an int for every side, or ``(left, right, top, bottom)``.

    Shape:
        (B, C, H, W) with W even -> (B, C, H + top + bottom, W + left + right).

    Example:
        >>> SphericalPad2d(1)
        SphericalPad2d(padding=(1, 1, 1, 1))
        >>> SphericalPad2d((1, 2, 0, 3))(torch.zeros(1, 1, 4, 8)).shape
        torch.Size([1, 1, 7, 11])
    """

    def __init__(self, padding: int | Sequence[int]) -> None:
        super().__init__()
        self.padding = as_padding(padding, "padding")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return spherical_pad(x, self.padding)

    def extra_repr(self) -> str:
        return f"padding={self.padding}"
