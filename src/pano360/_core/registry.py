"""One registry of models, each tagged with a task: ``create_model(name, pretrained=True)``,
``list_models(task="saliency")``.

Models are configurations of layers built by small functions decorated with
:func:`register_model`. The decorator records the builder, its task, a one-line description, the
default input size (used by the test that runs every registered model), optionally the
:class:`WeightsSpec` of its pretrained weights, and, for a network SphConv can distil, the
builder of its conv stack. :func:`create_model` builds the model and, with ``pretrained=True``,
loads those weights from the package (nothing is ever downloaded).

A *task* (:func:`register_task`) states the contract every model of that task keeps: what it
returns for a batch of inputs. :func:`check_task_output` checks a model's output against it, so
one test runs every registered model, whatever its task, and a new detector or backbone is held
to its task's contract from the day it is registered.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .checks import check_choice
from .weights import (
    InputContract,
    WeightsError,
    WeightsSpec,
    load_weights,
    load_weights_file,
    model_card_paths,
    read_model_card,
)

__all__ = [
    "ModelInfo",
    "Task",
    "check_task_output",
    "create_model",
    "list_models",
    "list_tasks",
    "model_info",
    "register_model",
    "register_task",
]

#: Packages whose import registers pano360's own models and tasks; imported on the first lookup
#: so that ``create_model`` works without importing them first (as in timm).
_BUILTIN_MODEL_PACKAGES = ("pano360.models", "pano360.saliency")
_REGISTRY: dict[str, ModelInfo] = {}
_TASKS: dict[str, Task] = {}


@dataclass(frozen=True)
class Task:
    """What every model of a task returns.

    Attributes:
        name: the task's tag (``"saliency"``, ``"mtcnn"``, ...).
        contract: the output contract in words (shown by docs and errors).
        check: ``check(output, inputs)`` raises (ShapeError, ValueRangeError, TypeError) when
            ``output``, the model's result for the batch ``inputs``, breaks the contract.
    """

    name: str
    contract: str
    check: Callable[[Any, torch.Tensor], None]


@dataclass(frozen=True)
class ModelInfo:
    """A registered model.

    Attributes:
        name: the registry name.
        task: the task tag (:func:`list_tasks`), whose contract the model's output keeps.
        description: one line: what the model is, learned or training-free, trained on what.
        builder: callable taking keyword arguments and returning the (randomly initialised)
            model.
        input_size: (C, H, W) of a typical (and, for fixed-size models, the only) input.
        weights: the pretrained weights, or None when there are none.
        stack: for a network whose convolutions SphConv can distil, a builder of its conv stack
            (an ``nn.Sequential`` with the pretrained weights, see
            :func:`pano360.transfer.model_stack`); None otherwise.
        postprocess: for a model whose forward returns a raw output it trains on (the U-Nets'
            maps on their training scale), the function turning that output into the task's
            output; None when the forward output is the task's output already.
    """

    name: str
    task: str
    description: str
    builder: Callable[..., nn.Module]
    input_size: tuple[int, int, int]
    weights: WeightsSpec | None = None
    stack: Callable[[], nn.Module] | None = None
    postprocess: Callable[[Any], Any] | None = None

    def task_output(self, output: Any) -> Any:
        """The model's forward ``output`` as its task's output (see ``postprocess``)."""
        return output if self.postprocess is None else self.postprocess(output)


def register_task(name: str, contract: str, check: Callable[[Any, torch.Tensor], None]) -> Task:
    """Register a task and its output contract (see :class:`Task`).

    Raises:
        ValueError: ``name`` is already registered.
    """
    if name in _TASKS:
        raise ValueError(f"a task named {name!r} is already registered")
    _TASKS[name] = Task(name, contract, check)
    return _TASKS[name]


def list_tasks() -> list[str]:
    """Sorted names of the registered tasks.

    Example:
        >>> list_tasks()
        ['backbone', 'mtcnn', 'saliency']
    """
    _load_builtin_models()
    return sorted(_TASKS)


def register_model(
    name: str | None = None,
    *,
    task: str,
    input_size: tuple[int, int, int],
    weights: WeightsSpec | None = None,
    description: str | None = None,
    stack: Callable[[], nn.Module] | None = None,
    postprocess: Callable[[Any], Any] | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a model builder under ``name`` (default: the function's name).

    Args:
        name: registry name; defaults to the builder's ``__name__``.
        task: the model's task (registered with :func:`register_task` before the model).
        input_size: (C, H, W) of a typical input (the only one for fixed-size models).
        weights: the pretrained weights :func:`create_model` loads with ``pretrained=True``.
        description: one line (default: the first paragraph of the builder's docstring).
        stack: builder of the model's distillable conv stack (see :class:`ModelInfo`).
        postprocess: turns the forward output into the task's output (see :class:`ModelInfo`).

    Returns:
        The decorator; it returns the builder unchanged.

    Raises:
        ValueError: ``name`` is already registered, or ``task`` is not.

    Example:
        A builder registered in a library module (registration is global, once per process)::

            @register_model("tiny_conv", task="saliency", input_size=(3, 8, 16))
            def tiny_conv(channels: int = 4) -> nn.Module:
                '''A tiny learned saliency model (untrained).'''
                ...

            create_model("tiny_conv", channels=2)
    """

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or builder.__name__
        if key in _REGISTRY:
            raise ValueError(f"a model named {key!r} is already registered")
        if task not in _TASKS:
            raise ValueError(
                f"task must be a registered task ({', '.join(map(repr, sorted(_TASKS)))}), "
                f"got {task!r}"
            )
        doc = (inspect.getdoc(builder) or "").split("\n\n")[0]
        text = description or " ".join(doc.split())
        info = ModelInfo(key, task, text, builder, tuple(input_size), weights, stack, postprocess)
        _REGISTRY[key] = info
        return builder

    return decorator


def _load_builtin_models() -> None:
    for package in _BUILTIN_MODEL_PACKAGES:
        importlib.import_module(package)


def list_models(pretrained: bool = False, task: str | None = None) -> list[str]:
    """Sorted names of the registered models.

    Args:
        pretrained: only those with shipped weights.
        task: only those of this task (:func:`list_tasks`).

    Raises:
        ValueError: unknown ``task``.

    Example:
        >>> [name for name in list_models(pretrained=True) if name.startswith("mtcnn")]
        ['mtcnn_onet', 'mtcnn_pnet', 'mtcnn_rnet']
        >>> {"equator", "spectral", "spherical_unet"} <= set(list_models(task="saliency"))
        True
    """
    _load_builtin_models()
    if task is not None:
        check_choice(task, "task", sorted(_TASKS))
    return sorted(
        k
        for k, v in _REGISTRY.items()
        if (v.weights is not None or not pretrained) and (task is None or v.task == task)
    )


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered model.

    Raises:
        ValueError: unknown ``name`` (the message lists the registered ones).
    """
    check_choice(name, "model name", list_models())
    return _REGISTRY[name]


def _is_exported_model(name: str | os.PathLike[str]) -> bool:
    """Whether ``name`` names an exported model (a path) rather than a registered one (a
    registered name wins over a file of the same name)."""
    if isinstance(name, os.PathLike):
        return True
    _load_builtin_models()
    if name in _REGISTRY:
        return False
    return name.endswith((".json", ".safetensors")) or os.sep in name or os.path.exists(name)


def _local_weights(path: str | os.PathLike[str], sha256: str | None) -> WeightsSpec:
    unknown = InputContract("unknown", (0.0, 1.0), None, (1, 1))
    return WeightsSpec(os.fspath(path), None, sha256, unknown, "unknown")


def create_model(
    name: str | os.PathLike[str],
    pretrained: bool = False,
    weights: str | os.PathLike[str] | None = None,
    *,
    strict: bool = False,
    **kwargs,
) -> nn.Module:
    """Build a registered model, optionally with its pretrained weights or weights from a file.

    ``name`` may also be an exported model (what ``pano360 train`` writes: ``NAME.json`` and
    ``NAME.safetensors``, see :func:`pano360._core.weights.read_model_card`): its card names the
    registered architecture and the configuration it was trained with, and the weights are
    loaded after their sha256 is checked. Nothing is unpickled.

    Args:
        name: a name from :func:`list_models`, or the path of an exported model (its card, its
            weights or their folder).
        pretrained: load the model's shipped weights (sha256-checked, every key accounted for).
        weights: a local checkpoint to load instead of the shipped weights. An exported model's
            ``NAME.safetensors`` with its card ``NAME.json`` beside it: the card's architecture
            must be ``name``, its configuration is used and its sha256 checked (every key
            accounted for). Any other file is a user's checkpoint (:func:`load_weights_file`:
            ``.safetensors``, or a torch ``.pth`` read with ``weights_only=True``).
        strict: for a user's checkpoint, missing or unexpected keys are an error instead of a
            warning.
        **kwargs: passed to the model's builder (over the card's configuration, if any).

    Returns:
        The model, in eval mode when weights were loaded (ready for inference), train mode
        otherwise.

    Raises:
        ValueError: unknown ``name``, ``pretrained=True`` for a model without weights, or both
            ``pretrained`` and ``weights``.
        WeightsError: the weights file (shipped or given) is missing, corrupted or does not
            fit; a model card is unreadable or names another architecture.
    """
    spec = None
    if _is_exported_model(name):
        if weights is not None:
            raise ValueError("give either an exported model as name or weights=, not both")
        card = read_model_card(name)
        spec = _local_weights(card["weights"]["path"], card["weights"]["sha256"])
        name = card["architecture"]["name"]
        kwargs = {**card["architecture"]["config"], **kwargs}
    elif weights is not None:
        if pretrained:
            raise ValueError("pass pretrained=True (the shipped weights) or weights=PATH, not both")
        card_path, weights_path = model_card_paths(weights)
        # A card beside the weights describes them; plain safetensors have none.
        card = read_model_card(weights) if card_path.is_file() else None
        if card is not None and os.path.abspath(weights_path) == os.path.abspath(weights):
            if card["architecture"]["name"] != name:
                raise WeightsError(
                    f"weights {weights} were exported for architecture "
                    f"{card['architecture']['name']!r}, not {name!r}"
                )
            spec = _local_weights(weights, card["weights"]["sha256"])
            kwargs = {**card["architecture"]["config"], **kwargs}
    info = model_info(name)
    if pretrained and info.weights is None:
        raise ValueError(
            f"model {name!r} has no pretrained weights; models with weights: "
            f"{', '.join(list_models(pretrained=True)) or 'none'}"
        )
    model = info.builder(**kwargs)
    if pretrained:
        spec = info.weights
    if spec is not None:
        load_weights(model, spec)
        model.eval()
    elif weights is not None:  # a user's checkpoint, without a card
        load_weights_file(model, weights, strict=strict)
        model.eval()
    return model


def check_task_output(name: str, output: Any, inputs: torch.Tensor) -> None:
    """Check a registered model's ``output`` for the batch ``inputs`` against its task's
    contract (:class:`Task`), after the model's ``postprocess`` if it has one.

    Raises:
        ValueError: unknown ``name``; the task's own errors when the contract is broken.
    """
    info = model_info(name)
    _TASKS[info.task].check(info.task_output(output), inputs)
