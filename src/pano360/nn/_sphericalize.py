"""sphericalize(): turn a planar CNN into one that convolves, pads and pools on the sphere.

Every layer with a spatial extent is looked at once and ends up in one of three lists of a
:class:`SphericalizeReport`:

- ``replaced``: the layer now has a spherical version with the same parameters (same names, so
  ``state_dict`` keys do not change) and the same output shape;
- ``unchanged``: the layer behaves the same on the sphere as on the plane (a 1 x 1 convolution,
  pooling whose windows never leave the map, a layer that is already spherical);
- ``unsupported``: the layer would need a spherical version that does not exist (or cannot keep
  its output shape); it is left as it is, planar, and the reason says why.

Layers without a spatial extent (activations, normalisation, linear layers) are not reported.
"""

from __future__ import annotations

import copy
import inspect
import io
import itertools
import textwrap
import tokenize
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from torch import nn
from torch.nn.modules import conv as _conv
from torch.nn.modules import padding as _padding
from torch.nn.modules import pooling as _pooling

from .._core import check_choice
from ..geometry import MAP_GRIDS
from ._padding import SphericalPad2d
from ._pooling import SphericalAvgPool2d, SphericalMaxPool2d
from ._sphere_conv import SphereConv2d
from ._taps import TAP_PATTERNS

__all__ = ["SphericalizeReport", "sphericalize"]

#: Pad layers that become SphericalPad2d (exact types: a subclass may pad differently).
_PADS_2D = (
    nn.ZeroPad2d,
    nn.ConstantPad2d,
    nn.ReflectionPad2d,
    nn.ReplicationPad2d,
    nn.CircularPad2d,
)
_PAD_BASES = (
    _padding._ConstantPadNd,
    _padding._ReflectionPadNd,
    _padding._ReplicationPadNd,
    _padding._CircularPadNd,
)
#: Functions that, called in a custom module's own forward, read or write across the border.
_PLANAR_CALLS = frozenset(
    {
        "grid_sample",
        "pad",
        "conv2d",
        "conv_transpose2d",
        "interpolate",
        "upsample",
        "upsample_bilinear",
        "upsample_nearest",
        "max_pool2d",
        "avg_pool2d",
        "lp_pool2d",
        "adaptive_avg_pool2d",
        "adaptive_max_pool2d",
        "fractional_max_pool2d",
        "unfold",
        "fold",
    }
)
_FUNCTIONAL_PREFIXES = frozenset({"F", "functional", "torch", "nnf"})
_ROOT = "(model)"


@dataclass
class SphericalizeReport:
    """What :func:`sphericalize` did to each layer with a spatial extent.

    Attributes:
        replaced: ``(qualified name, old type, new type)`` for every layer swapped for its
            spherical version.
        unchanged: ``(qualified name, type, reason)`` for layers that behave the same on the
            sphere and were kept.
        unsupported: ``(qualified name, type, reason)`` for layers that stay planar because
            they have no spherical version; the model is not fully spherical while this list is
            not empty.

    Names are those of ``model.named_modules()``; the model itself is ``"(model)"``. Types are
    class names. ``print(report)`` shows one table.
    """

    replaced: list[tuple[str, str, str]] = field(default_factory=list)
    unchanged: list[tuple[str, str, str]] = field(default_factory=list)
    unsupported: list[tuple[str, str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        rows = [("replaced", name, old, f"-> {new}") for name, old, new in self.replaced]
        rows += [("unchanged", *entry) for entry in self.unchanged]
        rows += [("unsupported", *entry) for entry in self.unsupported]
        title = (
            f"sphericalize: {len(self.replaced)} replaced, {len(self.unchanged)} unchanged, "
            f"{len(self.unsupported)} unsupported"
        )
        if not rows:
            return title + " (no layer with a spatial extent)"
        header = ("status", "layer", "type", "new type / reason")
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(3)]
        lines = [title]
        for row in (header, *rows):
            cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
            lines.append("  ".join((*cells, row[3])).rstrip())
        return "\n".join(lines)


class _Verdict(NamedTuple):
    status: str  # "replace", "unchanged", "unsupported" or "" (not a spatial layer)
    detail: nn.Module | str | None = None  # the new module, or the reason
    recurse: bool = True  # look at the children


_NOT_SPATIAL = _Verdict("")


def sphericalize(
    model: nn.Module, taps: str = "tangent", inplace: bool = False, output_grid: str = "sphere"
) -> tuple[nn.Module, SphericalizeReport]:
    """A copy of ``model`` whose convolutions, padding and pooling work on the sphere.

    Made for CNNs trained on perspective images and run on ERP feature maps: every tangent-tap
    convolution reads an undistorted neighbourhood at every latitude, and nothing reads zeros
    past the seam or the poles. Parameters are kept as they are, so ``state_dict`` keys are
    unchanged and a checkpoint of ``model`` loads into the result.

    What becomes what (exact types only: a subclass may compute something else and is reported
    as unsupported):

    - ``nn.Conv2d`` with a kernel larger than 1 x 1 and "same" padding (``dilation * (k - 1) /
      2`` on each axis, or ``padding="same"``) becomes :class:`SphereConv2d` with the same
      ``weight`` and ``bias`` Parameters, whatever its ``padding_mode`` (zeros, reflect,
      replicate or circular all only say what lies past a border the sphere does not have).
      Other paddings change the map's size, which no spherical layer can keep, so those convs
      are unsupported (left planar), except in an ``nn.Sequential`` where a pad layer feeds a
      padding-0 conv and together they pad "same": the pair becomes ``nn.Identity`` and a
      SphereConv2d. Also unsupported: strides or dilations that differ along rows and columns,
      convs carrying hooks or extra parameters (weight norm, spectral norm, parametrizations).
    - A 1 x 1 conv with stride 1 is unchanged (it reads one pixel, wherever it is). A strided
      1 x 1 conv becomes a SphereConv2d with a 1 x 1 kernel, which samples the centre of each
      s x s block (see below), so that a strided shortcut stays aligned with a strided 3 x 3
      conv beside it (ResNet).
    - Grouped and depthwise convs (``groups`` up to the channel count, as in MobileNetV2's
      inverted residual blocks) are converted like the others, with the same ``groups``.
      BatchNorm, activations (ReLU, ReLU6, ...) and the additions of residual blocks work pixel
      by pixel: they need no spherical version and are not reported.
    - ``nn.ZeroPad2d``, ``nn.ConstantPad2d``, ``nn.ReflectionPad2d``, ``nn.ReplicationPad2d``
      and ``nn.CircularPad2d`` become :class:`SphericalPad2d` of the same size.
    - ``nn.MaxPool2d`` and ``nn.AvgPool2d`` with padding or ``ceil_mode=True`` become
      :class:`SphericalMaxPool2d` / :class:`SphericalAvgPool2d` (average windows are full, so
      ``count_include_pad`` no longer matters; ``divisor_override`` is unsupported). Without
      padding or ceil mode every window lies inside the map and the layer is unchanged.
    - Global adaptive pooling, nearest upsampling by an integer factor, pixel (un)shuffle and
      max unpooling are unchanged. Transposed, 1D and 3D convs, other adaptive pooling,
      interpolating upsampling, ``nn.Unfold`` / ``nn.Fold`` and lazy modules are unsupported.
    - A custom module whose own ``forward`` calls a planar function (``F.pad``,
      ``F.grid_sample``, ``F.conv2d``, ``F.interpolate``, ...) is named as unsupported (found by
      reading its source: a best effort); its child layers are converted all the same.

    Args:
        model: any ``nn.Module``.
        taps: "tangent" (the only one for now; "crown" raises, see below).
        inplace: change ``model`` itself (its converted layers keep the very same Parameter
            objects, so an optimizer built on ``model`` keeps working). If ``model`` is itself
            a layer that gets replaced, the new layer is returned and ``model`` is left as is.
            With ``inplace=False`` (the default) ``model`` is deep-copied first and left as is.
        output_grid: where strided convolutions put their outputs (see the note):
            ``"sphere"`` or ``"planar"``.

    Returns:
        ``(spherical model, report)``; ``print(report)`` lists every layer with a spatial
        extent as replaced, unchanged or unsupported, with the reasons.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: unknown ``taps`` or ``output_grid``, or ``taps="crown"``: a k x k kernel
            has no crown-tap counterpart until a projection of the weights onto rings x
            azimuths exists.

    Note:
        Input maps must be full panoramas with an even width at every spherical layer
        (normally W == 2H). Output shapes are those of the planar model. Where a strided conv
        puts its outputs is ``output_grid`` (:func:`pano360.geometry.strided_lonlat_grid`):
        with ``"sphere"`` at the centres of the ERP grid of (H/s, W/s) pixels (the centre of
        each s x s block, input coordinate ``s i + (s - 1) / 2``), with ``"planar"`` on input
        pixel ``s i`` as nn.Conv2d does. Pooling keeps torch's window positions
        (:mod:`pano360.nn._pooling`). For a pretrained network whose strided layers are
        same-padded convs (ResNet, MobileNetV2) use ``"planar"``: its maps then sit where the
        source network puts them, and every tap of a strided layer at the equator lands on an
        input pixel; on the sphere grid each one is read between four pixels, a blur that
        compounds over the strided layers (:mod:`pano360.nn._taps`). Even kernels with
        ``padding="same"`` are centred on the output pixel, not half a pixel off as in torch.
        Each SphereConv2d spaces its taps one pixel of its own input apart at the equator,
        so convs after a stride or a pool see the same relative neighbourhood as on the plane.

    Example:
        >>> import torch
        >>> net = nn.Sequential(
        ...     nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 2, 1)
        ... )
        >>> sph, report = sphericalize(net)
        >>> print(report)
        sphericalize: 1 replaced, 2 unchanged, 0 unsupported
        status     layer  type       new type / reason
        replaced   0      Conv2d     -> SphereConv2d
        unchanged  2      MaxPool2d  no padding: every window lies inside the map
        unchanged  3      Conv2d     1 x 1 kernel, stride 1: reads one pixel, needs no neighbours
        >>> sph(torch.rand(1, 3, 16, 32)).shape
        torch.Size([1, 2, 8, 16])
        >>> list(sph.state_dict()) == list(net.state_dict())
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_choice(taps, "taps", TAP_PATTERNS)
    if taps == "crown":
        raise ValueError(
            "taps='crown' cannot sphericalize: an nn.Conv2d's k x k weights do not load into "
            "crown taps (centre + rings x azimuths) without a projection of the kernel onto "
            "the crown, which is not available yet; use taps='tangent'"
        )
    if not inplace:
        model = copy.deepcopy(model)
    check_choice(output_grid, "output_grid", MAP_GRIDS)
    counts = Counter(id(m) for _, m in model.named_modules(remove_duplicate=False))
    walker = _Walker({"taps": taps, "output_grid": output_grid}, counts)
    return walker.convert(model, ""), walker.report


class _Walker:
    """Visits every module once (shared modules stay shared) and fills the report."""

    def __init__(self, conv_options: dict[str, str], counts: Counter) -> None:
        self.conv_options, self.counts = conv_options, counts
        self.memo: dict[int, nn.Module] = {}
        self.report = SphericalizeReport()

    def convert(self, module: nn.Module, name: str) -> nn.Module:
        if id(module) in self.memo:
            return self.memo[id(module)]
        verdict = _classify(module, self.conv_options)
        result = self._record(module, name, verdict)
        if verdict.recurse and result is module:
            self._convert_children(module, name)
        self.memo[id(module)] = result
        return result

    def _record(self, module: nn.Module, name: str, verdict: _Verdict) -> nn.Module:
        label, kind = name or _ROOT, type(module).__name__
        if verdict.status == "replace":
            self.report.replaced.append((label, kind, type(verdict.detail).__name__))
            return verdict.detail
        if verdict.status:
            getattr(self.report, verdict.status).append((label, kind, verdict.detail))
        return module

    def _convert_children(self, module: nn.Module, prefix: str) -> None:
        fused = self._fusable_pairs(module) if type(module) is nn.Sequential else {}
        for child_name, child in list(module._modules.items()):
            if child is None:
                continue
            qualified = f"{prefix}.{child_name}" if prefix else child_name
            if child_name in fused:
                new = self._record(child, qualified, fused[child_name])
                self.memo[id(child)] = new
            else:
                new = self.convert(child, qualified)
            if new is not child:
                setattr(module, child_name, new)

    def _fusable_pairs(self, seq: nn.Sequential) -> dict[str, _Verdict]:
        """Pad layer + padding-0 Conv2d that together pad "same": Identity + SphereConv2d."""
        fused: dict[str, _Verdict] = {}
        names = list(seq._modules)
        for pad_name, conv_name in itertools.pairwise(names):
            pad, conv = seq._modules[pad_name], seq._modules[conv_name]
            if not (
                type(pad) in _PADS_2D
                and type(conv) is nn.Conv2d
                and self.counts[id(pad)] == self.counts[id(conv)] == 1
                and conv.padding in ((0, 0), "valid")
                and conv.kernel_size != (1, 1)
            ):
                continue
            left, right, top, bottom = pad.padding
            if left != right or top != bottom:
                continue
            verdict = _classify_conv(conv, self.conv_options, padding=(top, left))
            if verdict.status == "replace":
                fused[pad_name] = _Verdict("replace", nn.Identity())
                fused[conv_name] = verdict
        return fused


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _classify(module: nn.Module, conv_options: dict[str, str]) -> _Verdict:
    """What to do with one module (its children are looked at separately); ``conv_options``:
    the SphereConv2d arguments of converted convs (taps, output_grid)."""
    kind = type(module)
    if kind.__module__.startswith("pano360.nn."):
        return _Verdict("unchanged", "a pano360.nn layer, already spherical", recurse=False)
    if isinstance(module, nn.modules.lazy.LazyModuleMixin) and module.has_uninitialized_params():
        return _Verdict("unsupported", "lazy module not initialised: run one forward pass first")
    if kind is nn.Conv2d:
        return _classify_conv(module, conv_options)
    if kind in _PADS_2D:
        if min(module.padding) < 0:
            return _Verdict("unsupported", f"negative padding {module.padding} crops the map")
        return _Verdict("replace", SphericalPad2d(tuple(module.padding)))
    if kind in (nn.MaxPool2d, nn.AvgPool2d):
        return _classify_pool(module)
    verdict = _classify_other(module)
    if verdict.status or kind.__module__.startswith(("torch.", "pano360.nn.")):
        return verdict
    calls = _planar_calls_in_forward(kind)
    if calls:
        reason = (
            f"its own forward calls {', '.join(calls)}: planar borders, not converted "
            "(check them by hand; its child layers are converted)"
        )
        return _Verdict("unsupported", reason)
    return _NOT_SPATIAL


def _classify_conv(conv: nn.Conv2d, conv_options: dict[str, str], padding=None) -> _Verdict:
    """Conv2d -> SphereConv2d when its padding is "same" (``padding`` overrides conv.padding)."""
    (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
    if conv._forward_hooks or conv._forward_pre_hooks or conv._backward_hooks:
        return _Verdict("unsupported", "has hooks, which a new layer would not carry over")
    if set(conv._parameters) != {"weight", "bias"} or conv._buffers:
        return _Verdict(
            "unsupported",
            f"parameters or buffers {sorted({*conv._parameters, *conv._buffers})} are not just "
            "weight and bias (weight or spectral norm?)",
        )
    if padding is None:
        padding = conv.padding
    if padding == "valid":
        padding = (0, 0)
    same = (dh * (kh - 1) / 2, dw * (kw - 1) / 2)
    is_same = padding == "same" or tuple(padding) == same
    pointwise = (kh, kw) == (1, 1)
    if pointwise and (sh, sw) == (1, 1) and is_same:
        return _Verdict("unchanged", "1 x 1 kernel, stride 1: reads one pixel, needs no neighbours")
    if sh != sw:
        return _Verdict("unsupported", f"stride {conv.stride} differs along rows and columns")
    if dh != dw and not pointwise:
        return _Verdict("unsupported", f"dilation {conv.dilation} differs along rows and columns")
    if not is_same:
        wanted = tuple(int(v) if v == int(v) else v for v in same)
        return _Verdict(
            "unsupported",
            f"padding {tuple(padding)} is not the 'same' padding {wanted}: the output is not a "
            "full panorama (left planar; spherical only where a spherical pad feeds it)",
        )
    new = SphereConv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=sh,
        dilation=1 if pointwise else dh,
        groups=conv.groups,
        bias=conv.bias is not None,
        **conv_options,
        device="meta",  # no memory: the Parameters of ``conv`` are moved in below
    )
    new.weight = conv.weight
    if conv.bias is not None:
        new.bias = conv.bias
    new.train(conv.training)
    return _Verdict("replace", new)


def _classify_pool(pool: nn.MaxPool2d | nn.AvgPool2d) -> _Verdict:
    if getattr(pool, "divisor_override", None):
        return _Verdict("unsupported", "divisor_override has no spherical version")
    if not any(_pair(pool.padding)) and not pool.ceil_mode:
        return _Verdict("unchanged", "no padding: every window lies inside the map")
    if isinstance(pool, nn.MaxPool2d):
        new = SphericalMaxPool2d(
            pool.kernel_size,
            pool.stride,
            pool.padding,
            pool.dilation,
            return_indices=pool.return_indices,
            ceil_mode=pool.ceil_mode,
        )
    else:
        new = SphericalAvgPool2d(pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode)
    new.train(pool.training)
    return _Verdict("replace", new)


def _classify_other(module: nn.Module) -> _Verdict:
    """Spatial torch layers that have no spherical version, or need none."""
    kind = type(module)
    if isinstance(module, _conv._ConvTransposeNd):
        return _Verdict("unsupported", "transposed convolution: no spherical version")
    if isinstance(module, nn.Conv2d):
        return _Verdict("unsupported", "subclass of nn.Conv2d: its forward may differ")
    if isinstance(module, _conv._ConvNd):
        return _Verdict("unsupported", "not a 2D convolution over (H, W)")
    if isinstance(module, _PAD_BASES):
        what = "subclass of a 2D pad layer" if isinstance(module, _PADS_2D) else "not a 2D pad"
        return _Verdict("unsupported", f"{what}: no spherical version")
    if isinstance(module, (_pooling._AdaptiveAvgPoolNd, _pooling._AdaptiveMaxPoolNd)):
        if kind in (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d) and set(
            _pair(module.output_size)
        ) == {1}:
            return _Verdict(
                "unchanged", "global pooling has no border (a plain mean, not area-weighted)"
            )
        return _Verdict("unsupported", "adaptive pooling windows are planar: no spherical version")
    if kind is nn.LPPool2d:
        if module.ceil_mode:
            return _Verdict("unsupported", "ceil_mode cuts the last window at the border")
        return _Verdict("unchanged", "no padding: every window lies inside the map")
    if isinstance(module, (_pooling._MaxPoolNd, _pooling._AvgPoolNd, _pooling._LPPoolNd)):
        pools_2d = (nn.MaxPool2d, nn.AvgPool2d, nn.LPPool2d)
        what = "subclass of a 2D pool" if isinstance(module, pools_2d) else "not a 2D pool"
        return _Verdict("unsupported", f"{what}: no spherical version")
    if isinstance(module, (nn.FractionalMaxPool2d, nn.FractionalMaxPool3d)):
        return _Verdict("unsupported", "random planar windows: no spherical version")
    if kind is nn.MaxUnpool2d:
        return _Verdict("unchanged", "writes to the indices its max pool recorded; no border")
    if kind in (nn.PixelShuffle, nn.PixelUnshuffle):
        return _Verdict("unchanged", "rearranges pixels within blocks; no border")
    if isinstance(module, nn.Upsample):
        scale = module.scale_factor
        integral = scale is not None and all(float(s).is_integer() for s in _pair(scale))
        if module.mode in ("nearest", "nearest-exact") and integral:
            return _Verdict("unchanged", "nearest upsampling by an integer factor has no border")
        return _Verdict(
            "unsupported",
            f"{module.mode!r} upsampling to a size or by a non-integer factor clamps at the "
            "border instead of wrapping the seam and crossing the poles",
        )
    if isinstance(module, (nn.Unfold, nn.Fold)):
        return _Verdict("unsupported", "planar patches (zero padding, no seam)")
    return _NOT_SPATIAL


def _planar_calls_in_forward(kind: type) -> list[str]:
    """Names of planar spatial functions called in ``kind.forward``'s source (best effort)."""
    forward = getattr(kind, "forward", None)
    if forward is None or getattr(forward, "__module__", "").startswith(("torch.", "pano360.nn.")):
        return []
    try:
        source = textwrap.dedent(inspect.getsource(forward))
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (OSError, TypeError, tokenize.TokenError, IndentationError):
        return []
    found: list[str] = []
    # Calls like F.pad(...) or pad(...), not self.pad(...) (a child layer, looked at by itself).
    for i, tok in enumerate(tokens[:-1]):
        if tok.type != tokenize.NAME or tok.string not in _PLANAR_CALLS:
            continue
        if tokens[i + 1].string != "(" or (i > 0 and tokens[i - 1].string == "def"):
            continue
        method = i > 0 and tokens[i - 1].string == "."
        if method and (i < 2 or tokens[i - 2].string not in _FUNCTIONAL_PREFIXES):
            continue
        if tok.string not in found:
            found.append(tok.string)
    return found
