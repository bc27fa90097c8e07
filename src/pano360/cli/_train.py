"""``pano360 train``: train models on the Lightning foundation (:mod:`pano360.training`, extra
``train``). Lightning is imported only when a training command runs."""

from __future__ import annotations

import typer

__all__ = ["train_app"]

train_app = typer.Typer(
    name="train",
    help="Train models with Lightning (extra 'train'): one GPU or CPU, many GPUs and nodes "
    "(--trainer.devices, --trainer.num_nodes, --trainer.strategy ddp), resume, export.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


@train_app.callback()
def _train_group() -> None:
    # A callback keeps `train` a group of tasks (`pano360 train saliency`) while it has one.
    """Train models with Lightning (extra 'train'): one GPU or CPU, many GPUs and nodes
    (--trainer.devices, --trainer.num_nodes, --trainer.strategy ddp), resume, export."""


@train_app.command(
    "saliency",
    # Every option is Lightning's CLI's (typed, with defaults): hand them all over, --help too.
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
    short_help="Train a saliency model on 360-degree video clips; --help lists every option.",
)
def train_saliency_command(ctx: typer.Context) -> None:
    """Train a saliency model: pano360 train saliency --config FILE.yaml [--trainer.max_epochs N]
    [--resume]. Run with --help for every option and its default."""
    try:
        from ..training import train_saliency
    except ImportError as exc:  # the optional extra is missing
        from .._core import Pano360Error

        raise Pano360Error(
            f"training needs the 'train' extra (pip install 'pano360[train]'): {exc}"
        ) from None
    train_saliency(ctx.args)
