"""pano360: correct and fast computer vision on 360-degree (equirectangular) images and videos.

The sphere convention every function follows is written once, in
:mod:`pano360.geometry.conventions`.

The subpackages (:mod:`pano360.geometry`, :mod:`pano360.saliency`, ...) and
:func:`pano360.detect_faces` are imported on first use: ``import pano360`` is cheap (it does
not import torch), and ``pano360.saliency`` works after it as after
``import pano360.saliency``.
"""

import importlib as _importlib
import types as _types
from typing import TYPE_CHECKING as _TYPE_CHECKING

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "data",
    "detect_faces",
    "detection",
    "errors",
    "geometry",
    "io",
    "models",
    "nn",
    "saliency",
    "testing",
    "transfer",
    "viz",
]

#: Functions offered at the top level, by the subpackage that defines them.
_FUNCTIONS = {"detect_faces": "detection"}
#: The public subpackages, imported when first used as ``pano360.<name>``.
_SUBPACKAGES = frozenset(__all__) - set(_FUNCTIONS) - {"__version__"}

if _TYPE_CHECKING:  # what the names are, for type checkers and IDEs
    from . import (
        data,
        detection,
        errors,
        geometry,
        io,
        models,
        nn,
        saliency,
        testing,
        transfer,
        viz,
    )
    from .detection import detect_faces


def __getattr__(name: str) -> object:
    # PEP 562: called only for names not found in the module, i.e. once per name.
    if name in _SUBPACKAGES:
        # Importing a submodule also binds it as an attribute of this package.
        return _importlib.import_module(f"{__name__}.{name}")
    if name in _FUNCTIONS:
        value = getattr(_importlib.import_module(f"{__name__}.{_FUNCTIONS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    # The public names, the module's dunders and the subpackages already imported.
    loaded = {
        n
        for n, v in globals().items()
        if isinstance(v, _types.ModuleType) and v.__name__.startswith(f"{__name__}.")
    }
    return sorted({*__all__, *loaded, *(n for n in globals() if n.startswith("__"))})
