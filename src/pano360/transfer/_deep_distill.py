r"""Distillation of a deep backbone (MobileNetV2) into a spherical student, stage by stage.

SphConv's method (Su and Grauman, NIPS 2017) on a deep network: the student is the zero-shot
spherical network (:func:`pano360.nn.sphericalize` of the backbone: tangent-tap
:class:`~pano360.nn.SphereConv2d` everywhere) in which the 3 x 3 convolutions of chosen blocks
become :class:`~pano360.nn.RowUntiedConv2d` (a kernel per group of rows, initialised from the
planar weights, so the student starts as the zero-shot network), then trained on unlabelled
panoramas to reproduce the backbone's exact outputs (:func:`~pano360.transfer.exact_features`):

- layer-wise: the student's layers between two consecutive trained stages map the exact output
  of the earlier stage (the image for the first) to the exact output of the later one; every
  segment trains in the same epochs, since their inputs are exact and do not depend on each
  other;
- end to end: the whole student, from the image, against the exact outputs of every trained
  stage at once (so the earlier stages stay close while the later ones adapt to the student's
  own inputs).

Losses are mean square errors divided by the variance of the stage's exact outputs over the
training images (every stage weighs the same), averaged over the rows of the map (each row
counts the same: the poles as much as the equator). Adam, the learning rate decaying to 0 along
a cosine over each phase. Stages after the last trained one stay zero-shot spherical.

What one run computes, step by step (the student, the targets, each epoch's image order, the
learning rates, the losses of one step), is ``_BackboneDistillation``. Two loops run it to the
same weights: :func:`distill_backbone`, plain, without checkpoints (no Lightning needed), and
:func:`pano360.training.distill` (``pano360 distill --model mobilenet_v2``) on Lightning, with
checkpoints and resuming in a run folder.

Where untied rows go by default (:func:`default_untied_blocks`): the 3 x 3 convolutions of the
blocks with a stride, where the maps change scale (five blocks of MobileNetV2: the student stays
within about 1.5x the source's parameters); the other 3 x 3 convolutions keep tangent taps
shared by all rows, trained too.

Convention:
    :mod:`pano360.geometry.conventions`; every map is on the backbone's own grid
    (:func:`~pano360.transfer.stage_grid`; for MobileNetV2 output (i, j) of stride s sits on
    input pixel (s i, s j)), as :func:`~pano360.transfer.exact_features`'s: the student is
    ``sphericalize(..., output_grid=stage_grid(...))``. Row-untied layers are made for one ERP
    size (the student's ``erp_hw``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import safetensors
import safetensors.torch
import torch
from torch import nn

from .._core import (
    ShapeError,
    ValueRangeError,
    check_erp,
    check_int,
    check_number,
    check_seed,
)
from ..io import write_atomic
from ..models.backbones import Backbone
from ..nn import RowUntiedConv2d, SphereConv2d, sphericalize
from ._apply import run_channels_last
from ._distillation import _images_fingerprint, _Phases
from ._exact_features import exact_features, stage_grid, weights_fingerprint

__all__ = [
    "BackboneDistillConfig",
    "BackboneStudent",
    "default_untied_blocks",
    "distill_backbone",
    "load_backbone_student",
]

#: Version of the student files' metadata (2: maps on the backbone's own grid, stage_grid).
STUDENT_FORMAT = "pano360.backbone_student/2"


def _blocks(model: Backbone) -> list[str]:
    """The names of the backbone's blocks as :meth:`Backbone.stage_module` lists them."""
    final = list(model.stages)[-1]
    return [name for name, _ in model._stage_layers(final)]


def default_untied_blocks(model: Backbone) -> list[str]:
    """The blocks whose 3 x 3 convolutions a student unties by default: those with a strided
    3 x 3 convolution (module docstring), in :meth:`Backbone.stage_module`'s naming.

    Example:
        >>> from pano360.models import create_model
        >>> default_untied_blocks(create_model("mobilenet_v2"))
        ['features_0', 'features_2', 'features_4', 'features_7', 'features_14']
    """
    out = []
    for name, block in model._stage_layers(list(model.stages)[-1]):
        if any(
            type(m) is nn.Conv2d and m.kernel_size != (1, 1) and m.stride != (1, 1)
            for m in block.modules()
        ):
            out.append(name)
    return out


@dataclass(frozen=True)
class BackboneDistillConfig:
    """How :func:`distill_backbone` trains.

    Attributes:
        stages: the backbone stages trained against exact, in order (e.g. ``("features.3",
            "features.6")``); later stages stay zero-shot.
        epochs: layer-wise epochs (passes over the images).
        finetune_epochs: end-to-end epochs after them (0: none).
        lr: Adam's initial learning rate, layer-wise; it decays to 0 along a cosine.
        finetune_lr: the same for the end-to-end epochs.
        untied: blocks (``features_<i>``) whose 3 x 3 convolutions get row-untied kernels;
            None: :func:`default_untied_blocks`.
        row_group_size: output rows per RowUntiedConv2d kernel (1: every row untied; None:
            RowUntiedConv2d's parameter budget, at most 64x nn.Conv2d's parameters per layer).
        seed: seeds the image order.

    Raises:
        ValueRangeError: a number out of range, or no stage.

    Example:
        >>> BackboneDistillConfig(stages=("features.3",), epochs=2).epochs
        2
    """

    stages: tuple[str, ...] = ("features.3", "features.6")
    epochs: int = 20
    finetune_epochs: int = 20
    lr: float = 5e-4
    finetune_lr: float = 1e-4
    untied: tuple[str, ...] | None = None
    row_group_size: int | None = 1
    seed: int = 0

    def __post_init__(self) -> None:
        def put(name, value):
            object.__setattr__(self, name, value)

        put("stages", tuple(self.stages))
        if not self.stages:
            raise ValueRangeError("stages must name at least one stage, got none")
        put("epochs", check_int(self.epochs, "epochs", lo=0))
        put("finetune_epochs", check_int(self.finetune_epochs, "finetune_epochs", lo=0))
        if self.epochs + self.finetune_epochs < 1:
            raise ValueRangeError("epochs + finetune_epochs must be at least 1, got 0")
        for name in ("lr", "finetune_lr"):
            put(name, check_number(getattr(self, name), name, lo=0, lo_open=True))
        if self.untied is not None:
            put("untied", tuple(self.untied))
        put("row_group_size", check_int(self.row_group_size, "row_group_size", lo=1,
                                        optional=True))  # fmt: skip
        put("seed", check_seed(self.seed))


class BackboneStudent(nn.Module):
    """A backbone's spherical student for one ERP size: :meth:`stage` gives the network from
    the image to any stage, as :meth:`Backbone.stage_module` does for the planar backbone.

    Built by :func:`distill_backbone` (trained) or :func:`load_backbone_student` (from a
    file); ``BackboneStudent(model, erp_hw)`` is the untrained student (it equals the
    zero-shot spherical network up to float rounding when ``row_group_size=1``).

    Args:
        model: the backbone (copied, never changed).
        erp_hw: (H, W) of the input ERP, W == 2H, H a multiple of 32.
        untied: blocks whose 3 x 3 convs become RowUntiedConv2d (None:
            :func:`default_untied_blocks`).
        row_group_size: as :class:`BackboneDistillConfig`.

    Raises:
        TypeError: ``model`` is not a Backbone.
        ShapeError: ``erp_hw`` not (H, 2H) with H a multiple of the backbone's last stride.
        ValueRangeError: an unknown block in ``untied``.
    """

    def __init__(
        self,
        model: Backbone,
        erp_hw: Sequence[int],
        untied: Sequence[str] | None = None,
        row_group_size: int | None = 1,
    ) -> None:
        super().__init__()
        if not isinstance(model, Backbone):
            raise TypeError(
                f"model must be a pano360.models.backbones.Backbone, got {type(model).__name__}"
            )
        h, w = (int(v) for v in erp_hw)
        final = list(model.stages)[-1]
        stride = model.stages[final]
        if w != 2 * h or h % stride or h < stride:
            raise ShapeError(
                f"erp_hw must be (H, 2H) with H a multiple of {stride}, got {tuple(erp_hw)}"
            )
        blocks = _blocks(model)
        untied = default_untied_blocks(model) if untied is None else list(untied)
        for name in untied:
            if name not in blocks:
                raise ValueRangeError(f"untied must name blocks of {blocks}, got {name!r}")
        self.erp_hw = (h, w)
        #: How the student was trained (a JSON-able dict, saved with it), or None.
        self.provenance: dict | None = None
        self.untied = tuple(untied)
        self.row_group_size = row_group_size
        self.stages = dict(model.stages)
        grid = stage_grid(model, final)
        self.network, _ = sphericalize(model.stage_module(final), output_grid=grid)
        self._untie((h, w))
        self.eval()

    def _untie(self, erp_hw: tuple[int, int]) -> None:
        # The input size of every spherical conv, read off one pass at the student's size.
        sizes: dict[str, tuple[int, int]] = {}
        hooks = [
            m.register_forward_pre_hook(
                lambda mod, args, name=name: sizes.__setitem__(name, tuple(args[0].shape[-2:]))
            )
            for name, m in self.network.named_modules()
            if isinstance(m, SphereConv2d) and name.split(".")[0] in self.untied
        ]
        try:
            with torch.no_grad():
                self.network(torch.zeros(1, 3, *erp_hw, dtype=_dtype(self.network)))
        finally:
            for hook in hooks:
                hook.remove()
        for name, in_hw in sizes.items():
            conv = self.network.get_submodule(name)
            rows = -(-in_hw[0] // conv.stride)
            size = None if self.row_group_size is None else min(self.row_group_size, rows)
            new = RowUntiedConv2d.from_conv(conv, in_hw, row_group_size=size)
            parent, _, child = name.rpartition(".")
            setattr(self.network.get_submodule(parent), child, new)

    def stage(self, stage: str) -> nn.Sequential:
        """The student from the image to ``stage``: (B, 3, H, W) in [0, 1] -> the stage's
        (B, C_s, H / s, W / s) (modules shared with the student).

        Raises:
            ValueError: an unknown stage.
        """
        if stage not in self.stages:
            raise ValueError(f"stage must be one of {list(self.stages)}, got {stage!r}")
        stop = list(self.network._modules).index(stage.replace(".", "_"))
        return self.network[: stop + 1]

    def forward(self, erp: torch.Tensor) -> torch.Tensor:
        """The last stage's output (B, C, H / 32, W / 32)."""
        return run_channels_last(self.network, erp)

    def parameter_count(self) -> int:
        """Number of parameters (the source backbone's, without its classifier, is
        ``sum(p.numel() for p in model.features.parameters())`` for MobileNetV2)."""
        return sum(p.numel() for p in self.parameters())

    def save(self, path: str | Path, model: Backbone) -> None:
        """Write the student as safetensors (atomically), with what rebuilds it, how it was
        trained (:attr:`provenance`) and a fingerprint of ``model``'s weights in its metadata
        (:func:`load_backbone_student` checks the fingerprint)."""
        meta = {
            "training": json.dumps(self.provenance),
            "format": STUDENT_FORMAT,
            "backbone": type(model).__name__,
            "erp_hw": json.dumps(list(self.erp_hw)),
            "untied": json.dumps(list(self.untied)),
            "row_group_size": json.dumps(self.row_group_size),
            "source": weights_fingerprint(model.stage_module(list(model.stages)[-1])),
        }
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        data = safetensors.torch.save(state, metadata=meta)
        write_atomic(Path(path), lambda f: f.write(data))


def _dtype(module: nn.Module) -> torch.dtype:
    return next(module.parameters()).dtype


def load_backbone_student(model: Backbone, path: str | Path) -> BackboneStudent:
    """Read a student written by :meth:`BackboneStudent.save` (safetensors; nothing is
    unpickled).

    Args:
        model: the backbone the student was distilled from (its weights are checked against
            the file's fingerprint).
        path: the ``.safetensors`` file.

    Returns:
        The :class:`BackboneStudent`, in eval mode.

    Raises:
        ImageIOError: the file is missing or not a student file.
        ValueRangeError: the file was made from another backbone or other weights.
    """
    from .._core import ImageIOError

    path = Path(path)
    try:
        with safetensors.safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (OSError, safetensors.SafetensorError) as e:
        raise ImageIOError(f"{path}: not a readable student file ({e})") from None
    if meta.get("format") != STUDENT_FORMAT:
        raise ImageIOError(f"{path}: not a backbone student file (format {meta.get('format')!r})")
    final = list(model.stages)[-1]
    if meta.get("backbone") != type(model).__name__ or meta.get("source") != weights_fingerprint(
        model.stage_module(final)
    ):
        raise ValueRangeError(
            f"{path}: the student was distilled from other weights or another backbone "
            f"({meta.get('backbone')}) than the model given ({type(model).__name__})"
        )
    student = BackboneStudent(
        model,
        json.loads(meta["erp_hw"]),
        json.loads(meta["untied"]),
        json.loads(meta["row_group_size"]),
    )
    student.load_state_dict(state, strict=True)
    student.provenance = json.loads(meta.get("training", "null"))
    return student.eval()


def _row_loss(pred: torch.Tensor, target: torch.Tensor, var: float) -> torch.Tensor:
    # Every row of the map weighs the same (the poles as much as the equator).
    return (pred - target).pow(2).mean(dim=(0, 1, 3)).mean() / var


class _BackboneDistillation(_Phases):
    """What one backbone distillation computes, step by step, without the loop that runs it:
    the student, its segments, the exact targets, the parameters and learning rate of each
    phase, every epoch's image order, and the losses of one step (one image).

    :func:`distill_backbone` runs it in a plain loop, :class:`pano360.training.DistillTask`
    on Lightning (checkpoints, resuming); both call only what is here, as for a conv stack's
    ``_Distillation``. The exact targets are computed when first needed (:meth:`targets`), in
    ``cache_dir`` when given, so that nothing is written before a run folder is claimed.
    """

    def __init__(
        self,
        model: Backbone,
        images: torch.Tensor,
        config: BackboneDistillConfig | None = None,
        *,
        cache_dir: str | Path | None = None,
        progress: bool = False,
    ) -> None:
        config = BackboneDistillConfig() if config is None else config
        if not isinstance(config, BackboneDistillConfig):
            raise TypeError(f"config must be a BackboneDistillConfig, got {type(config).__name__}")
        if not isinstance(model, Backbone):
            raise TypeError(
                f"model must be a pano360.models.backbones.Backbone, got {type(model).__name__}"
            )
        check_erp(images)
        order = list(model.stages)
        for stage in config.stages:
            if stage not in order:
                raise ValueError(f"config.stages must be among {order}, got {stage!r}")
        indices = [order.index(s) for s in config.stages]
        if indices != sorted(set(indices)):
            raise ValueRangeError(
                f"config.stages must be in the backbone's order, got {config.stages}"
            )
        self.config, self.model, self.images = config, model.eval(), images
        self.cache_dir, self.progress = cache_dir, progress
        student = BackboneStudent(model, images.shape[-2:], config.untied, config.row_group_size)
        # Running statistics stay the backbone's, no dropout: the student mimics it.
        self.student = student.to(device=images.device, dtype=images.dtype).eval()
        names = list(self.student.network._modules)
        bounds = [0] + [names.index(s.replace(".", "_")) + 1 for s in config.stages]
        self.segments = [self.student.network[a:b] for a, b in itertools.pairwise(bounds)]
        self.n_images = self.steps_per_epoch = int(images.shape[0])
        self.batch_size = 1
        self.device = images.device
        self._targets: dict[str, torch.Tensor] | None = None
        self._variance: dict[str, float] = {}

    def targets(self) -> dict[str, torch.Tensor]:
        """The exact output of every trained stage on the images (computed once)."""
        if self._targets is None:
            with torch.no_grad():
                self._targets = {
                    s: exact_features(
                        self.model, self.images, s, cache_dir=self.cache_dir, progress=self.progress
                    )
                    for s in self.config.stages
                }
            self._variance = {s: float(t.var()) or 1.0 for s, t in self._targets.items()}
        return self._targets

    def dataset(self) -> torch.Tensor:
        """What the train loader batches: the images' indices (targets are by index)."""
        return torch.arange(self.n_images)

    def to(self, device: torch.device) -> None:
        """Hold the images and the exact targets on ``device`` (where the student trains)."""
        self._targets = {s: t.to(device) for s, t in self.targets().items()}
        self.images = self.images.to(device)

    def parameters(self, phase: str) -> list[nn.Parameter]:
        """The parameters ``phase`` trains (both phases: the same). Only the spatial kernels
        learn (the geometry is theirs); 1 x 1 convs and BatchNorm stay the backbone's."""
        return [
            p
            for seg in self.segments
            for m in seg.modules()
            if isinstance(m, RowUntiedConv2d | SphereConv2d)
            for p in m.parameters()
        ]

    def losses(
        self, phase: str, indices: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """The losses of one step on the images ``indices`` (a batch of the :meth:`dataset`):
        stage -> its MSE over exact's variance. ``generator`` is not used (the image order is
        the epoch's only random draw)."""
        targets = self.targets()
        idx = torch.as_tensor(indices).reshape(-1).to(self.images.device)
        x = self.images[idx]
        stages = self.config.stages
        losses = {}
        for k, (stage, seg) in enumerate(zip(stages, self.segments, strict=True)):
            if phase == "layerwise":
                pred = seg(x if k == 0 else targets[stages[k - 1]][idx])
            else:
                x = pred = seg(x)
            losses[stage] = _row_loss(pred, targets[stage][idx], self._variance[stage])
        return losses

    def fingerprint(self) -> dict:
        """What a run folder checks before resuming: the backbone, the images, the ERP size."""
        final = list(self.model.stages)[-1]
        return {
            "backbone": weights_fingerprint(self.model.stage_module(final)),
            "images": _images_fingerprint(self.images, tuple(self.images.shape[1:])),
            "erp_hw": list(self.student.erp_hw),
        }

    def finished(self) -> BackboneStudent:
        """The trained student in eval mode, its :attr:`~BackboneStudent.provenance` set."""
        self.student.provenance = {
            **{k: list(v) if isinstance(v, tuple) else v for k, v in vars(self.config).items()},
            "images": self.n_images,
        }
        return self.student.eval()

    def save_student(self, path: Path) -> None:
        """Write the student file (:meth:`BackboneStudent.save`)."""
        self.finished().save(path, self.model)

    def read_student(self, out_dir: Path, record: dict) -> BackboneStudent:
        """The student of the finished run in ``out_dir`` (``record``: its distill.json)."""
        student = load_backbone_student(self.model, out_dir / record["student"])
        return student.to(device=self.device, dtype=self.images.dtype).eval()


def distill_backbone(
    model: Backbone,
    images: torch.Tensor,
    config: BackboneDistillConfig | None = None,
    *,
    cache_dir: str | Path | None = None,
    progress: bool = False,
    log=None,
) -> BackboneStudent:
    """Distil a backbone into a spherical student on unlabelled panoramas (module docstring).

    A plain loop, without checkpoints; :func:`pano360.training.distill` runs the same steps on
    Lightning (extra ``train``) with checkpoints and resuming, to the same weights.

    Args:
        model: the backbone (not changed).
        images: (N, 3, H, W) ERP images in [0, 1], W == 2H, H a multiple of 32: the student is
            made for this size.
        config: the training (default :class:`BackboneDistillConfig`).
        cache_dir: the cache of :func:`~pano360.transfer.exact_features` (targets are the
            costly part; with a cache a second run computes none).
        progress: progress bars while computing exact targets.
        log: called as ``log(phase, epoch, losses)`` after every epoch (``epoch`` counted
            from 0 in each phase; ``losses``: stage -> mean normalised loss), or None.

    Returns:
        The trained :class:`BackboneStudent` in eval mode.

    Raises:
        TypeError: ``model`` is not a Backbone, or ``config`` not a BackboneDistillConfig.
        ShapeError: ``images`` not (N, 3, H, 2H) with H a multiple of 32.
        ValueError: an unknown stage in ``config.stages``.
        ValueRangeError: stages out of order.
    """
    run = _BackboneDistillation(model, images, config, cache_dir=cache_dir, progress=progress)
    run.targets()
    optimizers = {
        phase: torch.optim.Adam(run.parameters(phase), lr=run.base_lr(phase))
        for phase in ("layerwise", "finetune")
    }
    for epoch in range(run.total_epochs):
        phase = run.phase(epoch)
        order, generator = run.epoch_stream(epoch)
        sums: dict[str, float] = {}
        for step, index in enumerate(order):
            optimizer = optimizers[phase]
            for group in optimizer.param_groups:
                group["lr"] = run.lr(epoch, step)
            losses = run.losses(phase, torch.tensor([index]), generator)
            optimizer.zero_grad(set_to_none=True)
            sum(losses.values()).backward()
            optimizer.step()
            for stage, v in losses.items():
                sums[stage] = sums.get(stage, 0.0) + float(v.detach())
        if log is not None:
            first = 0 if phase == "layerwise" else run.config.epochs
            log(phase, epoch - first, {k: v / run.steps_per_epoch for k, v in sums.items()})
    return run.finished()
