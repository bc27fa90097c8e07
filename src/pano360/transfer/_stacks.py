"""Conv stacks of registered models, for :func:`pano360.training.distill` to distil: read from
the one model registry, where a model that can be distilled names its stack's builder
(``register_model(..., stack=...)``)."""

from __future__ import annotations

from torch import nn

from .._core import ValueRangeError, list_models, model_info

__all__ = ["distillable_models", "model_stack"]


def distillable_models() -> list[str]:
    """Registered models whose conv stack :func:`model_stack` knows, sorted.

    Example:
        >>> distillable_models()
        ['mtcnn_pnet']
    """
    return [name for name in list_models(pretrained=True) if model_info(name).stack is not None]


def model_stack(name: str) -> nn.Sequential:
    """The conv stack of a registered model, with its pretrained weights, to distil.

    ``"mtcnn_pnet"``: :func:`pano360.models.mtcnn_pnet_stack` (P-Net's convolutions after a
    frozen 1 x 1 conv doing its input normalisation; receptive field 12, stride 2).

    Args:
        name: one of :func:`distillable_models`.

    Returns:
        A new ``nn.Sequential`` (in eval mode).

    Raises:
        ValueRangeError: a name that is not registered or has no known conv stack.
    """
    if name not in distillable_models():
        raise ValueRangeError(
            f"model must be one of {', '.join(distillable_models())} (registered models with a "
            f"conv stack to distil), got {name!r}"
        )
    return model_info(name).stack().eval()
