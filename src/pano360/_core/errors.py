"""Typed errors raised by pano360.

Every error a user can trigger derives from :class:`Pano360Error` so that the CLI (and users) can
catch ours without swallowing programming errors. Each also derives from the matching builtin, so
``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "ChoiceError",
    "DatasetFormatError",
    "ImageIOError",
    "OutputExistsError",
    "Pano360Error",
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
