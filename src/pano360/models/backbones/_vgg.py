"""VGG-16 with and without BatchNorm (Simonyan & Zisserman, "Very Deep Convolutional Networks for
Large-Scale Image Recognition", 2015) in plain torch, with torchvision's module layout. No weights
ship; load a torchvision-format checkpoint with ``create_model("vgg16", weights=PATH)``."""

from __future__ import annotations

import torch
from torch import nn

from ..._core import register_model
from ._common import Backbone, init_like_torchvision

__all__ = ["VGG"]

# Configuration "D" (VGG-16): output channels of each 3x3 convolution, "M" a 2x2 max pooling.
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG(Backbone):
    """VGG-16 (configuration D) with torchvision's ``state_dict`` layout: 138,357,544
    parameters, 138,365,992 with ``batch_norm=True`` (1000-class classifier).

    Layers: ``features`` (3x3 convolutions with padding 1, each followed by BatchNorm when
    ``batch_norm``, and ReLU; 2x2 stride-2 max pooling after each of the five blocks),
    ``avgpool`` adaptive average pooling to 7 x 7, ``classifier`` (Linear 25088->4096, ReLU,
    Dropout, Linear 4096->4096, ReLU, Dropout, Linear 4096->classes).

    Stages: the outputs of the 2nd to 5th max pooling (128, 256, 512, 512 channels; strides 4,
    8, 16, 32; floor(H / s) rows), named by their index in ``features`` (``features.9``,
    ``features.16``, ``features.23``, ``features.30`` without BatchNorm; ``features.13``,
    ``features.23``, ``features.33``, ``features.43`` with it).

    Args:
        batch_norm: VGG-16-BN.
        num_classes: classifier outputs, or None for no classifier.
        dropout: dropout probability in the classifier (training only).
        normalize: apply :func:`imagenet_normalize` inside ``forward_features``.
    """

    def __init__(
        self,
        batch_norm: bool = False,
        num_classes: int | None = 1000,
        dropout: float = 0.5,
        normalize: bool = True,
    ) -> None:
        super().__init__(num_classes, normalize)
        layers: list[nn.Module] = []
        pools = []
        cin = 3
        for v in _VGG16:
            if v == "M":
                pools.append(len(layers))
                layers.append(nn.MaxPool2d(2, 2))
                continue
            layers += [nn.Conv2d(cin, v, 3, padding=1)]
            layers += [nn.BatchNorm2d(v), nn.ReLU()] if batch_norm else [nn.ReLU()]
            cin = v
        self.features = nn.Sequential(*layers)
        self.stages = {f"features.{i}": s for i, s in zip(pools[1:], (4, 8, 16, 32), strict=True)}
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        if num_classes is not None:
            self.classifier = nn.Sequential(
                nn.Linear(512 * 7 * 7, 4096),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(4096, 4096),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(4096, num_classes),
            )
        init_like_torchvision(self)

    def forward_head(self, last: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(last), 1))


@register_model("vgg16", task="backbone", input_size=(3, 32, 32))
def vgg16(**kwargs) -> VGG:
    """VGG-16 (:class:`VGG`), learned, no shipped weights (load a torchvision-format checkpoint
    with ``weights=PATH``)."""
    return VGG(batch_norm=False, **kwargs)


@register_model("vgg16_bn", task="backbone", input_size=(3, 32, 32))
def vgg16_bn(**kwargs) -> VGG:
    """VGG-16 with BatchNorm (:class:`VGG`), learned, no shipped weights (load a
    torchvision-format checkpoint with ``weights=PATH``)."""
    return VGG(batch_norm=True, **kwargs)
