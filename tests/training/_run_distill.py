"""Distil a tiny stack (or MobileNetV2 on tiny panoramas) with Lightning and SIGKILL the process
mid-epoch, for the resume tests:

    python _run_distill.py OUT_DIR KILL_AT_STEP [backbone]

The process kills itself right after optimizer step KILL_AT_STEP (before that step's checkpoint
is written, so the run resumes from step KILL_AT_STEP - 1: checkpoints every step).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

CONFIG = {"epochs": 2, "finetune_epochs": 2, "rows_per_image": 3, "batch_size": 2, "seed": 3}
BACKBONE_CONFIG = {"stages": ("features.3",), "epochs": 2, "finetune_epochs": 1, "seed": 3}


def stack() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 6, 3), nn.ReLU(),
        nn.Conv2d(6, 4, 3),
    )  # fmt: skip


def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(6)
    return F.interpolate(torch.rand(3, 3, 2, 4, generator=g), size=(8, 16), mode="bilinear")


def run(out: Path, callbacks=()):
    from pano360.training import distill
    from pano360.transfer import DistillConfig

    return distill(
        stack(), images(), DistillConfig(**CONFIG), out, checkpoint_every_n_steps=1,
        callbacks=callbacks,
    )  # fmt: skip


def backbone():
    from pano360.models import create_model

    return create_model("mobilenet_v2", pretrained=True).eval()


def panoramas() -> torch.Tensor:
    g = torch.Generator().manual_seed(6)
    return F.interpolate(torch.rand(2, 3, 8, 16, generator=g), size=(32, 64), mode="bilinear")


def run_backbone(out: Path, callbacks=()):
    from pano360.training import distill
    from pano360.transfer import BackboneDistillConfig

    return distill(
        backbone(), panoramas(), BackboneDistillConfig(**BACKBONE_CONFIG), out,
        checkpoint_every_n_steps=1, callbacks=callbacks,
    )  # fmt: skip


if __name__ == "__main__":
    from lightning.pytorch.callbacks import Callback

    kill_at = int(sys.argv[2])

    class Kill(Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    torch.set_num_threads(1)
    backbone_run = sys.argv[3:] == ["backbone"]
    (run_backbone if backbone_run else run)(Path(sys.argv[1]), [Kill()])
