"""Pretrained weights described as data, and loaded with every key accounted for.

A :class:`WeightsSpec` says which safetensors file holds a model's weights (shipped inside a
package, or a local path), its sha256, what input the weights expect, their licence and where they
come from. :func:`load_weights` verifies the hash, then loads the tensors; a missing key, an
unexpected key or a shape mismatch is an error, never silently ignored.

:func:`load_weights_file` loads a user's own checkpoint (a ``.safetensors`` file, or a torch
``.pth``/``.pt`` file read with ``torch.load(weights_only=True)``): missing and unexpected keys
are listed in a warning, or an error with ``strict=True``.

An *exported model* (what ``pano360 train`` writes, :func:`pano360.training.export_model`) is a
pair of files with one stem: ``NAME.safetensors`` (the weights) and ``NAME.json``, its model card
(format :data:`MODEL_CARD_FORMAT`: the registered architecture and the configuration it was built
with, the input contract, the training data, the metrics and their preset, the sha256 of the
weights). :func:`read_model_card` finds and checks the pair; nothing in it is ever unpickled.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from .errors import Pano360Error

__all__ = [
    "MODEL_CARD_FORMAT",
    "InputContract",
    "WeightsError",
    "WeightsSpec",
    "file_sha256",
    "load_weights",
    "load_weights_file",
    "model_card_paths",
    "read_model_card",
]

#: The ``format`` field of the model cards this version reads and writes.
MODEL_CARD_FORMAT = "pano360-model-card/1"


class WeightsError(Pano360Error, ValueError):
    """A weights file is missing, corrupted, unreadable, or does not fit the model."""


@dataclass(frozen=True)
class InputContract:
    """What a model with these weights expects as input.

    Attributes:
        channel_order: e.g. ``"RGB"``.
        value_range: (low, high) of the input values, e.g. ``(0.0, 1.0)``.
        hw: fixed (H, W) the model needs, or None when any size from ``min_hw`` up works.
        min_hw: smallest (H, W) the model accepts.
        normalisation: what the model does to its input before the first layer (informative).
    """

    channel_order: str
    value_range: tuple[float, float]
    hw: tuple[int, int] | None
    min_hw: tuple[int, int]
    normalisation: str = ""


@dataclass(frozen=True)
class WeightsSpec:
    """A set of pretrained weights: file, hash, input contract, licence and provenance.

    Attributes:
        file: path of the safetensors file, relative to the directory of ``package`` (shipped
            weights), or a local path when ``package`` is None.
        package: dotted name of the package that ships the file, or None.
        sha256: hex digest the file must have; None skips the check (local files only).
        input: the :class:`InputContract` of the weights.
        licence: SPDX identifier of the weights' licence, e.g. ``"MIT"``.
        licence_file: the licence text with attribution, relative like ``file`` (may be empty).
        provenance: where the weights come from and how they were converted.
    """

    file: str
    package: str | None
    sha256: str | None
    input: InputContract
    licence: str
    licence_file: str = ""
    provenance: str = ""

    def path(self) -> Path:
        """The weights file on disk (inside the installed package when ``package`` is set)."""
        if self.package is None:
            return Path(self.file)
        return Path(str(importlib.resources.files(self.package).joinpath(self.file)))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_weights(model: nn.Module, spec: WeightsSpec) -> nn.Module:
    """Load ``spec``'s weights into ``model`` in place, checking the file and every key.

    The tensors are copied into the model's existing parameters and buffers (their dtype and
    device are kept).

    Args:
        model: the module to fill; its ``state_dict`` keys must be exactly the file's keys.
        spec: the weights to load.

    Returns:
        ``model``, for chaining.

    Raises:
        WeightsError: the file is missing or unreadable, its sha256 differs from
            ``spec.sha256``, keys are missing or unexpected, or a tensor's shape differs from
            the model's. The message names the file and lists the offending keys.
    """
    path = spec.path()
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if spec.sha256 is not None:
        actual = file_sha256(path)
        if actual != spec.sha256.lower():
            raise WeightsError(
                f"weights file {path} is corrupted or not the expected one: sha256 must be "
                f"{spec.sha256}, got {actual}"
            )
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"cannot read weights file {path} as safetensors: {exc}") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = [
        f"{k}: model {tuple(expected[k].shape)}, file {tuple(tensors[k].shape)}"
        for k in sorted(set(expected) & set(tensors))
        if expected[k].shape != tensors[k].shape
    ]
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"missing keys {missing}")
        if unexpected:
            problems.append(f"unexpected keys {unexpected}")
        if mismatched:
            problems.append(f"shape mismatches [{'; '.join(mismatched)}]")
        raise WeightsError(
            f"weights file {path} does not fit {type(model).__name__}: {', '.join(problems)}"
        )
    with torch.no_grad():
        model.load_state_dict(tensors, strict=True)
    return model


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"cannot read weights file {path} as safetensors: {exc}") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as exc:
        raise WeightsError(
            f"cannot read weights file {path} with torch.load(weights_only=True): "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    # Training scripts wrap the state dict: torchvision's references under "model",
    # Lightning under "state_dict".
    for key in ("model", "state_dict"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise WeightsError(
            f"weights file {path} must hold a state dict (names -> tensors), or one under "
            f"'model' or 'state_dict'; got {type(obj).__name__}"
        )
    return dict(obj)


def load_weights_file(
    model: nn.Module, path: str | os.PathLike[str], *, strict: bool = False
) -> nn.Module:
    """Load a user's checkpoint from a local file into ``model`` in place.

    ``.safetensors`` files are read with safetensors; anything else with
    ``torch.load(path, weights_only=True)`` (never a full unpickling), e.g. a torchvision-format
    ``.pth``. A state dict nested under ``"model"`` (torchvision's training references) or
    ``"state_dict"`` (Lightning) is unwrapped. Tensors are copied into the model's parameters
    and buffers (their dtype and device are kept).

    Args:
        model: the module to fill.
        path: the checkpoint.
        strict: raise on missing or unexpected keys instead of warning.

    Returns:
        ``model``, for chaining.

    Raises:
        WeightsError: the file is missing or unreadable, holds no state dict, a tensor's shape
            differs from the model's, or (``strict=True``) keys are missing or unexpected. The
            message names the file and lists the offending keys.

    Warns:
        UserWarning: (``strict=False``) keys missing from the file (those parameters keep their
            initial values) or unexpected in it (ignored), listed by name.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    tensors = _read_state_dict(path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = [
        f"{k}: model {tuple(expected[k].shape)}, file {tuple(tensors[k].shape)}"
        for k in sorted(set(expected) & set(tensors))
        if expected[k].shape != tensors[k].shape
    ]
    name = type(model).__name__
    if mismatched:
        raise WeightsError(
            f"weights file {path} does not fit {name}: shape mismatches [{'; '.join(mismatched)}]"
        )
    if missing or unexpected:
        problems = ", ".join(
            f"{what} keys {keys}"
            for what, keys in (("missing", missing), ("unexpected", unexpected))
            if keys
        )
        if strict:
            raise WeightsError(f"weights file {path} does not fit {name}: {problems}")
        warnings.warn(
            f"weights file {path} does not fit {name} exactly: {problems} (missing ones keep "
            "their initial values, unexpected ones are ignored)",
            stacklevel=2,
        )
    with torch.no_grad():
        model.load_state_dict(tensors, strict=False)
    return model


def model_card_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The (card, weights) files of an exported model given either of them or its folder.

    ``run/model.json``, ``run/model.safetensors`` and ``run/model`` name the same pair; a folder
    holding exactly one ``*.json`` card names that card's pair.

    Raises:
        WeightsError: the folder holds no card or several cards.
    """
    p = Path(path)
    if p.is_dir():
        cards = sorted(p.glob("*.json"))
        if len(cards) != 1:
            found = ", ".join(c.name for c in cards) or "none"
            raise WeightsError(
                f"folder {p} must hold exactly one model card (*.json) of an exported model, "
                f"found {found}"
            )
        p = cards[0]
    if p.suffix in (".json", ".safetensors"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".json"), p.with_name(p.name + ".safetensors")


def read_model_card(path: str | os.PathLike[str]) -> dict:
    """Read and check the model card of an exported model (see the module docstring).

    Args:
        path: the card, the weights or their folder (:func:`model_card_paths`).

    Returns:
        The card as a dict; ``card["weights"]["path"]`` is added: the weights file on disk.

    Raises:
        WeightsError: the card or the weights file is missing, the card is not JSON, is of
            another format, or lacks a field (``architecture.name``, ``architecture.config``,
            ``weights.sha256``).
    """
    card_path, weights_path = model_card_paths(path)
    if not card_path.is_file():
        raise WeightsError(
            f"model card not found: {card_path} (an exported model is a pair "
            f"NAME.json and NAME.safetensors)"
        )
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"cannot read model card {card_path} as JSON: {exc}") from None
    if not isinstance(card, dict) or card.get("format") != MODEL_CARD_FORMAT:
        got = card.get("format") if isinstance(card, dict) else type(card).__name__
        raise WeightsError(
            f"model card {card_path} must have format {MODEL_CARD_FORMAT!r}, got {got!r}"
        )
    arch = card.get("architecture")
    weights = card.get("weights")
    if (
        not isinstance(arch, dict)
        or not isinstance(arch.get("name"), str)
        or not isinstance(arch.get("config"), dict)
        or not isinstance(weights, dict)
        or not isinstance(weights.get("sha256"), str)
    ):
        raise WeightsError(
            f"model card {card_path} must have architecture.name (a string), "
            "architecture.config (an object) and weights.sha256 (a string)"
        )
    if not weights_path.is_file():
        raise WeightsError(f"weights file not found: {weights_path} (named by {card_path})")
    card["weights"] = {**weights, "path": str(weights_path)}
    return card
