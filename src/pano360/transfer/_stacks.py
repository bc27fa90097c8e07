"""Conv stacks of registered models, for :func:`pano360.transfer.distill` to distil.

A small side registry, kept apart so that it can join the one model registry
(:mod:`pano360._core.registry`) as a whole.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping

import torch
from torch import nn

from .._core import ValueRangeError, create_model, list_models

__all__ = ["distillable_models", "model_stack"]


def _mtcnn_pnet_stack() -> nn.Sequential:
    model = create_model("mtcnn_pnet", pretrained=True)
    # mtcnn_normalize, (x * 255 - 127.5) / 128, as a frozen 1 x 1 conv: a pointwise layer of
    # the stack, so the student reads images in [0, 1] as P-Net does.
    normalize = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        normalize.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1) * (255 / 128))
        normalize.bias.fill_(-127.5 / 128)
    normalize.requires_grad_(False)
    return nn.Sequential(OrderedDict([("normalize", normalize), *model.features.named_children()]))


#: Registered models whose conv stack is known, with the function building it.
_MODEL_STACKS: Mapping[str, Callable[[], nn.Sequential]] = {"mtcnn_pnet": _mtcnn_pnet_stack}


def distillable_models() -> list[str]:
    """Registered models whose conv stack :func:`model_stack` knows, sorted.

    Example:
        >>> distillable_models()
        ['mtcnn_pnet']
    """
    registered = set(list_models(pretrained=True))
    return sorted(name for name in _MODEL_STACKS if name in registered)


def model_stack(name: str) -> nn.Sequential:
    """The conv stack of a registered model, with its pretrained weights, to distil.

    ``"mtcnn_pnet"``: a frozen 1 x 1 conv doing P-Net's input normalisation (so the stack reads
    RGB in [0, 1]), then ``PNet.features`` (conv1, prelu1, pool1, conv2, prelu2, conv3,
    prelu3; receptive field 12, stride 2). P-Net's 1 x 1 heads read one feature pixel each, so
    they need no distillation: apply ``model.face`` / ``model.box`` to the student's output.

    Args:
        name: one of :func:`distillable_models`.

    Returns:
        A new ``nn.Sequential`` (in eval mode).

    Raises:
        ValueRangeError: a name that is not registered or has no known conv stack.
    """
    if name not in _MODEL_STACKS:
        raise ValueRangeError(
            f"model must be one of {', '.join(distillable_models())} (registered models with a "
            f"conv stack to distil), got {name!r}"
        )
    return _MODEL_STACKS[name]().eval()
