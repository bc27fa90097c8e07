r"""Layer-wise distillation of a perspective conv stack into spherical layers (SphConv).

Su and Grauman (NIPS 2017, "Learning spherical convolution for fast features from 360°
imagery") transfer a CNN trained on perspective photos to ERP images without new labels: each
convolution becomes a :class:`pano360.nn.RowUntiedConv2d` (a kernel per row, wider towards the
poles) trained so that the spherical network reproduces the source network's *exact* outputs
(:func:`pano360.transfer.exact_outputs`: the network applied to the tangent patch around every
location), layer by layer, on unlabelled panoramas. Once trained, one pass over the ERP costs
about as much as the source network on the same image.

This module holds what distillation computes: its configuration (:class:`DistillConfig`), the
student, the rows drawn, the losses and the learning-rate schedule. The training loop, its
checkpoints and resuming are Lightning's: :func:`pano360.training.distill` runs
:class:`pano360.training.DistillTask` (extra ``train``), which calls ``_Distillation`` below.

How it trains:

- The student (:func:`~pano360.transfer.build_student`) has one layer per layer of the stack,
  at the same index: convolutions become RowUntiedConv2d initialised from their weights (so it
  starts as the zero-shot spherical network :func:`~pano360.transfer.build_spherical`,
  tangent-plane SphereConv2d layers), pools become spherical pools on the ERP grid, pointwise
  layers are copied.
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
- Adam (one per phase); the learning rate decays to 0 along a cosine over each phase's steps.

Runs are deterministic: epoch e of seed s draws its image order and then its rows, step after
step, from its own generator (``SeedSequence([s, e])``), and computes the same exact targets;
the generator's state goes into the training checkpoints, so a run resumed at any step draws
what the uninterrupted run drew.

Convention:
    :mod:`pano360.geometry.conventions`. Layer l's output is the ERP grid of
    (H / S_l, W / S_l) pixels, S_l the stack's total stride up to layer l; rows are drawn and
    compared on that grid.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._core import (
    ShapeError,
    ValueRangeError,
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_seed,
)
from ..geometry import fold_rows, pixel_solid_angle
from ._builders import _check_erp_hw, build_student
from ._exact import StackLayer, _matching, exact_outputs, plan_stack
from ._run_folder import _FORMAT, _read_student, _stack_fingerprint, _write_tensors

__all__ = ["DistillConfig"]

# Pointwise layers that are affine maps in eval mode (they commute with bilinear sampling).
_AFFINE = (nn.Conv2d, nn.BatchNorm2d, nn.Identity, nn.Dropout, nn.Dropout2d)

#: Where a conv's layer-wise training input comes from (:class:`DistillConfig.inputs`).
STAGE_INPUTS: tuple[str, ...] = ("conv", "layer")


@dataclass(frozen=True)
class DistillConfig:
    """How a distillation trains (:func:`pano360.training.distill`). Every field takes part in
    deciding whether a run resumes.

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
        ValueRangeError: a number out of range or of the wrong kind (bools are not numbers;
            numpy scalars are stored as Python numbers); checked on construction.
        ChoiceError: ``inputs`` not one of :data:`STAGE_INPUTS`.

    Example:
        >>> config = DistillConfig(epochs=2, lr=1)
        >>> config.epochs, config.lr  # numbers stored as the field's type
        (2, 1.0)
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
        def put(name: str, value: Any) -> None:  # numpy scalars stored as Python numbers
            object.__setattr__(self, name, value)

        for name, lo, optional in (
            ("epochs", 0, False),
            ("finetune_epochs", 0, False),
            ("rows_per_image", 1, False),
            ("batch_size", 1, False),
            ("row_group_size", 1, True),
        ):
            put(name, check_int(getattr(self, name), name, lo=lo, optional=optional))
        put("seed", check_seed(self.seed))
        put("chunk", check_int(self.chunk, "chunk", lo=1, optional=True))
        if self.epochs + self.finetune_epochs < 1:
            raise ValueRangeError("epochs + finetune_epochs must be at least 1, got 0")
        for name in ("lr", "finetune_lr"):
            put(name, check_number(getattr(self, name), name, lo=0, lo_open=True))
        check_choice(self.inputs, "inputs", STAGE_INPUTS)
        put("area_weighted", check_bool(self.area_weighted, "area_weighted"))
        spacing = check_number(
            self.tap_spacing, "tap_spacing", lo=0, hi=math.pi / 2, lo_open=True, hi_open=True,
            optional=True,
        )  # fmt: skip
        put("tap_spacing", spacing)


# --- the images -----------------------------------------------------------------------------------


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
        return _images_fingerprint(self, self.shape)


def _images_fingerprint(images, shape: tuple[int, ...]) -> str:
    """A digest of indexable images (``images[i]``: (C, H, W), all of ``shape``): what a run
    folder checks before resuming."""
    first = images[0]
    digest = hashlib.sha256(repr((len(images), tuple(shape), str(first.dtype))).encode())
    for i in range(len(images)):
        digest.update(images[i].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _first_in_channels(stack: nn.Sequential) -> int | None:
    for layer in stack:
        if type(layer) is nn.Conv2d:
            return layer.in_channels
    return None


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
    return fold_rows(unfolded, 0, (in_h, 2 * in_h))[0].flatten().unique()


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
        needed = layer.input_rows(rows)
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
        pred = layer.forward_rows(x, rows)
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


class _Phases:
    """The schedule every distillation shares: ``config.epochs`` layer-wise epochs, then
    ``config.finetune_epochs`` fine-tuning epochs, a learning rate along a cosine over each
    phase's steps, and every epoch's image order and random stream.

    Subclasses set ``config`` (with epochs, finetune_epochs, lr, finetune_lr, seed),
    ``n_images`` and ``steps_per_epoch``.
    """

    config: Any
    n_images: int
    steps_per_epoch: int

    @property
    def total_epochs(self) -> int:
        return self.config.epochs + self.config.finetune_epochs

    def phase(self, epoch: int) -> str:
        """``"layerwise"`` or ``"finetune"``: the phase of 0-based ``epoch``."""
        return "layerwise" if epoch < self.config.epochs else "finetune"

    def base_lr(self, phase: str) -> float:
        return self.config.lr if phase == "layerwise" else self.config.finetune_lr

    def lr(self, epoch: int, step: int) -> float:
        """The learning rate of 0-based ``step`` of ``epoch``: a cosine from the phase's base
        to 0 over the phase's steps."""
        c, n = self.config, self.steps_per_epoch
        layerwise = epoch < c.epochs
        first = (epoch if layerwise else epoch - c.epochs) * n
        phase_steps = (c.epochs if layerwise else c.finetune_epochs) * n
        return _cosine_lr(self.base_lr(self.phase(epoch)), first + step, phase_steps)

    def epoch_stream(self, epoch: int) -> tuple[list[int], torch.Generator]:
        """(the image order of ``epoch``, the generator after drawing it: the rows of the
        epoch's steps are drawn from it, in order)."""
        generator = _epoch_generator(self.config.seed, epoch)
        return torch.randperm(self.n_images, generator=generator).tolist(), generator


class _Distillation(_Phases):
    """What one distillation computes, step by step, without the loop that runs it.

    :class:`pano360.training.DistillTask` (Lightning) drives it: the student, the parameters
    and learning rate of each phase, every epoch's image order and random stream, and the
    losses of one step. Kept here, next to the losses, so that the numbers have one home.
    ``pano360.transfer._deep_distill._BackboneDistillation`` offers the same methods for a
    deep backbone; the task needs no more than these.
    """

    def __init__(self, stack: nn.Sequential, images, config: DistillConfig | None) -> None:
        config = DistillConfig() if config is None else config
        if not isinstance(config, DistillConfig):
            raise TypeError(f"config must be a DistillConfig, got {type(config).__name__}")
        plan = plan_stack(stack)
        if not _conv_stages(plan):
            raise ValueRangeError(
                "stack has no spatial convolution to distil (only pools and pointwise layers)"
            )
        self.config, self.plan, self.stack = config, plan, stack
        self.images = _Images(images, plan, _first_in_channels(stack))
        # One copy of the stack on the images' dtype and device, if needed; frozen, only run.
        self.source = _matching(stack, self.images[0])
        self.student = build_student(
            self.source, self.images.erp_hw, config.row_group_size, config.tap_spacing
        )
        self.student.eval()  # running statistics, no dropout: the student mimics the stack
        self.n_images = len(self.images)
        self.batch_size = config.batch_size
        self.steps_per_epoch = -(-self.n_images // config.batch_size)
        self.device = self.images.device

    def dataset(self) -> _Images:
        """What the train loader batches: the images (each checked) by index."""
        return self.images

    def to(self, device: torch.device) -> None:
        """Run the frozen stack on ``device`` (where the student is trained)."""
        self.source.to(device)

    def parameters(self, phase: str) -> list[nn.Parameter]:
        """The parameters ``phase`` trains (possibly none)."""
        return _phase_parameters(self.student, self.plan, phase)

    def losses(
        self, phase: str, erp: torch.Tensor, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """The losses of one step on the batch ``erp`` (B, C, H, W): layer name -> MSE."""
        fn = _layerwise_losses if phase == "layerwise" else _finetune_losses
        return fn(self.source, self.student, self.plan, erp, self.config, generator)

    def fingerprint(self) -> dict:
        """What a run folder checks before resuming: the stack, the images, the ERP size."""
        return {
            "stack": _stack_fingerprint(self.stack),
            "images": self.images.fingerprint(),
            "erp_hw": list(self.images.erp_hw),
        }

    def finished(self) -> nn.Sequential:
        """The trained student, in eval mode."""
        return self.student.eval()

    def save_student(self, path: Path) -> None:
        """Write the student as the run folder's student file (safetensors)."""
        meta = {"format": _FORMAT, "stack": _stack_fingerprint(self.stack)}
        _write_tensors(path, self.student.state_dict(), meta)

    def read_student(self, out_dir: Path, record: dict) -> nn.Sequential:
        """The student of the finished run ``record`` in ``out_dir``, in eval mode."""
        return _read_student(self.source, out_dir, record)
