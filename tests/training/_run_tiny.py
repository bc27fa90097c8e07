"""Train the tiny model with Lightning and save the final weights (safetensors), for the tests:

    python _run_tiny.py OUT_DIR plain|kill|resume|ddp [KILL_AT_STEP]

``kill`` sends itself SIGKILL right after optimizer step KILL_AT_STEP (mid-epoch, after the
checkpoint of that step); ``resume`` continues from OUT_DIR/checkpoints/last.ckpt; ``ddp`` runs 2
CPU processes (gloo) with half the batch each.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch

EPOCHS, BATCH, EVERY = 2, 4, 2


def train(out: Path, mode: str, kill_at: int = 0):
    import lightning.pytorch as pl
    from _tiny import TinyClips, TinySaliency
    from lightning.pytorch.callbacks import Callback, ModelCheckpoint
    from safetensors.torch import save_file

    from pano360.training import SaliencyDataModule, SaliencyTask

    torch.set_num_threads(1)
    pl.seed_everything(0, verbose=False)

    class Kill(Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    ddp = mode == "ddp"
    task = SaliencyTask(TinySaliency(), lr=0.05)
    data = SaliencyDataModule(
        TinyClips(videos=4, frames=4), val_fraction=0.25, batch_size=BATCH // 2 if ddp else BATCH
    )
    checkpoint = ModelCheckpoint(
        dirpath=out / "checkpoints", every_n_train_steps=EVERY, save_top_k=0, save_last=True
    )
    trainer = pl.Trainer(
        max_epochs=EPOCHS,
        accelerator="cpu",
        devices=2 if ddp else 1,
        strategy="ddp" if ddp else "auto",
        deterministic=True,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[checkpoint, *([Kill()] if mode == "kill" else [])],
        default_root_dir=out,
    )
    ckpt = out / "checkpoints" / "last.ckpt" if mode == "resume" else None
    trainer.fit(task, datamodule=data, ckpt_path=ckpt, weights_only=True)
    if trainer.is_global_zero:
        state = {k: v.contiguous() for k, v in task.net.state_dict().items()}
        save_file(state, str(out / f"final_{mode}.safetensors"))
    return task


if __name__ == "__main__":
    train(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
