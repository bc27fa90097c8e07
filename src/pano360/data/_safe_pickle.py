"""Reading pickles of plain data without running code: a restricted unpickler.

A pickle names the functions and classes that rebuild its objects, and unpickling calls them:
``pickle.load`` on an untrusted file can run anything (``os.system`` is one global away). Some
datasets still ship their annotations as pickles (the ECCV'18 360-degree video saliency dataset's
``vinfo.pkl``). :func:`load_restricted_pickle` reads those with an unpickler that resolves only
an allow-list of globals: builtin containers, numbers, strings and bytes (which need no global,
or the few listed below), and numpy arrays and scalars through numpy's own reconstructors and
``numpy.dtype``. Anything else is refused before it is imported or called.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from numpy._core import multiarray as _multiarray
from numpy._core import numeric as _numeric

from .._core import DatasetFormatError, ImageIOError

__all__ = ["load_restricted_pickle"]


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """What protocol-2 pickles use to rebuild ``bytes`` (``_codecs.encode(s, 'latin1')``),
    restricted to that one codec (codec lookup imports modules by name)."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


# Module and name as written in the pickle -> the object it may resolve to. Python 2 and
# numpy 1.x pickles spell some modules differently; the old spellings map to the same objects
# (never importing numpy.core, which numpy 2 only keeps as a deprecated alias).
_ALLOWED: dict[tuple[str, str], Any] = {}
for _module in ("builtins", "__builtin__"):
    for _cls in (set, frozenset, complex, bytes, bytearray):
        _ALLOWED[_module, _cls.__name__] = _cls
_ALLOWED["_codecs", "encode"] = _latin1_encode
for _module in ("numpy._core.multiarray", "numpy.core.multiarray"):
    _ALLOWED[_module, "_reconstruct"] = _multiarray._reconstruct
    _ALLOWED[_module, "scalar"] = _multiarray.scalar
for _module in ("numpy._core.numeric", "numpy.core.numeric"):
    _ALLOWED[_module, "_frombuffer"] = _numeric._frombuffer
_ALLOWED["numpy", "ndarray"] = np.ndarray
_ALLOWED["numpy", "dtype"] = np.dtype
# numpy 2 pickles a dtype's class (e.g. numpy.dtypes.Float64DType) only for non-legacy
# dtypes, which no plain array needs; those stay refused.


class _RefusedGlobal(pickle.UnpicklingError):
    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.qualified = f"{module}.{name}"


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[module, name]
        except KeyError:
            raise _RefusedGlobal(module, name) from None


def load_restricted_pickle(path: str | os.PathLike[str]) -> Any:
    """Unpickle a file of plain data, refusing anything that could run code.

    Args:
        path: a pickle file (any protocol, also Python 2 and numpy 1.x pickles).

    Returns:
        The unpickled object: builtin containers (dict, list, tuple, set, frozenset), numbers,
        strings, bytes, and numpy arrays, scalars and dtypes, nested in any way.

    Raises:
        ImageIOError: the file cannot be read.
        DatasetFormatError: the pickle names a global outside the allow-list (the message names
            the file and the refused global; nothing of it was imported or called), or the file
            is not a valid pickle.

    Example:
        >>> import pickle, tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     with open(f"{tmp}/a.pkl", "wb") as f:
        ...         pickle.dump({"v1": {"0001": [(0.5, 0.25)]}}, f)
        ...     load_restricted_pickle(f"{tmp}/a.pkl")
        {'v1': {'0001': [(0.5, 0.25)]}}
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ImageIOError(f"cannot read '{path}': {e.strerror or e}") from e
    # Python 2 pickles hold numpy's raw bytes as str: latin1 gives them back byte for byte.
    unpickler = _RestrictedUnpickler(io.BytesIO(data), encoding="latin1")
    try:
        return unpickler.load()
    except _RefusedGlobal as e:
        raise DatasetFormatError(
            f"{path}: refused to unpickle the global '{e.qualified}': only builtin containers, "
            "numbers, strings, bytes and numpy arrays are allowed"
        ) from None
    except Exception as e:  # a malformed pickle raises many kinds of errors
        raise DatasetFormatError(
            f"{path}: not a valid pickle of plain data ({type(e).__name__}: {e})"
        ) from None
