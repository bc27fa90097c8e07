r"""Exact per-location outputs of a conv stack on an ERP image (the "Exact" of SphConv).

Su and Grauman (NIPS 2017) define the target a spherical network should reproduce: at every
location of the sphere, the source network (trained on perspective photos) applied to the
tangent-plane projection of the panorama around that location. This module computes it for a
conv stack given as an ``nn.Sequential``, layer by layer, as the oracle of distillation.

Convention:
    :mod:`pano360.geometry.conventions`. Layer l of a stack with total stride S_l (the product
    of the strides up to and including it) has its output on the ERP grid of (H / S_l, W / S_l)
    pixels: output (i, j) looks at lon = -pi + 2 pi (j + 0.5) / (W / S_l),
    lat = pi / 2 - pi (i + 0.5) / (H / S_l), the centre of an S_l x S_l block of input pixels.
    Its value is the stack's layers 0 .. l run without padding ("valid") on a P x P tangent
    patch, P the receptive field of layer l (:func:`receptive_field`), which gives exactly one
    output. Patch pixel (a, b) (row a top to bottom, column b left to right) samples the
    direction of tangent-plane point ((b - (P - 1) / 2) t, -(a - (P - 1) / 2) t) in the frame
    of a camera aimed at the output pixel with roll 0 (x right, y up), t = tan(tap_spacing)
    and tap_spacing one input pixel at the equator (2 pi / W) by default. Sampling is bilinear
    with the seam and pole rules; a tap exactly on a pole is read on the output pixel's
    meridian, as :class:`pano360.nn.SphereConv2d` does. For a one-conv stack this is exactly
    ``SphereConv2d`` (and :func:`pano360.testing.exact_conv2d`).

Why rows are cheap:
    All outputs of one row see the same patch geometry up to a yaw rotation, and turning by one
    output column (2 pi / W_l) moves every patch tap by exactly S_l input columns. So the
    bilinear taps are computed once per row (in float64, cached) and shifted by whole columns,
    and every location costs one gather plus the stack on its patch.

Layers:
    ``nn.Conv2d`` (square kernel, stride and dilation; its padding is ignored: the sphere has no
    border), ``nn.MaxPool2d`` and ``nn.AvgPool2d`` (likewise; no ``divisor_override``), and
    pointwise layers (activations, ``nn.BatchNorm2d`` with running statistics, dropout,
    ``nn.Identity``; a 1 x 1 stride-1 conv is pointwise too). A pointwise layer's exact output
    is the layer applied to the previous layer's exact output, which is what it computes.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .._core import ShapeError, ValueRangeError, check_erp
from ..geometry import lonlat_to_pixel, strided_lonlat_grid
from ..geometry.sampling import bilinear_corners
from ..nn._taps import tangent_tap_directions, tap_lonlat

__all__ = ["exact_outputs", "receptive_field"]

#: Layers that act on every pixel on its own (exact output = layer of the exact input).
POINTWISE_TYPES: tuple[type[nn.Module], ...] = (
    nn.Identity,
    nn.ReLU,
    nn.ReLU6,
    nn.PReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Softplus,
    nn.BatchNorm2d,
    nn.Dropout,
    nn.Dropout2d,
)

# Elements of the largest activation of one chunk of patches when ``chunk`` is not given
# (2**23 float32 elements: 32 MiB).
_CHUNK_ELEMENTS = 2**23


@dataclass(frozen=True)
class StackLayer:
    """What one layer of a conv stack does to positions (see :func:`plan_stack`).

    Attributes:
        index, name: position and name in the ``nn.Sequential``.
        kind: "conv" (spatial conv: kernel > 1 or stride > 1), "pool" or "pointwise".
        kernel, stride, dilation: along both axes (1, 1, 1 for pointwise layers).
        size: receptive field of layers 0 .. index in input pixels (the exact patch size).
        total_stride: product of the strides of layers 0 .. index.
        in_stride: product of the strides of the layers before it (its input's grid).
        out_channels: channels after the layer (None while unknown: before the first conv).
    """

    index: int
    name: str
    kind: str
    kernel: int
    stride: int
    dilation: int
    size: int
    total_stride: int
    in_stride: int
    out_channels: int | None


def _square(value, what: str) -> int:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or pair[0] != pair[1]:
        raise ValueRangeError(f"{what} must be the same along rows and columns, got {value!r}")
    return int(pair[0])


def plan_stack(stack: nn.Module) -> list[StackLayer]:
    """Check that ``stack`` is a supported conv stack and describe each layer.

    Raises:
        TypeError: ``stack`` is not an nn.Sequential, or holds a layer that is not supported
            (the message names it and lists the supported types).
        ValueRangeError: an empty stack; a kernel, stride or dilation that differs along rows
            and columns; a pool with ``divisor_override`` or ``return_indices``; a pool whose
            stride exceeds its window; BatchNorm without running statistics.
    """
    if not isinstance(stack, nn.Sequential):
        raise TypeError(f"stack must be an nn.Sequential, got {type(stack).__name__}")
    if len(stack) == 0:
        raise ValueRangeError("stack must hold at least one layer, got an empty nn.Sequential")
    layers, size, jump, channels = [], 1, 1, None
    for index, (name, layer) in enumerate(stack.named_children()):
        what = f"layer {index} ({name!r}, {type(layer).__name__})"
        if type(layer) is nn.Conv2d:
            k = _square(layer.kernel_size, f"{what} kernel_size")
            s = _square(layer.stride, f"{what} stride")
            d = _square(layer.dilation, f"{what} dilation")
            kind = "pointwise" if k == 1 and s == 1 else "conv"
            channels = layer.out_channels
        elif type(layer) in (nn.MaxPool2d, nn.AvgPool2d):
            k = _square(layer.kernel_size, f"{what} kernel_size")
            s = _square(layer.stride, f"{what} stride")
            d = _square(getattr(layer, "dilation", 1), f"{what} dilation")
            if getattr(layer, "divisor_override", None) or getattr(layer, "return_indices", 0):
                raise ValueRangeError(
                    f"{what}: divisor_override and return_indices are not supported"
                )
            if d * (k - 1) + 1 < s:
                raise ValueRangeError(
                    f"{what}: the stride ({s}) must not exceed the window ({d * (k - 1) + 1}): "
                    "the pooled outputs would skip input pixels"
                )
            kind = "pool"
        elif isinstance(layer, POINTWISE_TYPES) and type(layer) in POINTWISE_TYPES:
            if isinstance(layer, nn.BatchNorm2d) and not layer.track_running_stats:
                raise ValueRangeError(f"{what}: BatchNorm2d needs running statistics")
            k = s = d = 1
            kind = "pointwise"
        else:
            supported = ", ".join(t.__name__ for t in (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))
            raise TypeError(
                f"{what} is not supported: a stack may hold {supported} and pointwise layers "
                f"({', '.join(t.__name__ for t in POINTWISE_TYPES)})"
            )
        in_stride = jump
        size += d * (k - 1) * jump
        jump *= s
        layers.append(StackLayer(index, name, kind, k, s, d, size, jump, in_stride, channels))
    return layers


def receptive_field(stack: nn.Sequential, layer: int = -1) -> tuple[int, int]:
    """Receptive field and total stride of a conv stack's layers 0 .. ``layer``.

    Args:
        stack: an ``nn.Sequential`` of supported layers (module docstring).
        layer: index into ``stack`` (negative counts from the end).

    Returns:
        ``(size, stride)``: output (i, j) of that layer depends on a size x size window of input
        pixels when run without padding, and neighbouring outputs are ``stride`` input pixels
        apart. On the sphere the layer's output is the ERP grid of (H / stride, W / stride)
        pixels and its exact patches are size x size.

    Raises:
        TypeError, ValueRangeError: see :func:`plan_stack`; a ``layer`` out of range.

    Example:
        >>> pnet = nn.Sequential(
        ...     nn.Conv2d(3, 10, 3), nn.PReLU(10), nn.MaxPool2d(2, 2, ceil_mode=True),
        ...     nn.Conv2d(10, 16, 3), nn.PReLU(16), nn.Conv2d(16, 32, 3), nn.PReLU(32),
        ... )
        >>> receptive_field(pnet), receptive_field(pnet, 2)
        ((12, 2), (4, 2))
    """
    plan = plan_stack(stack)
    (index,) = _layer_indices(layer, len(plan))
    return plan[index].size, plan[index].total_stride


def _layer_indices(layers, n: int) -> list[int]:
    values = list(range(n)) if layers is None else layers
    values = [values] if isinstance(values, int) else list(values)
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or not -n <= v < n:
            raise ValueRangeError(f"layers must be indices in [-{n}, {n}), got {layers!r}")
        out.append(v % n)
    if not out:
        raise ValueRangeError("layers must name at least one layer, got an empty sequence")
    return out


@functools.lru_cache(maxsize=16)
def _row_taps(
    size: int, spacing: float, erp_hw: tuple[int, int], stride: int, grid: str = "sphere"
):
    """Bilinear taps of the exact patch of every output row, for output column 0 (output
    pixels where ``grid`` puts them, :func:`~pano360.geometry.strided_lonlat_grid`).

    Returns:
        ``(rows, cols, weights)``, each (Ho, size * size, 4) on the CPU: the input row (folded
        onto the sphere) and column (in [0, W)) of the four bilinear corners of every patch
        pixel (row-major), and their weights (float64). Column j's patches are these shifted
        by ``stride * j`` columns.
    """
    # The patch is SphereConv2d's size x size tangent tap pattern (pole rule included).
    dirs = tangent_tap_directions((size, size), 1, spacing)
    centres = strided_lonlat_grid(erp_hw, stride, grid, dtype=torch.float64)[:, 0]  # column 0
    lonlat = tap_lonlat(dirs, centres)  # (Ho, K, 2)
    x, y = lonlat_to_pixel(lonlat, erp_hw).unbind(-1)
    rows, cols, weights = bilinear_corners(x, y, erp_hw)  # folded onto the sphere
    return rows, cols, weights


def _valid(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``layer`` without padding: the sphere's outputs come from whole patches."""
    if type(layer) is nn.Conv2d:
        return F.conv2d(x, layer.weight, layer.bias, layer.stride, 0, layer.dilation, layer.groups)
    if type(layer) is nn.MaxPool2d:
        return F.max_pool2d(x, layer.kernel_size, layer.stride, 0, layer.dilation)
    if type(layer) is nn.AvgPool2d:
        return F.avg_pool2d(x, layer.kernel_size, layer.stride, 0)
    return layer(x)


def _blocks(n_rows: int, wo: int, batch: int, chunk: int) -> Iterator[tuple[int, int, int, int]]:
    """(row start, row stop, column start, column stop) blocks of at most ``chunk`` patches."""
    if batch * wo <= chunk:
        step = max(1, chunk // (batch * wo))
        for r in range(0, n_rows, step):
            yield r, min(r + step, n_rows), 0, wo
    else:
        step = max(1, chunk // batch)
        for r in range(n_rows):
            for c in range(0, wo, step):
                yield r, r + 1, c, min(c + step, wo)


def _patch_elements(plan: list[StackLayer], upto: int, in_channels: int) -> int:
    """Largest activation of one patch through layers 0 .. upto (sizes the default chunk)."""
    n, c = plan[upto].size, in_channels
    largest = 2 * c * n * n  # the sampled patch and its bilinear accumulator
    for entry in plan[: upto + 1]:
        n = (n - entry.dilation * (entry.kernel - 1) - 1) // entry.stride + 1
        c = entry.out_channels or c
        largest = max(largest, c * n * n)
    return largest


def exact_patches(
    run: Callable[[torch.Tensor], torch.Tensor],
    erp: torch.Tensor,
    size: int,
    stride: int,
    rows: torch.Tensor,
    spacing: float,
    chunk: int,
    *,
    grid: str = "sphere",
    progress: bool = False,
    desc: str = "exact",
) -> torch.Tensor:
    """``run`` on the tangent patch of every output location of the given rows.

    Args:
        run: maps a batch of patches (N, C, size, size) to one value vector each, (N, K).
        erp: (B, C, H, W).
        size: patch side in input pixels.
        stride: the output's stride s; output (i, j) sits where ``grid`` puts it
            (:func:`~pano360.geometry.strided_lonlat_grid`): the ERP pixel centre (i, j) of the
            (H / s, W / s) grid, or input pixel (s i, s j).
        rows: (R,) output rows to compute.
        spacing: tap spacing at the patch centre, radians.
        chunk: at most this many patches per call of ``run``.

    Returns:
        (B, K, R, W / stride). Rows share one sampling pattern (computed once, cached), shifted
        by ``stride`` columns per output column.
    """
    b, c, h, w = erp.shape
    p, s = size, stride
    wo = w // s
    tap_rows, tap_cols, tap_weights = _row_taps(p, spacing, (h, w), s, grid)
    device = erp.device
    flat_src = erp.reshape(b, c, h * w)
    out = None
    blocks = list(_blocks(len(rows), wo, b, chunk))
    for r0, r1, c0, c1 in tqdm(blocks, desc=desc, disable=not progress):
        sel = rows[r0:r1].cpu()
        shift = s * torch.arange(c0, c1)[None, :, None]  # (1, nc, 1)
        patches = None
        for corner in range(4):
            # Flat input index of this corner for every (row, column, patch pixel).
            col = torch.remainder(tap_cols[sel][:, None, :, corner] + shift, w)
            flat = (tap_rows[sel][:, None, :, corner] * w + col).to(device)  # (nr, nc, K)
            wt = tap_weights[sel][:, None, :, corner].to(device=device, dtype=erp.dtype)
            term = flat_src[:, :, flat] * wt  # (B, C, nr, nc, K)
            patches = term if patches is None else patches + term
        nr, nc = r1 - r0, c1 - c0
        x = run(patches.permute(0, 2, 3, 1, 4).reshape(b * nr * nc, c, p, p))
        x = x.reshape(b, nr, nc, -1).permute(0, 3, 1, 2)
        if out is None:
            out = erp.new_empty(b, x.shape[1], len(rows), wo)
        out[:, :, r0:r1, c0:c1] = x
    return out


def exact_dense(
    model: nn.Module,
    erp: torch.Tensor,
    patch_size: int,
    stride: int,
    spacing: float,
    chunk: int | None = None,
    *,
    centre: int | None = None,
    grid: str = "sphere",
    progress: bool = False,
    desc: str = "exact",
) -> torch.Tensor:
    """Any dense model's exact output: at every output location, ``model`` on the P x P
    tangent patch centred there, its output pixel at the patch centre.

    Args:
        model: maps (N, C, P, P) to (N, K, P / s, P / s); run as it is (the caller sets eval
            mode and no_grad).
        erp: (B, C, H, W), H a multiple of ``stride``.
        patch_size: P, such that output pixel ``centre`` of the patch sits at its centre
            (checked by the callers).
        stride: the model's stride s.
        spacing: tap spacing at the patch centre, radians.
        chunk: patches per call of ``model``; None: about 2**23 input elements.
        centre: the index of the model's output pixel centred on the patch centre (default
            (P / s - 1) / 2, right when output m covers input pixels s m .. s m + s - 1).
        grid: where the output locations sit (:func:`exact_patches`).

    Returns:
        (B, K, H / s, W / s).
    """
    if centre is None:
        centre = (patch_size // stride - 1) // 2
    if chunk is None:
        chunk = max(1, _CHUNK_ELEMENTS // (4 * erp.shape[1] * patch_size * patch_size))

    def run(patches: torch.Tensor) -> torch.Tensor:
        return model(patches)[:, :, centre, centre]

    rows = torch.arange(erp.shape[-2] // stride)
    return exact_patches(
        run, erp, patch_size, stride, rows, spacing, chunk, grid=grid, progress=progress, desc=desc
    )


def _exact_spatial(
    stack: nn.Sequential,
    plan: list[StackLayer],
    upto: int,
    erp: torch.Tensor,
    rows: torch.Tensor,
    spacing: float,
    chunk: int | None,
    progress: bool,
) -> torch.Tensor:
    """Exact output of spatial layer ``upto`` at output ``rows``: (B, C, len(rows), W_l)."""
    entry = plan[upto]
    if chunk is None:
        chunk = max(1, _CHUNK_ELEMENTS // _patch_elements(plan, upto, erp.shape[1]))
    layers = list(stack)[: upto + 1]

    def run(x: torch.Tensor) -> torch.Tensor:
        for layer in layers:
            x = _valid(layer, x)
        return x.reshape(x.shape[0], -1)  # one output per patch ("valid" on its receptive field)

    return exact_patches(
        run, erp, entry.size, entry.total_stride, rows, spacing, chunk, progress=progress,
        desc=f"exact layer {upto}",
    )  # fmt: skip


def _matching(stack: nn.Sequential, erp: torch.Tensor) -> nn.Sequential:
    """``stack`` itself, or a copy on ``erp``'s dtype and device when its tensors differ."""
    tensors = [*stack.parameters(), *stack.buffers()]
    if all(t.device == erp.device and (t.dtype == erp.dtype or not t.is_floating_point())
           for t in tensors):  # fmt: skip
        return stack
    return copy.deepcopy(stack).to(device=erp.device, dtype=erp.dtype)


def _check_rows(rows, heights: dict[int, int]) -> list[int] | None:
    if rows is None:
        return None
    if isinstance(rows, torch.Tensor):
        rows = rows.tolist()
    rows = [rows] if isinstance(rows, int) else list(rows)
    lowest = min(heights.values())
    for r in rows:
        if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r < lowest:
            detail = ", ".join(f"layer {k}: {v}" for k, v in sorted(heights.items()))
            raise ValueRangeError(
                f"rows must be row indices valid at every requested layer (rows per layer: "
                f"{detail}), got {r!r}"
            )
    return rows


def exact_outputs(
    stack: nn.Sequential,
    erp: torch.Tensor,
    layers: int | Sequence[int] | None = None,
    rows: Sequence[int] | torch.Tensor | None = None,
    *,
    tap_spacing: float | None = None,
    chunk: int | None = None,
    progress: bool = False,
) -> list[torch.Tensor]:
    """The exact outputs of a conv stack's layers on an ERP image (SphConv's "Exact").

    Slow by design (the oracle and the source of distillation targets): every output location
    runs the stack on its own tangent patch. See the module docstring for the definition.

    Args:
        stack: an ``nn.Sequential`` of supported layers (module docstring), a network trained
            on perspective images. It is run in eval mode (its mode is restored afterwards) and
            never changed; a copy is used when its dtype or device differ from ``erp``'s.
        erp: (B, C, H, W) with W == 2H, float32 or float64, on any device; H must be a multiple
            of the total stride of the last requested layer.
        layers: index or indices into ``stack`` (negative counts from the end); None: every
            layer.
        rows: output rows to compute, the same indices at every requested layer (each at its
            own resolution); None: all rows.
        tap_spacing: angle between neighbouring patch pixels at the patch centre, radians;
            the tangent-plane pitch is tan(tap_spacing). Default: one input pixel at the
            equator, 2 pi / W (pi / 4 when W < 8), as :class:`pano360.nn.SphereConv2d`.
        chunk: at most this many patches go through the stack at once (memory bound); None:
            as many as keep the largest activation at about 2**23 elements.
        progress: show a progress bar (tqdm) per spatial layer.

    Returns:
        One tensor per requested layer, in the order asked: (B, C_l, H / S_l, W / S_l), or
        (B, C_l, len(rows), W / S_l) with ``rows``, S_l the layer's total stride
        (:func:`receptive_field`). Computed without autograd, in ``erp``'s dtype.

    Raises:
        TypeError: ``stack`` is not an nn.Sequential of supported layers, or ``erp`` not a
            tensor.
        ShapeError: ``erp`` is not (B, C, H, W) with W == 2H; H is not a multiple of a
            requested layer's total stride; C differs from the first conv's in_channels.
        ValueRangeError: bad ``layers``, ``rows``, ``tap_spacing`` or ``chunk``; see also
            :func:`plan_stack`.

    Convention:
        Output (i, j) of layer l is at the ERP pixel centre (i, j) of the (H / S_l, W / S_l)
        grid; patch pixel (a, b) is at tangent-plane point ((b - (P-1)/2) t, -(a - (P-1)/2) t)
        (x right, y up) of a camera aimed there with roll 0. Seam and poles as in
        :mod:`pano360.geometry.conventions`.

    Example:
        >>> conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
        >>> [tuple(t.shape) for t in exact_outputs(conv, torch.rand(1, 3, 8, 16), rows=[0, 7])]
        [(1, 4, 2, 16), (1, 4, 2, 16)]
    """
    plan = plan_stack(stack)
    check_erp(erp)
    if not erp.is_floating_point():
        raise TypeError(f"erp must be a floating-point tensor, got {erp.dtype}")
    indices = _layer_indices(layers, len(plan))
    _, c, h, w = erp.shape
    for entry in plan[: max(indices) + 1]:
        if type(stack[entry.index]) is nn.Conv2d:
            if stack[entry.index].in_channels != c:
                raise ShapeError(
                    f"erp must have {stack[entry.index].in_channels} channels for the stack's "
                    f"first conv, got {tuple(erp.shape)}"
                )
            break
    for i in indices:
        if h % plan[i].total_stride:
            raise ShapeError(
                f"erp height H must be a multiple of the total stride {plan[i].total_stride} of "
                f"layer {i}, got (H, W) = {(h, w)}"
            )
    heights = {i: h // plan[i].total_stride for i in indices}
    row_list = _check_rows(rows, heights)
    spacing = min(2 * math.pi / w, math.pi / 4) if tap_spacing is None else float(tap_spacing)
    if not 0 < spacing < math.pi / 2:
        raise ValueRangeError(f"tap_spacing must be in (0, pi/2) radians, got {tap_spacing}")
    if chunk is not None and (isinstance(chunk, bool) or int(chunk) != chunk or chunk < 1):
        raise ValueRangeError(f"chunk must be a positive number of patches, got {chunk!r}")

    run = _matching(stack, erp)
    modes = {m: m.training for m in run.modules()}
    run.eval()
    try:
        with torch.no_grad():
            return _compute(run, plan, erp, indices, row_list, spacing, chunk, progress)
    finally:
        for m, mode in modes.items():
            m.training = mode


def _compute(stack, plan, erp, indices, row_list, spacing, chunk, progress):
    results: dict[int, torch.Tensor] = {}
    wanted = set(indices)
    last = max(indices)
    # Spatial layers whose exact output is needed: those that a requested layer follows
    # through pointwise layers only.
    needed, spatial = set(), None
    for entry in plan[: last + 1]:
        spatial = entry.index if entry.kind != "pointwise" else spatial
        if entry.index in wanted:
            needed.add(spatial)
    current = None
    if None in needed:  # requested layers before any spatial layer act on the image itself
        current = erp if row_list is None else erp[:, :, row_list]
    for entry in plan[: last + 1]:
        if entry.kind != "pointwise":
            if entry.index in needed:
                n_rows = erp.shape[-2] // entry.total_stride
                rows = torch.tensor(row_list if row_list is not None else range(n_rows))
                current = _exact_spatial(
                    stack, plan, entry.index, erp, rows, spacing, chunk, progress
                )
            else:
                current = None
        elif current is not None:
            current = _valid(stack[entry.index], current)
        if entry.index in wanted:
            results[entry.index] = current
    return [results[i] for i in indices]
