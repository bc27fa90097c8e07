"""Export a trained model: safetensors weights plus a JSON model card, loadable without the
training code and without unpickling anything.

``export_model(net, "run/model", architecture="spherical_unet", config={...})`` writes
``run/model.safetensors`` and ``run/model.json``; ``pano360.models.create_model("run/model")``
(or ``create_model("spherical_unet", weights="run/model.safetensors")``) builds the registered
architecture with the card's configuration and loads the weights after checking their sha256;
``pano360 saliency IN --model run/model.json`` runs it. The card's format is
:data:`pano360._core.MODEL_CARD_FORMAT`; its fields are written out in docs/training.md.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from safetensors.torch import save as save_safetensors
from torch import nn

from .. import __version__
from .._core import MODEL_CARD_FORMAT, ValueRangeError, model_card_paths, model_info
from ..io import write_atomic

__all__ = ["export_model"]


def _jsonable(value: Any, name: str) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueRangeError(
            f"{name} must be JSON (numbers, strings, lists, dicts): {exc}"
        ) from None


def export_model(
    net: nn.Module,
    path: str | os.PathLike[str],
    *,
    architecture: str,
    config: dict[str, Any] | None = None,
    input: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    metrics_preset: str | None = None,
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Write ``net``'s weights (safetensors) and its model card (JSON) side by side.

    Args:
        net: the trained model; ``create_model(architecture, **config)`` must build a model with
            the same ``state_dict`` keys and shapes.
        path: ``DIR/NAME``, ``DIR/NAME.safetensors`` or ``DIR/NAME.json`` (the folder must exist).
        architecture: the registered model name (``pano360.models.list_models()``).
        config: the builder's keyword arguments (JSON values).
        input: the input contract (e.g. channel order, value range, the size trained at, what
            the prior input is); JSON values.
        training: what the model was trained on and how (data, epochs, optimizer, seed).
        metrics: metric name -> value (on the validation data); inf and NaN become null.
        metrics_preset: the :mod:`pano360.saliency` preset of ``metrics``.
        overwrite: replace an existing export.

    Returns:
        (weights path, card path).

    Raises:
        ValueError: ``architecture`` is not registered.
        ValueRangeError: ``config``, ``input`` or ``training`` hold non-JSON values.
        OutputExistsError: the files exist and ``overwrite`` is False.
        ImageIOError: a file cannot be written.
    """
    info = model_info(architecture)
    card_path, weights_path = model_card_paths(path)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in net.state_dict().items()}
    blob = save_safetensors(state, metadata={"format": "pt", "architecture": architecture})
    card = {
        "format": MODEL_CARD_FORMAT,
        "architecture": {
            "name": architecture,
            "config": _jsonable(config or {}, "config"),
            "description": info.description,
        },
        "task": info.task,
        "input": _jsonable(input or {}, "input"),
        "training": _jsonable(training or {}, "training"),
        "metrics": {
            "preset": metrics_preset,
            # A diverged run's inf or NaN is recorded as null (JSON has neither).
            "values": {
                k: float(v) if math.isfinite(float(v)) else None for k, v in (metrics or {}).items()
            },
        },
        "weights": {
            "file": weights_path.name,
            "sha256": hashlib.sha256(blob).hexdigest(),
            "parameters": int(sum(p.numel() for p in net.parameters())),
            "dtype": str(next(iter(state.values())).dtype).removeprefix("torch.")
            if state
            else None,
        },
        "pano360_version": __version__,
    }
    text = json.dumps(card, indent=2, sort_keys=False) + "\n"
    # Weights first, the card last: a card on disk always describes complete weights.
    write_atomic(weights_path, lambda f: f.write(blob), overwrite)
    write_atomic(card_path, lambda f: f.write(text.encode("utf-8")), overwrite)
    return weights_path, card_path
