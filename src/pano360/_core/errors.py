"""Typed errors raised by pano360.

Every error a user can trigger derives from :class:`Pano360Error` so that the CLI (and users) can
catch ours without swallowing programming errors. Each also derives from the matching builtin, so
``except ValueError`` keeps working.
"""

from __future__ import annotations

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
]


class Pano360Error(Exception):
    """Base class of every error pano360 raises on bad input."""


class ShapeError(Pano360Error, ValueError):
    """A tensor has the wrong number of dimensions or the wrong size."""


class ValueRangeError(Pano360Error, ValueError):
    """A parameter is outside the range where the operation is defined."""


class ChoiceError(Pano360Error, ValueError):
    """A parameter names none of the options it accepts (the message lists them)."""


class ImageIOError(Pano360Error, OSError):
    """An image file cannot be read or written (missing, not an image, unwritable)."""


class OutputExistsError(Pano360Error, FileExistsError):
    """An output file exists and overwriting it was not asked for."""


class DatasetFormatError(Pano360Error, ValueError):
    """A dataset file is malformed: wrong byte count, bad header, value out of range.

    The message names the file and, for text files, the line (``path:line: ...``).
    """


class Pano360Warning(UserWarning):
    """Base class of the warnings pano360 gives about input that is probably a mistake."""


class AngleUnitWarning(Pano360Warning):
    """An angle given in radians is larger than 2 pi in magnitude: most likely degrees
    (``yaw=90``). pano360 takes radians in Python; parameters in degrees end in ``_deg``.

    Turn it into an error with ``warnings.simplefilter("error", AngleUnitWarning)``.
    """
