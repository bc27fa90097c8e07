"""How close a spherical network comes to the exact outputs, layer by layer and by latitude.

Convention:
    :mod:`pano360.geometry.conventions`. Latitude bands are ``(low, high)`` bounds on |lat| in
    radians; a row belongs to a band by the latitude of its centre.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .._core import ShapeError, ValueRangeError
from ..geometry import erp_lonlat_grid
from ._exact import exact_outputs, plan_stack

__all__ = ["LAT_BANDS", "band_rmse", "layer_rmse"]

#: Default latitude bands of :func:`layer_rmse`: |lat| in [0, 30), [30, 60), [60, 85) degrees,
#: in radians.
LAT_BANDS: tuple[tuple[float, float], ...] = (
    (0.0, math.radians(30)),
    (math.radians(30), math.radians(60)),
    (math.radians(60), math.radians(85)),
)


def _check_bands(bands) -> list[tuple[float, float]]:
    bands = [tuple(float(v) for v in band) for band in bands]
    for lo, hi in bands:
        if not 0 <= lo < hi <= math.pi / 2:
            raise ValueRangeError(
                f"bands must be (low, high) with 0 <= low < high <= pi/2 radians, got {(lo, hi)}"
            )
    return bands


def band_rmse(
    output: torch.Tensor,
    target: torch.Tensor,
    bands: Sequence[tuple[float, float]] = LAT_BANDS,
    *,
    relative: bool = False,
) -> dict[tuple[float, float], float]:
    """RMSE of an ERP map against a reference, by latitude band.

    Args:
        output, target: (B, C, H, W) maps on the same ERP grid, W == 2H.
        bands: ``(low, high)`` bounds on |lat| in radians; a row counts in a band when
            low <= |lat of its centre| < high.
        relative: divide each band's RMSE by the standard deviation of ``target`` over the
            band's rows (all images, channels and columns).

    Returns:
        ``{band: RMSE over the band's rows, all images, channels and columns}``; NaN for a band
        holding no row.

    Raises:
        ShapeError: ``output`` and ``target`` differ in shape, or are not (B, C, H, 2H).
        ValueRangeError: a band that is not 0 <= low < high <= pi / 2.

    Example:
        >>> target = torch.rand(1, 2, 6, 12)
        >>> rmse = band_rmse(target + 0.5, target)
        >>> [round(v, 3) for v in rmse.values()]
        [0.5, 0.5, 0.5]
    """
    bands = _check_bands(bands)
    if output.shape != target.shape or target.ndim != 4 or target.shape[-1] != 2 * target.shape[-2]:
        raise ShapeError(
            f"output and target must be the same (B, C, H, 2H), got {tuple(output.shape)} and "
            f"{tuple(target.shape)}"
        )
    h = target.shape[-2]
    lat = erp_lonlat_grid((h, 2 * h), dtype=torch.float64)[:, 0, 1].abs()
    per_row = (output.double() - target.double()).pow(2).mean(dim=(0, 1, 3)).cpu()
    result = {}
    for lo, hi in bands:
        mask = (lat >= lo) & (lat < hi)
        value = per_row[mask].mean().sqrt().item() if bool(mask.any()) else math.nan
        if relative and bool(mask.any()):
            value /= target[..., mask.to(target.device), :].double().std().item()
        result[(lo, hi)] = value
    return result


def layer_rmse(
    model: nn.Sequential,
    stack: nn.Sequential,
    erps: torch.Tensor,
    bands: Sequence[tuple[float, float]] = LAT_BANDS,
    layers: int | Sequence[int] | None = None,
    *,
    tap_spacing: float | None = None,
    chunk: int | None = None,
) -> dict[int, dict[tuple[float, float], float]]:
    """Per-layer RMSE of a spherical network against the exact outputs, by latitude band.

    ``model`` runs end to end on ``erps`` (each layer on the previous layer's output, as in
    use) and every requested layer's output is compared with
    :func:`~pano360.transfer.exact_outputs` of the same layer of ``stack``.

    Args:
        model: an ``nn.Sequential`` with one layer per layer of ``stack`` whose layer l maps to
            (B, C_l, H / S_l, W / S_l): :func:`~pano360.transfer.build_student` (trained or not)
            or :func:`~pano360.transfer.build_spherical`.
        stack: the source stack.
        erps: (B, C, H, W) ERP images.
        bands: ``(low, high)`` bounds on |lat| in radians; a row counts in a band when
            low <= |lat of its centre| < high.
        layers: indices into ``stack`` (default: every layer).
        tap_spacing, chunk: as :func:`~pano360.transfer.exact_outputs` (the tap spacing must
            be the one the model was built with).

    Returns:
        ``{layer index: {band: RMSE over the band's rows, all channels and columns}}``; NaN for
        a band holding no row at that layer's resolution.

    Raises:
        TypeError: ``model`` is not an nn.Sequential of ``len(stack)`` layers.
        ShapeError: a layer of ``model`` gives the wrong shape; see also
            :func:`~pano360.transfer.exact_outputs`.
        ValueRangeError: a band that is not 0 <= low < high <= pi / 2.

    Example:
        >>> from pano360.transfer import build_spherical
        >>> stack = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
        >>> rmse = layer_rmse(build_spherical(stack, (8, 16)), stack, torch.rand(1, 3, 8, 16))
        >>> max(rmse[1].values()) < 1e-5  # one conv on the sphere is exact
        True
    """
    if not isinstance(model, nn.Sequential) or len(model) != len(stack):
        got = f"{len(model)} layers" if isinstance(model, nn.Sequential) else type(model).__name__
        raise TypeError(
            f"model must be an nn.Sequential with one layer per layer of the stack "
            f"({len(stack)}), got {got}"
        )
    bands = _check_bands(bands)
    plan = plan_stack(stack)
    exact = exact_outputs(stack, erps, layers, tap_spacing=tap_spacing, chunk=chunk)
    indices = (
        list(range(len(plan)))
        if layers is None
        else [v % len(plan) for v in ([layers] if isinstance(layers, int) else layers)]
    )
    outputs = []
    modes = {m: m.training for m in model.modules()}
    model.eval()
    h, w = erps.shape[-2:]
    try:
        with torch.no_grad():
            x = erps
            for entry, layer in zip(plan[: max(indices) + 1], model, strict=False):
                x = layer(x)
                expected = (h // entry.total_stride, w // entry.total_stride)
                if x.shape[-2:] != expected:
                    raise ShapeError(
                        f"model layer {entry.index} gives {tuple(x.shape)}, the exact output "
                        f"is (H, W) = {expected}"
                    )
                outputs.append(x)
    finally:
        for m, mode in modes.items():
            m.training = mode
    result = {}
    for index, target in zip(indices, exact, strict=True):
        out = outputs[index]
        if out.shape != target.shape:
            raise ShapeError(
                f"model layer {index} gives {tuple(out.shape)}, the exact output is "
                f"{tuple(target.shape)}"
            )
        result[index] = band_rmse(out, target, bands)
    return result
