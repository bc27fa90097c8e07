"""Public home of pano360's typed errors and warnings (see :mod:`pano360._core.errors`)."""

from ._core.errors import (
    AngleUnitWarning,
    ChoiceError,
    DatasetFormatError,
    ImageIOError,
    OutputExistsError,
    Pano360Error,
    Pano360Warning,
    ShapeError,
    ValueRangeError,
)
from ._core.weights import WeightsError

__all__ = [
    "AngleUnitWarning",
    "ChoiceError",
    "DatasetFormatError",
    "ImageIOError",
    "OutputExistsError",
    "Pano360Error",
    "Pano360Warning",
    "ShapeError",
    "ValueRangeError",
    "WeightsError",
]
