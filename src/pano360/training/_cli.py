"""``pano360 train saliency``: Lightning's CLI over :class:`SaliencyTask` and
:class:`SaliencyDataModule`, with a run folder that holds everything of one run.

Every option (the task's, the data's, every Trainer argument, ``--optimizer``) is typed, has a
default and is listed by ``--help``; a YAML file given with ``--config`` sets any of them, the
command line overrides it. The run folder, ``--trainer.default_root_dir`` (default
``runs/saliency``), receives:

- ``checkpoints/last.ckpt`` (Lightning's checkpoint, every ``--checkpoint_every_n_steps``
  steps): ``--resume`` continues from it, bitwise as if never stopped;
- ``logs/metrics.csv`` (Lightning's CSVLogger) and ``logs/config.yaml`` (the full config);
- ``learning_curve.png``: loss and validation metrics by epoch, drawn at the end;
- ``model.safetensors`` and ``model.json``: the exported model (see :func:`export_model`).

A fresh run refuses a folder that already holds a checkpoint (pass ``--resume``, or choose
another folder), so no checkpoint is ever replaced by accident; a typo in the config fails
before anything is written.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Sequence
from pathlib import Path

from jsonargparse import ActionYesNo
from jsonargparse import ArgumentError as _ArgumentError
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger

from .._core import OutputExistsError, Pano360Error, ValueRangeError, model_card_paths
from ..io import write_atomic
from ._curves import plot_learning_curve
from ._data import SaliencyDataModule
from ._export import export_model
from ._lightning import last_checkpoint
from ._saliency_task import SaliencyTask

__all__ = ["ConfigError", "train_saliency"]

#: Where a run goes when the config names no folder.
DEFAULT_ROOT_DIR = "runs/saliency"


class ConfigError(Pano360Error, ValueError):
    """A training configuration is invalid: an unknown key (a typo), a value of the wrong type,
    a file that cannot be read."""


class _SaliencyCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument(
            "--resume",
            action=ActionYesNo,
            default=False,
            help="Continue the run in --trainer.default_root_dir from checkpoints/last.ckpt "
            "(model, optimizer, epoch and the position inside the epoch).",
        )
        parser.add_argument(
            "--checkpoint_every_n_steps",
            type=int,
            default=50,
            help="Save checkpoints/last.ckpt every N optimizer steps (only then: Lightning's "
            "step and epoch triggers exclude each other).",
        )
        parser.add_argument(
            "--export",
            type=str | None,
            default=None,
            help="Where to export the trained model (NAME.safetensors and NAME.json); "
            "default: <default_root_dir>/model.",
        )

    def instantiate_trainer(self, **kwargs):
        config = self.config_init
        root = Path(config["trainer"]["default_root_dir"])
        if config["trainer"].get("logger") in (None, True):
            kwargs["logger"] = CSVLogger(save_dir=str(root), name="logs", version="")
        callbacks = list(config["trainer"].get("callbacks") or [])
        callbacks.append(last_checkpoint(root / "checkpoints", config["checkpoint_every_n_steps"]))
        kwargs["callbacks"] = callbacks
        return super().instantiate_trainer(**kwargs)


def _settings() -> dict:
    return dict(
        model_class=SaliencyTask,
        datamodule_class=SaliencyDataModule,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"default_root_dir": DEFAULT_ROOT_DIR},
        seed_everything_default=0,
        parser_kwargs={
            "prog": "pano360 train saliency",
            "exit_on_error": False,
            "description": "Train a saliency model on 360-degree video clips (Lightning). "
            "Options come from --config FILE.yaml and the command line (which wins).",
        },
        auto_configure_optimizers=True,
    )


def _build(args: list[str]) -> _SaliencyCLI:
    try:
        return _SaliencyCLI(args=args, run=False, **_settings())
    except _ArgumentError as exc:  # parsing fails before anything is instantiated or written
        raise ConfigError(f"invalid training configuration: {exc}") from None


def train_saliency(args: Sequence[str]) -> int:
    """Run ``pano360 train saliency`` with command-line ``args``; return the exit status.

    Raises:
        ConfigError: the configuration does not parse (a typo, a wrong type, a missing file).
        OutputExistsError: a fresh run in a folder that holds a checkpoint or an export.
        ValueRangeError: ``--resume`` without a checkpoint to resume from.
    """
    args = list(args)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*args parameter is intended.*")
        # Lightning's CLI still calls jsonargparse APIs deprecated in 4.49 (not ours to fix).
        warnings.filterwarnings("ignore", message=r"(?s).*deprecated in v4")
        warnings.filterwarnings("ignore", message=r"(?s).*JsonargparseDeprecationWarning")
        cli = _build(args)
        root = Path(cli.config["trainer"]["default_root_dir"])
        last = root / "checkpoints" / "last.ckpt"
        export = cli.config["export"] or str(root / "model")
        resume = bool(cli.config["resume"])
        if resume and not last.is_file():
            raise ValueRangeError(f"--resume: no checkpoint to resume from at '{last}'")
        if not resume:
            if last.exists():
                raise OutputExistsError(
                    f"'{last}' exists: pass --resume to continue that run, or choose another "
                    "--trainer.default_root_dir"
                )
            for p in model_card_paths(export):
                if p.exists():
                    raise OutputExistsError(f"the export '{p}' exists; choose another --export")
        trainer, task, data = cli.trainer, cli.model, cli.datamodule
        # Lightning's CSVLogger deletes an existing metrics.csv when it starts: keep the earlier
        # rows of a resumed run aside (merged with any kept before) and put them back after.
        log_dir = Path(trainer.logger.log_dir) if trainer.logger is not None else None
        kept = log_dir / "metrics.before-resume.csv" if log_dir is not None else None
        if resume and kept is not None and (log_dir / "metrics.csv").is_file():
            merged = _merge_csv(kept, log_dir / "metrics.csv")
            write_atomic(kept, lambda f: f.write(merged.encode("utf-8")), overwrite=True)
        trainer.fit(
            task, datamodule=data, ckpt_path=str(last) if resume else None, weights_only=True
        )
        if not trainer.is_global_zero:
            return 0
        if trainer.logger is not None:
            trainer.logger.save()
            metrics_csv = Path(trainer.logger.log_dir) / "metrics.csv"
            if kept is not None and kept.is_file():
                merged = _merge_csv(kept, metrics_csv)
                write_atomic(metrics_csv, lambda f: f.write(merged.encode("utf-8")), True)
                kept.unlink()
            if metrics_csv.is_file():
                plot_learning_curve(metrics_csv, root / "learning_curve.png", title=str(root))
        if task.architecture is not None:
            export_model(
                task.net,
                export,
                architecture=task.architecture,
                config=task.model_config,
                input=task.input_contract(),
                training=task.describe_training(trainer, data),
                metrics={
                    k.removeprefix("val/"): float(v)
                    for k, v in trainer.callback_metrics.items()
                    if k.startswith("val/")
                },
                metrics_preset=task.metrics_preset,
                overwrite=resume,
            )
    return 0


def _merge_csv(*paths: Path) -> str:
    """The rows of several CSV files (those that exist), in order, under the union of their
    columns."""
    rows, keys = [], []
    for path in paths:
        if not path.is_file():
            continue
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            keys += [k for k in reader.fieldnames or () if k not in keys]
            rows += list(reader)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=sorted(keys))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
