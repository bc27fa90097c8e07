"""The compiled CPU path of SphereConv2d (C++ in csrc/sphere_conv.cpp, built on first use).

The tap pattern of a spherical convolution depends on the output row only, so the kernel builds
its bilinear im2col from per-row tables (the pole rule folded in), reading the input
channels-last, tile by tile, each tile multiplied by oneDNN's matrix product while it is in
cache. It is compiled with torch.utils.cpp_extension the first time a CPU SphereConv2d runs
(about half a minute, cached afterwards under ~/.cache/torch_extensions). If it cannot be built
(no compiler, no ninja) pano360 warns once and uses the pure-torch path, which gives the same
results; ``PANO360_NO_EXTENSIONS=1`` forces the pure-torch path.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from pathlib import Path

import torch

from .._core import memory_format_of
from ..geometry import erp_lonlat_grid, lonlat_to_pixel
from ..geometry.sampling import bilinear_corners
from ._taps import output_hw, tap_lonlat

__all__ = ["extension_available", "fast_sphere_conv", "row_tables"]

_SOURCE = Path(__file__).resolve().parent / "csrc" / "sphere_conv.cpp"


@functools.lru_cache(maxsize=1)
def _extension():
    if os.environ.get("PANO360_NO_EXTENSIONS"):
        return None
    try:
        from torch.utils.cpp_extension import load

        build_dir = Path(
            torch.utils.cpp_extension._get_build_directory("pano360_sphere_conv", False)
        )
        if not any(build_dir.glob("*.so")):
            print("pano360: compiling the SphereConv2d CPU kernel (once)...", file=sys.stderr)
        return load(
            name="pano360_sphere_conv",
            sources=[str(_SOURCE)],
            extra_cflags=["-O3"],
            verbose=False,
        )
    except Exception as error:  # no compiler, no ninja, ...: the pure-torch path still works
        warnings.warn(
            f"pano360: the compiled SphereConv2d kernel is unavailable ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}); using the pure-torch path",
            RuntimeWarning,
            stacklevel=3,
        )
        return None


def extension_available() -> bool:
    """Whether the compiled CPU kernel of SphereConv2d is (or can be) loaded."""
    return _extension() is not None


@functools.lru_cache(maxsize=64)
def row_tables(
    local_dirs: tuple, in_hw: tuple[int, int], stride: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per (output row, tap), from the float64 tap geometry of :func:`~._taps.tap_lonlat`:
    the input rows of the upper and lower bilinear corners (Ho, K, 2), their left columns at
    output column 0 (Ho, K, 2) and the four bilinear weights (Ho, K, 4).

    A corner past a pole reads the mirrored row with its column shifted by W / 2 (the pole rule
    of :func:`~pano360.geometry.sampling.spherical_pad`), so the kernel needs no padded copy.
    """
    ho, wo = output_hw(in_hw, stride)
    dirs = torch.tensor(local_dirs, dtype=torch.float64)
    centres = erp_lonlat_grid((ho, wo), dtype=torch.float64)[:, 0]  # output column 0
    x, y = lonlat_to_pixel(tap_lonlat(dirs, centres), in_hw).unbind(-1)  # (Ho, K) each
    rows, cols, wts = bilinear_corners(x, y, in_hw)  # (Ho, K, 4), folded onto the sphere
    # The kernel reads the upper and lower corner pairs from their left corners.
    pairs = [0, 2]
    return rows[..., pairs].contiguous(), cols[..., pairs].contiguous(), wts.to(dtype).contiguous()


class _FastSphereConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, rows, cols, wts, groups, out_hw, stride):
        ext = _extension()
        channels_last = memory_format_of(x) == torch.channels_last
        x_nhwc = x.permute(0, 2, 3, 1).contiguous()  # free when x is channels-last already
        ctx.save_for_backward(x_nhwc, weight, x)
        ctx.tables, ctx.args = (rows, cols, wts), (groups, out_hw[1], stride)
        ctx.has_bias = bias is not None
        # Few input channels: the kernel fills its tiles from x channels-first (see csrc).
        few = weight.shape[1] // rows.shape[1] <= 4
        x_planar = x.contiguous() if few else x.new_empty(0)
        out = ext.forward(
            x_nhwc,
            x_planar,
            weight,
            bias,
            rows,
            cols,
            wts,
            groups,
            out_hw[1],
            stride,
            channels_last,
        )
        b, c_out = x.shape[0], weight.shape[0]
        if channels_last:
            return out.view(b, *out_hw, c_out).permute(0, 3, 1, 2)
        return out.view(b, c_out, *out_hw)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x_nhwc, weight, x = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        b, c_out = grad.shape[:2]
        empty = grad.new_empty(0)
        grad_nchw = grad.contiguous().view(b, c_out, -1) if need_w else empty
        grad_nhwc = grad.permute(0, 2, 3, 1).contiguous().view(b, -1, c_out) if need_x else empty
        x_planar = x.contiguous() if need_w else empty
        gx, gw = _extension().backward(
            grad_nchw, grad_nhwc, x_nhwc, x_planar, weight, *ctx.tables, *ctx.args, need_x, need_w
        )
        gb = grad.sum(dim=(0, 2, 3)) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return (
            gx.permute(0, 3, 1, 2) if need_x else None,
            gw if need_w else None,
            gb,
            *([None] * 6),
        )


def fast_sphere_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    local_dirs: tuple,
    stride: int,
    groups: int,
) -> torch.Tensor:
    """(B, C_out, Ho, Wo) from x (B, C_in, H, W) and the weight as (C_out, C_in / groups, K).

    The output is channels-last when x is, contiguous otherwise.
    """
    in_hw = (x.shape[-2], x.shape[-1])
    rows, cols, wts = row_tables(local_dirs, in_hw, stride, x.dtype)
    c_out, c_group, k = weight.shape
    # Tap-major columns (tap, then channel): the kernel reads a tap's channels contiguously.
    weight_taps = weight.transpose(1, 2).reshape(c_out, k * c_group)
    return _FastSphereConv.apply(
        x, weight_taps, bias, rows, cols, wts, groups, output_hw(in_hw, stride), stride
    )
