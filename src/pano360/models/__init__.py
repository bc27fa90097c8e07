"""Models in plain torch, built by registered functions: ``create_model(name, pretrained=...)``.

``list_models(task=...)`` names what is registered, ``list_tasks()`` the tasks whose output
contracts the models keep (one registry for every kind of model: MTCNN's networks, saliency
models, ...); pretrained weights ship inside the package as safetensors files described by
:class:`~pano360._core.WeightsSpec` (nothing downloads).
"""

from .._core import (
    InputContract,
    ModelInfo,
    Task,
    WeightsError,
    WeightsSpec,
    check_task_output,
    create_model,
    list_models,
    list_tasks,
    load_weights,
    load_weights_file,
    model_info,
    register_model,
    register_task,
)
from . import backbones
from .mtcnn import (
    MTCNN_ONET_WEIGHTS,
    MTCNN_PNET_WEIGHTS,
    MTCNN_RNET_WEIGHTS,
    MTCNNOutput,
    ONet,
    PNet,
    RNet,
    mtcnn_normalize,
    mtcnn_pnet_stack,
    remap_facenet_mtcnn_state_dict,
)
from .spherical_unet import (
    LAYER_KINDS,
    MAP_SCALE,
    OUTPUT_KINDS,
    PRIOR_MODES,
    SEED_INPUT_HW,
    SPHERICAL_UNET_LAYERS,
    SaliencyUNet,
    UNetLayer,
    crown_layout,
    raw_to_saliency,
    seed_parameter_count,
)

__all__ = [
    "LAYER_KINDS",
    "MAP_SCALE",
    "MTCNN_ONET_WEIGHTS",
    "MTCNN_PNET_WEIGHTS",
    "MTCNN_RNET_WEIGHTS",
    "OUTPUT_KINDS",
    "PRIOR_MODES",
    "SEED_INPUT_HW",
    "SPHERICAL_UNET_LAYERS",
    "InputContract",
    "MTCNNOutput",
    "ModelInfo",
    "ONet",
    "PNet",
    "RNet",
    "SaliencyUNet",
    "Task",
    "UNetLayer",
    "WeightsError",
    "WeightsSpec",
    "backbones",
    "check_task_output",
    "create_model",
    "crown_layout",
    "list_models",
    "list_tasks",
    "load_weights",
    "load_weights_file",
    "model_info",
    "mtcnn_normalize",
    "mtcnn_pnet_stack",
    "raw_to_saliency",
    "register_model",
    "register_task",
    "remap_facenet_mtcnn_state_dict",
    "seed_parameter_count",
]
