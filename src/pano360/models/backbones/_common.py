"""What every backbone shares: the ``"backbone"`` task and its contract, the ImageNet input
normalisation, the ImageNet class names, and torchvision's weight initialisation."""

from __future__ import annotations

import importlib.resources
import math
from collections import OrderedDict
from collections.abc import Mapping
from functools import cache
from typing import ClassVar

import torch
from torch import nn

from ..._core import ShapeError, ValueRangeError, check_choice
from ..._core.registry import register_task

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Backbone",
    "ImageNetNormalize",
    "imagenet_classes",
    "imagenet_normalize",
]

#: Per-channel (R, G, B) mean and standard deviation of ImageNet, for images in [0, 1]: the
#: normalisation torchvision's ImageNet weights were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: The strides of the four stages every backbone's ``forward_features`` returns, in order.
STAGE_STRIDES = (4, 8, 16, 32)


def imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    """``(x - IMAGENET_MEAN) / IMAGENET_STD`` per channel, for RGB ``x: (B, 3, H, W)`` in [0, 1].

    Example:
        >>> imagenet_normalize(torch.full((1, 3, 1, 1), 0.5)).flatten().round(decimals=4)
        tensor([0.0655, 0.1964, 0.4178])
    """
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


class ImageNetNormalize(nn.Module):
    """Module form of :func:`imagenet_normalize` (pixel by pixel: it has no spatial extent).

    Example:
        >>> ImageNetNormalize()(torch.full((1, 3, 1, 1), 0.5)).flatten().round(decimals=4)
        tensor([0.0655, 0.1964, 0.4178])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imagenet_normalize(x)


@cache
def _class_names() -> tuple[str, ...]:
    text = importlib.resources.files("pano360.models").joinpath("data/imagenet_classes.txt")
    return tuple(line for line in text.read_text(encoding="utf-8").splitlines() if line)


def imagenet_classes() -> list[str]:
    """The 1,000 ImageNet-1k class names, index ``i`` naming logit ``i`` of an ImageNet
    classifier (torchvision's order and wording; shipped as ``models/data/imagenet_classes.txt``,
    provenance in ``imagenet_classes.md`` beside it).

    Example:
        >>> names = imagenet_classes()
        >>> len(names), names[0], names[281], names[967]
        (1000, 'tench', 'tabby', 'espresso')
    """
    return list(_class_names())


class Backbone(nn.Module):
    """Base of the ImageNet backbones: four named stages at strides 4, 8, 16 and 32, then an
    optional classifier, with torchvision's ``state_dict`` key names.

    Subclasses set :attr:`stages` (stage name -> stride, in order; the names are those of the
    torchvision modules whose outputs they are) and implement :meth:`_stage_outputs` and
    :meth:`forward_head`.

    Input contract:
        ``x: (B, 3, H, W)`` RGB in [0, 1], H, W >= 32. With ``normalize=True`` (the default)
        :func:`imagenet_normalize` is applied inside :meth:`forward_features`, so the modules
        themselves (``features``, ``layer1``, ...) see torchvision's normalised input.

    Output contract (task ``"backbone"``):
        :meth:`forward_features` returns ``{name: (B, C_s, h_s, w_s)}`` for the four stages in
        order of stride s = 4, 8, 16, 32, with ``h_s`` = floor(H / s) or ceil(H / s) (ceil for
        padded strided convolutions, floor for VGG's 2 x 2 max pooling), ``w_s`` likewise.
        :meth:`forward` returns ImageNet logits ``(B, num_classes)`` or, for a model built
        with ``num_classes=None`` (no classifier), the stage dict.
    """

    stages: ClassVar[dict[str, int]]

    def __init__(self, num_classes: int | None, normalize: bool) -> None:
        super().__init__()
        if num_classes is not None and (isinstance(num_classes, bool) or num_classes < 1):
            raise ValueRangeError(f"num_classes must be a positive int or None, got {num_classes}")
        self.num_classes = num_classes
        self.normalize = bool(normalize)

    def _stage_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        # torchvision's MobileNetV2 and VGG are one `features` Sequential whose stages are
        # children named "features.<i>"; ResNet overrides this.
        out = {}
        for name, layer in self.features.named_children():
            x = layer(x)
            if f"features.{name}" in self.stages:
                out[f"features.{name}"] = x
        return out

    def _stage_layers(self, stage: str) -> list[tuple[str, nn.Module]]:
        # torchvision's MobileNetV2 and VGG: the children of `features` up to the stage's;
        # ResNet overrides this.
        stop = int(stage.rpartition(".")[2])
        return [(f"features_{i}", m) for i, m in enumerate(self.features[: stop + 1])]

    def stage_module(self, stage: str) -> nn.Sequential:
        """The network from the input to ``stage``, as a planar dense model: RGB
        ``(B, 3, H, W)`` in [0, 1] -> the stage's ``(B, C_s, h_s, w_s)``, as
        :meth:`forward_features` gives it (:func:`imagenet_normalize` first when the backbone
        normalises), without the 32-pixel input minimum and without running later stages.

        The modules are the backbone's own (shared, not copied): what changes one changes the
        other. This is the model :func:`pano360.transfer.apply` and
        :func:`pano360.transfer.exact_features` run on panoramas.

        Raises:
            ValueError: ``stage`` is not one of :attr:`stages` (the message lists them).

        Example:
            >>> from pano360.models import create_model
            >>> model = create_model("mobilenet_v2").eval()
            >>> x = torch.rand(1, 3, 64, 64)
            >>> stage = model.stage_module("features.6")
            >>> torch.equal(stage(x), model.forward_features(x)["features.6"])
            True
        """
        check_choice(stage, "stage", tuple(self.stages))
        layers = [("normalize", ImageNetNormalize())] if self.normalize else []
        return nn.Sequential(OrderedDict(layers + self._stage_layers(stage)))

    def forward_head(self, last: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` from the stride-32 stage ``(B, C, h, w)``."""
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The four stages of ``x: (B, 3, H, W)`` in [0, 1], by name, strides 4, 8, 16, 32.

        Raises:
            ShapeError: ``x`` is not (B, 3, H, W) with H, W >= 32.
        """
        if (
            not isinstance(x, torch.Tensor)
            or x.ndim != 4
            or x.shape[1] != 3
            or min(x.shape[-2:]) < 32
        ):
            raise ShapeError(
                f"{type(self).__name__} input must be (B, 3, H, W) with H, W >= 32, "
                f"got {tuple(getattr(x, 'shape', ()))}"
            )
        return self._stage_outputs(imagenet_normalize(x) if self.normalize else x)

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        """Logits ``(B, num_classes)`` of ``x: (B, 3, H, W)`` in [0, 1]; the stage dict of
        :meth:`forward_features` when the model has no classifier.

        Raises:
            ShapeError: ``x`` is not (B, 3, H, W) with H, W >= 32.
        """
        features = self.forward_features(x)
        if self.num_classes is None:
            return features
        return self.forward_head(features[next(reversed(features))])

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, normalize={self.normalize}"


def init_like_torchvision(model: nn.Module, linear_std: float | None = 0.01) -> None:
    """torchvision's initialisation: Kaiming-normal (fan_out, ReLU) convolutions with zero
    bias, BatchNorm at (1, 0), linear layers N(0, ``linear_std``) with zero bias (None keeps
    PyTorch's default, as torchvision's ResNet does)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0, linear_std)
            nn.init.zeros_(m.bias)


def _check_backbone_output(output, inputs: torch.Tensor) -> None:
    """The ``"backbone"`` contract (:class:`Backbone`): logits (B, K), or the dict of four
    stages at strides 4, 8, 16, 32 in order; every value finite."""
    b, _, h, w = inputs.shape
    if isinstance(output, torch.Tensor):
        if output.ndim != 2 or output.shape[0] != b:
            raise ShapeError(
                f"a backbone's logits must be (B, K) for B = {b}, got {tuple(output.shape)}"
            )
        tensors = [output]
    elif isinstance(output, Mapping):
        if len(output) != len(STAGE_STRIDES):
            raise ShapeError(
                f"a backbone's features must be a dict of {len(STAGE_STRIDES)} stages (strides "
                f"{STAGE_STRIDES}), got {len(output)}: {list(output)}"
            )
        for (name, t), s in zip(output.items(), STAGE_STRIDES, strict=True):
            sizes = [(math.floor(n / s), math.ceil(n / s)) for n in (h, w)]
            if (
                not isinstance(t, torch.Tensor)
                or t.ndim != 4
                or t.shape[0] != b
                or any(n not in ok for n, ok in zip(t.shape[-2:], sizes, strict=True))
            ):
                raise ShapeError(
                    f"backbone stage {name!r} must be (B, C, H/{s}, W/{s}) (floor or ceil) for an "
                    f"input {tuple(inputs.shape)}, got {tuple(getattr(t, 'shape', ()))}"
                )
        tensors = list(output.values())
    else:
        raise TypeError(
            "a backbone must return a logits tensor or a dict of stages, got "
            f"{type(output).__name__}"
        )
    if not all(bool(torch.isfinite(t).all()) for t in tensors):
        raise ValueRangeError("backbone outputs must be finite")


register_task(
    "backbone",
    "images (B, 3, H, W) in [0, 1] -> logits (B, K); forward_features -> {stage: (B, C, H/s, "
    "W/s)} for strides s = 4, 8, 16, 32 in order (torchvision's state_dict key names)",
    _check_backbone_output,
)
