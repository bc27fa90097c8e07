"""SphereConv2d: convolution whose taps are laid on the sphere around every output pixel.

See :mod:`pano360.nn._taps` for where the taps sit (tangent plane or spherical crown) and where
strided outputs sit. Sampling is bilinear and obeys the seam and pole rules of
:mod:`pano360.geometry.conventions`; the sampling geometry is computed once in float64 per
(pattern, input size, stride, dtype, device) and cached.

How it is computed, fastest first:

- on the CPU: a compiled kernel (:mod:`pano360.nn._fast`) builds a channels-last bilinear
  im2col from per-row tables, tile by tile, each tile multiplied while in cache; with fewer
  output than input channels it applies every tap's weight first (one matrix product) and
  gathers the taps of the C_out-channel results; depthwise convolutions (one input channel per
  group) sum the taps' bilinear corners merged per output row, channels-last (forward and
  backward; run a network channels-last to save the layout copies) or plane by plane (few
  channels), and so does inference with few input channels (no im2col tile to fill);
- otherwise (GPU, or no compiler), with few input channels per group (tangent taps):
  ``grid_sample`` lays every pixel's kh x kw taps out as a block and nn.functional.conv2d with
  stride (kh, kw) does the products (SphereNet's layout);
- otherwise: one ``grid_sample`` gathers every tap (a bilinear im2col, (B, C_in, K, Ho * Wo)),
  then one grouped matrix product with the weight.

All paths compute the same sums and are tested against each other and against
:func:`pano360.testing.exact_conv2d`.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from .._core import ShapeError, ValueRangeError, check_choice
from ..geometry import MAP_GRIDS, spherical_pad
from ..geometry.sampling import grid_sample_parallel
from ._fast import extension_available, fast_depthwise_sphere_conv, fast_sphere_conv
from ._taps import (
    TAP_PATTERNS,
    crown_tap_directions,
    default_tap_spacing,
    output_hw,
    sphere_conv_grid,
    tangent_tap_directions,
)

__all__ = ["SphereConv2d", "sphere_conv2d"]

# Without the compiled kernel: up to this many input channels per group the taps go through
# nn.functional.conv2d (faster than the im2col product for 3 input channels, slower for 64).
_CONV_PATH_MAX_CHANNELS = 8

# Tests switch the compiled kernel off to check the pure-torch paths against it.
_COMPILED = {"enabled": True}


def _pair(value, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or any(isinstance(v, bool) or int(v) != v or v < 1 for v in pair):
        raise ValueRangeError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _square(value, name: str) -> int:
    a, b = _pair(value, name)
    if a != b:
        raise ValueRangeError(
            f"{name} must be the same along rows and columns on the sphere, got {value!r}"
        )
    return a


def _use_compiled(x: torch.Tensor, weight: torch.Tensor, width: int, stride: int) -> bool:
    """The compiled CPU kernel handles float32/float64 CPU maps whose width the stride divides
    (depthwise convolutions, one input channel per group, by a kernel of their own)."""
    return (
        _COMPILED["enabled"]
        and x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and weight.dtype == x.dtype
        and width % stride == 0
        and extension_available()
    )


def _optional_repr(layer: nn.Module) -> str:
    """The non-default dilation, groups, bias, tap_spacing and output grid of a spherical conv,
    for repr."""
    s = ""
    if layer.dilation != 1:
        s += f", dilation={layer.dilation}"
    if layer.groups != 1:
        s += f", groups={layer.groups}"
    if layer.bias is None:
        s += ", bias=False"
    if layer.tap_spacing is not None:
        s += f", tap_spacing={layer.tap_spacing}"
    if layer.output_grid != "sphere":
        s += f", output_grid={layer.output_grid!r}"
    return s


@functools.lru_cache(maxsize=256)
def _local_dirs(taps, kernel_size, dilation, tap_spacing, crown):
    # Cached: building the directions took longer than a small depthwise layer's kernel.
    if taps == "tangent":
        dirs = tangent_tap_directions(kernel_size, dilation, tap_spacing)
    else:
        rings, azimuths, radius = crown
        dirs = crown_tap_directions(rings, azimuths, radius)
    return tuple(tuple(v) for v in dirs.tolist())


def sphere_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int = 1,
    dilation: int = 1,
    groups: int = 1,
    taps: str = "tangent",
    tap_spacing: float | None = None,
    crown: tuple[int, int, float] | None = None,
    output_grid: str = "sphere",
) -> torch.Tensor:
    """Spherical convolution of ERP feature maps.

    Args:
        x: (B, C_in, H, W) with W even (normally W == 2H).
        weight: tangent taps: (C_out, C_in / groups, kh, kw), nn.Conv2d's layout.
            Crown taps: (C_out, C_in / groups, 1 + rings * azimuths): the centre tap, then ring 1
            azimuths 0 .. azimuths - 1 (clockwise from up), then ring 2, ...
        bias: (C_out,) or None.
        stride, dilation: ints (the same along rows and columns).
        groups: as nn.Conv2d.
        taps: "tangent" or "crown".
        tap_spacing: angle in radians from the centre tap to its horizontal neighbour, seen from
            the sphere's centre; the tangent-plane pitch is tan(tap_spacing). Default 2 pi / W:
            one pixel at the input's equator (pi / 4 for W < 8, where a pixel spans more than a
            tangent plane can hold).
        crown: (rings, azimuths, radius in radians) for crown taps; default: one ring of
            T - 1 azimuths at radius ``tap_spacing`` (T the weight's number of taps).
        output_grid: where a strided layer's outputs sit
            (:func:`pano360.geometry.strided_lonlat_grid`): "sphere", the ERP pixel centres of
            the output's size; "planar", on input pixels (s i, s j) as nn.Conv2d's (for networks
            trained on perspective images; :mod:`pano360.nn._taps`).

    Returns:
        (B, C_out, ceil(H / stride), ceil(W / stride)).

    Raises:
        ShapeError: bad shapes of ``x``, ``weight`` or ``bias``; odd W.
        ValueRangeError: bad stride, dilation, groups or tap_spacing.
        ValueError: unknown ``taps`` or ``output_grid``.
    """
    check_choice(taps, "taps", TAP_PATTERNS)
    check_choice(output_grid, "output_grid", MAP_GRIDS)
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ShapeError(f"x must be (B, C, H, W), got {getattr(x, 'shape', type(x).__name__)}")
    b, c_in, h, w = x.shape
    if w % 2:
        raise ShapeError(f"x must have an even width W for the pole rule, got {tuple(x.shape)}")
    stride = _square(stride, "stride")
    dilation = _square(dilation, "dilation")
    if isinstance(groups, bool) or groups < 1 or c_in % groups or weight.shape[0] % groups:
        raise ValueRangeError(
            f"groups must divide in_channels ({c_in}) and out_channels ({weight.shape[0]}), "
            f"got {groups}"
        )
    spacing = default_tap_spacing(w) if tap_spacing is None else float(tap_spacing)
    if not 0 < spacing < math.pi / 2:
        raise ValueRangeError(f"tap_spacing must be in (0, pi/2) radians, got {spacing}")
    c_out = weight.shape[0]
    if taps == "tangent":
        if weight.ndim != 4 or weight.shape[1] * groups != c_in:
            raise ShapeError(
                f"weight must be (C_out, C_in / groups, kh, kw) = ({c_out}, {c_in // groups}, "
                f"kh, kw), got {tuple(weight.shape)}"
            )
        kernel = (weight.shape[2], weight.shape[3])
        crown = None
    else:
        if weight.ndim != 3 or weight.shape[1] * groups != c_in:
            raise ShapeError(
                f"weight must be (C_out, C_in / groups, taps) = ({c_out}, {c_in // groups}, T) "
                f"for crown taps, got {tuple(weight.shape)}"
            )
        kernel = None
        crown = crown or (1, weight.shape[2] - 1, spacing)
        if 1 + crown[0] * crown[1] != weight.shape[2]:
            raise ShapeError(
                f"crown (rings, azimuths) = {crown[:2]} needs {1 + crown[0] * crown[1]} taps, "
                f"the weight has {weight.shape[2]}"
            )
    if bias is not None and bias.shape != (c_out,):
        raise ShapeError(f"bias must be ({c_out},), got {tuple(bias.shape)}")
    local = _local_dirs(taps, kernel, dilation, spacing, None if crown is None else tuple(crown))
    k = len(local)
    ho, wo = output_hw((h, w), stride)
    if _use_compiled(x, weight, w, stride):
        if weight.shape[1] == 1:  # depthwise: no matrix product to hand to oneDNN
            return fast_depthwise_sphere_conv(x, weight, bias, local, stride, output_grid)
        return fast_sphere_conv(
            x, weight.reshape(c_out, c_in // groups, k), bias, local, stride, groups, output_grid
        )
    grid = sphere_conv_grid(local, (h, w), stride, x.dtype, x.device, output_grid)
    if kernel is not None and c_in // groups <= _CONV_PATH_MAX_CHANNELS:
        # Few input channels: lay each pixel's kh x kw taps out as a kh x kw block (SphereNet's
        # layout) and let nn.functional.conv2d with stride (kh, kw) do the products; faster
        # than the matrix product below when the inner dimension C_in * K is small.
        kh, kw = kernel
        blocks = grid.reshape(kh, kw, ho, wo, 2).permute(2, 0, 3, 1, 4)
        taps_map = grid_sample_parallel(
            spherical_pad(x, 1), blocks.reshape(1, kh * ho, kw * wo, 2), "bilinear"
        )
        return F.conv2d(taps_map, weight, bias, stride=(kh, kw), groups=groups)
    cols = grid_sample_parallel(spherical_pad(x, 1), grid, "bilinear")  # (B, C_in, K * Ho, Wo)
    cols = cols.reshape(b, groups, (c_in // groups) * k, ho * wo)
    out = torch.matmul(weight.reshape(groups, c_out // groups, -1), cols)
    out = out.reshape(b, c_out, ho, wo)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


class SphereConv2d(nn.Module):
    """Convolution on the sphere for ERP feature maps, a drop-in for nn.Conv2d.

    With ``taps="tangent"`` the weight has exactly nn.Conv2d's shape, so ``load_state_dict`` from
    a Conv2d works and a kernel trained on perspective images sees an undistorted neighbourhood
    at every latitude. With ``taps="crown"`` the kernel lives on a spherical cap (see
    :func:`sphere_conv2d` for the weight layout).

    Args:
        in_channels, out_channels, kernel_size, stride, dilation, groups, bias: as nn.Conv2d
            (stride and dilation the same along rows and columns; no padding argument: the
            sphere has no border).
        taps: "tangent" or "crown".
        tap_spacing: radians between neighbouring taps (default: one input pixel at the
            equator, 2 pi / W).
        crown_rings, crown_azimuths, crown_radius: the crown's layout; defaults (k - 1) // 2
            rings of 8 taps reaching rings * tap_spacing.
        output_grid: where a strided layer's outputs sit, "sphere" or "planar" (see
            :func:`sphere_conv2d`).

    Shape:
        (B, C_in, H, W) -> (B, C_out, ceil(H / stride), ceil(W / stride)).

    Example:
        >>> conv = SphereConv2d(3, 8, kernel_size=3)
        >>> conv(torch.rand(1, 3, 16, 32)).shape
        torch.Size([1, 8, 16, 32])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size=3,
        stride=1,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        taps: str = "tangent",
        tap_spacing: float | None = None,
        crown_rings: int | None = None,
        crown_azimuths: int = 8,
        crown_radius: float | None = None,
        output_grid: str = "sphere",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        check_choice(taps, "taps", TAP_PATTERNS)
        self.output_grid = check_choice(output_grid, "output_grid", MAP_GRIDS)
        if in_channels % groups or out_channels % groups:
            raise ValueRangeError(
                f"groups must divide in_channels ({in_channels}) and out_channels "
                f"({out_channels}), got {groups}"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _square(stride, "stride")
        self.dilation = _square(dilation, "dilation")
        self.groups, self.taps, self.tap_spacing = groups, taps, tap_spacing
        factory = {"device": device, "dtype": dtype}
        if taps == "tangent":
            shape = (out_channels, in_channels // groups, *self.kernel_size)
            self.crown_rings = self.crown_radius = None
            self.crown_azimuths = None
        else:
            self.crown_rings = crown_rings or max(1, (self.kernel_size[0] - 1) // 2)
            self.crown_azimuths, self.crown_radius = crown_azimuths, crown_radius
            shape = (out_channels, in_channels // groups, 1 + self.crown_rings * crown_azimuths)
        self.weight = nn.Parameter(torch.empty(shape, **factory))
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.Conv2d's initialisation (Kaiming uniform with a = sqrt(5))."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0].numel()
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def _crown(self, width: int):
        if self.taps != "crown":
            return None
        spacing = self.tap_spacing if self.tap_spacing is not None else default_tap_spacing(width)
        radius = self.crown_radius if self.crown_radius is not None else self.crown_rings * spacing
        return (self.crown_rings, self.crown_azimuths, radius)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sphere_conv2d(
            x, self.weight, self.bias, self.stride, self.dilation, self.groups, self.taps,
            self.tap_spacing, self._crown(x.shape[-1]), self.output_grid,
        )  # fmt: skip

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, taps={self.taps!r}"
        )
        s += _optional_repr(self)
        if self.taps == "crown":
            s += f", crown_rings={self.crown_rings}, crown_azimuths={self.crown_azimuths}"
            if self.crown_radius is not None:
                s += f", crown_radius={self.crown_radius}"
        return s
