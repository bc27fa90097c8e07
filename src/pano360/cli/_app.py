"""The ``pano360`` command: the root group, ``--version`` and error reporting."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer
import typer.main

from .. import __version__
from .._core import Pano360Error
from ._distill import distill_command
from ._eval import eval_app
from ._faces import faces
from ._project import project_app
from ._report import report_command
from ._saliency import saliency_command

__all__ = ["app", "main"]

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

app = typer.Typer(
    name="pano360",
    help=(
        "Tools for 360-degree panoramas stored as equirectangular (ERP) images: find and blur "
        "faces, predict and evaluate saliency, distill spherical networks, change projections, "
        "look at the results in an interactive 360-degree report."
        "\n\n"
        "Angles are in degrees, sizes in pixels as WIDTHxHEIGHT. Output files are written "
        "atomically and never replace an existing file unless you pass --overwrite.\n\n"
        "Examples: pano360 faces pano.jpg --blur; "
        "pano360 project e2p pano.jpg view.jpg --yaw 90 --fov 75"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings=_CONTEXT,
    pretty_exceptions_enable=False,
)
app.add_typer(
    project_app,
    name="project",
    short_help="Convert between ERP, perspective views and cube maps; rotate panoramas.",
)
app.add_typer(
    eval_app,
    name="eval",
    short_help="Evaluate: saliency maps against ground truth; face-detection strategies.",
)
app.command(
    "faces",
    short_help="Find faces in a 360-degree image; draw, blur and list them (JSON).",
    context_settings=_CONTEXT,
)(faces)
app.command(
    "saliency",
    short_help="Predict where people look in a 360-degree image or video.",
    context_settings=_CONTEXT,
)(saliency_command)

app.command(
    "report",
    short_help="Write an interactive 360-degree page of a panorama and its results.",
    context_settings=_CONTEXT,
)(report_command)

# `pano360 train` (its module imports Lightning only when a training command runs).
from ._train import train_app  # noqa: E402

app.add_typer(
    train_app,
    name="train",
    short_help="Train models with Lightning (saliency); resume, multi-GPU, export.",
)

app.command(
    "distill",
    short_help="Distil a perspective CNN into spherical layers (SphConv) on unlabelled ERPs.",
    context_settings=_CONTEXT,
)(distill_command)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"pano360 {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    """Tools for 360-degree panoramas stored as equirectangular (ERP) images."""


def _fail(message: str) -> None:
    # One line on stderr, whatever the message holds.
    typer.echo(f"pano360: error: {' '.join(message.split())}", err=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pano360`` command; return its exit status.

    Args:
        argv: arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        0 on success, 2 on bad input or usage (after one ``pano360: error: ...`` line on stderr),
        1 when out of memory, 130 when interrupted.
    """
    command = typer.main.get_command(app)
    args = list(argv) if argv is not None else sys.argv[1:]
    try:
        result = command.main(args=args, prog_name="pano360", standalone_mode=False)
    except Pano360Error as e:
        _fail(str(e))
        return 2
    except typer.TyperException as e:  # click's usage errors (unknown option, bad number, ...)
        if type(e).__name__ == "NoArgsIsHelpError":  # a group run without a command: help
            typer.echo(e.format_message())
            return 0
        ctx = getattr(e, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        _fail(e.format_message() + hint)
        return e.exit_code or 2
    except typer.Abort:
        _fail("aborted")
        return 130
    except (MemoryError, RuntimeError) as e:
        # torch reports a failed CPU allocation as a RuntimeError; anything else is a bug.
        if isinstance(e, RuntimeError) and "allocate" not in str(e):
            raise
        _fail("out of memory; try a smaller --size or --face-w")
        return 1
    return result if isinstance(result, int) else 0
