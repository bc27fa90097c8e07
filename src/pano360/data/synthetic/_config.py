"""How scenes are drawn: :class:`SceneConfig` (face scenes) and :class:`SaliencySceneConfig`.

The fields both share (the output size and how every item is pasted: roll, brightness, flip,
face context, gap, supersampling, tries) are declared and checked once, in their common base.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any

from ..._core import (
    ValueRangeError,
    check_bool,
    check_choice,
    check_hw,
    check_interval,
    check_number,
    check_positive_int,
)
from ._assets import FACE_ASSETS, OBJECT_ASSETS, check_asset_names

__all__ = ["LAT_SAMPLING", "SaliencySceneConfig", "SceneConfig"]

_DEG = math.pi / 180

#: How :class:`SceneConfig` spreads faces over its latitude bands: "balanced" (the faces of a
#: scene go round the bands in turn, |lat| uniform in angle within each), "uniform" (|lat|
#: uniform in angle over all bands together) or "area" (uniform on the sphere within the bands).
LAT_SAMPLING: tuple[str, ...] = ("balanced", "uniform", "area")


def _radians(lo: float, hi: float) -> str:
    """Bounds of an angle interval, for messages: radians, and degrees to read them."""
    return f" radians ({math.degrees(lo):.4g} to {math.degrees(hi):.4g} degrees)"


def _angle_range(value: Any, name: str, lo: float, hi: float, *, lo_open: bool = False):
    return check_interval(value, name, lo=lo, hi=hi, lo_open=lo_open, unit=_radians(lo, hi))


@dataclass(frozen=True, repr=False)
class _SceneConfigBase:
    """The fields every scene config has; subclasses add theirs (positional, after ``erp_hw``).

    Fields after ``erp_hw`` here are keyword-only: a dataclass puts a base's fields first, and
    keeping these last in the constructor keeps every subclass's own fields where they were.
    Each field is checked, and stored in its canonical type (tuples, ints, floats, bool), once.
    """

    erp_hw: tuple[int, int]  # each config has its own default
    _: KW_ONLY
    roll: tuple[float, float] = (-20 * _DEG, 20 * _DEG)
    brightness: tuple[float, float] = (0.85, 1.15)
    flip: bool = True
    face_context: tuple[float, float] = (0.25, 0.6)
    min_gap: float = 1 * _DEG
    supersample: int = 2
    max_tries: int = 200

    def __post_init__(self) -> None:
        cls = type(self).__name__
        self._set("erp_hw", check_hw(self.erp_hw, f"{cls}.erp_hw", erp=True))
        self._set("roll", _angle_range(self.roll, f"{cls}.roll", -math.pi, math.pi))
        self._set(
            "brightness",
            check_interval(self.brightness, f"{cls}.brightness", lo=0.0, hi=4.0, lo_open=True),
        )
        self._set(
            "face_context", check_interval(self.face_context, f"{cls}.face_context", lo=0, hi=2)
        )
        self._set(
            "min_gap",
            check_number(self.min_gap, f"{cls}.min_gap", lo=0.0, hi=math.pi / 2),
        )
        self._set("flip", check_bool(self.flip, f"{cls}.flip"))
        self._set("supersample", check_positive_int(self.supersample, f"{cls}.supersample"))
        self._set("max_tries", check_positive_int(self.max_tries, f"{cls}.max_tries"))
        self._check_own_fields(cls)

    def _check_own_fields(self, cls: str) -> None:
        """Check (and canonicalise) the subclass's fields; ``cls`` names it in messages."""

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in config_fields(self))
        return f"{type(self).__name__}({args})"


def config_fields(cfg: Any) -> list[dataclasses.Field]:
    """A config's fields in constructor order: positional ones, then the keyword-only ones."""
    return sorted(dataclasses.fields(cfg), key=lambda f: f.kw_only)


@dataclass(frozen=True, repr=False)
class SceneConfig(_SceneConfigBase):
    """How :func:`make_face_scene` draws a face-detection scene. Angles in radians.

    Attributes:
        erp_hw: (H, W) of the panorama, W == 2H.
        n_faces: (min, max) faces per scene, both inclusive.
        face_width: (min, max) angular width of a face box (its fov_x), drawn uniformly.
        lat_bands: |lat| intervals (lo, hi) for the face centres, sorted and disjoint, within
            [0, pi/2]; both hemispheres. Default: 0-30, 30-60, 60-85 degrees.
        lat_sampling: one of :data:`LAT_SAMPLING`.
        n_objects: (min, max) distractor photos per scene (placed anywhere on the sphere).
        object_width: (min, max) angular width of a distractor.
        face_assets, object_assets: which assets to draw faces and distractors from.
        roll: (min, max) camera roll of every pasted item.
        brightness: (min, max) colour gain of every pasted item (keep it mild for detectors).
        flip: mirror half of the items left-right.
        face_context: (min, max) margin around a face in the pasted window, in face widths on
            the sides and face heights on top (1.5 times that below, for the shoulders); clipped
            to the asset.
        min_gap: least angle between the bounding caps of two pasted items.
        supersample: composite at this multiple of the resolution.
        max_tries: positions tried per item before it is dropped (``SyntheticScene.dropped``).

    The fields from ``roll`` on are shared with :class:`SaliencySceneConfig` and keyword-only;
    the others may also be given by position, in the order above. Values are stored in their
    canonical types (tuples, ints, floats, bool).

    Raises:
        ShapeError: ``erp_hw`` is not a 2:1 size.
        ValueRangeError: any other field out of range (the message names it).
        ValueError: unknown ``lat_sampling``.

    Example:
        >>> SceneConfig(erp_hw=(128, 256), n_faces=(2, 2)).n_faces
        (2, 2)
    """

    erp_hw: tuple[int, int] = (512, 1024)
    n_faces: tuple[int, int] = (3, 6)
    face_width: tuple[float, float] = (8 * _DEG, 25 * _DEG)
    lat_bands: tuple[tuple[float, float], ...] = (
        (0.0, 30 * _DEG),
        (30 * _DEG, 60 * _DEG),
        (60 * _DEG, 85 * _DEG),
    )
    lat_sampling: str = "balanced"
    n_objects: tuple[int, int] = (1, 3)
    object_width: tuple[float, float] = (15 * _DEG, 40 * _DEG)
    face_assets: tuple[str, ...] = FACE_ASSETS
    object_assets: tuple[str, ...] = OBJECT_ASSETS

    def _check_own_fields(self, cls: str) -> None:
        self._set("n_faces", check_interval(self.n_faces, f"{cls}.n_faces", lo=0, integer=True))
        self._set(
            "n_objects", check_interval(self.n_objects, f"{cls}.n_objects", lo=0, integer=True)
        )
        self._set(
            "face_width",
            _angle_range(self.face_width, f"{cls}.face_width", 0.0, math.pi / 3, lo_open=True),
        )
        self._set(
            "object_width",
            _angle_range(
                self.object_width, f"{cls}.object_width", 0.0, 2 * math.pi / 3, lo_open=True
            ),
        )
        check_choice(self.lat_sampling, f"{cls}.lat_sampling", LAT_SAMPLING)
        self._set(
            "face_assets",
            check_asset_names(self.face_assets, f"{cls}.face_assets", "face", allow_empty=False),
        )
        self._set(
            "object_assets",
            check_asset_names(
                self.object_assets,
                f"{cls}.object_assets",
                "object",
                allow_empty=self.n_objects[1] == 0,
            ),
        )
        bands = self.lat_bands
        if isinstance(bands, str) or not isinstance(bands, Sequence) or not bands:
            raise ValueRangeError(
                f"{cls}.lat_bands must be a non-empty tuple of (lo, hi), got {bands!r}"
            )
        checked, prev = [], 0.0
        for band in bands:
            lo, hi = _angle_range(band, f"{cls}.lat_bands", 0.0, math.pi / 2)
            if not (lo < hi and lo >= prev):
                raise ValueRangeError(
                    f"{cls}.lat_bands must be sorted, disjoint |lat| intervals (lo, hi) with "
                    f"lo < hi in [0, pi/2], got {bands!r}"
                )
            checked.append((lo, hi))
            prev = hi
        self._set("lat_bands", tuple(checked))


@dataclass(frozen=True, repr=False)
class SaliencySceneConfig(_SceneConfigBase):
    """How :func:`make_saliency_scene` draws a saliency scene. Angles in radians.

    Attributes:
        erp_hw: (H, W) of the panorama, W == 2H.
        n_objects: (min, max) salient photos per scene, both inclusive, at least 1.
        object_width: (min, max) angular width of a photo (the face box's for portraits).
        max_abs_lat: largest |lat| of a photo's centre; centres are uniform on the sphere within.
        assets: which assets to paste (faces and objects).
        face_weight: fixations on a face asset relative to any other photo.
        n_fixations: fixations sampled per scene.
        sigma: angular standard deviation of the fixation kernel (von Mises-Fisher with
            concentration 1 / sigma^2).
        background_contrast: amplitude of the plain background's mottling, in [0, 0.5].
        roll, brightness, flip, face_context, min_gap, supersample, max_tries: as in
            :class:`SceneConfig` (keyword-only).

    Raises:
        ShapeError: ``erp_hw`` is not a 2:1 size.
        ValueRangeError: any other field out of range (the message names it).

    Example:
        >>> SaliencySceneConfig(erp_hw=(64, 128), n_objects=(1, 2)).n_objects
        (1, 2)
    """

    erp_hw: tuple[int, int] = (256, 512)
    n_objects: tuple[int, int] = (2, 5)
    object_width: tuple[float, float] = (12 * _DEG, 35 * _DEG)
    max_abs_lat: float = 75 * _DEG
    assets: tuple[str, ...] = FACE_ASSETS + OBJECT_ASSETS
    face_weight: float = 2.0
    n_fixations: int = 200
    sigma: float = 3 * _DEG
    background_contrast: float = 0.04

    def _check_own_fields(self, cls: str) -> None:
        n = check_interval(self.n_objects, f"{cls}.n_objects", lo=0, integer=True)
        if n[0] < 1:
            raise ValueRangeError(f"{cls}.n_objects must have min >= 1, got {self.n_objects!r}")
        self._set("n_objects", n)
        self._set(
            "object_width",
            _angle_range(self.object_width, f"{cls}.object_width", 0.0, math.pi / 3, lo_open=True),
        )
        self._set(
            "max_abs_lat",
            check_number(self.max_abs_lat, f"{cls}.max_abs_lat", lo=0.0, hi=math.pi / 2),
        )
        self._set(
            "assets",
            check_asset_names(self.assets, f"{cls}.assets", "face|object", allow_empty=False),
        )
        self._set(
            "face_weight",
            check_number(self.face_weight, f"{cls}.face_weight", lo=0.0, lo_open=True),
        )
        self._set("n_fixations", check_positive_int(self.n_fixations, f"{cls}.n_fixations"))
        self._set(
            "sigma",
            check_number(self.sigma, f"{cls}.sigma", lo=0.0, hi=math.pi / 4, lo_open=True),
        )
        self._set(
            "background_contrast",
            check_number(self.background_contrast, f"{cls}.background_contrast", lo=0.0, hi=0.5),
        )


#: Fields holding angles: written in degrees (``<name>_deg``) by :func:`config_record`.
_ANGLE_FIELDS = frozenset(
    {"face_width", "object_width", "lat_bands", "roll", "min_gap", "max_abs_lat", "sigma"}
)


def config_record(cfg: _SceneConfigBase) -> dict[str, Any]:
    """A config as JSON, in constructor order, angles in degrees (names get a ``_deg`` suffix)."""

    def deg(v):
        return [deg(x) for x in v] if isinstance(v, (tuple, list)) else math.degrees(v)

    out = {}
    for f in config_fields(cfg):
        v = getattr(cfg, f.name)
        if f.name in _ANGLE_FIELDS:
            out[f"{f.name}_deg"] = deg(v)
        else:
            out[f.name] = list(v) if isinstance(v, tuple) else v
    return out
