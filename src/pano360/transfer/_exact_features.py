r"""Exact outputs of a stage of a deep backbone on ERP images, cached on disk.

The SphConv reference for a deep network (Su and Grauman, NIPS 2017): at every output location
of a chosen stage, the network from the input to that stage runs on the tangent-plane view
centred there, and the output pixel at the view's centre is kept. This is
:func:`~pano360.transfer.apply`'s ``exact`` strategy on :meth:`Backbone.stage_module
<pano360.models.backbones.Backbone.stage_module>`, with the patch set from the stage's receptive
field, and a cache: one evaluation costs a network pass per location.

Convention:
    :mod:`pano360.geometry.conventions`, and the patch of
    :func:`~pano360.transfer.exact_outputs`. Output (i, j) of a stage of stride s sits where the
    network itself puts it on its input (:func:`stage_grid`): a network centres output m on
    input pixel a + s m, a read off its layers; a = 0 (padded strided convs: ResNet,
    MobileNetV2) is the ``"planar"`` grid, input pixel (s i, s j); a = (s - 1) / 2 (VGG's 2 x 2
    pools) is the ``"sphere"`` grid, the pixel centre (i, j) of the (H / s, W / s) ERP grid
    (:func:`pano360.geometry.strided_lonlat_grid`). Its patch is P x P tangent-plane pixels
    centred on that direction (x right, y up, roll 0), tan(tap_spacing) apart, tap_spacing one
    input pixel at the equator (2 pi / W) by default. The patch spans a field of view of
    2 atan((P / 2) tan(tap_spacing)) edge to edge. The network's output pixel whose centre is
    the patch centre is kept (:func:`stage_patch_size`). So at the equator exact, the network
    run directly on the ERP and the sphericalized network on that grid
    (``sphericalize(output_grid=...)``) all describe the same directions.

Receptive field:
    :func:`stage_receptive_field` reads it off the network's graph (``torch.fx``): every
    convolution and pool widens it by dilation * (kernel - 1) times the stride so far; branches
    that are added or concatenated (residual blocks) take the widest. With a patch at least
    that large, padding at the patch border cannot reach the centre output: it is the network
    on the unbounded tangent plane.

Cache:
    One safetensors file per (model, stage, ERP size, patch, tap spacing, image) in
    ``cache_dir``, whose metadata holds a fingerprint of the stage's weights and architecture
    (:func:`weights_fingerprint`) and of the image. A file whose metadata does not match what is
    asked, or that cannot be read, is recomputed (with a warning) and replaced atomically;
    it is never used. Nothing is ever unpickled.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import operator
import warnings
from pathlib import Path

import safetensors
import safetensors.torch
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from .._core import ShapeError, ValueRangeError, check_choice, check_erp, check_int
from ..io import write_atomic
from ..models.backbones import Backbone, ImageNetNormalize
from ._apply import _EvalMode
from ._exact import POINTWISE_TYPES, exact_dense

__all__ = [
    "exact_features",
    "stage_grid",
    "stage_patch_size",
    "stage_receptive_field",
    "weights_fingerprint",
]

#: Version of the cache files' layout (part of their metadata).
CACHE_FORMAT = "pano360.exact_features/2"

_SPATIAL = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
# Functions and tensor methods that combine inputs pixel by pixel (residual additions, ...).
_PIXELWISE_FUNCTIONS = {
    operator.add, operator.mul, operator.sub, operator.truediv, torch.add, torch.mul, torch.cat,
    torch.relu, torch.sigmoid, torch.tanh, torch.clamp, F.relu, F.relu6, F.hardtanh, F.silu,
    F.gelu, F.hardswish, F.hardsigmoid, getattr,
}  # fmt: skip
_PIXELWISE_METHODS = {"add", "add_", "mul", "mul_", "relu", "relu_", "clamp", "contiguous", "size"}


class _LeafTracer(torch.fx.Tracer):
    # Modules without children are leaves: their type says what they do to positions.
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return next(m.children(), None) is None or super().is_leaf_module(m, qualname)


def _pair(value, what: str) -> int:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if pair[0] != pair[1]:
        raise ValueRangeError(f"{what} must be the same along rows and columns, got {value!r}")
    return int(pair[0])


def _traced_geometry(model: nn.Module) -> tuple[int, int, float]:
    """(receptive field, total stride, start) of a dense model, from its ``torch.fx`` graph:
    output m is centred on input coordinate start + stride * m (pixel centres at integers)."""
    graph = _LeafTracer().trace(model)
    modules = dict(model.named_modules())
    geometry: dict[torch.fx.Node, tuple[int, int, float]] = {}
    result = None
    for node in graph.nodes:
        inputs = [geometry[a] for a in node.all_input_nodes if a in geometry]
        if node.op == "placeholder":
            geometry[node] = (1, 1, 0.0)
            continue
        if node.op == "get_attr" or not inputs:
            continue
        size = max(g[0] for g in inputs)
        grids = {g[1:] for g in inputs}
        if len(grids) > 1:
            raise ValueRangeError(
                f"{node.name} combines maps on different grids (stride, start) {sorted(grids)}"
            )
        ((jump, start),) = grids
        if node.op == "call_module":
            layer = modules[node.target]
            what = f"layer {node.target!r} ({type(layer).__name__})"
            if type(layer) in _SPATIAL:
                k = _pair(layer.kernel_size, f"{what} kernel_size")
                s = _pair(layer.stride, f"{what} stride")
                d = _pair(getattr(layer, "dilation", 1), f"{what} dilation")
                pad = layer.padding
                if isinstance(pad, str):  # "valid" or "same" (stride 1 only)
                    pad = 0 if pad == "valid" else d * (k - 1) // 2
                pad = _pair(pad, f"{what} padding")
                start += jump * (d * (k - 1) / 2 - pad)
                size, jump = size + d * (k - 1) * jump, jump * s
            elif not isinstance(layer, (*POINTWISE_TYPES, ImageNetNormalize)):
                raise TypeError(
                    f"{what} is not supported: a receptive field is read through Conv2d, "
                    "MaxPool2d, AvgPool2d and pointwise layers"
                )
        elif node.op == "call_function" and node.target not in _PIXELWISE_FUNCTIONS:
            raise TypeError(f"function {node.target!r} is not supported in a receptive field")
        elif node.op == "call_method" and node.target not in _PIXELWISE_METHODS:
            raise TypeError(f"method {node.target!r} is not supported in a receptive field")
        geometry[node] = (size, jump, start)
        if node.op == "output":
            result = (size, jump, start)
    if result is None:
        raise TypeError("the model's output does not depend on its input")
    return result


def stage_receptive_field(model: Backbone, stage: str) -> tuple[int, int]:
    """Receptive field and stride of a backbone's stage, in input pixels.

    Args:
        model: a backbone (:class:`pano360.models.backbones.Backbone`).
        stage: one of ``model.stages``.

    Returns:
        ``(size, stride)``: output (i, j) of the stage depends on at most a size x size window
        of input pixels, and neighbouring outputs are ``stride`` pixels apart.

    Raises:
        TypeError: ``model`` is not a Backbone, or holds a layer whose effect on positions is
            unknown (the message names it).
        ValueError: unknown ``stage``.

    Example:
        >>> from pano360.models import create_model
        >>> model = create_model("mobilenet_v2")
        >>> [stage_receptive_field(model, s) for s in model.stages]
        [(19, 4), (59, 8), (267, 16), (491, 32)]
    """
    _check_backbone(model, stage)
    return _traced_geometry(model.stage_module(stage))[:2]


def stage_grid(model: Backbone, stage: str) -> str:
    """Where a backbone's stage puts its outputs on its input: ``"planar"`` (output (i, j) on
    input pixel (s i, s j): padded strided convs, as in ResNet and MobileNetV2) or ``"sphere"``
    (at the centre of each s x s block: VGG's 2 x 2 pools); see
    :func:`pano360.geometry.strided_lonlat_grid`.

    Raises:
        TypeError, ValueError: see :func:`stage_receptive_field`.
        ValueRangeError: the stage centres its outputs elsewhere (the message says where).

    Example:
        >>> from pano360.models import create_model
        >>> stage_grid(create_model("mobilenet_v2"), "features.18")
        'planar'
        >>> stage_grid(create_model("vgg16"), "features.30")
        'sphere'
    """
    _check_backbone(model, stage)
    _, stride, start = _traced_geometry(model.stage_module(stage))
    if start == 0:
        return "planar"
    if start == (stride - 1) / 2:
        return "sphere"
    raise ValueRangeError(
        f"stage {stage!r} centres output m on input pixel {start:g} + {stride} m, on neither "
        f"grid of pano360.geometry.MAP_GRIDS (0 + s m or (s - 1) / 2 + s m)"
    )


def stage_patch_size(model: Backbone, stage: str, max_size: int | None = None) -> int:
    """The default exact patch side of a stage: the smallest that holds its receptive field and
    has an output pixel's centre at the patch centre (the network's output there is the exact
    output), or the largest such side not above ``max_size`` when that is smaller.

    Output m of the stage is centred on input coordinate a + s m (s the stride, a read off
    the graph: 0 for padded 3 x 3 strided convs, (s - 1) / 2 for VGG's 2 x 2 pools), so the
    sides are P = 2 (a + s c) + 1 for c = 0, 1, ..., output c sitting at the patch centre.

    Raises:
        TypeError, ValueError: see :func:`stage_receptive_field`.
        ValueRangeError: ``max_size`` below the smallest such side.

    Example:
        >>> from pano360.models import create_model
        >>> model = create_model("mobilenet_v2")
        >>> stage_patch_size(model, "features.18"), stage_patch_size(model, "features.18", 224)
        (513, 193)
    """
    _check_backbone(model, stage)
    size, stride, start = _traced_geometry(model.stage_module(stage))
    c = max(0, math.ceil(((size - 1) / 2 - start) / stride))
    if max_size is not None:
        check_int(max_size, "max_size", lo=1)
        fits = math.floor(((max_size - 1) / 2 - start) / stride)
        if fits < 0:
            raise ValueRangeError(
                f"max_size must be at least {round(2 * start + 1)} for stage {stage!r}, "
                f"got {max_size}"
            )
        c = min(c, fits)
    return round(2 * (start + stride * c) + 1)


def _patch_centre(model: Backbone, stage: str, patch_size: int) -> int:
    """The stage's output index at the centre of a ``patch_size`` patch (ValueRangeError when
    no output pixel is centred there)."""
    _, stride, start = _traced_geometry(model.stage_module(stage))
    c = ((patch_size - 1) / 2 - start) / stride
    if c < 0 or c != int(c):
        sides = ", ".join(str(round(2 * (start + stride * k) + 1)) for k in range(4))
        raise ValueRangeError(
            f"patch_size must put an output pixel of stage {stage!r} at the patch centre "
            f"({sides}, ... pixels), got {patch_size}"
        )
    return int(c)


def weights_fingerprint(module: nn.Module) -> str:
    """sha256 (hex) of a module's architecture (``repr``) and ``state_dict`` (names, dtypes,
    shapes and values): what an exact output depends on besides the image.

    Example:
        >>> a, b = nn.Conv2d(3, 4, 3), nn.Conv2d(3, 4, 3)
        >>> fingerprint = weights_fingerprint(a)
        >>> fingerprint == weights_fingerprint(a), fingerprint == weights_fingerprint(b)
        (True, False)
    """
    digest = hashlib.sha256(repr(module).encode())
    for name, t in module.state_dict().items():
        t = t.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _image_fingerprint(image: torch.Tensor) -> str:
    t = image.detach().cpu().contiguous()
    digest = hashlib.sha256(f"{t.dtype}:{tuple(t.shape)}".encode())
    digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _check_backbone(model, stage) -> None:
    if not isinstance(model, Backbone):
        raise TypeError(
            f"model must be a pano360.models.backbones.Backbone, got {type(model).__name__}"
        )
    check_choice(stage, "stage", tuple(model.stages))


def exact_features(
    model: Backbone,
    erp: torch.Tensor,
    stage: str,
    *,
    patch_size: int | None = None,
    tap_spacing: float | None = None,
    chunk: int | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """The exact output of a backbone's stage on ERP images (SphConv's "Exact").

    Slow by nature: every output location runs the network up to ``stage`` on its own tangent
    patch (module docstring), in batches of patches; rows share one sampling pattern.

    Args:
        model: a backbone (:class:`pano360.models.backbones.Backbone`); run in eval mode (its
            mode is restored), never changed.
        erp: (B, 3, H, W) RGB in [0, 1] with W == 2H, H a multiple of the stage's stride.
        stage: one of ``model.stages``.
        patch_size: the patch side P in input pixels, one that puts an output pixel's centre
            at the patch centre (:func:`stage_patch_size`); default the smallest that holds the
            whole receptive field.
        tap_spacing: radians between patch pixels at the patch centre (default 2 pi / W).
        chunk: patches per forward pass (default: about 2**23 input elements).
        cache_dir: a folder for cache files (created if missing); None: no cache.
        progress: show a progress bar (tqdm) per image computed.

    Returns:
        (B, C_s, H / s, W / s) on the stage's own grid (:func:`stage_grid`), computed without
        autograd in ``erp``'s dtype.

    Raises:
        TypeError: ``model`` is not a Backbone, or ``erp`` not a floating-point tensor.
        ValueError: unknown ``stage``.
        ShapeError: ``erp`` is not (B, 3, H, W) with W == 2H, or H is not a multiple of the
            stage's stride.
        ValueRangeError: a ``patch_size`` with no output pixel centred in the patch; bad
            ``tap_spacing`` or ``chunk``; a stage on neither grid (:func:`stage_grid`).

    Example:
        >>> from pano360.models import create_model
        >>> model = create_model("mobilenet_v2")
        >>> exact_features(model, torch.rand(1, 3, 16, 32), "features.3").shape
        torch.Size([1, 24, 4, 8])
    """
    _check_backbone(model, stage)
    check_erp(erp)
    if not erp.is_floating_point():
        raise TypeError(f"erp must be a floating-point tensor, got {erp.dtype}")
    b, c, h, w = erp.shape
    if c != 3:
        raise ShapeError(f"erp must be RGB (B, 3, H, W), got {tuple(erp.shape)}")
    stride = model.stages[stage]
    if h % stride:
        raise ShapeError(
            f"erp height H must be a multiple of the stride {stride} of stage {stage!r}, "
            f"got (H, W) = {(h, w)}"
        )
    if patch_size is None:
        patch_size = stage_patch_size(model, stage)
    check_int(patch_size, "patch_size", lo=1)
    centre = _patch_centre(model, stage, patch_size)
    grid = stage_grid(model, stage)
    spacing = min(2 * math.pi / w, math.pi / 4) if tap_spacing is None else float(tap_spacing)
    if not 0 < spacing < math.pi / 2:
        raise ValueRangeError(f"tap_spacing must be in (0, pi/2) radians, got {tap_spacing}")
    check_int(chunk, "chunk", lo=1, optional=True)

    network = model.stage_module(stage)
    if any(t.device != erp.device or (t.is_floating_point() and t.dtype != erp.dtype)
           for t in [*network.parameters(), *network.buffers()]):  # fmt: skip
        network = copy.deepcopy(network).to(device=erp.device, dtype=erp.dtype)
    key = None
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        key = {
            "format": CACHE_FORMAT,
            "model": type(model).__name__,
            "stage": stage,
            "erp_hw": f"{h}x{w}",
            "grid": grid,
            "patch_size": str(patch_size),
            "tap_spacing": float(spacing).hex(),
            "dtype": str(erp.dtype),
            "weights": weights_fingerprint(network),
        }
    outputs = []
    with _EvalMode(network) as net, torch.no_grad():
        for i in range(b):
            image = erp[i : i + 1]
            path = meta = None
            if key is not None:
                meta = {**key, "image": _image_fingerprint(image)}
                # Named by what is asked, not by the weights: a file made with other weights
                # is found, checked and replaced.
                asked = {k: v for k, v in meta.items() if k != "weights"}
                tag = hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()[:16]
                path = cache_dir / f"{key['model']}-{stage}-{w}x{h}-p{patch_size}-{tag}.safetensors"
                cached = _read_cache(path, meta)
                if cached is not None:
                    outputs.append(cached.to(erp.device))
                    continue
            out = exact_dense(
                net, image, patch_size, stride, spacing, chunk, centre=centre, grid=grid,
                progress=progress, desc=f"exact {stage} ({i + 1}/{b})",
            )  # fmt: skip
            if path is not None:
                data = safetensors.torch.save({"exact": out.cpu().contiguous()}, metadata=meta)
                write_atomic(path, lambda f, data=data: f.write(data))
            outputs.append(out)
    return torch.cat(outputs)


def _read_cache(path: Path, meta: dict[str, str]) -> torch.Tensor | None:
    """The cached tensor when ``path`` exists and its metadata is ``meta``; otherwise None (a
    warning says why an existing file is not used)."""
    if not path.exists():
        return None
    try:
        with safetensors.safe_open(str(path), "pt") as f:
            found = f.metadata() or {}
            tensor = f.get_tensor("exact") if found == meta else None
    except (OSError, safetensors.SafetensorError) as e:
        warnings.warn(f"exact features: recomputing {path}: unreadable ({e})", stacklevel=3)
        return None
    if tensor is None:
        differ = sorted(k for k in meta.keys() | found.keys() if meta.get(k) != found.get(k))
        warnings.warn(
            f"exact features: recomputing {path}: made for other {', '.join(differ)}",
            stacklevel=3,
        )
    return tensor
