"""The ``pano360`` command: the root group, ``--version`` and error reporting."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, ClassVar

import typer
import typer.main

from .. import __version__
from ._lazy import CONTEXT, LazyCommand, LazyGroup
from ._outputs import command_run

__all__ = ["app", "main"]


class _Root(LazyGroup):
    # Commands in help order; each module is imported when its command is used, so
    # `pano360 --help` does not import torch.
    lazy: ClassVar[dict[str, LazyCommand]] = {
        "project": LazyCommand(
            "._project",
            "project_app",
            "Convert between ERP, perspective views and cube maps; rotate panoramas.",
        ),
        "eval": LazyCommand(
            "._eval",
            "eval_app",
            "Evaluate: saliency maps; face-detection strategies; transfer of a deep backbone.",
        ),
        "faces": LazyCommand(
            "._faces",
            "faces",
            "Find faces in a 360-degree image or video; draw, blur and list them (JSON).",
        ),
        "saliency": LazyCommand(
            "._saliency",
            "saliency_command",
            "Saliency maps of a 360-degree image or video (training-free or trained models).",
        ),
        "report": LazyCommand(
            "._report",
            "report_command",
            "Write an interactive 360-degree page of a panorama and its results.",
        ),
        "train": LazyCommand(
            "._train",
            "train_app",
            "Train models with Lightning (saliency); resume, multi-GPU, export.",
        ),
        "distill": LazyCommand(
            "._distill",
            "distill_command",
            "Distil a perspective CNN into spherical layers (SphConv) on unlabelled ERPs.",
        ),
    }

    def invoke(self, ctx: typer.Context):
        # Folders a failing command created are removed again; its progress bars are closed
        # before main prints an error line.
        with command_run():
            return super().invoke(ctx)


app = typer.Typer(
    name="pano360",
    cls=_Root,
    help=(
        "Tools for 360-degree panoramas stored as equirectangular (ERP) images: find and blur "
        "faces, predict and evaluate saliency, distill spherical networks, change projections, "
        "look at the results in an interactive 360-degree report."
        "\n\n"
        "Angles are in degrees, sizes in pixels as WIDTHxHEIGHT. Output files are written "
        "atomically and never replace an existing file unless you pass --overwrite; missing "
        "output folders are created. Errors are one line, 'pano360: error: ...', exit code 2. "
        "-q silences progress bars and success lines.\n\n"
        "Examples: pano360 faces pano.jpg --blur; "
        "pano360 project e2p pano.jpg view.jpg --yaw 90 --fov 75"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings=CONTEXT,
    pretty_exceptions_enable=False,
)


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


def _is_pano360_error(e: BaseException) -> bool:
    # pano360._core imports torch: look it up only if a command has imported it (no
    # Pano360Error can exist otherwise).
    errors = sys.modules.get("pano360._core.errors")
    return errors is not None and isinstance(e, errors.Pano360Error)


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
    except Exception as e:
        if _is_pano360_error(e):
            _fail(str(e))
            return 2
        # torch reports a failed CPU allocation as a RuntimeError; anything else is a bug.
        if isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and "allocate" in str(e)):
            _fail("out of memory; try a smaller --size or --face-w")
            return 1
        raise
    return result if isinstance(result, int) else 0
