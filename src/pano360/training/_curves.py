"""The learning curve of a run: train and validation loss and metrics by epoch, from the CSV
metrics log Lightning's CSVLogger writes, drawn with matplotlib's Agg backend (no display)."""

from __future__ import annotations

import csv
import io
import math
import os
from collections import defaultdict
from pathlib import Path

from .._core import DatasetFormatError
from ..io import write_atomic

__all__ = ["plot_learning_curve", "read_epoch_metrics"]


def read_epoch_metrics(metrics_csv: str | os.PathLike[str]) -> dict[str, dict[int, float]]:
    """Per-epoch values of a CSVLogger ``metrics.csv``: column -> {epoch: value}.

    Step-level columns (``*_step``) are left out; ``*_epoch`` columns lose the suffix (so
    ``train/loss_epoch`` becomes ``train/loss``). When a column has several values in an epoch
    (a resumed run logs again), the last one counts.

    Raises:
        DatasetFormatError: the file is missing or has no ``epoch`` column.
    """
    path = Path(metrics_csv)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetFormatError(f"cannot read metrics log '{path}': {exc.strerror}") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    if rows and "epoch" not in rows[0]:
        raise DatasetFormatError(f"metrics log '{path}' has no 'epoch' column")
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for row in rows:
        if not row.get("epoch"):
            continue
        epoch = int(float(row["epoch"]))
        for key, value in row.items():
            if key in ("epoch", "step") or not value or key.endswith("_step"):
                continue
            out[key.removesuffix("_epoch")][epoch] = float(value)
    return dict(out)


def plot_learning_curve(
    metrics_csv: str | os.PathLike[str], png: str | os.PathLike[str], *, title: str = ""
) -> Path:
    """Draw train and validation loss (left) and the validation metrics (right) by epoch.

    Args:
        metrics_csv: a CSVLogger ``metrics.csv``.
        png: the image to write (atomically, replacing an existing one).
        title: a title over both panels.

    Returns:
        ``png`` as a Path.

    Raises:
        DatasetFormatError: as :func:`read_epoch_metrics`.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    series = read_epoch_metrics(metrics_csv)
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_loss, ax_metrics = fig.subplots(1, 2)
    for key in ("train/loss", "val/loss"):
        if key in series:
            epochs = sorted(series[key])
            ax_loss.plot(epochs, [series[key][e] for e in epochs], marker="o", label=key)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("spherical MSE (target x scale)")
    ax_loss.set_title("loss")
    metrics = sorted(k for k in series if k.startswith("val/") and k != "val/loss")
    for key in metrics:
        epochs = sorted(series[key])
        values = [series[key][e] for e in epochs]
        if all(math.isfinite(v) for v in values):
            ax_metrics.plot(epochs, values, marker="o", label=key)
    ax_metrics.set_xlabel("epoch")
    ax_metrics.set_title("validation metrics")
    for ax in (ax_loss, ax_metrics):
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    path = Path(png)
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=100), overwrite=True)
    return path
