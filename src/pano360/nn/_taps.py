"""Where the taps of a spherical convolution sit on the sphere.

A spherical convolution evaluates, at every output pixel, K taps laid out around that pixel's
direction. Tap patterns are given once in a local frame (x right, y up, z towards the output
pixel; the frame of a camera aimed at it with roll 0, :mod:`pano360.geometry.conventions`) and
turned to every output pixel by that camera's rotation. The same code then serves all patterns:

- ``tangent``: the k x k taps of a perspective kernel on the tangent plane (SphereNet; the
  "exact" target of SphConv). Tap (a, b) of a kernel with rows a (top to bottom) and columns b
  (left to right) sits at plane point ((b - (kw - 1) / 2) d t, -(a - (kh - 1) / 2) d t, 1),
  d the dilation and t = tan(tap_spacing). At the equator of the input these are the pixels
  nn.Conv2d would read.
- ``crown``: a spherical cap (Zhang et al., ECCV 2018): the centre, then ``rings`` rings of
  ``azimuths`` taps each. Ring r (1-based) is at the angle r * radius / rings from the centre;
  azimuth q at 2 pi q / azimuths clockwise from up (q = 0 is straight up).

Output pixels: a stride-s layer on an (H, W) input has (ceil(H / s), ceil(W / s)) outputs. Where
they sit is the layer's output grid (:data:`pano360.geometry.MAP_GRIDS`, placed by
:func:`pano360.geometry.strided_lonlat_grid`):

- ``sphere`` (the default): the ERP pixel-centre rule at the output's resolution. For s = 2 an
  output pixel sits at the centre of a 2 x 2 input block (input coordinate 2i + 0.5); the layer
  is symmetric about the equator and turns with the sphere by any multiple of s pixels. Right for
  networks trained on the sphere (the Spherical U-Net), whose maps are ERP images at every scale.
- ``planar``: output pixel (i, j) sits on input pixel (s i, s j), where nn.Conv2d with "same"
  padding centres it. Right for a network trained on perspective images and transferred
  (SphConv): at the equator every tap lands on an input pixel, as in the source network, where
  the sphere grid reads every tap of a strided layer between four pixels and the blur compounds
  over the strided layers of a deep network. Map (i, j) after strided layers of total stride S
  then sits on input pixel (S i, S j), where the source network puts it; each layer lays its
  taps out as if its input were an ERP grid (up to (S - 1) / 2 input pixels from where its
  pixels sit), which only bends the taps near the poles slightly.

A tap that lands exactly on a pole is read on the output pixel's own meridian, for the reason of
the sphere grid.
"""

from __future__ import annotations

import functools
import math

import torch

from ..geometry import rotation_matrix, strided_lonlat_grid, xyz_to_lonlat
from ..geometry.sampling import erp_sampling_grid

__all__ = [
    "TAP_PATTERNS",
    "crown_tap_directions",
    "default_tap_spacing",
    "output_hw",
    "sphere_conv_grid",
    "tangent_tap_directions",
    "tap_lonlat",
]

#: Tap patterns of SphereConv2d.
TAP_PATTERNS: tuple[str, ...] = ("tangent", "crown")


def tangent_tap_directions(
    kernel_size: tuple[int, int], dilation: int, tap_spacing: float
) -> torch.Tensor:
    """(kh * kw, 3) unit tap directions of a tangent-plane kernel in the local frame (float64).

    Row-major over the kernel (rows top to bottom, columns left to right), as nn.Conv2d's weight.
    """
    kh, kw = kernel_size
    t = math.tan(tap_spacing) * dilation
    a = (torch.arange(kh, dtype=torch.float64) - (kh - 1) / 2) * t
    b = (torch.arange(kw, dtype=torch.float64) - (kw - 1) / 2) * t
    v, u = torch.meshgrid(-a, b, indexing="ij")
    plane = torch.stack((u, v, torch.ones_like(u)), dim=-1).reshape(-1, 3)
    return plane / plane.norm(dim=-1, keepdim=True)


def crown_tap_directions(rings: int, azimuths: int, radius: float) -> torch.Tensor:
    """(1 + rings * azimuths, 3) unit tap directions of a crown kernel in the local frame.

    Order: the centre, then ring 1 azimuths 0 .. azimuths - 1, ring 2, ...
    """
    r = torch.arange(1, rings + 1, dtype=torch.float64)[:, None] * (radius / rings)
    q = torch.arange(azimuths, dtype=torch.float64)[None, :] * (2 * math.pi / azimuths)
    r, q = torch.broadcast_tensors(r, q)
    ring = torch.stack((r.sin() * q.sin(), r.sin() * q.cos(), r.cos()), dim=-1)
    centre = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)
    return torch.cat((centre, ring.reshape(-1, 3)))


def default_tap_spacing(width: int) -> float:
    """One input pixel at the equator, 2 pi / W, capped at pi / 4 for tiny maps (W < 8)."""
    return min(2 * math.pi / width, math.pi / 4)


def output_hw(hw: tuple[int, int], stride: int) -> tuple[int, int]:
    """Output size of a stride-``stride`` spherical layer: (ceil(H / s), ceil(W / s))."""
    return -(-hw[0] // stride), -(-hw[1] // stride)


def tap_lonlat(local_dirs: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Where a tap pattern lands on the sphere around output pixels.

    Args:
        local_dirs: (K, 3) tap directions in the local frame (x right, y up, z towards the
            output pixel), float64 for exact geometry.
        centres: (..., 2) (lon, lat) of the output pixels, same dtype.

    Returns:
        (..., K, 2) (lon, lat) of every tap: the pattern turned by the camera rotation aimed at
        each centre with roll 0. A tap exactly on a pole (within xyz_to_lonlat's 1e-12) takes
        the output pixel's own longitude: a bilinear read there depends on the meridian, and
        this choice keeps the layers yaw-equivariant.
    """
    R = rotation_matrix(centres[..., 0], centres[..., 1])  # (..., 3, 3) camera to world
    world = torch.einsum("...ij,kj->...ki", R, local_dirs)
    lonlat = xyz_to_lonlat(world)
    on_pole = torch.hypot(world[..., 0], world[..., 2]) <= 1e-12 * world[..., 1].abs()
    lon = torch.where(on_pole, centres[..., None, 0], lonlat[..., 0])
    return torch.stack((lon, lonlat[..., 1]), dim=-1)


@functools.lru_cache(maxsize=64)
def sphere_conv_grid(
    local_dirs: tuple[tuple[float, float, float], ...],
    in_hw: tuple[int, int],
    stride: int,
    dtype: torch.dtype,
    device: torch.device,
    output_grid: str = "sphere",
) -> torch.Tensor:
    """grid_sample coordinates of every tap of every output pixel (computed in float64, cached).

    Returns:
        (1, K * Ho, Wo, 2) coordinates on the input padded by one pixel
        (:func:`pano360.geometry.sampling.spherical_pad`), tap-major: rows k * Ho .. (k + 1) * Ho
        hold tap k of every output pixel.
    """
    out_hw = output_hw(in_hw, stride)
    dirs = torch.tensor(local_dirs, dtype=torch.float64, device=device)  # (K, 3)
    centres = strided_lonlat_grid(in_hw, stride, output_grid, dtype=torch.float64, device=device)
    lonlat = tap_lonlat(dirs, centres).permute(2, 0, 1, 3)  # (K, Ho, Wo, 2)
    grid = erp_sampling_grid(lonlat, in_hw, "bilinear")
    return grid.reshape(1, -1, out_hw[1], 2).to(dtype)
