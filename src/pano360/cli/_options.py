"""Parsing and validation of command-line values: degrees, sizes, choices and file paths.

Every check raises a pano360 error whose message is the line the user sees after
``pano360: error:``, naming the option or argument as typed on the command line.

pano360's errors, torch and the io module are imported inside the functions: the command
modules import this one to define their options, and their help must not import torch.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from collections.abc import Iterable

    import torch

    from ..io import ImageInfo

#: The default of --max-pixels: 16384 x 8192, a 16K panorama. It is pano360.io's
#: DEFAULT_MAX_PIXELS (a test checks), written here so that --help needs no torch import.
MAX_PIXELS_DEFAULT = 16384 * 8192

#: Placeholder that multi-file cube maps replace by a face letter (F R B L U D).
FACE_PLACEHOLDER = "{face}"

_SIZE = re.compile(r"\s*(\d+)\s*[xX]\s*(\d+)\s*")


def _num(value: float) -> str:
    """A float as the user typed it: 200 rather than 200.0."""
    return f"{value:g}"


def fov_radians(fov: float) -> float:
    """Validate a horizontal field of view in degrees and return it in radians."""
    from .._core import ValueRangeError

    if not math.isfinite(fov) or not 0 < fov < 180:
        raise ValueRangeError(f"--fov must be in (0, 180) degrees, got {_num(fov)}")
    return math.radians(fov)


def angle_radians(value: float, option: str) -> float:
    """Validate a finite angle in degrees and return it in radians."""
    from .._core import ValueRangeError

    if not math.isfinite(value):
        raise ValueRangeError(f"{option} must be a finite number of degrees, got {_num(value)}")
    return math.radians(value)


def parse_size(text: str, option: str = "--size", *, erp: bool = False) -> tuple[int, int]:
    """Parse ``WxH`` (e.g. ``800x600``) into (H, W); with ``erp`` require W == 2H."""
    from .._core import ShapeError, ValueRangeError

    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueRangeError(
            f"{option} must be WIDTHxHEIGHT in pixels, e.g. 800x600, got {text!r}"
        )
    w, h = int(match[1]), int(match[2])
    if w < 1 or h < 1:
        raise ValueRangeError(f"{option} must have a positive width and height, got {text!r}")
    if erp and w != 2 * h:
        raise ShapeError(
            f"{option} must be 2:1 (width = 2 x height) for an equirectangular image, got {w}x{h}"
        )
    return h, w


def face_paths(template: Path, name: str, layout: str) -> dict[str, Path]:
    """The six per-face file names of a ``{face}`` template, keyed by face letter."""
    from .._core import ValueRangeError
    from ..geometry import CUBE_FACES

    if FACE_PLACEHOLDER not in template.name:
        raise ValueRangeError(
            f"--layout {layout} uses six files, so {name} must contain {FACE_PLACEHOLDER} in its "
            f"file name (replaced by {' '.join(CUBE_FACES)}), e.g. cube_{{face}}.png; got "
            f"'{template}'"
        )
    return {f: template.with_name(template.name.replace(FACE_PLACEHOLDER, f)) for f in CUBE_FACES}


def refuse_placeholder(path: Path, name: str, layout: str) -> None:
    from .._core import ValueRangeError

    if FACE_PLACEHOLDER in str(path):
        raise ValueRangeError(
            f"{name} contains {FACE_PLACEHOLDER}, which only --layout dict or list use (six "
            f"files); --layout {layout} uses one file. Got '{path}'"
        )


def describe(image: torch.Tensor) -> str:
    """``WxH`` of a (1, C, H, W) image."""
    return f"{image.shape[-1]}x{image.shape[-2]}"


def read_erp(
    path: Path, *, max_pixels: int | None = MAX_PIXELS_DEFAULT, with_info: bool = False
) -> torch.Tensor | tuple[torch.Tensor, ImageInfo]:
    """Read IN and require an equirectangular image (width = 2 x height); with ``with_info``
    also its :class:`ImageInfo` (bit depth, EXIF, XMP)."""
    from .._core import ShapeError
    from ..io import read_image

    erp, info = read_image(path, max_pixels=max_pixels, with_info=True)
    h, w = erp.shape[-2:]
    if w != 2 * h:
        raise ShapeError(
            f"IN '{path}' must be an equirectangular panorama with width = 2 x height, "
            f"got {describe(erp)}"
        )
    return (erp, info) if with_info else erp


def kept_bit_depth(input_depth: int, outputs: Iterable[Path]) -> int:
    """16 when the input had 16 bits and every output format stores them (PNG, TIFF), else 8."""
    deep = all(p.suffix.lower() in (".png", ".tif", ".tiff") for p in outputs)
    return 16 if input_depth == 16 and deep else 8


def read_cube(
    path: Path, layout: str, *, max_pixels: int | None = MAX_PIXELS_DEFAULT
) -> tuple[object, int, int]:
    """Read a cube map for ``cubemap_to_erp``: (cube in ``layout``, face width, bit depth)."""
    from .._core import ShapeError
    from ..geometry import CUBE_FACES
    from ..io import read_image

    if layout in ("dict", "list"):
        faces, depth = {}, 16
        for face, p in face_paths(path, "IN", layout).items():
            faces[face], info = read_image(p, max_pixels=max_pixels, with_info=True)
            depth = min(depth, info.bit_depth)
        first = faces[CUBE_FACES[0]]
        for face, img in faces.items():
            if img.shape != first.shape or img.shape[-1] != img.shape[-2]:
                raise ShapeError(
                    f"the six cube faces must be square images of one size and channel count; "
                    f"face {CUBE_FACES[0]} is {describe(first)} with {first.shape[1]} channel(s), "
                    f"face {face} is {describe(img)} with {img.shape[1]} channel(s)"
                )
        cube = faces if layout == "dict" else [faces[f] for f in CUBE_FACES]
        return cube, first.shape[-1], depth
    cube, info = read_image(path, max_pixels=max_pixels, with_info=True)
    h, w = cube.shape[-2:]
    if layout == "horizon" and w != 6 * h:
        raise ShapeError(
            f"IN '{path}' must be a horizon cube map (six square faces in a row, width = "
            f"6 x height), got {describe(cube)}"
        )
    if layout == "dice" and (3 * w != 4 * h or h % 3):
        raise ShapeError(
            f"IN '{path}' must be a dice cube map (a 4 x 3 grid of square faces, width:height = "
            f"4:3), got {describe(cube)}"
        )
    return cube, h if layout == "horizon" else h // 3, info.bit_depth


# Options shared by the commands (one definition, one help text).
Overwrite = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace output files that exist. Without it an existing output is an error and "
        "is left untouched.",
    ),
]
MaxPixels = Annotated[
    int,
    typer.Option(
        "--max-pixels",
        metavar="N",
        help="Largest input image, in pixels (width x height), read; guards against files "
        "that decode to far more memory than their size. A 20000x10000 panorama needs "
        "--max-pixels 200000000.",
    ),
]
Quiet = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="No progress bar and no line saying what was written."),
]
