"""Running the ``pano360`` command line in-process, and checking what a command left on disk.

A test that runs the CLI in a subprocess pays Python's and torch's start-up every time; these run
the same entry point in the test's own process and capture what it printed.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

__all__ = ["file_listing", "run_cli"]


class _Terminal(io.StringIO):
    """A captured stream that says it is a terminal (progress bars are drawn only on one)."""

    def isatty(self) -> bool:
        return True


def run_cli(*args: str, terminal: bool = False) -> tuple[int, str, str]:
    """Run ``pano360 ARGS`` in this process; return (exit code, stdout, stderr).

    With ``terminal``, the captured stderr says it is a terminal, so progress output is shown as a
    user would see it.

    Example:
        >>> code, out, err = run_cli("--help")
        >>> code, "Usage" in out
        (0, True)
    """
    from pano360.cli import main  # the CLI sits above everything testing checks

    out, err = io.StringIO(), _Terminal() if terminal else io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def file_listing(folder: str | os.PathLike[str]) -> list[str]:
    """Every file and folder under ``folder`` (hidden temporaries included), as sorted relative
    paths: what a command must leave behind, and nothing more (no partial outputs).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = (Path(tmp) / "a" / ".b.tmp").parent.mkdir()
        ...     _ = (Path(tmp) / "a" / ".b.tmp").write_text("x")
        ...     file_listing(tmp)
        ['a', 'a/.b.tmp']
    """
    root = Path(folder)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))
