"""ImageNet backbones in plain torch with torchvision's ``state_dict`` key names: MobileNetV2
(pretrained weights shipped), VGG-16, VGG-16-BN and ResNet-50 (architectures only; load your own
torchvision-format checkpoint with ``create_model(name, weights=PATH)``).

Each is registered with task ``"backbone"``: ``forward_features(x)`` returns a dict of four named
stages at strides 4, 8, 16 and 32, ``forward(x)`` the ImageNet logits (see :class:`Backbone`).
Inputs are RGB in [0, 1]; the ImageNet normalisation happens inside.

Example:
    >>> from pano360.models import create_model, list_models
    >>> list_models(task="backbone")
    ['mobilenet_v2', 'resnet50', 'vgg16', 'vgg16_bn']
"""

from ._common import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Backbone,
    ImageNetNormalize,
    imagenet_classes,
    imagenet_normalize,
)
from ._mobilenet_v2 import MOBILENET_V2_WEIGHTS, InvertedResidual, MobileNetV2
from ._resnet import Bottleneck, ResNet
from ._vgg import VGG

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MOBILENET_V2_WEIGHTS",
    "VGG",
    "Backbone",
    "Bottleneck",
    "ImageNetNormalize",
    "InvertedResidual",
    "MobileNetV2",
    "ResNet",
    "imagenet_classes",
    "imagenet_normalize",
]
