r"""Spherical versions of a perspective conv stack, layer for layer (SphConv's student).

:func:`build_student` lays every convolution of a stack on the sphere as a
:class:`pano360.nn.RowUntiedConv2d` (the network :func:`pano360.training.distill` trains);
:func:`build_spherical` as a tangent-plane :class:`pano360.nn.SphereConv2d` (the zero-shot
network, SphereNet's transfer). Both turn pools into spherical pools whose windows sit on the
ERP grid and copy pointwise layers, so layer l of either maps the ERP to the grid the exact
output of layer l lives on (:func:`pano360.transfer.exact_outputs`).

Convention:
    :mod:`pano360.geometry.conventions`. Layer l's output is the ERP grid of
    (H / S_l, W / S_l) pixels, S_l the stack's total stride up to layer l.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict

import torch
from torch import nn

from .._core import ShapeError, check_int
from ..nn import RowUntiedConv2d, SphereConv2d, SphericalAvgPool2d, SphericalMaxPool2d
from ._exact import StackLayer, plan_stack

__all__ = ["build_spherical", "build_student"]


def _check_erp_hw(plan: list[StackLayer], erp_hw) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in erp_hw)
    except (TypeError, ValueError):
        raise ShapeError(f"erp_hw must be a pair (H, W) of integers, got {erp_hw!r}") from None
    stride = plan[-1].total_stride
    if h < 1 or w != 2 * h or h % stride:
        raise ShapeError(
            f"erp_hw must be (H, 2H) with H a multiple of the stack's total stride {stride}, "
            f"got {tuple(erp_hw)}"
        )
    return h, w


def _spacings(plan: list[StackLayer], erp_hw, tap_spacing: float | None) -> list[float]:
    """Tap spacing of each layer's spherical conv, matching the exact patches' pixel pitch.

    After a total stride S the exact patch has S t between feature pixels on its tangent plane
    (t = tan of the input spacing), so the conv there spaces its taps atan(S t) apart.
    """
    base = min(2 * math.pi / erp_hw[1], math.pi / 4) if tap_spacing is None else tap_spacing
    return [base if e.in_stride == 1 else math.atan(e.in_stride * math.tan(base)) for e in plan]


def _spherical_pool(layer: nn.Module, entry: StackLayer) -> nn.Module:
    """The pool on the ERP grid: window i centred on output pixel i (half a pixel off if odd).

    A window of span k' = d (k - 1) + 1 and stride s is centred on the ERP output grid when it
    starts (k' - s) / 2 pixels before the block of output i; when k' - s is odd the nearest
    integer start leaves the windows half an input pixel south and east of the grid (the
    distillation of the layers after it absorbs that).
    """
    k, s, d = entry.kernel, entry.stride, entry.dilation
    extra = d * (k - 1) + 1 - s
    ceil = bool(extra % 2)  # one more pixel on the far side, read over the sphere
    if type(layer) is nn.MaxPool2d:
        return SphericalMaxPool2d(k, s, extra // 2, d, ceil_mode=ceil)
    return SphericalAvgPool2d(k, s, extra // 2, ceil_mode=ceil)


def _pointwise_copy(layer: nn.Module) -> nn.Module:
    out = copy.deepcopy(layer)
    if type(out) is nn.Conv2d:  # a 1 x 1 conv: padding would only grow the map
        out.padding = (0, 0)
    return out


def _build(stack, erp_hw, tap_spacing, make_conv) -> nn.Sequential:
    plan = plan_stack(stack)
    h, w = _check_erp_hw(plan, erp_hw)
    spacings = _spacings(plan, (h, w), tap_spacing)
    layers = OrderedDict()
    for entry, (name, layer), spacing in zip(plan, stack.named_children(), spacings, strict=True):
        in_hw = (h // entry.in_stride, w // entry.in_stride)
        if entry.kind == "conv":
            layers[name] = make_conv(layer, in_hw, spacing)
        elif entry.kind == "pool":
            layers[name] = _spherical_pool(layer, entry)
        else:
            layers[name] = _pointwise_copy(layer)
    return nn.Sequential(layers)


def build_student(
    stack: nn.Sequential,
    erp_hw: tuple[int, int],
    row_group_size: int | None = 1,
    tap_spacing: float | None = None,
) -> nn.Sequential:
    """The spherical student of a conv stack, ready for :func:`pano360.training.distill`.

    Layer for layer (same names and indices): every spatial ``nn.Conv2d`` becomes
    :meth:`pano360.nn.RowUntiedConv2d.from_conv` at its input's resolution, pools become
    :class:`~pano360.nn.SphericalMaxPool2d` / :class:`~pano360.nn.SphericalAvgPool2d` whose
    outputs sit on the ERP grid, pointwise layers (activations, 1 x 1 convs, ...) are copied.
    With ``row_group_size=1`` it starts equal to :func:`build_spherical` (the zero-shot
    spherical network), and its first conv equals the exact output.

    Args:
        stack: an ``nn.Sequential`` conv stack (see :func:`~pano360.transfer.receptive_field`
            for the layers it may hold); not changed.
        erp_hw: (H, W) of the input ERP, W == 2H, H a multiple of the stack's total stride.
        row_group_size: output rows per kernel (1: untied rows; None: RowUntiedConv2d's
            parameter budget), capped at each layer's number of rows.
        tap_spacing: as in :func:`~pano360.transfer.exact_outputs` (default 2 pi / W). The
            conv after a total stride S spaces its taps atan(S tan(tap_spacing)) apart, the
            pixel pitch of the exact patches there.

    Returns:
        An ``nn.Sequential`` mapping (B, C, H, W) to the last layer's (B, C_L, H / S, W / S).

    Raises:
        TypeError, ValueRangeError: an unsupported stack (see
            :func:`~pano360.transfer.receptive_field`); a bad ``row_group_size``.
        ShapeError: ``erp_hw`` not (H, 2H) with H a multiple of the total stride.

    Example:
        >>> stack = nn.Sequential(
        ...     nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 2, 3)
        ... )
        >>> student = build_student(stack, (16, 32))
        >>> student(torch.rand(1, 3, 16, 32)).shape
        torch.Size([1, 2, 8, 16])
    """
    row_group_size = check_int(row_group_size, "row_group_size", lo=1, optional=True)

    def make(conv, in_hw, spacing):
        size = (
            None if row_group_size is None else min(row_group_size, -(-in_hw[0] // conv.stride[0]))
        )
        return RowUntiedConv2d.from_conv(conv, in_hw, row_group_size=size, tap_spacing=spacing)

    return _build(stack, erp_hw, tap_spacing, make)


def build_spherical(
    stack: nn.Sequential, erp_hw: tuple[int, int], tap_spacing: float | None = None
) -> nn.Sequential:
    """The zero-shot spherical version of a conv stack: tangent-plane SphereConv2d layers.

    What a perspective network gives on the sphere without training (SphereNet's transfer):
    :func:`build_student` with every conv a :class:`pano360.nn.SphereConv2d` holding the
    stack's weights, the same spherical pools and pointwise layers. The baseline distillation
    is measured against (:func:`layer_rmse`).

    Args:
        stack, erp_hw, tap_spacing: as :func:`build_student`.

    Returns:
        An ``nn.Sequential`` mapping (B, C, H, W) to (B, C_L, H / S, W / S).

    Raises:
        TypeError, ValueRangeError, ShapeError: as :func:`build_student`.
    """

    def make(conv, in_hw, spacing):
        out = SphereConv2d(
            conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride[0],
            conv.dilation[0], conv.groups, conv.bias is not None, tap_spacing=spacing,
            device=conv.weight.device, dtype=conv.weight.dtype,
        )  # fmt: skip
        with torch.no_grad():
            out.weight.copy_(conv.weight)
            if conv.bias is not None:
                out.bias.copy_(conv.bias)
        return out

    return _build(stack, erp_hw, tap_spacing, make)
