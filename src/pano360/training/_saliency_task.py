"""SaliencyTask: the LightningModule that trains a saliency model on clips of 360° video.

The loss is :func:`pano360.nn.spherical_mse` (area-weighted) between the model's raw maps and
the target maps times ``target_scale`` (10, the seed's SphereMSE recipe). Validation reports the
loss and CC, KLD and NSS under a metric preset of :mod:`pano360.saliency` (``"sphere"``), on the
predictions clamped to >= 0 (the metrics read maps as non-negative densities). With the seed's
linear head the clamp leaves exact zeros, which KL divergence charges about log(1 / eps) ~ 36
per unit of the viewers' mass on them: the validation KLD of such a model is large and jumps
from epoch to epoch with the few pixels under the gaze it misses. ``uniform_share`` (the
readout of :func:`pano360.models.raw_to_saliency`; benchmarks/bench_saliency_training.py
calibrates it on held-out videos) mixes the densities with the uniform one for validation and
is recorded in the exported model card, so `pano360 saliency --model` reads maps out the same
way; or train the softplus head.

The earlier-frame map (the model's fourth input channel) follows the model's ``prior``
attribute:

- ``"gt"``: teacher forcing, as the seed trains: the ground-truth map of an earlier frame
  (``batch["prior"]``). Faithful for reproducing the paper; at test time that map is unknown.
- ``"prediction"``: the model's own prediction of the previous frame of the clip
  (``clamp(raw, 0) / target_scale``, :func:`pano360.models.raw_to_saliency`), *detached*
  (no gradient flows through it, so it costs one forward pass per frame and no memory across
  frames); the first frame of a clip gets zeros, exactly as the first frame of a video does at
  inference. This is the choice usable at test time; it needs clips of >= 2 frames. We chose
  detached predictions over scheduled sampling: they have no schedule to tune, no randomness
  (so resuming stays bitwise exact), and train on the very input the model sees at inference.
- ``"none"``: no earlier map; the model sees the frame alone.

The earlier-frame map goes to the model on the targets' scale (the model multiplies it by 10
itself, as the seed does). Every clip is run frame by frame; the loss is the mean over its
frames.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from .._core import ShapeError, ValueRangeError, check_choice, check_number, create_model
from ..models import raw_to_saliency
from ..nn import spherical_mse
from ..saliency import compute_metrics, list_presets

__all__ = ["PRIORS", "SaliencyTask"]

#: What a saliency model takes as its earlier-frame map (its ``prior`` attribute).
PRIORS = ("gt", "prediction", "none")
_VAL_METRICS = ("cc", "kld", "nss")


def _check_batch(batch: dict[str, Any]) -> tuple[int, int]:
    frames = batch.get("frames")
    target = batch.get("saliency")
    if not isinstance(frames, torch.Tensor) or frames.dim() != 5 or frames.shape[2] != 3:
        got = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
        raise ShapeError(f"batch['frames'] must be (B, T, 3, H, W), got {got}")
    b, t, _, h, w = frames.shape
    if not isinstance(target, torch.Tensor) or tuple(target.shape) != (b, t, 1, h, w):
        got = tuple(target.shape) if isinstance(target, torch.Tensor) else type(target).__name__
        raise ShapeError(
            f"batch['saliency'] must be (B, T, 1, H, W) = {(b, t, 1, h, w)}, got {got}"
        )
    return b, t


class SaliencyTask(pl.LightningModule):
    """Train a saliency model (task ``"saliency"``) on clips of 360° video.

    Args:
        model: a registered model name (``pano360.models.list_models(task="saliency")``; a
            model of one's own is registered with ``pano360.models.register_model``). From
            Python an ``nn.Module`` instance is accepted too (it cannot be exported: the card
            names a registered architecture). The model is called as ``model(frames,
            prior=map)`` (``prior`` omitted when its ``prior`` attribute is ``"none"`` or
            missing) and returns (B, 1, H, W) raw maps on the target x ``target_scale`` scale.
        model_config: keyword arguments of the registered model's builder (ignored for a
            module); recorded in the exported model card.
        lr: SGD learning rate. The seed trains with 0.3, but on pano360's loss (the mean
            spherical MSE against gaze maps of peak about 1, times 10) SGD with momentum 0.9
            diverged within the first 20 steps at 0.3, 0.1, 0.03 and 0.01 for both U-Nets at
            128 x 64 (batch 4); 0.003 trained stably, and is the default.
        momentum: SGD momentum (0.9).
        weight_decay: SGD weight decay (1e-5). On the command line, ``--optimizer`` replaces SGD
            by any torch optimizer.
        target_scale: the targets are multiplied by it before the loss (10 in the seed).
        metrics_preset: the :mod:`pano360.saliency` preset of the validation metrics.
        uniform_share: the readout, raw maps -> densities, of validation and of the exported
            model (``raw_to_saliency(raw, normalize=True, uniform_share=...)``): 0 keeps the
            clamped map; a share s > 0 bounds KL divergence's charge on the model's zeros by
            log(1 / s). Training is not affected.

    Batches are dicts (see :mod:`pano360.training._data`): ``frames`` (B, T, 3, H, W) in [0, 1],
    ``saliency`` (B, T, 1, H, W) target maps, ``prior`` (B, T, 1, H, W) the target of an earlier
    frame (for ``prior="gt"``), optionally ``fixations`` (B, T, 1, H, W) binary fixation maps
    (NSS is computed only when they are given).

    Raises:
        ValueError: unknown model name, prior or preset.
        ValueRangeError: a non-positive or non-finite lr, momentum, weight decay or scale, or
            ``uniform_share`` outside [0, 1].
    """

    def __init__(
        self,
        model: str = "spherical_unet",
        model_config: dict[str, Any] | None = None,
        lr: float = 0.003,
        momentum: float = 0.9,
        weight_decay: float = 1e-5,
        target_scale: float = 10.0,
        metrics_preset: str = "sphere",
        uniform_share: float = 0.0,
    ) -> None:
        super().__init__()
        check_number(lr, "lr", lo=0, lo_open=True)
        check_number(momentum, "momentum", lo=0)
        check_number(weight_decay, "weight_decay", lo=0)
        check_number(target_scale, "target_scale", lo=0, lo_open=True)
        check_choice(metrics_preset, "metrics_preset", list_presets())
        check_number(uniform_share, "uniform_share", lo=0.0, hi=1.0)
        config = dict(model_config or {})
        if isinstance(model, nn.Module):
            self.save_hyperparameters(ignore=["model"])
            self.architecture = None
            self.net = model
        else:
            self.save_hyperparameters()
            self.architecture = model
            self.net = create_model(model, **config)
        self.model_config = config
        self.prior = check_choice(getattr(self.net, "prior", "none"), "model.prior", PRIORS)
        self.lr, self.momentum, self.weight_decay = float(lr), float(momentum), float(weight_decay)
        self.target_scale = float(target_scale)
        self.metrics_preset = metrics_preset
        self.uniform_share = float(uniform_share)
        self.trained_hw: tuple[int, int] | None = None  # (H, W) of the training frames

    def forward(self, frames: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """One frame through the model: frames (B, 3, H, W), prior (B, 1, H, W) on the targets'
        scale (zeros when None and the model takes one) -> raw maps (B, 1, H, W)."""
        if self.prior == "none":
            return self.net(frames)
        if prior is None:
            prior = frames.new_zeros(frames.shape[0], 1, *frames.shape[-2:])
        return self.net(frames, prior=prior)

    def _run_clip(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(predictions (B, T, 1, H, W), per-frame losses (T,))."""
        _, t = _check_batch(batch)
        if self.prior == "prediction" and t < 2 and self.training:
            raise ValueRangeError(
                "a model with prior='prediction' trains on its own prediction of the previous "
                "frame, so it needs clips of at least 2 frames (the data's clip_len), got 1"
            )
        frames = batch["frames"]
        target = batch["saliency"] * self.target_scale
        outputs, losses = [], []
        previous = None
        for i in range(t):
            if self.prior == "gt":
                prior = batch["prior"][:, i]
            elif self.prior == "prediction" and previous is not None:
                prior = previous.detach().clamp_min(0) / self.target_scale
            else:
                prior = None
            out = self(frames[:, i], prior)
            outputs.append(out)
            losses.append(spherical_mse(out, target[:, i]))
            previous = out
        return torch.stack(outputs, dim=1), torch.stack(losses)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        _, losses = self._run_clip(batch)
        self.trained_hw = tuple(batch["frames"].shape[-2:])
        loss = losses.mean()
        b = batch["frames"].shape[0]
        self.log(
            "train/loss",
            loss,
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            batch_size=b,
            sync_dist=True,
        )
        out = {"loss": loss, "mse_first_frame": losses[0].detach()}
        if losses.numel() > 1:
            out["mse_later_frames"] = losses[1:].mean().detach()
        return out

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        preds, losses = self._run_clip(batch)
        b = preds.shape[0]
        log = dict(batch_size=b, sync_dist=True)
        self.log("val/loss", losses.mean(), prog_bar=True, **log)
        scores = self.score(preds, batch)
        for name, value in scores.items():
            self.log(f"val/{name}", value.mean(), prog_bar=name == "cc", **log)
        return {"loss": losses.mean(), **{k: v.mean() for k, v in scores.items()}}

    def score(self, preds: torch.Tensor, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """CC, KLD (and NSS with fixations) of predictions (B, T, 1, H, W) against the batch's
        targets, one value per frame ((B T,) each), under ``metrics_preset``."""
        h, w = preds.shape[-2:]
        pred = raw_to_saliency(
            preds.detach().reshape(-1, 1, h, w).double(), True, self.uniform_share
        )
        gt = batch["saliency"].reshape(-1, 1, h, w).double()
        fix = batch.get("fixations")
        names = ["cc", "kld"]
        if isinstance(fix, torch.Tensor):
            fix = fix.reshape(-1, 1, h, w)
            names.append("nss")
        else:
            fix = None
        scores = compute_metrics(pred, gt, fix, preset=self.metrics_preset, metrics=names)
        return {k: v.float() for k, v in scores.items()}

    def input_contract(self) -> dict[str, Any]:
        """The exported model's input contract (for its model card)."""
        return {
            "frames": "(B, 3, H, W) RGB in [0, 1], equirectangular (W == 2H)",
            "trained_hw": list(self.trained_hw) if self.trained_hw else None,
            "prior": self.prior,
            "prior_input": {
                "gt": "the saliency map of an earlier frame on the targets' scale (unknown at "
                "test time: feed the previous prediction or zeros)",
                "prediction": "the model's own output for the previous frame, clamped at 0 and "
                "divided by target_scale (zeros for the first frame)",
                "none": "no earlier map",
            }[self.prior],
            "output": "(B, 1, H, W) raw maps on the target x target_scale scale; clamp at 0, "
            "divide by the sum and mix with uniform_share of the uniform density for a density",
            "uniform_share": self.uniform_share,
            "output_head": getattr(self.net, "output", None),
            "target_scale": self.target_scale,
        }

    def describe_training(self, trainer: pl.Trainer, datamodule: Any = None) -> dict[str, Any]:
        """What the model was trained on and how (for its model card)."""
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        info: dict[str, Any] = {
            "epochs": trainer.current_epoch,
            "global_steps": trainer.global_step,
            "optimizer": type(optimizer).__name__ if optimizer is not None else None,
            "optimizer_defaults": {
                k: v
                for k, v in (optimizer.defaults.items() if optimizer is not None else ())
                if isinstance(v, (int, float, str, bool)) or v is None
            },
            "loss": f"spherical_mse(pred, {self.target_scale:g} x target)",
            "prior": self.prior,
            "world_size": trainer.world_size,
            "precision": str(trainer.precision),
        }
        describe = getattr(datamodule, "describe", None)
        if callable(describe):
            info["data"] = describe()
        return info

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(
            self.net.parameters(),
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
        )
