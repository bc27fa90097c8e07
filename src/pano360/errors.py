"""Public home of pano360's typed errors (see :mod:`pano360._core.errors`)."""

from ._core.errors import (
    ChoiceError,
    DatasetFormatError,
    ImageIOError,
    OutputExistsError,
    Pano360Error,
    ShapeError,
    ValueRangeError,
)
from ._core.weights import WeightsError

__all__ = [
    "ChoiceError",
    "DatasetFormatError",
    "ImageIOError",
    "OutputExistsError",
    "Pano360Error",
    "ShapeError",
    "ValueRangeError",
    "WeightsError",
]
