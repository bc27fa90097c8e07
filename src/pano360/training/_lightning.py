"""Lightning pieces every training of pano360 shares: the ``last.ckpt`` checkpoint callback, a
progress bar on standard error, and quiet Trainers for commands that print their own lines."""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

__all__ = ["StderrProgressBar", "last_checkpoint", "quiet_lightning"]


def last_checkpoint(dirpath: str | Path, every_n_steps: int | None) -> ModelCheckpoint:
    """Lightning's ModelCheckpoint keeping one file, ``DIRPATH/last.ckpt``: saved every
    ``every_n_steps`` optimizer steps, or at the end of every epoch when None (Lightning's
    triggers exclude each other: a step trigger does not also save at epoch ends)."""
    if every_n_steps is None:
        triggers = {"every_n_epochs": 1, "save_on_train_epoch_end": True}
    else:
        triggers = {"every_n_train_steps": every_n_steps, "save_on_train_epoch_end": True}
    # No version counter: a run resumed with other checkpoint settings (a callback state
    # Lightning does not restore) must replace last.ckpt, not write last-v1.ckpt beside it.
    return ModelCheckpoint(
        dirpath=str(dirpath),
        filename="step{step}",
        save_top_k=0,
        save_last=True,
        enable_version_counter=False,
        **triggers,
    )


class StderrProgressBar(TQDMProgressBar):
    """Lightning's training and prediction progress bars, on standard error (where pano360's
    commands put progress; standard output is for results)."""

    def init_predict_tqdm(self) -> Tqdm:
        return self._bar(self.predict_description)

    def init_train_tqdm(self) -> Tqdm:
        return self._bar(self.train_description)

    def _bar(self, desc: str) -> Tqdm:
        # Lightning's own settings for these two bars, but on standard error.
        return Tqdm(
            desc=desc,
            position=2 * self.process_position,
            disable=self.is_disabled,
            leave=True,
            dynamic_ncols=True,
            file=sys.stderr,
            smoothing=0,
            bar_format=self.BAR_FORMAT,
        )


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's information lines (the devices found, "max_epochs reached") and its
    advice about DataLoader workers, for commands that print only their own results."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
            warnings.filterwarnings("ignore", message=".*configure_optimizers` returned `None.*")
            # A task whose modules stay in eval mode on purpose (distillation's student).
            warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
            # Checkpoints of manual optimisation hold the state after the step they are taken
            # at, which is what resuming needs.
            warnings.filterwarnings("ignore", message=".*no pre-optimization state was saved.*")
            # Resuming with other checkpoint settings: the new ones apply (see last_checkpoint).
            warnings.filterwarnings("ignore", message=".*callbacks used to create the checkpoint.*")
            # Lightning 2.6 with torch 2.13 (not ours to fix).
            warnings.filterwarnings("ignore", message=".*treespec, LeafSpec.*")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
