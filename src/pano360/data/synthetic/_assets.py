"""The photos shipped for synthetic scenes: where each comes from, its licence and its face box.

The files live in ``pano360/data/assets``; ``tools/make_synthetic_assets.py`` makes them from
:data:`SCENE_ASSETS`, and LICENSES.md next to them.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import torch

from ..._core import ImageIOError, ValueRangeError, check_choice
from ...io import read_image

__all__ = [
    "FACE_ASSETS",
    "OBJECT_ASSETS",
    "SCENE_ASSETS",
    "SceneAsset",
    "load_asset",
]

#: The package whose ``assets`` folder holds the files (pano360.data).
_ASSET_PACKAGE = __package__.rpartition(".")[0]


@dataclass(frozen=True)
class SceneAsset:
    """An image shipped in ``pano360/data/assets``: where it comes from and its face box.

    The file is ``source_crop_xyxy`` of the source photo resized by ``scale``; boxes are in
    pixel-edge coordinates (pixel i spans [i, i + 1]). ``tools/make_synthetic_assets.py`` makes
    the files from this table, and LICENSES.md next to them.
    """

    name: str
    file: str
    #: "face" (a portrait with a face box), "object" (any other photo) or "texture".
    kind: str
    source: str
    origin: str
    licence: str
    source_crop_xyxy: tuple[int, int, int, int]
    scale: float
    #: Face box in the source photo, measured by eye (examples/make_panorama.py).
    source_face_xyxy: tuple[int, int, int, int] | None = None

    @property
    def size_hw(self) -> tuple[int, int]:
        """(h, w) of the asset file in pixels."""
        x0, y0, x1, y1 = self.source_crop_xyxy
        return round((y1 - y0) * self.scale), round((x1 - x0) * self.scale)

    @property
    def face_xyxy(self) -> tuple[float, float, float, float] | None:
        """Face box in asset pixels (edges), or None for assets without a face."""
        if self.source_face_xyxy is None:
            return None
        cx, cy = self.source_crop_xyxy[:2]
        fx0, fy0, fx1, fy1 = self.source_face_xyxy
        s = self.scale
        return ((fx0 - cx) * s, (fy0 - cy) * s, (fx1 - cx) * s, (fy1 - cy) * s)


_SKIMAGE = "scikit-image 0.26, skimage.data"
#: Every shipped asset by name (read-only).
SCENE_ASSETS: Mapping[str, SceneAsset] = types.MappingProxyType(
    {
        "astronaut": SceneAsset(
            "astronaut",
            "astronaut.jpg",
            "face",
            f"{_SKIMAGE}.astronaut()",
            "NASA Great Images database; Eileen Collins",
            "public domain",
            (90, 0, 360, 330),
            1.0,
            (180, 72, 268, 178),
        ),
        "grace_hopper": SceneAsset(
            "grace_hopper",
            "grace_hopper.jpg",
            "face",
            "matplotlib 3.11, mpl-data/sample_data/grace_hopper.jpg",
            "official US Navy portrait of Grace Hopper (via Wikimedia Commons)",
            "public domain",
            (40, 0, 500, 560),
            0.5,
            (178, 135, 355, 330),
        ),
        "coffee": SceneAsset(
            "coffee",
            "coffee.jpg",
            "object",
            f"{_SKIMAGE}.coffee()",
            "Rachel Michetti, courtesy of Pikolo Espresso Bar",
            "CC0",
            (60, 0, 540, 400),
            0.5,
        ),
        "chelsea": SceneAsset(
            "chelsea",
            "chelsea.jpg",
            "object",
            f"{_SKIMAGE}.chelsea()",
            "Stefan van der Walt",
            "CC0",
            (0, 0, 450, 300),
            0.5,
        ),
        "rocket": SceneAsset(
            "rocket",
            "rocket.jpg",
            "object",
            f"{_SKIMAGE}.rocket()",
            "SpaceX (DSCOVR launch on Falcon 9)",
            "public domain",
            (120, 107, 520, 427),
            0.5,
        ),
        "grass": SceneAsset(
            "grass",
            "grass.jpg",
            "texture",
            f"{_SKIMAGE}.grass()",
            'linolafett, "Grass 01" on DeviantArt',
            "CC0",
            (0, 0, 512, 512),
            0.5,
        ),
    }
)
#: Portraits, pasted so that their face box is the ground truth.
FACE_ASSETS: tuple[str, ...] = ("astronaut", "grace_hopper")
#: Other photos: distractors in face scenes, salient objects in saliency scenes.
OBJECT_ASSETS: tuple[str, ...] = ("coffee", "chelsea", "rocket")


@functools.cache
def asset_image(name: str) -> torch.Tensor:
    """The shared, cached (1, C, h, w) image of asset ``name``: read it, never modify it."""
    asset = SCENE_ASSETS[name]
    ref = resources.files(_ASSET_PACKAGE).joinpath("assets", asset.file)
    with resources.as_file(ref) as path:
        image = read_image(path)
    if tuple(image.shape[-2:]) != asset.size_hw:
        raise ImageIOError(
            f"asset '{asset.file}' is {tuple(image.shape[-2:])} pixels, expected {asset.size_hw}; "
            "the installation is damaged (re-run tools/make_synthetic_assets.py)"
        )
    return image


def load_asset(name: str) -> torch.Tensor:
    """A shipped asset image.

    Args:
        name: one of :data:`SCENE_ASSETS`.

    Returns:
        (1, C, h, w) float32 in [0, 1]; C is 3, or 1 for the grayscale ground texture.

    Raises:
        ValueError: unknown ``name`` (a :class:`~pano360.errors.ChoiceError`).
        ImageIOError: the file is missing or damaged.

    Example:
        >>> load_asset("astronaut").shape
        torch.Size([1, 3, 330, 270])
    """
    check_choice(name, "name", tuple(SCENE_ASSETS))
    return asset_image(name).clone()


def check_asset_names(value: Any, name: str, kinds: str, *, allow_empty: bool) -> tuple[str, ...]:
    """A tuple of asset names whose kind is one of ``kinds`` ("face", "object", "face|object").

    Raises:
        ValueRangeError: not a tuple of such names, or empty when ``allow_empty`` is False.
    """
    valid = tuple(n for n, a in SCENE_ASSETS.items() if a.kind in kinds.split("|"))
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueRangeError(f"{name} must be a tuple of asset names from {valid}, got {value!r}")
    names = tuple(value)
    bad = [n for n in names if n not in valid]
    if bad or (not names and not allow_empty):
        raise ValueRangeError(
            f"{name} must be a non-empty tuple of names from {valid}, got {value!r}"
        )
    return names
