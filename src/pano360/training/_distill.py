"""Distillation on Lightning: :class:`DistillTask` trains the row-untied student of a perspective
conv stack or of a deep backbone (SphConv, :mod:`pano360.transfer`) and :func:`distill` runs it
with Lightning's Trainer, checkpoints and resuming, in a run folder that ``pano360 faces
--strategy distilled`` (a stack's) and ``pano360 eval transfer --student`` (a backbone's) read.

What is computed (the student, the rows drawn, the losses, the learning rates) lives in
:mod:`pano360.transfer` (``DistillConfig`` and its private ``_Distillation`` for a stack,
``BackboneDistillConfig`` and ``_BackboneDistillation`` for a backbone, which offer the same
methods); this module only runs it, whichever it is. Every epoch has its own random stream (a
function of the seed and the epoch): the image order is drawn from it first (the train loader's
sampler draws the same), then the rows of each step. The stream's state, the sums of the epoch's
losses and the history go into Lightning's checkpoints with the student and both Adam states, and
the train loader resumes at the batch it stopped at (:mod:`pano360.training._data`), so a run
killed at any step and resumed from ``checkpoints/last.ckpt`` ends with the same weights and
history as one never stopped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .._core import check_bool, check_int
from ..models.backbones import Backbone
from ..transfer import BackboneDistillConfig, BackboneStudent, DistillConfig
from ..transfer._deep_distill import _BackboneDistillation
from ..transfer._distillation import _Distillation
from ..transfer._run_folder import _RunDir
from ._data import _ResumableLoader, _ResumableSampler
from ._lightning import StderrProgressBar, last_checkpoint, quiet_lightning

__all__ = ["DistillTask", "distill"]

_PHASES = ("layerwise", "finetune")


class _ImageSet(Dataset):
    """The run's samples by index (what the distillation's ``dataset()`` holds: the images,
    each checked, for a stack; the images' indices for a backbone)."""

    def __init__(self, images) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


def _distillation(source, images, config, cache_dir, progress):
    """The step-wise distillation of ``source``: a backbone's or a conv stack's."""
    if isinstance(source, Backbone):
        return _BackboneDistillation(source, images, config, cache_dir=cache_dir, progress=progress)
    return _Distillation(source, images, config)


class DistillTask(pl.LightningModule):
    """Distil a perspective conv stack or a deep backbone into its spherical student (SphConv),
    layer by layer.

    The method is :mod:`pano360.transfer`'s. For a stack (see ``DistillConfig``): layer-wise
    epochs train every conv of the student against the stack's exact outputs on sampled rows,
    optional fine-tuning epochs the whole student against the last layer's. For a backbone
    (see ``BackboneDistillConfig``, :func:`~pano360.transfer.distill_backbone`): the segments
    between trained stages against their exact outputs, then the whole student against all of
    them; the exact targets are computed when training starts (in ``cache_dir`` when given),
    and each step is one image. Each phase has its own Adam
    (manual optimisation: the phase picks it), its learning rate set before every step along a
    cosine. The student stays in eval mode throughout (it mimics the frozen stack: running
    statistics, no dropout); the stack or backbone is only run, under no_grad, and is not part
    of the checkpoints.

    ``training_step`` returns ``{"loss": sum of the layers' losses, "mse/<layer>": ...}`` (no
    loss when the phase has nothing to train). ``history`` holds one record per finished
    epoch: ``{"epoch" (1-based), "phase", "mse": {layer or stage name: mean over the epoch's
    steps}}``.

    Args:
        stack: the source: an ``nn.Sequential`` (see :func:`pano360.transfer.receptive_field`)
            or a :class:`~pano360.models.backbones.Backbone`.
        images: unlabelled ERP images. For a stack: a (N, C, H, W) tensor or a sequence of
            (C, H, W) / (1, C, H, W) tensors of one size, W == 2H, H a multiple of the stack's
            stride. For a backbone: a (N, 3, H, 2H) tensor in [0, 1], H a multiple of 32.
        config: how to train (default ``DistillConfig()`` for a stack,
            ``BackboneDistillConfig()`` for a backbone).
        cache_dir: a backbone's cache of exact targets
            (:func:`~pano360.transfer.exact_features`); None: none. Not used for a stack.
        progress: progress bars while a backbone's exact targets are computed.

    Raises:
        TypeError: unsupported stack, images or config.
        ShapeError: images that are not ERP images of one size fitting the stack.
        ValueRangeError: no conv to distil; a backbone's stages out of order.
        ValueError: an unknown stage of a backbone.
    """

    def __init__(
        self,
        stack: nn.Sequential | Backbone,
        images: torch.Tensor | Sequence[torch.Tensor],
        config: DistillConfig | BackboneDistillConfig | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        progress: bool = False,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        # Not a module: not saved.
        self.distillation = _distillation(stack, images, config, cache_dir, progress)
        self.student = self.distillation.student
        self.history: list[dict[str, Any]] = []
        self._generator: torch.Generator | None = None
        self._epoch: int | None = None  # the epoch the generator and sums belong to
        self._sums: dict[str, float] = {}
        self._optimizer_index: dict[str, int] = {}

    @property
    def config(self) -> DistillConfig | BackboneDistillConfig:
        return self.distillation.config

    def train(self, mode: bool = True) -> DistillTask:
        super().train(mode)
        self.student.eval()
        return self

    def forward(self, erp: torch.Tensor) -> torch.Tensor:
        """The student on ERP images (B, C, H, W) -> its last layer's (stage's) maps."""
        return self.student(erp)

    # --- data ---------------------------------------------------------------------------------

    def train_dataloader(self) -> DataLoader:
        run = self.distillation
        dataset = _ImageSet(run.dataset())
        sampler = _ResumableSampler(dataset, 1, 0, shuffle=False, seed=0, order=self._order)
        return _ResumableLoader(
            dataset,
            batch_size=run.batch_size,
            sampler=sampler,
            num_workers=0,
            drop_last=False,
        )

    def _order(self, epoch: int) -> list[int]:
        return self.distillation.epoch_stream(epoch)[0]

    # --- optimisation ---------------------------------------------------------------------------

    def configure_optimizers(self) -> list[torch.optim.Optimizer] | None:
        optimizers = []
        for phase in _PHASES:
            params = self.distillation.parameters(phase)
            if params:
                self._optimizer_index[phase] = len(optimizers)
                optimizers.append(torch.optim.Adam(params, lr=self.distillation.base_lr(phase)))
        return optimizers or None

    def on_fit_start(self) -> None:
        self.distillation.to(self.device)  # the frozen source and targets: where the student is

    def on_train_epoch_start(self) -> None:
        self._enter_epoch(self.current_epoch)

    def on_train_batch_start(self, batch: torch.Tensor, batch_idx: int) -> None:
        # Also here: Lightning resuming from a checkpoint of an epoch's last step starts the
        # next epoch without calling on_train_epoch_start.
        self._enter_epoch(self.current_epoch)

    def _enter_epoch(self, epoch: int) -> None:
        if self._epoch == epoch:  # under way (possibly restored from a checkpoint)
            return
        self._close_epoch(before=epoch)
        self._generator = self.distillation.epoch_stream(epoch)[1]
        self._epoch, self._sums = epoch, {}

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> dict[str, torch.Tensor] | None:
        run, epoch = self.distillation, self.current_epoch
        phase = run.phase(epoch)
        if phase not in self._optimizer_index:
            return None  # nothing to train in this phase (e.g. one conv, exact from the start)
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        optimizer = optimizers[self._optimizer_index[phase]]
        for group in optimizer.param_groups:
            group["lr"] = run.lr(epoch, batch_idx)
        losses = run.losses(phase, batch, self._generator)
        loss = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()
        mse = {k: float(v.detach()) for k, v in losses.items()}
        for k, v in mse.items():
            self._sums[k] = self._sums.get(k, 0.0) + v
        self.log_dict({f"mse/{k}": v for k, v in mse.items()}, prog_bar=True, batch_size=1)
        return {"loss": loss.detach(), **{f"mse/{k}": v.detach() for k, v in losses.items()}}

    def on_train_epoch_end(self) -> None:
        self._close_epoch(before=self.current_epoch + 1)

    def _close_epoch(self, before: int) -> None:
        """Add the record of the epoch in progress to the history if it ended before epoch
        ``before`` (also after resuming from a checkpoint taken between its last step and
        its end)."""
        epoch = self._epoch
        if epoch is None or epoch >= before or len(self.history) > epoch:
            return
        steps = self.distillation.steps_per_epoch
        self.history.append(
            {
                "epoch": epoch + 1,
                "phase": self.distillation.phase(epoch),
                "mse": {k: v / steps for k, v in self._sums.items()},
            }
        )

    # --- checkpoints ----------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["distill"] = {
            "epoch": self._epoch,
            "generator": None if self._generator is None else self._generator.get_state(),
            "sums": dict(self._sums),
            "history": [dict(r, mse=dict(r["mse"])) for r in self.history],
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint["distill"]
        self.history = [dict(r, mse=dict(r["mse"])) for r in state["history"]]
        self._epoch, self._sums = state["epoch"], dict(state["sums"])
        self._generator = None
        if state["generator"] is not None:
            self._generator = torch.Generator().set_state(state["generator"])


def distill(
    stack: nn.Sequential | Backbone,
    images: torch.Tensor | Sequence[torch.Tensor],
    config: DistillConfig | BackboneDistillConfig | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    resume: bool = True,
    progress: bool = False,
    checkpoint_every_n_steps: int | None = None,
    callbacks: Sequence[Callback] = (),
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[nn.Sequential | BackboneStudent, list[dict[str, Any]]]:
    """Distil a perspective conv stack or a deep backbone into a spherical student (SphConv)
    with Lightning.

    Runs :class:`DistillTask` with Lightning's Trainer on the images' device (one process).
    With ``out_dir`` the run has a folder (:mod:`pano360.transfer._run_folder`):
    ``distill.json`` (the run: config and fingerprints of the stack and images; its history
    when done), ``checkpoints/last.ckpt`` (Lightning's checkpoint) and, when done,
    ``student.safetensors`` (:func:`pano360.transfer.load_student`, ``pano360 faces --strategy
    distilled --students``). Calling it again on the folder resumes the run from the
    checkpoint, bitwise as if it had never stopped.

    For a backbone (:class:`~pano360.models.backbones.Backbone`, e.g.
    ``create_model("mobilenet_v2", pretrained=True)``) it trains what
    :func:`pano360.transfer.distill_backbone` trains, step for step, to the same weights; the
    folder also holds ``exact/``, the cache of the exact targets (a resumed run reads them
    back), and its ``student.safetensors`` is :meth:`~pano360.transfer.BackboneStudent.save`'s
    (:func:`pano360.transfer.load_backbone_student`, ``pano360 eval transfer --student``).

    Args:
        stack: the source: an ``nn.Sequential`` (convs, pools, pointwise layers), e.g.
            ``pano360.transfer.model_stack("mtcnn_pnet")``, or a backbone. Frozen: only run,
            in eval mode, without gradients.
        images: unlabelled ERP images, float in the source's input range: a (N, C, H, W)
            tensor or, for a stack, a sequence (e.g. a lazy dataset) of (C, H, W) or
            (1, C, H, W) tensors, all of one size with W == 2H and H a multiple of the
            source's total stride.
        config: how to train (default ``DistillConfig()`` for a stack,
            ``BackboneDistillConfig()`` for a backbone).
        out_dir: the run's folder (created if missing); None keeps everything in memory.
        resume: continue the run found in ``out_dir`` when it matches (same config, stack and
            images); a finished run is loaded and returned without training. False refuses a
            folder that already holds the run.
        progress: show Lightning's progress bar (on standard error).
        checkpoint_every_n_steps: save ``checkpoints/last.ckpt`` every N optimizer steps;
            None: at the end of every epoch. Only with ``out_dir``.
        callbacks: more Lightning callbacks for the Trainer.
        cache_dir: a backbone's cache of exact targets; default ``out_dir/exact`` (none
            without ``out_dir``). Not used for a stack.

    Returns:
        ``(student, history)``: the trained :func:`pano360.transfer.build_student` network
        (a :class:`~pano360.transfer.BackboneStudent` for a backbone) in eval mode, and one
        record per epoch ``{"epoch", "phase": "layerwise" | "finetune", "mse": {layer or
        stage name: mean over the epoch's steps}}``.

    Raises:
        TypeError: unsupported stack, images or config.
        ShapeError: images that are not ERP images of one size fitting the stack.
        ValueError: an unknown stage of a backbone.
        ValueRangeError: no conv to distil; a backbone's stages out of order; bad config
            (see ``DistillConfig``) or ``checkpoint_every_n_steps``.
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
    resume = check_bool(resume, "resume")
    every = check_int(checkpoint_every_n_steps, "checkpoint_every_n_steps", lo=1, optional=True)
    if cache_dir is None and out_dir is not None:
        cache_dir = os.path.join(out_dir, "exact")
    # A backbone's targets are computed when training starts: after the folder is claimed.
    task = DistillTask(stack, images, config, cache_dir=cache_dir, progress=progress)
    run, ckpt_path = None, None
    if out_dir is not None:
        run = _RunDir(out_dir, task.config, task.distillation.fingerprint())
        record = run.open(resume)
        if record is not None and record["complete"]:
            return task.distillation.read_student(run.dir, record), record["history"]
        if record is not None and run.checkpoint.is_file():
            ckpt_path = str(run.checkpoint)
    device = task.distillation.device
    trainer_callbacks = list(callbacks)
    if run is not None:
        trainer_callbacks.append(last_checkpoint(run.checkpoint.parent, every))
    if progress:
        trainer_callbacks.append(StderrProgressBar())
    with quiet_lightning():
        trainer = pl.Trainer(
            max_epochs=task.distillation.total_epochs,
            accelerator="gpu" if device.type == "cuda" else "cpu",
            devices=[device.index or 0] if device.type == "cuda" else 1,
            logger=False,
            enable_checkpointing=run is not None,
            enable_progress_bar=progress,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0,
            callbacks=trainer_callbacks,
            default_root_dir=None if run is None else str(run.dir),
        )
        trainer.fit(task, ckpt_path=ckpt_path, weights_only=True)
    student = task.distillation.finished()
    if run is not None and len(task.history) == task.distillation.total_epochs:
        run.finish(task.distillation.save_student, task.history)
    return student, task.history
