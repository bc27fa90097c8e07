"""Large panoramas a band of output rows at a time, so that the CLI never holds a full-size
sampling grid (and its float64 intermediates) next to the images.

``rotate_erp`` builds the source direction of every output pixel at once: at 16384 x 8192 that is
several GB of float64 directions and grids besides the two images. Here the same public geometry
functions run on one band of output rows after another; each output pixel depends only on its
own direction, so the result is the one ``rotate_erp`` gives, up to float rounding.
"""

from __future__ import annotations

import math

import torch

from .. import geometry
from .._core import check_erp
from ..geometry import sampling

__all__ = ["BAND_PIXELS", "pad_erp", "rotate_padded_in_bands"]

# Padding rows and columns each mode reads, as geometry.sampling pads for sample_erp (a test
# checks the result equals rotate_erp's bit for bit, so a change there shows here).
_PAD = {"nearest": 1, "bilinear": 1, "bicubic": 2}

#: Output pixels per band (about 4 MB of float64 directions per million pixels and channel).
BAND_PIXELS = 1 << 20


def _band_lonlat(rows: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(len(rows), W, 2) float64 (lon, lat) of the pixel centres of some rows of an ERP,
    computed as :func:`pano360.geometry.erp_lonlat_grid` does."""
    lon = (torch.arange(w, dtype=torch.float64) + 0.5) / w * (2 * math.pi) - math.pi
    lat = math.pi / 2 - (rows.to(torch.float64) + 0.5) / h * math.pi
    return torch.stack(torch.meshgrid(lon, lat, indexing="xy"), dim=-1)


def pad_erp(erp: torch.Tensor, mode: str) -> torch.Tensor:
    """The (1, C, H + 2p, W + 2p) copy of a (1, C, H, W) ERP that sampling with ``mode`` reads
    (seam and poles continued, :func:`pano360.geometry.spherical_pad`)."""
    check_erp(erp)
    return geometry.spherical_pad(erp, _PAD[mode])


def rotate_padded_in_bands(
    padded: torch.Tensor,
    hw: tuple[int, int],
    R: torch.Tensor,
    mode: str = "bilinear",
    band_pixels: int = BAND_PIXELS,
) -> torch.Tensor:
    """``geometry.rotate_erp(erp, R, mode)`` of the H x W ERP that ``padded = pad_erp(erp,
    mode)`` holds, a band of output rows at a time.

    The same numbers as ``rotate_erp`` (the grid is made in float64 and rounded once, as there).
    Memory: the padded input, the output and one band's directions (``band_pixels`` pixels);
    the caller may free the unpadded input before calling.
    """
    h, w = hw
    out = padded.new_empty(1, padded.shape[1], h, w)
    rows_per_band = max(1, band_pixels // w)
    R = R.to(torch.float64)
    for r0 in range(0, h, rows_per_band):
        rows = torch.arange(r0, min(h, r0 + rows_per_band))
        dirs = geometry.lonlat_to_xyz(_band_lonlat(rows, h, w))
        # Row vectors: (R^T d)^T = d^T R, the direction of the input each output pixel shows.
        src = geometry.xyz_to_lonlat(dirs @ R)
        grid = sampling.erp_sampling_grid(src, (h, w), mode).to(padded.dtype)
        out[:, :, r0 : r0 + len(rows)] = sampling.grid_sample_parallel(padded, grid[None], mode)
    return out
