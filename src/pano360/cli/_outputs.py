"""Where commands write, and what they say: the one ``--out`` rule and the one feedback rule.

Outputs (docs/cli.md, "Outputs"):

- A command that writes files named by the user takes their paths (``project``'s OUT,
  ``--mask``); a command that writes files it names itself takes ``--out DIR`` (default: the
  current folder; ``distill`` and ``report`` need one, their folder is the result).
- Missing folders on the way to an output, DIR included, are created; an existing file where a
  folder is needed, or a folder that cannot be written, is an error before any work.
- Folders a command created are removed again if the command fails (the root group runs every
  command inside :func:`command_run`), so a failure leaves nothing behind.

Feedback: progress bars go to stderr, only when it is a terminal and without ``-q``; one line on
stdout names what a command wrote, also suppressed by ``-q``.

Every check raises a pano360 error whose message is the line after ``pano360: error:``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path

import typer

__all__ = [
    "check_out_dir",
    "command_run",
    "make_folders",
    "prepare_out_dir",
    "prepare_outputs",
    "progress",
    "say_done",
    "written",
]

# Folders created by the running command, in creation order, and its open progress bars
# (None: no command_run).
_created: ContextVar[list[Path] | None] = ContextVar("_created", default=None)
_bars: ContextVar[list | None] = ContextVar("_bars", default=None)


@contextlib.contextmanager
def command_run() -> Iterator[None]:
    """Run a command: close its progress bars when it ends (before an error line is printed)
    and, if it fails, remove the (empty) folders it created, deepest first."""
    created, bars = _created.set([]), _bars.set([])
    try:
        yield
    except typer.Exit as e:
        if e.exit_code:
            _remove_created()
        raise
    except BaseException:
        _remove_created()
        raise
    finally:
        for bar in _bars.get() or []:
            bar.close()
        _created.reset(created)
        _bars.reset(bars)


def _remove_created() -> None:
    for folder in reversed(_created.get() or []):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if empty: a folder someone filled meanwhile stays


def _blocker(folder: Path) -> tuple[Path, str] | None:
    """Why ``folder`` is not, and cannot be created as, a writable folder: (the path in the
    way, what is wrong with it), or None if it can."""
    existing = folder
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not os.path.isdir(existing):
        return existing, "not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return existing, "not writable"
    return None


def make_folders(folder: Path) -> None:
    """Create ``folder`` and its missing parents, recorded so that a failing command removes
    them again."""
    from .._core import ImageIOError

    missing = [p for p in (folder, *folder.parents) if not os.path.lexists(p)]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ImageIOError(f"cannot create folder '{folder}': {e.strerror or e}") from None
    finally:
        record = _created.get()
        if record is not None:
            record.extend(p for p in reversed(missing) if os.path.isdir(p))


def check_out_dir(folder: Path, name: str = "--out") -> None:
    """Fail unless ``folder`` (the option ``name``) is, or can be created as, a writable folder.

    Raises:
        ImageIOError: ``folder`` or a folder above it is a file, or the nearest existing
            folder is not writable.
    """
    from .._core import ImageIOError

    blocker = _blocker(folder)
    if blocker is not None:
        where, why = blocker
        if where == folder:
            raise ImageIOError(f"{name} '{folder}' is {why}")
        raise ImageIOError(f"{name} '{folder}' cannot be created: '{where}' is {why}")


def prepare_out_dir(folder: Path, name: str = "--out") -> None:
    """:func:`check_out_dir`, then create ``folder`` and its missing parents."""
    check_out_dir(folder, name)
    make_folders(folder)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def prepare_outputs(
    outputs: Iterable[tuple[str, Path] | tuple[str, Path, bool]],
    inputs: Iterable[Path],
    *,
    overwrite: bool,
) -> None:
    """Fail before any work if an output cannot be written, exists, or is one of the inputs;
    then create the missing folders of the outputs.

    Args:
        outputs: (name shown to the user, path) of every file the command will write, with a
            third element False for a file that is not an image (JSON, CSV, ...).
        inputs: every file the command reads.
        overwrite: whether existing outputs may be replaced (``--overwrite``).

    Raises:
        ValueRangeError: an output is an input, or two outputs are the same file.
        ImageIOError: an output's folder cannot be created or written, or (from
            :func:`pano360.io.check_output_path`) its extension is not an image's or it is a
            folder.
        OutputExistsError: an output exists and ``overwrite`` is False.
    """
    from .._core import ImageIOError, OutputExistsError, ValueRangeError
    from ..io import check_output_path

    outputs = [(o[0], Path(o[1]), o[2] if len(o) > 2 else True) for o in outputs]
    inputs = list(inputs)
    for name, out, _ in outputs:
        for src in inputs:
            if _same_file(out, src):
                raise ValueRangeError(
                    f"{name} '{out}' is the same file as the input; choose another output path"
                )
        blocker = _blocker(out.parent)
        if blocker is not None:
            raise ImageIOError(f"cannot write {name} '{out}': '{blocker[0]}' is {blocker[1]}")
    seen: dict[Path, str] = {}
    for name, out, _ in outputs:
        key = out.resolve()
        if key in seen:
            raise ValueRangeError(f"{seen[key]} and {name} are the same file '{out}'")
        seen[key] = name
    for _, out, _ in outputs:
        make_folders(out.parent)
    for name, out, image in outputs:
        try:
            check_output_path(out, overwrite=overwrite, image=image)
        except OutputExistsError:
            raise OutputExistsError(
                f"{name} '{out}' already exists; pass --overwrite to replace it"
            ) from None


def progress(iterable: Iterable | None = None, *, quiet: bool, **kwargs):
    """A tqdm progress bar on stderr, shown only when stderr is a terminal and not ``quiet``."""
    from tqdm import tqdm

    bar = tqdm(iterable, disable=True if quiet else None, file=sys.stderr, **kwargs)
    bars = _bars.get()
    if bars is not None:
        bars.append(bar)
    return bar


def written(outputs: Iterable[Path] | Mapping[Path, object]) -> str:
    """The files a command wrote, for its success line: ``a.png (800x600), b.json``; an image
    (a tensor in a mapping of path -> content) shows its size."""
    items = outputs.items() if isinstance(outputs, Mapping) else ((p, None) for p in outputs)
    parts = []
    for path, content in items:
        shape = getattr(content, "shape", None)
        parts.append(f"{path} ({shape[-1]}x{shape[-2]})" if shape is not None else str(path))
    return ", ".join(parts)


def say_done(line: str, *, quiet: bool) -> None:
    """Print the line saying what a command wrote (stdout), unless ``quiet``."""
    if not quiet:
        typer.echo(line)
