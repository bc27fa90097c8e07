"""A registry of model builders: ``create_model("mtcnn_pnet", pretrained=True)``, ``list_models()``.

Models are configurations of layers built by small functions decorated with
:func:`register_model`. The decorator records the builder, the default input size (used by the
test that runs every registered model) and, optionally, the :class:`WeightsSpec` of its pretrained
weights. :func:`create_model` builds the model and, with ``pretrained=True``, loads those weights
from the package (nothing is ever downloaded).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from .checks import check_choice
from .weights import WeightsSpec, load_weights

__all__ = ["ModelInfo", "create_model", "list_models", "model_info", "register_model"]

#: Packages whose import registers pano360's own models; imported on the first registry lookup
#: so that ``create_model`` works without importing them first (as in timm).
_BUILTIN_MODEL_PACKAGES = ("pano360.models",)
_REGISTRY: dict[str, ModelInfo] = {}


@dataclass(frozen=True)
class ModelInfo:
    """A registered model.

    Attributes:
        name: the registry name.
        builder: callable taking keyword arguments and returning the (randomly initialised)
            model.
        input_size: (C, H, W) of a typical (and, for fixed-size models, the only) input.
        weights: the pretrained weights, or None when there are none.
    """

    name: str
    builder: Callable[..., nn.Module]
    input_size: tuple[int, int, int]
    weights: WeightsSpec | None = None


def register_model(
    name: str | None = None,
    *,
    input_size: tuple[int, int, int],
    weights: WeightsSpec | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a model builder under ``name`` (default: the function's name).

    Args:
        name: registry name; defaults to the builder's ``__name__``.
        input_size: (C, H, W) of a typical input (the only one for fixed-size models).
        weights: the pretrained weights :func:`create_model` loads with ``pretrained=True``.

    Returns:
        The decorator; it returns the builder unchanged.

    Raises:
        ValueError: ``name`` is already registered.

    Example:
        A builder registered in a library module (registration is global, once per process)::

            @register_model("tiny_conv", input_size=(3, 8, 8))
            def tiny_conv(channels: int = 4) -> nn.Module:
                return nn.Conv2d(3, channels, 3)

            create_model("tiny_conv", channels=2)
    """

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or builder.__name__
        if key in _REGISTRY:
            raise ValueError(f"a model named {key!r} is already registered")
        _REGISTRY[key] = ModelInfo(key, builder, tuple(input_size), weights)
        return builder

    return decorator


def _load_builtin_models() -> None:
    for package in _BUILTIN_MODEL_PACKAGES:
        importlib.import_module(package)


def list_models(pretrained: bool = False) -> list[str]:
    """Sorted names of the registered models; with ``pretrained=True`` only those with weights.

    Example:
        >>> [name for name in list_models(pretrained=True) if name.startswith("mtcnn")]
        ['mtcnn_onet', 'mtcnn_pnet', 'mtcnn_rnet']
    """
    _load_builtin_models()
    return sorted(k for k, v in _REGISTRY.items() if v.weights is not None or not pretrained)


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered model.

    Raises:
        ValueError: unknown ``name`` (the message lists the registered ones).
    """
    check_choice(name, "model name", list_models())
    return _REGISTRY[name]


def create_model(name: str, pretrained: bool = False, **kwargs) -> nn.Module:
    """Build a registered model, optionally with its pretrained weights.

    Args:
        name: a name from :func:`list_models`.
        pretrained: load the model's shipped weights (sha256-checked, every key accounted for).
        **kwargs: passed to the model's builder.

    Returns:
        The model, in eval mode when ``pretrained`` (ready for inference), train mode otherwise.

    Raises:
        ValueError: unknown ``name``, or ``pretrained=True`` for a model without weights.
        WeightsError: the shipped weights file is missing, corrupted or does not fit.
    """
    info = model_info(name)
    if pretrained and info.weights is None:
        raise ValueError(
            f"model {name!r} has no pretrained weights; models with weights: "
            f"{', '.join(list_models(pretrained=True)) or 'none'}"
        )
    model = info.builder(**kwargs)
    if pretrained:
        load_weights(model, info.weights)
        model.eval()
    return model
