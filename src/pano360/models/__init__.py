"""Models in plain torch, built by registered functions: ``create_model(name, pretrained=...)``.

``list_models()`` names what is registered; pretrained weights ship inside the package as
safetensors files described by :class:`~pano360._core.WeightsSpec` (nothing downloads).
"""

from .._core import (
    InputContract,
    ModelInfo,
    WeightsError,
    WeightsSpec,
    create_model,
    list_models,
    load_weights,
    model_info,
    register_model,
)
from .mtcnn import (
    MTCNN_ONET_WEIGHTS,
    MTCNN_PNET_WEIGHTS,
    MTCNN_RNET_WEIGHTS,
    MTCNNOutput,
    ONet,
    PNet,
    RNet,
    mtcnn_normalize,
    remap_facenet_mtcnn_state_dict,
)

__all__ = [
    "MTCNN_ONET_WEIGHTS",
    "MTCNN_PNET_WEIGHTS",
    "MTCNN_RNET_WEIGHTS",
    "InputContract",
    "MTCNNOutput",
    "ModelInfo",
    "ONet",
    "PNet",
    "RNet",
    "WeightsError",
    "WeightsSpec",
    "create_model",
    "list_models",
    "load_weights",
    "model_info",
    "mtcnn_normalize",
    "register_model",
    "remap_facenet_mtcnn_state_dict",
]
