"""``pano360 eval``: evaluation commands (saliency maps, 360° face detection, transfer of a deep
backbone).

The commands live in ``_eval_saliency``, ``_eval_faces`` and ``_eval_transfer``, imported when
used.
"""

from __future__ import annotations

from typing import ClassVar

import typer

from ._lazy import CONTEXT, LazyCommand, LazyGroup

__all__ = ["eval_app"]


class _EvalGroup(LazyGroup):
    lazy: ClassVar[dict[str, LazyCommand]] = {
        "saliency": LazyCommand(
            "._eval_saliency",
            "eval_saliency",
            "Score predicted saliency maps against ground-truth maps and fixations.",
        ),
        "faces": LazyCommand(
            "._eval_faces",
            "eval_faces",
            "Compare the strategies of 360° face detection on synthetic scenes, per latitude band.",
        ),
        "transfer": LazyCommand(
            "._eval_transfer",
            "eval_transfer",
            "Compare transfer strategies of a deep ImageNet backbone with its exact outputs.",
        ),
    }


eval_app = typer.Typer(
    name="eval",
    cls=_EvalGroup,
    help="Evaluate predictions against ground truth and print a table (also JSON and CSV).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings=CONTEXT,
)


@eval_app.callback()
def _eval() -> None:
    # A callback makes eval_app a group although its commands are not registered yet.
    pass
