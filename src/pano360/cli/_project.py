"""``pano360 project``: convert panoramas between projections (thin wrappers over geometry).

torch, :mod:`pano360.geometry` and :mod:`pano360.io` are imported inside the commands, so that
their help does not import torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._lazy import CONTEXT as _CONTEXT
from ._options import (
    FACE_PLACEHOLDER,
    MAX_PIXELS_DEFAULT,
    MaxPixels,
    Overwrite,
    Quiet,
    angle_radians,
    face_paths,
    fov_radians,
    kept_bit_depth,
    parse_size,
    read_cube,
    read_erp,
    refuse_placeholder,
)
from ._outputs import prepare_outputs, say_done, written

__all__ = ["project_app"]

project_app = typer.Typer(
    name="project",
    help=(
        "Convert panoramas between projections: equirectangular (ERP) to perspective views "
        "and back, ERP to cube maps and back, and rotation of an ERP panorama.\n\n"
        "An ERP panorama is an image twice as wide as it is high covering the whole sphere: "
        "columns are longitudes from -180 (left edge) to 180 degrees, rows are latitudes from "
        "90 (top) to -90 degrees; the image centre is straight ahead.\n\n"
        "Angles are in degrees. Camera angles: --yaw > 0 looks right, --pitch > 0 looks up, "
        "--roll > 0 rolls the camera clockwise. Sizes are WIDTHxHEIGHT in pixels. Missing "
        "output folders are created; existing files are never replaced unless you pass "
        "--overwrite.\n\n"
        "Run 'pano360 project COMMAND --help' for each command's options and examples.\n\n"
        "\b\nExamples:\n"
        "  pano360 project e2p pano.jpg view.jpg --yaw 90 --pitch 20 --fov 75\n"
        "  pano360 project e2c pano.jpg cube.png --face-w 512\n"
        "  pano360 project rotate pano.jpg turned.jpg --yaw 180"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings=_CONTEXT,
)

# Arguments and options shared by the commands. Help strings say units, signs and defaults.
_ErpIn = Annotated[
    Path, typer.Argument(metavar="IN", help="Equirectangular panorama (width = 2 x height).")
]
_Out = Annotated[
    Path,
    typer.Argument(
        metavar="OUT",
        help="Output image (missing folders are created); the extension picks the format (.png "
        ".jpg .jpeg .tif .tiff .webp).",
    ),
]
_Fov = Annotated[
    float,
    typer.Option(
        "--fov",
        metavar="DEG",
        help="Horizontal field of view in degrees, from the left edge of the picture to the "
        "right edge; in (0, 180).",
    ),
]
_Yaw = Annotated[
    float,
    typer.Option("--yaw", metavar="DEG", help="Camera yaw in degrees; > 0 looks right."),
]
_Pitch = Annotated[
    float,
    typer.Option("--pitch", metavar="DEG", help="Camera pitch in degrees; > 0 looks up."),
]
_Roll = Annotated[
    float,
    typer.Option(
        "--roll", metavar="DEG", help="Camera roll in degrees; > 0 rolls the camera clockwise."
    ),
]
_Mode = Annotated[
    str,
    typer.Option(
        "--mode",
        metavar="[nearest|bilinear|bicubic]",
        help="Interpolation used when resampling.",
    ),
]
_LAYOUT_METAVAR = "[dict|list|horizon|dice]"


def _view_angles(yaw: float, pitch: float, roll: float) -> tuple[float, float, float]:
    return (
        angle_radians(yaw, "--yaw"),
        angle_radians(pitch, "--pitch"),
        angle_radians(roll, "--roll"),
    )


@project_app.command("e2p", context_settings=_CONTEXT)
def e2p(
    src: _ErpIn,
    out: _Out,
    fov: _Fov = 90.0,
    yaw: _Yaw = 0.0,
    pitch: _Pitch = 0.0,
    roll: _Roll = 0.0,
    size: Annotated[
        str, typer.Option("--size", metavar="WxH", help="Size of the view in pixels.")
    ] = "800x600",
    mode: _Mode = "bilinear",
    overwrite: Overwrite = False,
    max_pixels: MaxPixels = MAX_PIXELS_DEFAULT,
    quiet: Quiet = False,
) -> None:
    """Render a perspective (pinhole camera) view of an ERP panorama.

    The camera sits at the centre of the sphere, aimed by --yaw, --pitch and --roll (degrees;
    all 0 looks at the centre of IN). The vertical field of view follows from --fov and the
    aspect ratio of --size (square pixels).

    \b
    Examples:
      pano360 project e2p pano.jpg front.jpg
      pano360 project e2p pano.jpg right.png --yaw 90 --pitch 20 --fov 75 --size 1024x768
    """
    import torch

    from .. import geometry
    from .._core import check_choice
    from ..io import write_images

    fov_rad = fov_radians(fov)
    angles = _view_angles(yaw, pitch, roll)
    out_hw = parse_size(size)
    check_choice(mode, "--mode", geometry.MODES)
    prepare_outputs([("OUT", out)], [src], overwrite=overwrite)
    erp, info = read_erp(src, max_pixels=max_pixels, with_info=True)
    with torch.inference_mode():
        view = geometry.erp_to_perspective(erp, fov_rad, out_hw, *angles, mode=mode)
    write_images({out: view}, overwrite=overwrite, bit_depth=kept_bit_depth(info.bit_depth, [out]))
    say_done(f"wrote {written({out: view})}", quiet=quiet)


@project_app.command("p2e", context_settings=_CONTEXT)
def p2e(
    src: Annotated[
        Path, typer.Argument(metavar="IN", help="Perspective (pinhole camera) image, any size.")
    ],
    out: _Out,
    fov: _Fov = 90.0,
    yaw: _Yaw = 0.0,
    pitch: _Pitch = 0.0,
    roll: _Roll = 0.0,
    size: Annotated[
        str,
        typer.Option(
            "--size", metavar="WxH", help="Size of the ERP panorama in pixels; must be 2:1."
        ),
    ] = "2048x1024",
    mask: Annotated[
        Path | None,
        typer.Option(
            "--mask",
            metavar="PATH",
            help="Also write a grayscale image, white where IN covers the panorama, black "
            "elsewhere.",
        ),
    ] = None,
    mode: _Mode = "bilinear",
    overwrite: Overwrite = False,
    max_pixels: MaxPixels = MAX_PIXELS_DEFAULT,
    quiet: Quiet = False,
) -> None:
    """Paste a perspective photo onto an ERP panorama (inverse of e2p).

    IN was taken by a pinhole camera with horizontal field of view --fov, aimed by --yaw,
    --pitch and --roll (degrees, as in e2p). OUT is an ERP image of --size; pixels the photo
    does not cover are black.

    \b
    Examples:
      pano360 project p2e photo.jpg pano.png --fov 75 --yaw 90
      pano360 project p2e photo.jpg pano.png --size 4096x2048 --mask coverage.png
    """
    import torch

    from .. import geometry
    from .._core import check_choice
    from ..io import read_image, write_images

    fov_rad = fov_radians(fov)
    angles = _view_angles(yaw, pitch, roll)
    erp_hw = parse_size(size, erp=True)
    check_choice(mode, "--mode", geometry.MODES)
    outputs = [("OUT", out)] + ([("--mask", mask)] if mask is not None else [])
    prepare_outputs(outputs, [src], overwrite=overwrite)
    img, info = read_image(src, max_pixels=max_pixels, with_info=True)
    with torch.inference_mode():
        erp, coverage = geometry.perspective_to_erp(img, fov_rad, erp_hw, *angles, mode=mode)
    images = {out: erp}
    if mask is not None:
        images[mask] = coverage
    write_images(images, overwrite=overwrite, bit_depth=kept_bit_depth(info.bit_depth, images))
    say_done(f"wrote {written(images)}", quiet=quiet)


@project_app.command("e2c", context_settings=_CONTEXT)
def e2c(
    src: _ErpIn,
    out: Annotated[
        Path,
        typer.Argument(
            metavar="OUT",
            help=f"Output image; for --layout dict or list a file name containing "
            f"{FACE_PLACEHOLDER}, e.g. cube_{FACE_PLACEHOLDER}.png.",
        ),
    ],
    face_w: Annotated[
        int | None,
        typer.Option(
            "--face-w",
            metavar="N",
            help="Width (= height) of each face in pixels.  [default: height of IN / 2]",
            show_default=False,
        ),
    ] = None,
    layout: Annotated[
        str,
        typer.Option("--layout", metavar=_LAYOUT_METAVAR, help="How the faces are stored."),
    ] = "dice",
    mode: _Mode = "bilinear",
    overwrite: Overwrite = False,
    max_pixels: MaxPixels = MAX_PIXELS_DEFAULT,
    quiet: Quiet = False,
) -> None:
    """Cut an ERP panorama into a cube map of six 90-degree faces.

    Faces: F (front, the centre of IN), R (right), B (back), L (left), U (up), D (down).

    \b
    Layouts:
      dice     one 4x3 image: U above F, then L F R B, D below F (unused cells black)
      horizon  one strip of six faces: F R B L U D
      dict     six files: OUT must contain {face}, replaced by F, R, B, L, U, D
      list     same six files as dict (the letter, not an index, names each face)

    \b
    Examples:
      pano360 project e2c pano.jpg cube.png --face-w 512
      pano360 project e2c pano.jpg "faces/cube_{face}.jpg" --layout dict
    """
    import torch

    from .. import geometry
    from .._core import check_choice, check_positive_int
    from ..io import write_images

    check_choice(layout, "--layout", geometry.CUBE_LAYOUTS)
    check_choice(mode, "--mode", geometry.MODES)
    if face_w is not None:
        check_positive_int(face_w, "--face-w")
    if layout in ("dict", "list"):
        targets = face_paths(out, "OUT", layout)
        outputs = [(f"OUT (face {f})", p) for f, p in targets.items()]
    else:
        refuse_placeholder(out, "OUT", layout)
        outputs = [("OUT", out)]
    prepare_outputs(outputs, [src], overwrite=overwrite)
    erp, info = read_erp(src, max_pixels=max_pixels, with_info=True)
    face_w = face_w if face_w is not None else max(1, erp.shape[-2] // 2)
    with torch.inference_mode():
        cube = geometry.erp_to_cubemap(erp, face_w, layout=layout, mode=mode)
    if layout == "dict":
        images = {targets[f]: cube[f] for f in geometry.CUBE_FACES}
    elif layout == "list":
        images = {targets[f]: face for f, face in zip(geometry.CUBE_FACES, cube, strict=True)}
    else:
        images = {out: cube}
    write_images(images, overwrite=overwrite, bit_depth=kept_bit_depth(info.bit_depth, images))
    say_done(f"wrote {written(images)}", quiet=quiet)


@project_app.command("c2e", context_settings=_CONTEXT)
def c2e(
    src: Annotated[
        Path,
        typer.Argument(
            metavar="IN",
            help=f"Cube map; for --layout dict or list a file name containing "
            f"{FACE_PLACEHOLDER}, e.g. cube_{FACE_PLACEHOLDER}.png.",
        ),
    ],
    out: _Out,
    layout: Annotated[
        str,
        typer.Option(
            "--layout", metavar=_LAYOUT_METAVAR, help="How the faces are stored (see e2c)."
        ),
    ] = "dice",
    size: Annotated[
        str | None,
        typer.Option(
            "--size",
            metavar="WxH",
            help="Size of the ERP panorama in pixels; must be 2:1.  [default: 4 x face width "
            "by 2 x face width]",
            show_default=False,
        ),
    ] = None,
    mode: _Mode = "bilinear",
    overwrite: Overwrite = False,
    max_pixels: MaxPixels = MAX_PIXELS_DEFAULT,
    quiet: Quiet = False,
) -> None:
    """Assemble an ERP panorama from a cube map (inverse of e2c).

    The layouts and face names are those of e2c: dice and horizon read one image; dict and
    list read the six files named by replacing {face} in IN with F, R, B, L, U, D.

    \b
    Examples:
      pano360 project c2e cube.png pano.png
      pano360 project c2e "faces/cube_{face}.jpg" pano.jpg --layout dict --size 4096x2048
    """
    import torch

    from .. import geometry
    from .._core import check_choice
    from ..io import write_images

    check_choice(layout, "--layout", geometry.CUBE_LAYOUTS)
    check_choice(mode, "--mode", geometry.MODES)
    erp_hw = parse_size(size, erp=True) if size is not None else None
    if layout in ("dict", "list"):
        inputs = list(face_paths(src, "IN", layout).values())
    else:
        refuse_placeholder(src, "IN", layout)
        inputs = [src]
    prepare_outputs([("OUT", out)], inputs, overwrite=overwrite)
    cube, face_w, depth = read_cube(src, layout, max_pixels=max_pixels)
    erp_hw = erp_hw or (2 * face_w, 4 * face_w)
    with torch.inference_mode():
        erp = geometry.cubemap_to_erp(cube, erp_hw, layout=layout, mode=mode)
    write_images({out: erp}, overwrite=overwrite, bit_depth=kept_bit_depth(depth, [out]))
    say_done(f"wrote {written({out: erp})}", quiet=quiet)


@project_app.command("rotate", context_settings=_CONTEXT)
def rotate(
    src: _ErpIn,
    out: _Out,
    yaw: _Yaw = 0.0,
    pitch: _Pitch = 0.0,
    roll: _Roll = 0.0,
    mode: _Mode = "bilinear",
    overwrite: Overwrite = False,
    max_pixels: MaxPixels = MAX_PIXELS_DEFAULT,
    quiet: Quiet = False,
) -> None:
    """Re-centre an ERP panorama on a new viewing direction.

    The centre of OUT shows what a camera aimed by --yaw, --pitch and --roll (degrees, as in
    e2p) sees in IN: 'e2p OUT' with no angles gives the same view as 'e2p IN' with these
    angles. So --yaw 90 brings what was on the right to the centre, --pitch 30 brings what
    was 30 degrees up to the centre (the horizon then bends), and --yaw 180 swaps front and back.
    OUT has the size of IN. In Python: rotate_erp(erp, rotation_matrix(yaw, pitch, roll).T)
    with angles in radians.

    \b
    Examples:
      pano360 project rotate pano.jpg turned.jpg --yaw 90
      pano360 project rotate pano.jpg tilted.jpg --yaw -45 --pitch 30
    """
    import torch

    from .. import geometry
    from .._core import check_choice
    from ..io import write_images

    yaw_r, pitch_r, roll_r = _view_angles(yaw, pitch, roll)
    check_choice(mode, "--mode", geometry.MODES)
    from ..io import rotate_metadata
    from ._bands import pad_erp, rotate_padded_in_bands

    prepare_outputs([("OUT", out)], [src], overwrite=overwrite)
    erp, info = read_erp(src, max_pixels=max_pixels, with_info=True)
    R = geometry.rotation_matrix(yaw_r, pitch_r, roll_r, dtype=torch.float64)
    with torch.inference_mode():
        # rotate_erp(erp, R.T, mode) a band of rows at a time: a 16K panorama fits in memory.
        hw, padded = erp.shape[-2:], pad_erp(erp, mode)
        del erp
        turned = rotate_padded_in_bands(padded, hw, R.T, mode)
        del padded
    write_images(
        {out: turned},
        overwrite=overwrite,
        bit_depth=kept_bit_depth(info.bit_depth, [out]),
        metadata=rotate_metadata(info, yaw_r, pitch_r, roll_r),
    )
    say_done(f"wrote {written({out: turned})}", quiet=quiet)
