"""ResNet-50 (He et al., "Deep Residual Learning for Image Recognition", 2016) in plain torch,
with torchvision's module layout (ResNet v1.5: the stride is on the 3x3 convolution). No weights
ship; load a torchvision-format checkpoint with ``create_model("resnet50", weights=PATH)``."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ..._core import register_model
from ._common import Backbone, init_like_torchvision

__all__ = ["Bottleneck", "ResNet"]


class Bottleneck(nn.Module):
    """ResNet's bottleneck block: 1x1 (cin->width), 3x3 (stride), 1x1 (width->4 width), each
    with BatchNorm, ReLU after the addition of the (projected, when the shape changes) input.

    Args:
        cin: input channels.
        width: channels of the 3x3 convolution; the block outputs ``4 * width``.
        stride: stride of the 3x3 convolution (and of the projection).
    """

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet(Backbone):
    """A bottleneck ResNet with torchvision's ``state_dict`` layout; ``ResNet((3, 4, 6, 3))`` is
    ResNet-50 (25,557,032 parameters with the 1000-class classifier).

    Layers: ``conv1`` 7x7 stride 2 (3->64), ``bn1``, ReLU, ``maxpool`` 3x3 stride 2 padding 1,
    ``layer1`` .. ``layer4`` of :class:`Bottleneck` blocks (widths 64, 128, 256, 512; strides
    1, 2, 2, 2), global average pooling, ``fc`` (2048->classes).

    Stages: ``layer1`` (256 channels, stride 4), ``layer2`` (512, 8), ``layer3`` (1024, 16),
    ``layer4`` (2048, 32); each has ceil(H / s) rows.

    Args:
        layers: blocks per stage.
        num_classes: classifier outputs, or None for no classifier.
        normalize: apply :func:`imagenet_normalize` inside ``forward_features``.
    """

    stages: ClassVar[dict[str, int]] = {"layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32}

    def __init__(
        self,
        layers: tuple[int, int, int, int] = (3, 4, 6, 3),
        num_classes: int | None = 1000,
        normalize: bool = True,
    ) -> None:
        super().__init__(num_classes, normalize)
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (blocks, width) in enumerate(zip(layers, (64, 128, 256, 512), strict=True)):
            stage = []
            for j in range(blocks):
                stage.append(Bottleneck(cin, width, 2 if i > 0 and j == 0 else 1))
                cin = width * Bottleneck.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
        if num_classes is not None:
            self.fc = nn.Linear(cin, num_classes)
        init_like_torchvision(self, linear_std=None)

    def _stage_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        out = {}
        for name in self.stages:
            x = out[name] = getattr(self, name)(x)
        return out

    def _stage_layers(self, stage: str) -> list[tuple[str, nn.Module]]:
        names = ["conv1", "bn1", "relu", "maxpool", *self.stages]
        return [(n, getattr(self, n)) for n in names[: names.index(stage) + 1]]

    def forward_head(self, last: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(last, 1), 1))


@register_model("resnet50", task="backbone", input_size=(3, 64, 64))
def resnet50(**kwargs) -> ResNet:
    """ResNet-50 (:class:`ResNet`), learned, no shipped weights (load a torchvision-format
    checkpoint with ``weights=PATH``)."""
    return ResNet((3, 4, 6, 3), **kwargs)
