r"""Layer-wise distillation of a perspective conv stack into spherical layers (SphConv).

Su and Grauman (NIPS 2017, "Learning spherical convolution for fast features from 360°
imagery") transfer a CNN trained on perspective photos to ERP images without new labels: each
convolution becomes a :class:`pano360.nn.RowUntiedConv2d` (a kernel per row, wider towards the
poles) trained so that the spherical network reproduces the source network's *exact* outputs
(:func:`pano360.transfer.exact_outputs`: the network applied to the tangent patch around every
location), layer by layer, on unlabelled panoramas. Once trained, one pass over the ERP costs
about as much as the source network on the same image.

How it trains (:func:`distill`):

- The student (:func:`build_student`) has one layer per layer of the stack, at the same index:
  convolutions become RowUntiedConv2d initialised from their weights (so it starts as the
  zero-shot spherical network :func:`build_spherical`, tangent-plane SphereConv2d layers),
  pools become spherical pools on the ERP grid, pointwise layers are copied.
- Layer-wise epochs: every conv layer c trains against target = the exact output of layer c
  (before its activation), loss = MSE (optionally weighted by the pixels' solid angle), on
  ``rows_per_image`` output rows per image drawn one per latitude stratum, so the poles get as
  many rows as the equator. Its input is exact too: by default (``inputs="conv"``) the exact
  output of the previous conv (the image for the first) passed through the student's own
  layers in between (activation, spherical pool), so that a conv after a pool learns from the
  pooled maps it will be given; ``inputs="layer"`` takes the exact output of layer c - 1 itself
  (SphConv's wording). Only the rows needed are computed, exact inputs included. All conv
  layers train in the same epochs: their inputs are exact, so they do not depend on each other
  (Adam treats every parameter on its own, so summing their losses is the same as training
  them one after the other). The first conv, when it reads the image (through affine layers
  at most) and has untied rows, is exact from the start and is left as it is.
- Optional end-to-end fine-tuning epochs: the whole student on the image against the exact
  output of the last layer.
- Adam; the learning rate decays to 0 along a cosine over each phase's steps.

Runs are deterministic: epoch e of seed s draws from its own generator (``SeedSequence([s, e])``)
and computes the same exact targets, so a run killed at any point and resumed restarts its
interrupted epoch from the checkpoint of the previous one and ends with the same weights as an
uninterrupted run.

Output folder (``out_dir``):
    ``distill.json`` (config, fingerprints of the stack and the images, completed epochs,
    history; the commit point, written last and atomically), ``checkpoint-NNNN.safetensors``
    (student and optimizer state after epoch NNNN), and when done ``student.safetensors`` (the
    distilled weights, :func:`load_student`). Tensors are only ever stored as safetensors, never
    pickled. An existing folder is resumed only when its run matches (same config, stack and
    images); anything else there is an error, never overwritten.

Convention:
    :mod:`pano360.geometry.conventions`. Layer l's output is the ERP grid of
    (H / S_l, W / S_l) pixels, S_l the stack's total stride up to layer l; latitude bands are
    given in radians as ``(low, high)`` bounds on |lat|.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .._core import (
    OutputExistsError,
    ShapeError,
    ValueRangeError,
    create_model,
    list_models,
)
from ..data import write_atomic
from ..geometry import erp_lonlat_grid, pixel_solid_angle
from ..nn import RowUntiedConv2d, SphereConv2d, SphericalAvgPool2d, SphericalMaxPool2d
from ._exact import StackLayer, _matching, exact_outputs, plan_stack

__all__ = [
    "LAT_BANDS",
    "DistillConfig",
    "build_spherical",
    "build_student",
    "distill",
    "distillable_models",
    "layer_rmse",
    "load_student",
    "model_stack",
]

#: Default latitude bands of :func:`layer_rmse`: |lat| in [0, 30), [30, 60), [60, 85) degrees,
#: in radians.
LAT_BANDS: tuple[tuple[float, float], ...] = (
    (0.0, math.radians(30)),
    (math.radians(30), math.radians(60)),
    (math.radians(60), math.radians(85)),
)

# Pointwise layers that are affine maps in eval mode (they commute with bilinear sampling).
_AFFINE = (nn.Conv2d, nn.BatchNorm2d, nn.Identity, nn.Dropout, nn.Dropout2d)

#: Where a conv's layer-wise training input comes from (:class:`DistillConfig.inputs`).
STAGE_INPUTS: tuple[str, ...] = ("conv", "layer")

_FORMAT = "pano360.transfer.distill"
_VERSION = 1
_RUN_FILE = "distill.json"
_STUDENT_FILE = "student.safetensors"


@dataclass(frozen=True)
class DistillConfig:
    """How :func:`distill` trains. Every field takes part in deciding whether a run resumes.

    Attributes:
        epochs: layer-wise epochs (every conv layer against exact inputs and targets); one
            epoch is one pass over the images.
        finetune_epochs: end-to-end epochs after them (the whole student against the exact
            output of the last layer); 0 skips fine-tuning.
        rows_per_image: output rows drawn per image, layer and step, one per latitude stratum
            (all rows when a layer has fewer).
        batch_size: images per step.
        lr: Adam's initial learning rate in the layer-wise epochs (it decays to 0 along a
            cosine over their steps).
        finetune_lr: the same for the fine-tuning epochs.
        row_group_size: output rows per RowUntiedConv2d kernel (1: every row untied, as in
            SphConv; None: the parameter-budget default of RowUntiedConv2d). Capped at each
            layer's number of rows.
        area_weighted: weight each row's squared error by its pixels' solid angle (the error
            over the sphere) instead of equally (the error per row, which favours the poles).
        inputs: what a conv trains on in the layer-wise epochs. "conv": the exact output of
            the previous conv (the image for the first), passed through the student's own
            layers in between (activations, spherical pools), so the conv learns from what it
            will be given, its pooled input included. "layer": the exact output of the layer
            just before it (the image for layer 0), SphConv's reading.
        tap_spacing: radians between neighbouring pixels of the exact patches at their centre;
            None: one input pixel at the equator, 2 pi / W.
        seed: seeds the image order and the rows drawn (the student starts from the stack's
            weights, so nothing else is random).
        chunk: patches per pass through the stack when computing exact outputs (None:
            :func:`~pano360.transfer.exact_outputs`'s memory-bounded default).

    Raises:
        ValueRangeError: a field out of range (checked on construction).
    """

    epochs: int = 10
    finetune_epochs: int = 0
    rows_per_image: int = 8
    batch_size: int = 1
    lr: float = 1e-3
    finetune_lr: float = 1e-4
    row_group_size: int | None = 1
    area_weighted: bool = False
    inputs: str = "conv"
    tap_spacing: float | None = None
    seed: int = 0
    chunk: int | None = None

    def __post_init__(self) -> None:
        def whole(name: str, minimum: int, optional: bool = False) -> None:
            v = getattr(self, name)
            if optional and v is None:
                return
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                kind = "a positive" if minimum == 1 else "a non-negative"
                raise ValueRangeError(f"{name} must be {kind} integer, got {v!r}")

        whole("epochs", 0)
        whole("finetune_epochs", 0)
        whole("rows_per_image", 1)
        whole("batch_size", 1)
        whole("row_group_size", 1, optional=True)
        whole("seed", 0)
        whole("chunk", 1, optional=True)
        if self.epochs + self.finetune_epochs < 1:
            raise ValueRangeError("epochs + finetune_epochs must be at least 1, got 0")
        for name in ("lr", "finetune_lr"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < math.inf:
                raise ValueRangeError(f"{name} must be a positive finite number, got {v!r}")
        if self.inputs not in STAGE_INPUTS:
            raise ValueRangeError(
                f"inputs must be one of {', '.join(map(repr, STAGE_INPUTS))}, got {self.inputs!r}"
            )
        if not isinstance(self.area_weighted, bool):
            raise ValueRangeError(f"area_weighted must be a bool, got {self.area_weighted!r}")
        t = self.tap_spacing
        if t is not None and (isinstance(t, bool) or not isinstance(t, int | float)
                              or not 0 < t < math.pi / 2):  # fmt: skip
            raise ValueRangeError(f"tap_spacing must be in (0, pi/2) radians or None, got {t!r}")


# --- building the spherical networks ------------------------------------------------------------


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
    """The spherical student of a conv stack, ready for :func:`distill`.

    Layer for layer (same names and indices): every spatial ``nn.Conv2d`` becomes
    :meth:`pano360.nn.RowUntiedConv2d.from_conv` at its input's resolution, pools become
    :class:`~pano360.nn.SphericalMaxPool2d` / :class:`~pano360.nn.SphericalAvgPool2d` whose
    outputs sit on the ERP grid, pointwise layers (activations, 1 x 1 convs, ...) are copied.
    With ``row_group_size=1`` it starts equal to :func:`build_spherical` (the zero-shot
    spherical network), and its first conv equals the exact output.

    Args:
        stack: an ``nn.Sequential`` conv stack (see :mod:`pano360.transfer._exact`); not
            changed.
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
    if row_group_size is not None and (
        isinstance(row_group_size, bool) or not isinstance(row_group_size, int)
        or row_group_size < 1
    ):  # fmt: skip
        raise ValueRangeError(
            f"row_group_size must be a positive integer or None, got {row_group_size!r}"
        )

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


# --- row-restricted evaluation of a RowUntiedConv2d ---------------------------------------------


def _fold_rows(rows: torch.Tensor, h: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unfolded rows (past a pole) -> (row on the sphere, whether on the opposite meridian)."""
    flipped = torch.zeros_like(rows, dtype=torch.bool)
    while bool(((rows < 0) | (rows >= h)).any()):
        past = (rows < 0) | (rows >= h)
        rows = torch.where(rows < 0, -1 - rows, torch.where(rows >= h, 2 * h - 1 - rows, rows))
        flipped = flipped ^ past
    return rows, flipped


def _group_of(layer: RowUntiedConv2d, rows: torch.Tensor) -> torch.Tensor:
    starts = torch.tensor([start for start, _ in layer.row_groups])
    return torch.searchsorted(starts, rows, right=True) - 1


def _input_rows(layer: RowUntiedConv2d, rows: torch.Tensor) -> torch.Tensor:
    """Sorted input rows that output ``rows`` of ``layer`` read."""
    needed = []
    for g in _group_of(layer, rows).unique().tolist():
        sel = rows[_group_of(layer, rows) == g]
        r0 = layer.offsets[g][0]
        rh = layer.weights[g].shape[2]
        unfolded = layer.stride * sel[:, None] + r0 + torch.arange(rh)
        needed.append(_fold_rows(unfolded, layer.erp_hw[0])[0].flatten())
    return torch.cat(needed).unique()


def _rows_forward(layer: RowUntiedConv2d, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``layer(x)[:, :, rows]``, reading only the input rows :func:`_input_rows` names.

    Follows the kernel layout RowUntiedConv2d documents: weights[g][..., a, b] weighs the input
    pixel at offset (offsets[g][0] + a, offsets[g][1] + b) from the base pixel (s i, s j) of
    output (i, j), rows past a pole read on the mirrored row, W / 2 columns on.
    """
    b, c, h, w = x.shape
    s, wo = layer.stride, layer.out_hw[1]
    flat_x = x.reshape(b, c, h * w)
    groups = _group_of(layer, rows)
    pieces = []
    for g in groups.unique().tolist():
        where = (groups == g).nonzero().flatten()
        r0, q0 = layer.offsets[g]
        kernel = layer.weights[g]
        rh, rw = kernel.shape[2:]
        src, flipped = _fold_rows(s * rows[where][:, None] + r0 + torch.arange(rh), h)
        cols = q0 + torch.arange(s * (wo - 1) + rw)
        col = torch.remainder(cols[None, None, :] + flipped[..., None] * (w // 2), w)
        flat = (src[..., None] * w + col).to(x.device)  # (n, rh, n_cols)
        band = flat_x[:, :, flat].transpose(1, 2).reshape(b * len(where), c, rh, -1)
        y = F.conv2d(band, kernel, layer.bias, stride=s, groups=layer.groups)
        pieces.append((where, y.reshape(b, len(where), -1, wo).transpose(1, 2)))
    out = torch.cat([y for _, y in pieces], dim=2)
    order = torch.cat([where for where, _ in pieces])
    return out[:, :, torch.argsort(order).to(out.device)]


# --- data, fingerprints and the run folder ------------------------------------------------------


class _Images:
    """Unlabelled ERP images: a (N, C, H, W) tensor or a sequence of (C, H, W) / (1, C, H, W)."""

    def __init__(self, images, plan: list[StackLayer], in_channels: int | None) -> None:
        if isinstance(images, torch.Tensor):
            if images.ndim != 4:
                raise ShapeError(f"images must be (N, C, H, W), got {tuple(images.shape)}")
        elif not isinstance(images, Sequence) or isinstance(images, str | bytes):
            raise TypeError(
                f"images must be a tensor (N, C, H, W) or a sequence of (C, H, W) tensors, got "
                f"{type(images).__name__}"
            )
        if len(images) == 0:
            raise ValueRangeError("images must hold at least one ERP image, got none")
        self.images = images
        first = self._get(0, None)
        self.shape = tuple(first.shape)
        c, h, w = self.shape
        if w != 2 * h:
            raise ShapeError(f"images must be ERP images (W == 2H), got (C, H, W) = {self.shape}")
        self.erp_hw = _check_erp_hw(plan, (h, w))
        if in_channels is not None and c != in_channels:
            raise ShapeError(
                f"images must have {in_channels} channels for the stack's first conv, got "
                f"(C, H, W) = {self.shape}"
            )
        self.dtype, self.device = first.dtype, first.device

    def _get(self, index: int, shape: tuple | None) -> torch.Tensor:
        img = self.images[index]
        if not isinstance(img, torch.Tensor) or not img.is_floating_point():
            what = img.dtype if isinstance(img, torch.Tensor) else type(img).__name__
            raise TypeError(f"images[{index}] must be a floating-point tensor, got {what}")
        if img.ndim == 4 and img.shape[0] == 1:
            img = img[0]
        if img.ndim != 3 or (shape is not None and tuple(img.shape) != shape):
            raise ShapeError(
                f"images[{index}] must be {shape or '(C, H, W)'}, got {tuple(img.shape)}"
            )
        return img

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self._get(index, self.shape).to(device=self.device, dtype=self.dtype)

    def batch(self, indices: list[int]) -> torch.Tensor:
        return torch.stack([self[i] for i in indices])

    def fingerprint(self) -> str:
        digest = hashlib.sha256(repr((len(self), self.shape, str(self.dtype))).encode())
        for i in range(len(self)):
            digest.update(self[i].detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()


def _stack_fingerprint(stack: nn.Sequential) -> str:
    digest = hashlib.sha256()
    for name, layer in stack.named_children():
        digest.update(f"{name}:{layer!r}".encode())
    for key, t in stack.state_dict().items():
        digest.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _first_in_channels(stack: nn.Sequential) -> int | None:
    for layer in stack:
        if type(layer) is nn.Conv2d:
            return layer.in_channels
    return None


def _jsonable(value):
    return json.loads(json.dumps(value))


def _write_json(path: Path, record: dict) -> None:
    data = (json.dumps(record, indent=1) + "\n").encode()
    write_atomic(path, lambda f: f.write(data), overwrite=True)


def _write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict) -> None:
    data = safetensors.torch.save(
        {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
        metadata={k: str(v) for k, v in metadata.items()},
    )
    write_atomic(path, lambda f: f.write(data), overwrite=True)


def _read_run(out_dir: Path) -> dict | None:
    path = out_dir / _RUN_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise OutputExistsError(
            f"out_dir '{out_dir}' holds an unreadable {_RUN_FILE} ({e}); it is not a distill "
            "run this version can resume: choose another out_dir"
        ) from None
    if not isinstance(record, dict) or record.get("format") != _FORMAT:
        raise OutputExistsError(
            f"out_dir '{out_dir}' holds a {_RUN_FILE} that is not a pano360 distill run; "
            "choose another out_dir"
        )
    if record.get("version") != _VERSION:
        raise OutputExistsError(
            f"out_dir '{out_dir}' holds a distill run of format version "
            f"{record.get('version')}, this pano360 writes version {_VERSION}"
        )
    return record


def _differences(record: dict, config: dict, fingerprint: dict) -> list[str]:
    diffs = []
    saved = record.get("config", {})
    for key in sorted(set(saved) | set(config)):
        if saved.get(key) != config.get(key):
            diffs.append(f"config {key}: {saved.get(key)!r} there, {config.get(key)!r} now")
    names = {"stack": "the stack's layers or weights", "images": "the images"}
    for key in sorted(set(record.get("fingerprint", {})) | set(fingerprint)):
        if record.get("fingerprint", {}).get(key) != fingerprint.get(key):
            diffs.append(f"{names.get(key, key)} differ")
    return diffs


class _RunDir:
    """The checkpoint folder of one run: claim, resume, save each epoch, finish."""

    def __init__(self, out_dir, config: DistillConfig, fingerprint: dict) -> None:
        self.dir = Path(out_dir)
        self.config = _jsonable(asdict(config))
        self.fingerprint = fingerprint
        self.total = config.epochs + config.finetune_epochs

    def _record(self, completed: int, checkpoint: str | None, history: list, done: bool) -> dict:
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "config": self.config,
            "fingerprint": self.fingerprint,
            "completed_epochs": completed,
            "total_epochs": self.total,
            "checkpoint": checkpoint,
            "complete": done,
            "student": _STUDENT_FILE if done else None,
            "history": history,
        }

    def open(self, resume: bool) -> dict | None:
        """The run to resume (its record), or None after claiming an empty folder."""
        if self.dir.exists() and not self.dir.is_dir():
            raise OutputExistsError(f"out_dir '{self.dir}' exists and is not a folder")
        record = _read_run(self.dir) if self.dir.is_dir() else None
        if record is None:
            if self.dir.is_dir() and any(self.dir.iterdir()):
                raise OutputExistsError(
                    f"out_dir '{self.dir}' is not empty and holds no distill run; choose an "
                    "empty or new folder (nothing there was changed)"
                )
            self.dir.mkdir(parents=True, exist_ok=True)
            _write_json(self.dir / _RUN_FILE, self._record(0, None, [], False))
            return None
        diffs = _differences(record, self.config, self.fingerprint)
        if diffs:
            raise OutputExistsError(
                f"out_dir '{self.dir}' holds a different distill run ({'; '.join(diffs)}); "
                "choose another out_dir, or repeat that run's settings to resume it"
            )
        if not resume:
            raise OutputExistsError(
                f"out_dir '{self.dir}' already holds this distill run "
                f"({record['completed_epochs']} of {record['total_epochs']} epochs done); pass "
                "resume=True to continue it, or choose another out_dir"
            )
        return record

    def load(self, name: str, epoch: int) -> dict[str, torch.Tensor]:
        path = self.dir / name
        try:
            with safetensors.safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        except (OSError, safetensors.SafetensorError) as e:
            raise OutputExistsError(f"cannot read the checkpoint '{path}': {e}") from None
        if meta.get("epoch") != str(epoch):
            raise OutputExistsError(
                f"the checkpoint '{path}' is of epoch {meta.get('epoch')}, {_RUN_FILE} says "
                f"{epoch}; the folder was changed by hand"
            )
        tensors["__phase__"] = meta.get("phase")
        return tensors

    def save(self, epoch: int, student, optimizer, phase: str, history: list) -> None:
        name = f"checkpoint-{epoch:04d}.safetensors"
        tensors = {f"student.{k}": v for k, v in student.state_dict().items()}
        states = optimizer.state_dict()["state"] if optimizer is not None else {}
        for pid, state in states.items():
            for key, value in state.items():
                tensors[f"optimizer.{pid}.{key}"] = torch.as_tensor(value)
        _write_tensors(self.dir / name, tensors, {"epoch": epoch, "phase": phase})
        _write_json(self.dir / _RUN_FILE, self._record(epoch, name, history, False))
        for old in self.dir.glob("checkpoint-*.safetensors"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def finish(self, student, history: list) -> None:
        _write_tensors(
            self.dir / _STUDENT_FILE,
            student.state_dict(),
            {"format": _FORMAT, "stack": self.fingerprint["stack"]},
        )
        checkpoint = f"checkpoint-{self.total:04d}.safetensors"
        _write_json(self.dir / _RUN_FILE, self._record(self.total, checkpoint, history, True))


def _optimizer_state(tensors: dict) -> dict:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    return state


def _student_state(tensors: dict) -> dict:
    return {k[len("student.") :]: v for k, v in tensors.items() if k.startswith("student.")}


# --- training -----------------------------------------------------------------------------------


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The random stream of one epoch: a function of (seed, epoch) only, so resuming an epoch
    draws exactly what the uninterrupted run drew."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _draw_rows(n_rows: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """One row per latitude stratum (``count`` strata of about equal height), sorted."""
    if count >= n_rows:
        return torch.arange(n_rows)
    edges = [k * n_rows // count for k in range(count + 1)]
    return torch.tensor(
        [
            lo + int(torch.randint(hi - lo, (1,), generator=generator))
            for lo, hi in itertools.pairwise(edges)
        ]
    )


def _row_mse(
    pred: torch.Tensor, target: torch.Tensor, rows: torch.Tensor, hw, area_weighted: bool
) -> torch.Tensor:
    err = (pred - target).pow(2).mean(dim=(0, 1, 3))  # per row
    if area_weighted:
        area = pixel_solid_angle(hw, dtype=err.dtype, device=err.device)[rows.to(err.device), 0]
        return (err * area).sum() / area.sum()
    return err.mean()


def _conv_stages(plan: list[StackLayer]) -> list[StackLayer]:
    return [e for e in plan if e.kind == "conv"]


def _trained_stages(plan: list[StackLayer], student: nn.Sequential) -> list[StackLayer]:
    """The conv layers the layer-wise epochs train.

    Not the first spatial layer when it is a conv with untied rows reading the image through
    affine layers at most: RowUntiedConv2d.from_conv already equals the exact output there
    (bilinear sampling commutes with affine maps), and Adam's normalised steps would only push
    it away with rounding-noise gradients.
    """
    first = next(e for e in plan if e.kind != "pointwise")
    exact = (
        first.kind == "conv"
        and student[first.index].row_group_size == 1
        and all(type(student[i]) in _AFFINE for i in range(first.index))
    )
    return [e for e in _conv_stages(plan) if not (exact and e is first)]


def _cosine_lr(base: float, step: int, total: int) -> float:
    """Cosine decay from ``base`` to 0 over a phase's ``total`` steps (a function of the step
    alone, so a resumed run follows the same schedule)."""
    return base * 0.5 * (1 + math.cos(math.pi * step / total))


def _pool_input_rows(pool: nn.Module, rows: torch.Tensor, in_h: int) -> torch.Tensor:
    """Sorted input rows a spherical pool reads for output ``rows`` (top padding first)."""
    k, s, p = pool.kernel_size, pool.stride, pool.padding
    d = getattr(pool, "dilation", 1)
    unfolded = s * rows[:, None] - p + d * torch.arange(k)
    return _fold_rows(unfolded, in_h)[0].flatten().unique()


def _stage_source(plan: list[StackLayer], entry: StackLayer, inputs: str) -> int | None:
    """Index of the layer whose exact output feeds the stage of conv ``entry`` (None: image)."""
    if inputs == "layer":
        return entry.index - 1 if entry.index > 0 else None
    earlier = [e.index for e in _conv_stages(plan) if e.index < entry.index]
    return earlier[-1] if earlier else None


def _layerwise_losses(stack, student, plan, erp, config, generator) -> dict[str, torch.Tensor]:
    h, w = erp.shape[-2:]
    opts = {"tap_spacing": config.tap_spacing, "chunk": config.chunk}
    losses = {}
    for entry in _trained_stages(plan, student):
        layer = student[entry.index]
        out_h = h // entry.total_stride
        rows = _draw_rows(out_h, config.rows_per_image, generator)
        target = exact_outputs(stack, erp, [entry.index], rows, **opts)[0]
        source = _stage_source(plan, entry, config.inputs)
        start = 0 if source is None else source + 1
        # Walk back from the conv to its source through the student's fixed layers (pools
        # and pointwise layers) to find the source rows the sampled output rows depend on.
        needed = _input_rows(layer, rows)
        for index in range(entry.index - 1, start - 1, -1):
            if plan[index].kind == "pool":
                in_h = h // plan[index].in_stride
                needed = _pool_input_rows(student[index], needed, in_h)
        if source is None:
            x = erp
        else:
            values = exact_outputs(stack, erp, [source], needed, **opts)[0]
            src_h = h // plan[source].total_stride
            x = values.new_zeros(*values.shape[:2], src_h, 2 * src_h)
            x[:, :, needed.to(x.device)] = values
        with torch.no_grad():  # fixed in these epochs; rows not needed hold zeros
            for index in range(start, entry.index):
                x = student[index](x)
        pred = _rows_forward(layer, x, rows)
        hw = (out_h, w // entry.total_stride)
        losses[entry.name] = _row_mse(pred, target, rows, hw, config.area_weighted)
    return losses


def _finetune_losses(stack, student, plan, erp, config, generator) -> dict[str, torch.Tensor]:
    last = plan[-1]
    h, w = erp.shape[-2:]
    hw = (h // last.total_stride, w // last.total_stride)
    rows = _draw_rows(hw[0], config.rows_per_image, generator)
    target = exact_outputs(
        stack, erp, [last.index], rows, tap_spacing=config.tap_spacing, chunk=config.chunk
    )[0]
    pred = student(erp)[:, :, rows.to(erp.device)]
    return {last.name: _row_mse(pred, target, rows, hw, config.area_weighted)}


def _phase_parameters(student: nn.Sequential, plan, phase: str) -> list[nn.Parameter]:
    if phase == "layerwise":
        return [p for e in _trained_stages(plan, student) for p in student[e.index].parameters()]
    return [p for p in student.parameters() if p.requires_grad]


def distill(
    stack: nn.Sequential,
    images: torch.Tensor | Sequence[torch.Tensor],
    config: DistillConfig | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    resume: bool = True,
    progress: bool = False,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[nn.Sequential, list[dict[str, Any]]]:
    """Distil a perspective conv stack into a spherical student (SphConv), layer by layer.

    See the module docstring for the method, the folder layout and determinism.

    Args:
        stack: the source ``nn.Sequential`` (convs, pools, pointwise layers; see
            :func:`~pano360.transfer.receptive_field`), e.g. :func:`model_stack`
            ("mtcnn_pnet"). Frozen: it is only run, in eval mode, without gradients.
        images: unlabelled ERP images, float in the stack's input range: a (N, C, H, W) tensor
            or a sequence (e.g. a lazy dataset) of (C, H, W) or (1, C, H, W) tensors, all of
            one size with W == 2H and H a multiple of the stack's total stride.
        config: how to train (default ``DistillConfig()``).
        out_dir: folder for checkpoints (created if missing); None keeps everything in memory.
        resume: continue the run found in ``out_dir`` when it matches (same config, stack and
            images); a finished run is loaded and returned without training. False refuses a
            folder that already holds the run.
        progress: show a progress bar (tqdm) per epoch.
        on_step: called after every optimizer step with ``{"phase", "epoch", "step", "steps",
            "mse"}`` (epoch and step 1-based; mse a dict of floats per layer name). An
            exception it raises stops the run like a kill: resuming restarts that epoch.

    Returns:
        ``(student, history)``: the trained :func:`build_student` network in eval mode, and one
        record per epoch ``{"epoch", "phase": "layerwise" | "finetune", "mse": {layer name:
        mean over the epoch's steps}}``.

    Raises:
        TypeError: unsupported stack or images.
        ShapeError: images that are not ERP images of one size fitting the stack.
        ValueRangeError: no conv to distil; bad config (see :class:`DistillConfig`).
        OutputExistsError: ``out_dir`` holds something else (files of no distill run, or a run
            with other settings, stack or images), or this run and ``resume`` is False.

    Example:
        >>> stack = nn.Sequential(
        ...     nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 2, 3)
        ... )
        >>> student, history = distill(stack, torch.rand(2, 3, 8, 16), DistillConfig(epochs=1))
        >>> history[0]["phase"], list(history[0]["mse"])  # conv 0 is exact from the start
        ('layerwise', ['3'])
    """
    config = DistillConfig() if config is None else config
    if not isinstance(config, DistillConfig):
        raise TypeError(f"config must be a DistillConfig, got {type(config).__name__}")
    plan = plan_stack(stack)
    if not _conv_stages(plan):
        raise ValueRangeError(
            "stack has no spatial convolution to distil (only pools and pointwise layers)"
        )
    data = _Images(images, plan, _first_in_channels(stack))
    source = _matching(stack, data[0])  # one copy on the images' dtype and device, if needed
    student = build_student(source, data.erp_hw, config.row_group_size, config.tap_spacing)
    student.eval()  # running statistics, no dropout: the student mimics the frozen stack
    history: list[dict[str, Any]] = []
    start, checkpoint = 0, None
    run = None
    if out_dir is not None:
        fingerprint = {
            "stack": _stack_fingerprint(stack),
            "images": data.fingerprint(),
            "erp_hw": list(data.erp_hw),
        }
        run = _RunDir(out_dir, config, fingerprint)
        record = run.open(resume)
        if record is not None:
            history = record["history"]
            start = record["completed_epochs"]
            if record["checkpoint"]:
                checkpoint = run.load(record["checkpoint"], start)
                student.load_state_dict(_student_state(checkpoint))
            if record["complete"]:
                return student, history

    total = config.epochs + config.finetune_epochs
    optimizer, opt_phase = None, None
    for epoch in range(start, total):
        phase = "layerwise" if epoch < config.epochs else "finetune"
        if phase != opt_phase:
            optimizer, opt_phase = _optimizer(student, plan, phase, config, checkpoint), phase
        checkpoint = None
        record = _train_epoch(
            source, student, plan, data, config, optimizer, epoch, progress, on_step
        )
        history.append(record)
        if run is not None:
            run.save(epoch + 1, student, optimizer, phase, history)
    if run is not None:
        run.finish(student, history)
    return student, history


def _optimizer(student, plan, phase: str, config: DistillConfig, checkpoint: dict | None):
    """Adam over the phase's parameters, with the checkpoint's state when it is of this phase
    (None when the phase has nothing to train)."""
    params = _phase_parameters(student, plan, phase)
    if not params:
        return None
    lr = config.lr if phase == "layerwise" else config.finetune_lr
    optimizer = torch.optim.Adam(params, lr=lr)
    if checkpoint is not None and checkpoint["__phase__"] == phase:
        groups = optimizer.state_dict()["param_groups"]
        optimizer.load_state_dict({"state": _optimizer_state(checkpoint), "param_groups": groups})
    return optimizer


def _train_epoch(source, student, plan, data, config, optimizer, epoch, progress, on_step):
    """One pass over the images; returns the epoch's history record."""
    layerwise = epoch < config.epochs
    phase = "layerwise" if layerwise else "finetune"
    steps = -(-len(data) // config.batch_size)
    base = config.lr if layerwise else config.finetune_lr
    first = (epoch if layerwise else epoch - config.epochs) * steps
    phase_steps = (config.epochs if layerwise else config.finetune_epochs) * steps
    losses_fn = _layerwise_losses if layerwise else _finetune_losses
    generator = _epoch_generator(config.seed, epoch)
    order = torch.randperm(len(data), generator=generator).tolist()
    sums: dict[str, float] = {}
    total = config.epochs + config.finetune_epochs
    bar = tqdm(
        range(steps), desc=f"{phase} epoch {epoch + 1}/{total}", disable=not progress, unit="step"
    )
    for step in bar:
        if optimizer is None:
            break
        for group in optimizer.param_groups:
            group["lr"] = _cosine_lr(base, first + step, phase_steps)
        batch = data.batch(order[step * config.batch_size : (step + 1) * config.batch_size])
        losses = losses_fn(source, student, plan, batch, config, generator)
        optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        optimizer.step()
        mse = {k: float(v.detach()) for k, v in losses.items()}
        for k, v in mse.items():
            sums[k] = sums.get(k, 0.0) + v
        bar.set_postfix({k: f"{v:.3g}" for k, v in mse.items()}, refresh=False)
        if on_step is not None:
            info = {"phase": phase, "epoch": epoch + 1, "step": step + 1, "steps": steps}
            on_step({**info, "mse": mse})
    bar.close()
    return {"epoch": epoch + 1, "phase": phase, "mse": {k: v / steps for k, v in sums.items()}}


def load_student(stack: nn.Sequential, out_dir: str | os.PathLike[str]) -> nn.Sequential:
    """The distilled student of a finished :func:`distill` run.

    Args:
        stack: the source stack the run distilled (checked against the run's fingerprint).
        out_dir: the run's folder.

    Returns:
        The student in eval mode, as :func:`distill` returned it.

    Raises:
        ValueRangeError: ``out_dir`` holds no finished distill run, or ``stack`` is not the
            one it distilled (layers or weights differ).
        OutputExistsError: ``out_dir`` holds a file named like a run's that is not one.
    """
    out_dir = Path(out_dir)
    record = _read_run(out_dir) if out_dir.is_dir() else None
    if record is None or not record.get("complete"):
        raise ValueRangeError(f"out_dir '{out_dir}' holds no finished distill run")
    if record["fingerprint"]["stack"] != _stack_fingerprint(stack):
        raise ValueRangeError(
            f"stack differs from the one distilled in '{out_dir}' (layers or weights)"
        )
    cfg = record["config"]
    student = build_student(
        stack, tuple(record["fingerprint"]["erp_hw"]), cfg["row_group_size"], cfg["tap_spacing"]
    )
    state = safetensors.torch.load_file(str(out_dir / _STUDENT_FILE))
    student.to(dtype=next(v.dtype for v in state.values() if v.is_floating_point()))
    student.load_state_dict(state)
    return student.eval()


# --- evaluation ---------------------------------------------------------------------------------


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
            (B, C_l, H / S_l, W / S_l): :func:`build_student` (trained or not) or
            :func:`build_spherical`.
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
    bands = [tuple(float(v) for v in band) for band in bands]
    for lo, hi in bands:
        if not 0 <= lo < hi <= math.pi / 2:
            raise ValueRangeError(
                f"bands must be (low, high) with 0 <= low < high <= pi/2 radians, got {(lo, hi)}"
            )
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
        h = target.shape[-2]
        lat = erp_lonlat_grid((h, 2 * h), dtype=torch.float64)[:, 0, 1]
        per_row = (out.double() - target.double()).pow(2).mean(dim=(0, 1, 3)).cpu()
        result[index] = {}
        for lo, hi in bands:
            mask = (lat.abs() >= lo) & (lat.abs() < hi)
            value = per_row[mask].mean().sqrt().item() if bool(mask.any()) else math.nan
            result[index][(lo, hi)] = value
    return result


# --- registered models --------------------------------------------------------------------------


def _mtcnn_pnet_stack() -> nn.Sequential:
    model = create_model("mtcnn_pnet", pretrained=True)
    # mtcnn_normalize, (x * 255 - 127.5) / 128, as a frozen 1 x 1 conv: a pointwise layer of
    # the stack, so the student reads images in [0, 1] as P-Net does.
    normalize = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        normalize.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1) * (255 / 128))
        normalize.bias.fill_(-127.5 / 128)
    normalize.requires_grad_(False)
    return nn.Sequential(OrderedDict([("normalize", normalize), *model.features.named_children()]))


#: Registered models whose conv stack is known, with the function building it.
_MODEL_STACKS: Mapping[str, Callable[[], nn.Sequential]] = {"mtcnn_pnet": _mtcnn_pnet_stack}


def distillable_models() -> list[str]:
    """Registered models whose conv stack :func:`model_stack` knows, sorted.

    Example:
        >>> distillable_models()
        ['mtcnn_pnet']
    """
    registered = set(list_models(pretrained=True))
    return sorted(name for name in _MODEL_STACKS if name in registered)


def model_stack(name: str) -> nn.Sequential:
    """The conv stack of a registered model, with its pretrained weights, for :func:`distill`.

    ``"mtcnn_pnet"``: a frozen 1 x 1 conv doing P-Net's input normalisation (so the stack reads
    RGB in [0, 1]), then ``PNet.features`` (conv1, prelu1, pool1, conv2, prelu2, conv3,
    prelu3; receptive field 12, stride 2). P-Net's 1 x 1 heads read one feature pixel each, so
    they need no distillation: apply ``model.face`` / ``model.box`` to the student's output.

    Args:
        name: one of :func:`distillable_models`.

    Returns:
        A new ``nn.Sequential`` (in eval mode).

    Raises:
        ValueRangeError: a name that is not registered or has no known conv stack.
    """
    if name not in _MODEL_STACKS:
        raise ValueRangeError(
            f"model must be one of {', '.join(distillable_models())} (registered models with a "
            f"conv stack to distil), got {name!r}"
        )
    return _MODEL_STACKS[name]().eval()
