"""Internals shared by every pano360 subpackage: typed errors, input checks, the model registry
and the description and loading of shipped weights."""

from .checks import (
    as_batch_param,
    check_bool,
    check_choice,
    check_erp,
    check_hw,
    check_int,
    check_interval,
    check_number,
    check_positive_int,
    check_seed,
    is_number,
)
from .errors import (
    ChoiceError,
    DatasetFormatError,
    ImageIOError,
    OutputExistsError,
    Pano360Error,
    ShapeError,
    ValueRangeError,
)
from .registry import (
    ModelInfo,
    Task,
    check_task_output,
    create_model,
    list_models,
    list_tasks,
    model_info,
    register_model,
    register_task,
)
from .tensors import memory_format_of
from .weights import InputContract, WeightsError, WeightsSpec, file_sha256, load_weights

__all__ = [
    "ChoiceError",
    "DatasetFormatError",
    "ImageIOError",
    "InputContract",
    "ModelInfo",
    "OutputExistsError",
    "Pano360Error",
    "ShapeError",
    "Task",
    "ValueRangeError",
    "WeightsError",
    "WeightsSpec",
    "as_batch_param",
    "check_bool",
    "check_choice",
    "check_erp",
    "check_hw",
    "check_int",
    "check_interval",
    "check_number",
    "check_positive_int",
    "check_seed",
    "check_task_output",
    "create_model",
    "file_sha256",
    "is_number",
    "list_models",
    "list_tasks",
    "load_weights",
    "memory_format_of",
    "model_info",
    "register_model",
    "register_task",
]
