r"""Synthetic spherical scenes: photos pasted onto the sphere, with exact ground truth.

The "spherical PASCAL" protocol of the 360-degree detection and saliency papers: perspective
photos (portraits, other photos) are pasted onto a background sphere as if taken by pinhole
cameras aimed in chosen directions, so where every face lands is known exactly.

Convention:
    :mod:`pano360.geometry.conventions`. Angles are radians (degrees only in the JSON files of
    :func:`write_face_scenes`); lon is positive to the right (east), lat positive up; camera
    roll > 0 turns the pasted picture's up vector clockwise as seen from the centre.

How a photo is pasted
    A :class:`Placement` names an asset and where its *anchor* lands: the face box centre for a
    portrait, the centre of the pasted window for any other photo. The photo (or a window of
    it) is laid in the image plane of a pinhole camera whose optical axis goes through the
    anchor, with the focal length that makes the face (or the window) ``width`` radians wide, and
    pasted with the mapping of :func:`pano360.geometry.perspective_to_erp` at ``yaw=lon,
    pitch=lat, roll=roll`` (evaluated only on the ERP rows and columns the photo can reach).
    The part of that camera's image plane outside the window is transparent (an alpha channel,
    anti-aliased by exact pixel coverage), so head-and-shoulders crops need not be centred on
    the face. Everything is composited at ``supersample`` times the resolution and averaged over
    aligned blocks, which keeps faces of 8 degrees (23 pixels at 1024 x 512) crisp. The
    procedural background is made at the output size (it has no fine detail).

Ground truth
    Because the face box is centred on the camera's axis, its spherical box is exact:
    ``rbfov = (lon, lat, fov_x, fov_y, roll)`` is the view of a pinhole camera aimed at the face
    centre and rolled like the face, whose field of view is exactly the face box
    (``erp_to_perspective(erp, fov_x, (h, w), lon, lat, roll)`` with ``h / w = tan(fov_y / 2) /
    tan(fov_x / 2)`` shows the face box filling the view). ``bfov`` drops the roll: the face's
    angular width and height, aimed at its centre. For other photos the box is that of the
    pasted window. Pasted items never overlap (bounding caps on the sphere are kept apart), so
    every face is fully visible.

Determinism
    Every scene is a function of its seed and its config, for given library versions. A seed
    ``s`` drives ``numpy.random.SeedSequence(s)``; a seed ``(s, i)`` its independent child
    stream ``SeedSequence(s).spawn(...)[i]``. Datasets use ``(seed, index)``, so item ``i`` does
    not depend on which items were made before, nor on the dataset's length.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .._core import (
    ImageIOError,
    OutputExistsError,
    ShapeError,
    ValueRangeError,
    check_choice,
    check_hw,
    check_positive_int,
)
from ..geometry import (
    erp_directions,
    lonlat_to_xyz,
    pixel_solid_angle,
    pixel_to_lonlat,
    rotation_matrix,
    view_pixel_coords,
    wrap_lon,
    xyz_to_lonlat,
)
from ..io import check_output_path, read_image, write_atomic, write_image
from ._folder import write_saliency_sample

__all__ = [
    "BACKGROUNDS",
    "FACE_ASSETS",
    "FACE_SCENES_FORMAT",
    "LAT_SAMPLING",
    "OBJECT_ASSETS",
    "SALIENCY_SCENES_FORMAT",
    "SCENE_ASSETS",
    "Placement",
    "SaliencyScene",
    "SaliencySceneConfig",
    "SceneAsset",
    "SceneConfig",
    "SyntheticFaceScenes",
    "SyntheticSaliencyScenes",
    "SyntheticScene",
    "collate_scenes",
    "load_asset",
    "make_face_scene",
    "make_saliency_scene",
    "render_scene",
    "scene_background",
    "write_face_scenes",
    "write_saliency_scenes",
]

_DEG = math.pi / 180


# --- assets ------------------------------------------------------------------------------------


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
def _asset_image(name: str) -> torch.Tensor:
    asset = SCENE_ASSETS[name]
    ref = resources.files(__package__).joinpath("assets", asset.file)
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
        ValueError: unknown ``name``.
        ImageIOError: the file is missing or damaged.

    Example:
        >>> load_asset("astronaut").shape
        torch.Size([1, 3, 330, 270])
    """
    check_choice(name, "name", tuple(SCENE_ASSETS))
    return _asset_image(name).clone()


# --- validation helpers ------------------------------------------------------------------------


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _check_interval(
    value: Any, name: str, lo: float, hi: float, *, open_lo: bool = False, deg: bool = True
) -> tuple[float, float]:
    """A pair (a, b) of finite numbers with lo <= a <= b <= hi (lo < a when ``open_lo``)."""
    unit = " radians" if deg else ""
    bounds = f"{'(' if open_lo else '['}{lo:.4g}, {hi:.4g}]{unit}"
    if deg:
        bounds += f" ({lo / _DEG:.4g} to {hi / _DEG:.4g} degrees)"
    try:
        a, b = value
    except (TypeError, ValueError):
        raise ValueRangeError(f"{name} must be a pair (min, max), got {value!r}") from None
    ok = _is_number(a) and _is_number(b) and math.isfinite(a) and math.isfinite(b)
    if ok:
        ok = (a > lo if open_lo else a >= lo) and a <= b <= hi
    if not ok:
        raise ValueRangeError(
            f"{name} must be (min, max) with min <= max in {bounds}, got {value!r}"
        )
    return float(a), float(b)


def _check_count_range(value: Any, name: str) -> tuple[int, int]:
    try:
        a, b = value
    except (TypeError, ValueError):
        raise ValueRangeError(
            f"{name} must be a pair (min, max) of integers, got {value!r}"
        ) from None
    good = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (a, b))
    if not good or not 0 <= a <= b:
        raise ValueRangeError(f"{name} must be integers 0 <= min <= max, got {value!r}")
    return int(a), int(b)


def _check_number(value: Any, name: str, lo: float, hi: float, *, open_lo: bool = False) -> float:
    ok = _is_number(value) and math.isfinite(value)
    if ok:
        ok = (value > lo if open_lo else value >= lo) and value <= hi
    if not ok:
        bounds = f"{'(' if open_lo else '['}{lo:.4g}, {hi:.4g}]"
        raise ValueRangeError(f"{name} must be a finite number in {bounds}, got {value!r}")
    return float(value)


def _check_assets(value: Any, name: str, kind: str, *, allow_empty: bool) -> tuple[str, ...]:
    valid = tuple(n for n, a in SCENE_ASSETS.items() if a.kind in kind.split("|"))
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueRangeError(f"{name} must be a tuple of asset names from {valid}, got {value!r}")
    names = tuple(value)
    bad = [n for n in names if n not in valid]
    if bad or (not names and not allow_empty):
        raise ValueRangeError(
            f"{name} must be a non-empty tuple of names from {valid}, got {value!r}"
        )
    return names


def _rng(seed: int | tuple[int, ...]) -> np.random.Generator:
    """``seed`` -> generator: an int is a SeedSequence's entropy; (s, i, ...) is the child of
    SeedSequence(s) with spawn key (i, ...), i.e. ``SeedSequence(s).spawn(n)[i]``."""
    if isinstance(seed, int):
        return np.random.default_rng(np.random.SeedSequence(seed))
    return np.random.default_rng(np.random.SeedSequence(seed[0], spawn_key=seed[1:]))


def _check_seed(seed: Any) -> int | tuple[int, ...]:
    def ok(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0

    if ok(seed):
        return int(seed)
    if isinstance(seed, Sequence) and not isinstance(seed, str) and seed and all(map(ok, seed)):
        return tuple(int(v) for v in seed)
    raise ValueRangeError(
        f"seed must be a non-negative integer or a non-empty sequence of them, got {seed!r}"
    )


# --- placements and their geometry -------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """One photo pasted onto the sphere.

    Attributes:
        asset: a face or object name from :data:`SCENE_ASSETS`.
        lon, lat: where the anchor lands, radians: the face box centre for a face asset, the
            window centre otherwise.
        width: angular width (the box's fov_x), radians, in (0, 2pi/3]: of the face box for a face
            asset, of the window otherwise.
        roll: camera roll, radians, in [-pi, pi]; > 0 turns the photo's up vector clockwise.
        flip: mirror the photo left-right about the anchor.
        brightness: gain applied to the photo's colours (clipped to [0, 1]), > 0.
        window: the part of the asset pasted, (x0, y0, x1, y1) in asset pixels (edges); None
            pastes the whole asset. For a face asset it must contain the face box.

    Raises:
        ValueRangeError: any attribute out of range (the message names it).
        ValueError: unknown asset.

    Example:
        >>> Placement("astronaut", lon=0.5, lat=-0.2, width=math.radians(12)).kind
        'face'
    """

    asset: str
    lon: float
    lat: float
    width: float
    roll: float = 0.0
    flip: bool = False
    brightness: float = 1.0
    window: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        check_choice(self.asset, "Placement.asset", FACE_ASSETS + OBJECT_ASSETS)
        if not (_is_number(self.lon) and math.isfinite(self.lon)):
            raise ValueRangeError(f"Placement.lon must be a finite number, got {self.lon!r}")
        _check_number(self.lat, "Placement.lat", -math.pi / 2, math.pi / 2)
        _check_number(self.width, "Placement.width", 0.0, 2 * math.pi / 3, open_lo=True)
        _check_number(self.roll, "Placement.roll", -math.pi, math.pi)
        _check_number(self.brightness, "Placement.brightness", 0.0, math.inf, open_lo=True)
        if not isinstance(self.flip, (bool, np.bool_)):
            raise ValueRangeError(f"Placement.flip must be a bool, got {self.flip!r}")
        h, w = SCENE_ASSETS[self.asset].size_hw
        if self.window is not None:
            try:
                x0, y0, x1, y1 = (float(v) for v in self.window)
            except (TypeError, ValueError):
                raise ValueRangeError(
                    f"Placement.window must be (x0, y0, x1, y1), got {self.window!r}"
                ) from None
            if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
                raise ValueRangeError(
                    f"Placement.window must satisfy 0 <= x0 < x1 <= {w} and 0 <= y0 < y1 <= {h} "
                    f"(asset '{self.asset}' is {w}x{h}), got {self.window!r}"
                )
            face = SCENE_ASSETS[self.asset].face_xyxy
            if face is not None and not (
                x0 <= face[0] and y0 <= face[1] and x1 >= face[2] and y1 >= face[3]
            ):
                raise ValueRangeError(
                    f"Placement.window must contain the face box {face} of '{self.asset}', "
                    f"got {self.window!r}"
                )

    @property
    def kind(self) -> str:
        """ "face" or "object"."""
        return SCENE_ASSETS[self.asset].kind


@dataclass(frozen=True)
class _Item:
    """A placement's camera: everything in asset pixels except the angles."""

    placement: Placement
    window: tuple[float, float, float, float]
    anchor: tuple[float, float]
    focal: float  # asset pixels
    box: tuple[float, float, float, float]  # (lon, lat, fov_x, fov_y)
    step: float  # asset pixels per canvas pixel
    cap: tuple[float, float]  # (lon, lat) of the centre of a cap holding every touched pixel
    radius: float  # the cap's angular radius


def _window_of(p: Placement) -> tuple[float, float, float, float]:
    """The pasted window of a placement, in asset pixels (edges)."""
    if p.window is None:
        h, w = SCENE_ASSETS[p.asset].size_hw
        return (0.0, 0.0, float(w), float(h))
    return tuple(float(v) for v in p.window)


def _item(p: Placement, erp_hw: tuple[int, int], supersample: int) -> _Item:
    asset = SCENE_ASSETS[p.asset]
    window = _window_of(p)
    box = asset.face_xyxy if asset.kind == "face" else window
    bx0, by0, bx1, by1 = box
    ax, ay = (bx0 + bx1) / 2, (by0 + by1) / 2
    focal = (bx1 - bx0) / 2 / math.tan(p.width / 2)
    fov_y = 2 * math.atan((by1 - by0) / 2 / focal)
    # Canvas pixels match the composited ERP's row pitch (finer would be lost), never finer than
    # the asset's own pixels.
    step = max(1.0, focal * math.pi / (erp_hw[0] * supersample))
    lon = float(wrap_lon(torch.tensor(float(p.lon), dtype=torch.float64)))
    cap, radius = _bounding_cap(p, window, (ax, ay), focal, step)
    radius += math.pi / erp_hw[0]  # block averaging spreads a pixel over its output pixel
    box = (lon, float(p.lat), float(p.width), fov_y)
    return _Item(p, window, (ax, ay), focal, box, step, cap, radius)


def _bounding_cap(p: Placement, window, anchor, focal: float, step: float):
    """(lon, lat) and radius of a cap holding every ERP pixel the pasted window can touch.

    Centred on the window's centre (not the anchor: a portrait's window reaches further below
    the face than above it). A cap meets the image plane in an ellipse, which holds the
    rectangle when it holds its corners.
    """
    x0, y0, x1, y1 = window
    ax, ay = anchor
    sign = -1.0 if p.flip else 1.0

    def ray(x: float, y: float) -> torch.Tensor:  # asset pixel -> unit camera ray
        r = torch.tensor([sign * (x - ax) / focal, -(y - ay) / focal, 1.0], dtype=torch.float64)
        return r / r.norm()

    centre = ray((x0 + x1) / 2, (y0 + y1) / 2)
    # Bilinear reads reach 1.5 canvas pixels past the window: dilate it by 2.
    d = 2 * step
    corners = torch.stack([ray(x, y) for x in (x0 - d, x1 + d) for y in (y0 - d, y1 + d)])
    radius = float(torch.arccos((corners @ centre).clamp(-1, 1)).max())
    R = rotation_matrix(float(p.lon), float(p.lat), float(p.roll), dtype=torch.float64)
    lon, lat = xyz_to_lonlat(R @ centre).tolist()
    return (lon, lat), radius


def _canvas(item: _Item) -> tuple[torch.Tensor, float]:
    """The pinhole image to paste: (1, 4, Ny, Nx) premultiplied RGB and alpha, and its fov."""
    p = item.placement
    image = _asset_image(p.asset)
    h, w = image.shape[-2:]
    s = item.step
    ax, ay = item.anchor
    x0, y0, x1, y1 = item.window
    # Symmetric about the anchor, which must sit on the principal point (the image centre).
    nx2 = max(1, math.ceil(max(ax - x0, x1 - ax) / s - 1e-9))
    ny2 = max(1, math.ceil(max(ay - y0, y1 - ay) / s - 1e-9))
    opts = {"dtype": torch.float64}
    u = (torch.arange(2 * nx2, **opts) + 0.5 - nx2) * s
    xs = ax - u if p.flip else ax + u
    ys = ay + (torch.arange(2 * ny2, **opts) + 0.5 - ny2) * s
    if s > 1:
        # Low-pass before sampling at the coarser step; normalised coordinates do not change.
        size = (max(1, round(h / s)), max(1, round(w / s)))
        image = F.interpolate(
            image, size=size, mode="bilinear", antialias=True, align_corners=False
        )
    gx, gy = 2 * xs / w - 1, 2 * ys / h - 1
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None].float()
    rgb = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
    rgb = (rgb * p.brightness).clamp(0, 1)

    def coverage(c: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
        # Share of each canvas pixel's footprint [c - s/2, c + s/2] inside [lo, hi].
        inner = torch.clamp(c + s / 2, max=hi) - torch.clamp(c - s / 2, min=lo)
        return (inner / s).clamp(0, 1)

    alpha = (coverage(ys, y0, y1)[:, None] * coverage(xs, x0, x1)[None, :]).float()[None, None]
    fov = 2 * math.atan(nx2 * s / item.focal)
    return torch.cat((rgb * alpha, alpha), dim=1), fov


def _footprint(item: _Item, hw: tuple[int, int]) -> tuple[int, int, torch.Tensor | None]:
    """Rows ``r0:r1`` and columns (None: all; else indices, wrapped) holding the item's cap."""
    h, w = hw
    lon, lat = item.cap
    rho = item.radius
    top, bottom = lat + rho, lat - rho
    # Row r spans latitudes pi/2 - pi r / h down to pi/2 - pi (r + 1) / h.
    r0 = max(0, math.floor((math.pi / 2 - top) / math.pi * h) - 1)
    r1 = min(h, math.ceil((math.pi / 2 - bottom) / math.pi * h) + 1)
    if top >= math.pi / 2 or bottom <= -math.pi / 2 or math.sin(rho) >= math.cos(lat):
        return r0, r1, None  # the cap holds a pole or reaches round it: every column
    # Largest longitude offset of a cap of radius rho centred at latitude lat.
    half = math.asin(math.sin(rho) / math.cos(lat))
    c0 = math.floor(((lon - half) / (2 * math.pi) + 0.5) * w) - 1
    c1 = math.ceil(((lon + half) / (2 * math.pi) + 0.5) * w) + 1
    if c1 - c0 >= w:
        return r0, r1, None
    return r0, r1, torch.remainder(torch.arange(c0, c1), w)


def _paste(erp: torch.Tensor, item: _Item, keep_alpha: bool = False) -> torch.Tensor | None:
    """Composite ``item`` onto ``erp`` (1, 3, H, W) in place; return its alpha (H, W) if asked.

    The mapping is :func:`pano360.geometry.perspective_to_erp`'s (both through
    :func:`~pano360.geometry.view_pixel_coords`), evaluated only on the ERP rows and columns
    that the item's bounding cap reaches (a test pins the two together): a full-sphere pass per
    item would cost ten times more at 1024 x 2048.
    """
    canvas, fov = _canvas(item)
    hw = tuple(erp.shape[-2:])
    r0, r1, cols = _footprint(item, hw)
    dirs = erp_directions(hw, dtype=torch.float32)[r0:r1]
    if cols is not None:
        dirs = dirs[:, cols]
    lon, lat = item.box[:2]
    R = rotation_matrix(lon, lat, float(item.placement.roll), dtype=torch.float32)
    # World to camera for row vectors: (R^T d)^T = d^T R; then the canvas's pinhole.
    n_y, n_x = canvas.shape[-2:]
    tan_half = torch.tensor([math.tan(fov / 2)], dtype=torch.float32)
    points, inside = view_pixel_coords((dirs @ R)[None], (n_y, n_x), tan_half)
    inside = inside[0]
    grid = (2 * points + 1) / points.new_tensor([n_x, n_y]) - 1
    grid = torch.where(inside[None, ..., None], grid, torch.zeros_like(grid))
    pasted = F.grid_sample(canvas, grid, padding_mode="border", align_corners=False)
    pasted = pasted * inside.to(pasted.dtype)
    alpha = pasted[:, 3:]
    index = (slice(None), slice(None), slice(r0, r1), slice(None) if cols is None else cols)
    erp[index] = erp[index] * (1 - alpha) + pasted[:, :3]
    if not keep_alpha:
        return None
    full = erp.new_zeros(hw)
    full[index[2:]] = alpha[0, 0]
    return full


# --- backgrounds -------------------------------------------------------------------------------


def _sphere_noise(
    dirs: torch.Tensor, rng: np.random.Generator, sizes: Sequence[int]
) -> torch.Tensor:
    """Smooth fractal noise in [0, 1] of unit directions (..., 3): seamless, no pole pinch.

    Trilinear value noise on random lattices in the cube [-1, 1]^3, evaluated at the direction
    itself, so it is a continuous function on the sphere.
    """
    grid = (dirs * 0.999).reshape(1, -1, 1, 1, 3).float()
    total, weight = torch.zeros(grid.shape[1]), 0.0
    for i, n in enumerate(sizes):
        lattice = torch.from_numpy(rng.random((n, n, n), dtype=np.float32))[None, None]
        amp = 0.55**i
        total += amp * F.grid_sample(lattice, grid, align_corners=True).flatten()
        weight += amp
    return (total / weight).reshape(dirs.shape[:-1])


def _jitter(rng: np.random.Generator, colour: Sequence[float], amount: float) -> torch.Tensor:
    return torch.tensor(np.clip(np.asarray(colour) + rng.uniform(-amount, amount, 3), 0, 1)).float()


def _sky_ground(dirs: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """(H, W, 3) sky with clouds above the horizon, a textured meadow below, haze between."""
    x, y, z = dirs.unbind(-1)
    horizon = _jitter(rng, (0.82, 0.87, 0.92), 0.05)
    zenith = _jitter(rng, (0.22, 0.42, 0.78), 0.08)
    sky = horizon + (zenith - horizon) * y.clamp(min=0)[..., None].sqrt()
    clouds = _sphere_noise(dirs, rng, (4, 8, 16, 32))
    threshold = rng.uniform(0.42, 0.6)
    cover = ((clouds - threshold) / 0.14).clamp(0, 1) * (y / 0.08).clamp(0, 1)
    shade = 0.86 + 0.14 * ((clouds - threshold) / 0.2).clamp(0, 1)
    sky = sky * (1 - cover[..., None]) + shade[..., None] * cover[..., None]
    # Ground: the plane y = -1 seen from the eye, textured with the grass asset mirrored into a
    # seamless tiling (mirroring makes every tile edge continuous).
    grass = _asset_image("grass")[:, :1]
    down = (-y).clamp(min=1e-3)
    period = rng.uniform(1.5, 3.0)
    offset = rng.uniform(0, 2, 2)

    def mirror(t: torch.Tensor) -> torch.Tensor:
        return 1 - (torch.remainder(t, 2) - 1).abs()  # 0 .. 1 .. 0, period 2

    g = torch.stack(
        (mirror(x / down / period + offset[0]), mirror(z / down / period + offset[1])), -1
    )
    texture = F.grid_sample(grass, (g * 2 - 1)[None].float(), align_corners=True)[0, 0]
    patches = _sphere_noise(dirs, rng, (6, 12))
    tint = _jitter(rng, (0.33, 0.52, 0.18), 0.05)
    ground = (0.35 + 0.9 * texture[..., None]) * tint * (0.75 + 0.5 * patches[..., None])
    # Far ground would alias: fade it into the haze near the horizon.
    fade = ((-y - 0.02) / 0.25).clamp(0, 1)[..., None]
    ground = horizon * (1 - fade) + ground * fade
    return torch.where((y >= 0)[..., None], sky, ground)


def _plain(dirs: torch.Tensor, rng: np.random.Generator, contrast: float) -> torch.Tensor:
    """(H, W, 3) a plain colour with low-contrast smooth mottling."""
    base = _jitter(rng, (0.5, 0.5, 0.5), 0.12)
    noise = _sphere_noise(dirs, rng, (3, 6, 12))
    return (base + contrast * (2 * noise[..., None] - 1)).clamp(0, 1)


#: Procedural background styles of :func:`scene_background`.
BACKGROUNDS: tuple[str, ...] = ("sky", "plain")


def scene_background(
    erp_hw: Sequence[int],
    seed: int | Sequence[int] = 0,
    style: str = "sky",
    *,
    contrast: float = 0.04,
) -> torch.Tensor:
    """A procedural background panorama, continuous across the seam and the poles.

    Args:
        erp_hw: (H, W) with W == 2H.
        seed: randomises colours, clouds, texture scale and offset.
        style: "sky" (sky with clouds over a grass meadow, a horizon at lat 0) or "plain" (a
            plain colour with smooth mottling of amplitude ``contrast``, for saliency scenes).
        contrast: mottling amplitude of "plain", in [0, 0.5].

    Returns:
        (1, 3, H, W) float32 in [0, 1].

    Raises:
        ShapeError: ``erp_hw`` is not a 2:1 size.
        ValueError: unknown ``style``.
        ValueRangeError: bad ``seed`` or ``contrast``.

    Convention:
        Every value is a function of the pixel's direction
        (:func:`pano360.geometry.erp_directions`), so nothing jumps at the seam or the poles.

    Example:
        >>> scene_background((16, 32), seed=3).shape
        torch.Size([1, 3, 16, 32])
    """
    hw = check_hw(erp_hw, "erp_hw", erp=True)
    check_choice(style, "style", BACKGROUNDS)
    contrast = _check_number(contrast, "contrast", 0.0, 0.5)
    rng = _rng(_check_seed(seed))
    # A random turn about the vertical, so the lattices' axes do not always line up with lon 0.
    dirs = erp_directions(hw, dtype=torch.float32) @ rotation_matrix(
        rng.uniform(-math.pi, math.pi), dtype=torch.float32
    )
    img = _sky_ground(dirs, rng) if style == "sky" else _plain(dirs, rng, contrast)
    return img.permute(2, 0, 1)[None].contiguous()


# --- scenes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticScene:
    """A rendered scene and its ground truth.

    Attributes:
        erp: (3, H, W) float32 in [0, 1].
        bfov: (N, 4) float64 (lon, lat, fov_x, fov_y) radians of every pasted item, in paste
            order: the face box for faces, the pasted window for objects.
        rbfov: (N, 5) the same with the roll appended.
        labels: N strings, "face" or "object".
        assets: N asset names.
        band: (N,) int64 index of the latitude band (``SceneConfig.lat_bands``) holding each
            face's |lat|; -1 for objects and for scenes made by :func:`render_scene`.
        placements: the N placements, as pasted.
        seed: the seed the scene was made with (None for :func:`render_scene` with a tensor
            background).
        dropped: number of requested items left out because no free room was found for them.
    """

    erp: torch.Tensor
    bfov: torch.Tensor
    rbfov: torch.Tensor
    labels: tuple[str, ...]
    assets: tuple[str, ...]
    band: torch.Tensor
    placements: tuple[Placement, ...]
    seed: int | tuple[int, ...] | None
    dropped: int

    @property
    def is_face(self) -> torch.Tensor:
        """(N,) bool: which items are faces."""
        return torch.tensor([lab == "face" for lab in self.labels], dtype=torch.bool)

    @property
    def face_bfov(self) -> torch.Tensor:
        """(F, 4) BFoV of the faces only: the face detection ground truth."""
        return self.bfov[self.is_face]

    @property
    def face_rbfov(self) -> torch.Tensor:
        """(F, 5) RBFoV of the faces only."""
        return self.rbfov[self.is_face]

    def to_record(self) -> dict[str, Any]:
        """JSON-ready ground truth, angles in degrees (lon in [-180, 180))."""
        items = []
        for i, p in enumerate(self.placements):
            deg = [math.degrees(v) for v in self.rbfov[i].tolist()]
            items.append(
                {
                    "label": self.labels[i],
                    "asset": p.asset,
                    "bfov": deg[:4],
                    "rbfov": deg,
                    "band": int(self.band[i]),
                    "flip": bool(p.flip),
                    "brightness": float(p.brightness),
                    "window_xyxy": list(_window_of(p)),
                }
            )
        seed = list(self.seed) if isinstance(self.seed, tuple) else self.seed
        return {
            "seed": seed,
            "erp_hw": list(self.erp.shape[-2:]),
            "dropped": self.dropped,
            "items": items,
        }


@dataclass(frozen=True)
class SaliencyScene(SyntheticScene):
    """A saliency scene: a :class:`SyntheticScene` whose pasted items are the salient objects.

    Attributes:
        saliency: (1, H, W) float32 ground-truth saliency, a probability density on the sphere
            (per steradian: the sum of saliency times :func:`~pano360.geometry.pixel_solid_angle`
            is 1 up to quadrature error): a von Mises-Fisher kernel density of ``fixations``.
        fixations: (K, 2) float64 (lon, lat) radians, sampled uniformly (by area) on the
            items' pixels, ``face_weight`` times more per face than per other object.
        object_mask: (1, H, W) float32 in [0, 1]: the share of each pixel covered by an item.
    """

    saliency: torch.Tensor
    fixations: torch.Tensor
    object_mask: torch.Tensor


def _background_big(
    background: str | torch.Tensor,
    hw: tuple[int, int],
    ss: int,
    rng: np.random.Generator,
    contrast: float,
) -> torch.Tensor:
    """The background at ``ss`` times the size of ``hw``, nearest-upsampled, so that block
    averaging gives it back exactly where nothing is pasted."""
    if isinstance(background, str):
        check_choice(background, "background", BACKGROUNDS)
        # Made at the output size: it is smooth (the ground texture fades out before it gets
        # fine), and a supersampled one would cost ss^2 times more.
        seed = int(rng.integers(2**63))
        bg = scene_background(hw, seed, background, contrast=contrast)
    elif isinstance(background, torch.Tensor) and background.is_floating_point():
        bg = background[None] if background.ndim == 3 else background
        if bg.ndim != 4 or bg.shape[:2] != (1, 3) or tuple(bg.shape[-2:]) != hw:
            raise ShapeError(
                f"background must be (3, H, W) or (1, 3, H, W) with (H, W) = {hw}, "
                f"got {tuple(background.shape)}"
            )
        bg = bg.detach().to("cpu", torch.float32).clamp(0, 1)
    else:
        raise TypeError(
            f"background must be a style name or a float tensor, got {type(background).__name__}"
        )
    return bg.repeat_interleave(ss, -2).repeat_interleave(ss, -1).contiguous()


def _render(
    placements: Sequence[Placement],
    erp_hw: tuple[int, int],
    background: str | torch.Tensor,
    ss: int,
    rng: np.random.Generator,
    *,
    contrast: float = 0.04,
    keep_alpha: bool = False,
) -> tuple[torch.Tensor, list[_Item], list[torch.Tensor]]:
    big = _background_big(background, erp_hw, ss, rng, contrast)
    items = [_item(p, erp_hw, ss) for p in placements]
    alphas = []
    for item in items:
        alpha = _paste(big, item, keep_alpha)
        if alpha is not None:
            alphas.append(alpha)
    erp = F.avg_pool2d(big, ss)[0].clamp(0, 1) if ss > 1 else big[0].clamp(0, 1)
    return erp, items, alphas


def _scene(
    erp: torch.Tensor,
    items: Sequence[_Item],
    bands: Sequence[int],
    seed: int | tuple[int, ...] | None,
    dropped: int,
    cls: type = SyntheticScene,
    **extra: Any,
) -> SyntheticScene:
    boxes = torch.tensor([it.box for it in items], dtype=torch.float64).reshape(-1, 4)
    rolls = torch.tensor([float(it.placement.roll) for it in items], dtype=torch.float64)
    return cls(
        erp=erp,
        bfov=boxes,
        rbfov=torch.cat((boxes, rolls[:, None]), dim=1),
        labels=tuple(it.placement.kind for it in items),
        assets=tuple(it.placement.asset for it in items),
        band=torch.tensor(list(bands), dtype=torch.int64).reshape(-1),
        placements=tuple(it.placement for it in items),
        seed=seed,
        dropped=dropped,
        **extra,
    )


def render_scene(
    placements: Sequence[Placement],
    erp_hw: Sequence[int] = (512, 1024),
    *,
    background: str | torch.Tensor = "sky",
    seed: int | Sequence[int] = 0,
    supersample: int = 2,
) -> SyntheticScene:
    """Paste photos at given placements onto a background panorama.

    Items are pasted in order (later ones on top); nothing checks that they do not overlap (the
    scene generators do).

    Args:
        placements: where to paste what.
        erp_hw: (H, W) of the output, W == 2H.
        background: "sky", "plain" (see :func:`scene_background`, randomised by ``seed``), or a
            (3, H, W) / (1, 3, H, W) float tensor in [0, 1], e.g. a real panorama.
        seed: seed of the procedural background.
        supersample: composite at this multiple of the resolution, then average blocks.

    Returns:
        A :class:`SyntheticScene` (``band`` all -1, ``dropped`` 0).

    Raises:
        ShapeError: bad ``erp_hw`` or background tensor shape.
        ValueError: unknown background style.
        ValueRangeError: bad ``supersample`` or ``seed``.
        TypeError: ``background`` is neither a style name nor a float tensor, or a placement is
            not a :class:`Placement`.

    Example:
        >>> p = Placement("astronaut", lon=math.radians(180), lat=math.radians(70),
        ...               width=math.radians(20), roll=math.radians(10))
        >>> scene = render_scene([p], (32, 64))
        >>> [round(math.degrees(v), 2) for v in scene.rbfov[0].tolist()]
        [-180.0, 70.0, 20.0, 23.98, 10.0]
    """
    hw = check_hw(erp_hw, "erp_hw", erp=True)
    ss = check_positive_int(supersample, "supersample")
    for p in placements:
        if not isinstance(p, Placement):
            raise TypeError(f"placements must hold Placement objects, got {type(p).__name__}")
    seed = _check_seed(seed)
    erp, items, _ = _render(placements, hw, background, ss, _rng(seed))
    return _scene(erp, items, [-1] * len(items), seed if isinstance(background, str) else None, 0)


# --- configs -----------------------------------------------------------------------------------

#: How :class:`SceneConfig` spreads faces over its latitude bands: "balanced" (the faces of a
#: scene go round the bands in turn, |lat| uniform in angle within each), "uniform" (|lat|
#: uniform in angle over all bands together) or "area" (uniform on the sphere within the bands).
LAT_SAMPLING: tuple[str, ...] = ("balanced", "uniform", "area")


def _common_checks(cfg: Any, cls: str) -> None:
    check_hw(cfg.erp_hw, f"{cls}.erp_hw", erp=True)
    _check_interval(cfg.roll, f"{cls}.roll", -math.pi, math.pi)
    _check_interval(cfg.brightness, f"{cls}.brightness", 0.0, 4.0, open_lo=True, deg=False)
    _check_interval(cfg.face_context, f"{cls}.face_context", 0.0, 2.0, deg=False)
    _check_number(cfg.min_gap, f"{cls}.min_gap", 0.0, math.pi / 2)
    if not isinstance(cfg.flip, bool):
        raise ValueRangeError(f"{cls}.flip must be a bool, got {cfg.flip!r}")
    check_positive_int(cfg.supersample, f"{cls}.supersample")
    check_positive_int(cfg.max_tries, f"{cls}.max_tries")


@dataclass(frozen=True)
class SceneConfig:
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
    roll: tuple[float, float] = (-20 * _DEG, 20 * _DEG)
    brightness: tuple[float, float] = (0.85, 1.15)
    flip: bool = True
    face_context: tuple[float, float] = (0.25, 0.6)
    min_gap: float = 1 * _DEG
    supersample: int = 2
    max_tries: int = 200

    def __post_init__(self) -> None:
        cls = "SceneConfig"
        _common_checks(self, cls)
        _check_count_range(self.n_faces, f"{cls}.n_faces")
        _check_count_range(self.n_objects, f"{cls}.n_objects")
        _check_interval(self.face_width, f"{cls}.face_width", 0.0, math.pi / 3, open_lo=True)
        _check_interval(
            self.object_width, f"{cls}.object_width", 0.0, 2 * math.pi / 3, open_lo=True
        )
        check_choice(self.lat_sampling, f"{cls}.lat_sampling", LAT_SAMPLING)
        _check_assets(self.face_assets, f"{cls}.face_assets", "face", allow_empty=False)
        _check_assets(
            self.object_assets, f"{cls}.object_assets", "object", allow_empty=self.n_objects[1] == 0
        )
        bands = self.lat_bands
        if isinstance(bands, str) or not isinstance(bands, Sequence) or not bands:
            raise ValueRangeError(
                f"{cls}.lat_bands must be a non-empty tuple of (lo, hi), got {bands!r}"
            )
        prev = 0.0
        for band in bands:
            lo, hi = _check_interval(band, f"{cls}.lat_bands", 0.0, math.pi / 2)
            if not (lo < hi and lo >= prev):
                raise ValueRangeError(
                    f"{cls}.lat_bands must be sorted, disjoint |lat| intervals (lo, hi) with "
                    f"lo < hi in [0, pi/2], got {bands!r}"
                )
            prev = hi


@dataclass(frozen=True)
class SaliencySceneConfig:
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
            :class:`SceneConfig`.

    Raises:
        ShapeError: ``erp_hw`` is not a 2:1 size.
        ValueRangeError: any other field out of range (the message names it).
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
    roll: tuple[float, float] = (-20 * _DEG, 20 * _DEG)
    brightness: tuple[float, float] = (0.85, 1.15)
    flip: bool = True
    face_context: tuple[float, float] = (0.25, 0.6)
    min_gap: float = 1 * _DEG
    supersample: int = 2
    max_tries: int = 200

    def __post_init__(self) -> None:
        cls = "SaliencySceneConfig"
        _common_checks(self, cls)
        lo, _ = _check_count_range(self.n_objects, f"{cls}.n_objects")
        if lo < 1:
            raise ValueRangeError(f"{cls}.n_objects must have min >= 1, got {self.n_objects!r}")
        _check_interval(self.object_width, f"{cls}.object_width", 0.0, math.pi / 3, open_lo=True)
        _check_number(self.max_abs_lat, f"{cls}.max_abs_lat", 0.0, math.pi / 2)
        _check_assets(self.assets, f"{cls}.assets", "face|object", allow_empty=False)
        _check_number(self.face_weight, f"{cls}.face_weight", 0.0, math.inf, open_lo=True)
        check_positive_int(self.n_fixations, f"{cls}.n_fixations")
        _check_number(self.sigma, f"{cls}.sigma", 0.0, math.pi / 4, open_lo=True)
        _check_number(self.background_contrast, f"{cls}.background_contrast", 0.0, 0.5)


def _config_record(cfg: Any) -> dict[str, Any]:
    """A config as JSON, angles in degrees (field names get a ``_deg`` suffix)."""
    angles = {"face_width", "object_width", "lat_bands", "roll", "min_gap", "max_abs_lat", "sigma"}

    def deg(v):
        return [deg(x) for x in v] if isinstance(v, (tuple, list)) else math.degrees(v)

    out = {}
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        if f.name in angles:
            out[f"{f.name}_deg"] = deg(v)
        else:
            out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


# --- sampling placements -----------------------------------------------------------------------


def _window(
    rng: np.random.Generator, asset: SceneAsset, context: tuple[float, float]
) -> tuple[float, float, float, float]:
    """A random window of an asset: margins around the face, or a large crop of an object."""
    h, w = asset.size_hw
    if asset.kind == "face":
        fx0, fy0, fx1, fy1 = asset.face_xyxy
        fw, fh = fx1 - fx0, fy1 - fy0
        m = rng.uniform(*context, 4) * np.array([fw, fh, fw, 1.5 * fh])
        return (max(0.0, fx0 - m[0]), max(0.0, fy0 - m[1]), min(w, fx1 + m[2]), min(h, fy1 + m[3]))
    # Objects: keep 70% to 100% of each side.
    kw, kh = rng.uniform(0.7, 1.0, 2) * (w, h)
    x0, y0 = rng.uniform(0, w - kw), rng.uniform(0, h - kh)
    return (float(x0), float(y0), float(x0 + kw), float(y0 + kh))


def _random_placement(
    rng: np.random.Generator, asset_name: str, width_range: tuple[float, float], cfg: Any
) -> Placement:
    asset = SCENE_ASSETS[asset_name]
    return Placement(
        asset_name,
        lon=0.0,
        lat=0.0,
        width=float(rng.uniform(*width_range)),
        roll=float(rng.uniform(*cfg.roll)),
        flip=bool(cfg.flip and rng.random() < 0.5),
        brightness=float(rng.uniform(*cfg.brightness)),
        window=_window(rng, asset, cfg.face_context),
    )


def _abs_lat(rng: np.random.Generator, band: tuple[float, float], by_area: bool) -> float:
    lo, hi = band
    if by_area:
        return math.asin(rng.uniform(math.sin(lo), math.sin(hi)))
    return float(rng.uniform(lo, hi))


class _Packer:
    """Places items one by one where their bounding caps keep clear of those already placed."""

    def __init__(self, erp_hw: tuple[int, int], supersample: int, min_gap: float) -> None:
        self.hw, self.ss, self.gap = erp_hw, supersample, min_gap
        self.centres: list[torch.Tensor] = []
        self.radii: list[float] = []

    def fits(self, item: _Item) -> bool:
        if not self.centres:
            return True
        c = lonlat_to_xyz(torch.tensor(item.cap, dtype=torch.float64))
        angles = torch.arccos((torch.stack(self.centres) @ c).clamp(-1, 1))
        need = torch.tensor(self.radii, dtype=torch.float64) + item.radius + self.gap
        return bool((angles > need).all())

    def add(self, item: _Item) -> None:
        self.centres.append(lonlat_to_xyz(torch.tensor(item.cap, dtype=torch.float64)))
        self.radii.append(item.radius)

    def place(
        self, rng: np.random.Generator, p: Placement, draw_lat, max_tries: int
    ) -> _Item | None:
        for _ in range(max_tries):
            lon = float(rng.uniform(-math.pi, math.pi))
            moved = dataclasses.replace(p, lon=lon, lat=draw_lat())
            item = _item(moved, self.hw, self.ss)
            if self.fits(item):
                self.add(item)
                return item
        return None


def _hardest_first(entries: list, hw, ss, bands=()) -> list:
    """Order (placement, band) pairs for packing: faces of the smallest latitude band first
    (the polar caps fill up fast), then the largest items first."""

    def key(entry):
        p, band = entry
        room = math.sin(bands[band][1]) - math.sin(bands[band][0]) if band >= 0 else 0.0
        return (room, -_item(p, hw, ss).radius)

    return sorted(entries, key=key)


def make_face_scene(
    seed: int | Sequence[int] = 0, config: SceneConfig | None = None
) -> SyntheticScene:
    """Draw a face-detection scene: portraits and distractor photos on a sky-and-ground sphere.

    Args:
        seed: an integer or a sequence of integers (all >= 0); the scene is a function of it.
        config: how to draw it (default :class:`SceneConfig()`).

    Returns:
        A :class:`SyntheticScene`; ``scene.face_bfov`` / ``scene.face_rbfov`` are the face boxes,
        ``scene.band`` the latitude band of each face. Items are placed (and listed) hardest
        first: faces of the smallest latitude band, then larger before smaller, then the
        distractors. No two items overlap; an item that finds no room after
        ``config.max_tries`` positions is left out and counted in ``scene.dropped``.

    Raises:
        ValueRangeError: bad ``seed``.
        TypeError: ``config`` is not a :class:`SceneConfig`.

    Example:
        >>> cfg = SceneConfig(erp_hw=(32, 64), n_faces=(2, 2), n_objects=(0, 0))
        >>> scene = make_face_scene(7, cfg)
        >>> scene.erp.shape, scene.face_bfov.shape
        (torch.Size([3, 32, 64]), torch.Size([2, 4]))
    """
    cfg = SceneConfig() if config is None else config
    if not isinstance(cfg, SceneConfig):
        raise TypeError(f"config must be a SceneConfig, got {type(cfg).__name__}")
    seed = _check_seed(seed)
    rng = _rng(seed)
    hw, ss = tuple(cfg.erp_hw), cfg.supersample
    n_faces = int(rng.integers(cfg.n_faces[0], cfg.n_faces[1] + 1))
    n_objects = int(rng.integers(cfg.n_objects[0], cfg.n_objects[1] + 1))
    bands = cfg.lat_bands
    if cfg.lat_sampling == "balanced":
        start = int(rng.integers(len(bands)))
        face_bands = [(start + i) % len(bands) for i in range(n_faces)]
    else:
        by_area = cfg.lat_sampling == "area"
        sizes = np.array([(math.sin(b) - math.sin(a)) if by_area else b - a for a, b in bands])
        face_bands = [int(b) for b in rng.choice(len(bands), size=n_faces, p=sizes / sizes.sum())]
    faces = [
        (_random_placement(rng, str(rng.choice(cfg.face_assets)), cfg.face_width, cfg), band)
        for band in face_bands
    ]
    objects = [
        (_random_placement(rng, str(rng.choice(cfg.object_assets)), cfg.object_width, cfg), -1)
        for _ in range(n_objects)
    ]
    by_area = cfg.lat_sampling == "area"
    packer = _Packer(hw, ss, cfg.min_gap)
    placed, placed_bands, dropped = [], [], 0
    for p, band in _hardest_first(faces, hw, ss, bands) + _hardest_first(objects, hw, ss):
        if band >= 0:

            def draw_lat(band=band):
                sign = 1.0 if rng.random() < 0.5 else -1.0
                return sign * _abs_lat(rng, bands[band], by_area)
        else:

            def draw_lat():
                return math.asin(rng.uniform(-1.0, 1.0))  # uniform on the sphere

        item = packer.place(rng, p, draw_lat, cfg.max_tries)
        if item is None:
            dropped += 1
            continue
        placed.append(item.placement)
        placed_bands.append(band)
    erp, items, _ = _render(placed, hw, "sky", ss, rng)
    return _scene(erp, items, placed_bands, seed, dropped)


def _vmf_density(dirs: torch.Tensor, fixations: torch.Tensor, kappa: float) -> torch.Tensor:
    """Mean von Mises-Fisher density (per steradian) of unit ``fixations`` (K, 3) at ``dirs``."""
    # kappa / (2 pi (1 - exp(-2 kappa))) exp(kappa (cos - 1)) integrates to 1 on the sphere.
    norm = kappa / (2 * math.pi * -math.expm1(-2 * kappa)) / fixations.shape[0]
    flat = dirs.reshape(-1, 3)
    out = torch.empty(flat.shape[0], dtype=torch.float64)
    chunk = max(1, 2**22 // fixations.shape[0])
    for i in range(0, flat.shape[0], chunk):
        cos = flat[i : i + chunk] @ fixations.T
        out[i : i + chunk] = torch.exp(kappa * (cos - 1)).sum(dim=1) * norm
    return out.reshape(dirs.shape[:-1])


def _fixation_counts(weights: Sequence[float], total: int) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainders)."""
    w = np.asarray(weights, dtype=np.float64)
    share = total * w / w.sum()
    counts = np.floor(share).astype(int)
    for i in np.argsort(-(share - counts), kind="stable")[: total - counts.sum()]:
        counts[i] += 1
    return counts.tolist()


def make_saliency_scene(
    seed: int | Sequence[int] = 0, config: SaliencySceneConfig | None = None
) -> SaliencyScene:
    """Draw a saliency scene: photos on a plain low-contrast sphere, with known saliency.

    The pasted photos are the only salient things. Fixations are sampled on them (uniformly by
    area within each photo, ``face_weight`` times more per portrait than per other photo) and the
    ground-truth map is their kernel density on the sphere.

    Args:
        seed: an integer or a sequence of integers (all >= 0).
        config: how to draw it (default :class:`SaliencySceneConfig()`).

    Returns:
        A :class:`SaliencyScene`: ``erp``, ``saliency`` (1, H, W), ``fixations`` (K, 2),
        ``object_mask`` (1, H, W) and the boxes of the photos (faces: the face box).

    Raises:
        ValueRangeError: bad ``seed``.
        TypeError: ``config`` is not a :class:`SaliencySceneConfig`.

    Example:
        >>> s = make_saliency_scene(1, SaliencySceneConfig(erp_hw=(32, 64), n_fixations=20))
        >>> s.saliency.shape, s.fixations.shape
        (torch.Size([1, 32, 64]), torch.Size([20, 2]))
    """
    cfg = SaliencySceneConfig() if config is None else config
    if not isinstance(cfg, SaliencySceneConfig):
        raise TypeError(f"config must be a SaliencySceneConfig, got {type(cfg).__name__}")
    seed = _check_seed(seed)
    rng = _rng(seed)
    hw, ss = tuple(cfg.erp_hw), cfg.supersample
    n = int(rng.integers(cfg.n_objects[0], cfg.n_objects[1] + 1))
    entries = [
        (_random_placement(rng, str(rng.choice(cfg.assets)), cfg.object_width, cfg), -1)
        for _ in range(n)
    ]
    s_max = math.sin(cfg.max_abs_lat)
    packer = _Packer(hw, ss, cfg.min_gap)
    placed, dropped = [], 0
    for p, _ in _hardest_first(entries, hw, ss):
        item = packer.place(rng, p, lambda: math.asin(rng.uniform(-s_max, s_max)), cfg.max_tries)
        if item is None:
            dropped += 1
        else:
            placed.append(item.placement)
    erp, items, alphas = _render(
        placed, hw, "plain", ss, rng, contrast=cfg.background_contrast, keep_alpha=True
    )
    big = (hw[0] * ss, hw[1] * ss)
    weights = [cfg.face_weight if it.placement.kind == "face" else 1.0 for it in items]
    area = pixel_solid_angle(big, dtype=torch.float64)
    points = []
    for alpha, count in zip(alphas, _fixation_counts(weights, cfg.n_fixations), strict=True):
        if count == 0:
            continue
        prob = (alpha.double() * area).flatten()
        pick = rng.choice(prob.numel(), size=count, p=(prob / prob.sum()).numpy())
        rows, cols = pick // big[1], pick % big[1]
        # Uniform within the picked pixel (in pixel coordinates: close enough at this size).
        jitter = rng.uniform(-0.5, 0.5, (count, 2))
        points.append(np.stack((cols + jitter[:, 0], rows + jitter[:, 1]), axis=-1))
    xy = torch.from_numpy(np.concatenate(points))
    lonlat = pixel_to_lonlat(xy, big)
    fixations = torch.stack((wrap_lon(lonlat[:, 0]), lonlat[:, 1]), dim=-1)
    dirs = erp_directions(hw, dtype=torch.float64)
    density = _vmf_density(dirs, lonlat_to_xyz(fixations), 1 / cfg.sigma**2)
    mask = torch.stack(alphas).sum(0)[None, None] if alphas else torch.zeros(1, 1, *big)
    mask = F.avg_pool2d(mask, ss)[0] if ss > 1 else mask[0]
    return _scene(
        erp,
        items,
        [-1] * len(items),
        seed,
        dropped,
        cls=SaliencyScene,
        saliency=density[None].float(),
        fixations=fixations,
        object_mask=mask.clamp(0, 1).float(),
    )


# --- datasets and files ------------------------------------------------------------------------


class _SceneDataset(Dataset):
    def __init__(self, n: int, seed: int, config: Any) -> None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueRangeError(f"n must be a non-negative integer, got {n!r}")
        seed = _check_seed(seed)
        if not isinstance(seed, int):
            raise ValueRangeError(f"seed must be a non-negative integer, got {seed!r}")
        self.n, self.seed, self.config = int(n), seed, config

    def __len__(self) -> int:
        return self.n

    def _index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an integer, got {type(index).__name__}")
        i = int(index) + self.n if index < 0 else int(index)
        if not 0 <= i < self.n:
            raise IndexError(f"index {index} out of range for {self.n} scenes")
        return i

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.n}, seed={self.seed}, config={self.config!r})"


class SyntheticFaceScenes(_SceneDataset):
    """A dataset of ``n`` face scenes: item ``i`` is ``make_face_scene((seed, i), config)``.

    Items depend only on (seed, i, config), never on the order they are read in, so workers of a
    DataLoader may share the indices freely. Use ``collate_fn=collate_scenes`` to batch.

    Args:
        n: number of scenes.
        seed: non-negative integer.
        config: :class:`SceneConfig` (default ``SceneConfig()``).

    Raises:
        ValueRangeError: bad ``n`` or ``seed``.
        TypeError: ``config`` is not a :class:`SceneConfig`.

    Example:
        >>> data = SyntheticFaceScenes(3, seed=1, config=SceneConfig(erp_hw=(16, 32)))
        >>> len(data), data[-1].erp.shape
        (3, torch.Size([3, 16, 32]))
    """

    def __init__(self, n: int, seed: int = 0, config: SceneConfig | None = None) -> None:
        config = SceneConfig() if config is None else config
        if not isinstance(config, SceneConfig):
            raise TypeError(f"config must be a SceneConfig, got {type(config).__name__}")
        super().__init__(n, seed, config)

    def __getitem__(self, index: int) -> SyntheticScene:
        return make_face_scene((self.seed, self._index(index)), self.config)


class SyntheticSaliencyScenes(_SceneDataset):
    """A dataset of ``n`` saliency scenes: item ``i`` is ``make_saliency_scene((seed, i), config)``.

    Args:
        n: number of scenes.
        seed: non-negative integer.
        config: :class:`SaliencySceneConfig` (default ``SaliencySceneConfig()``).

    Raises:
        ValueRangeError: bad ``n`` or ``seed``.
        TypeError: ``config`` is not a :class:`SaliencySceneConfig`.
    """

    def __init__(self, n: int, seed: int = 0, config: SaliencySceneConfig | None = None) -> None:
        config = SaliencySceneConfig() if config is None else config
        if not isinstance(config, SaliencySceneConfig):
            raise TypeError(f"config must be a SaliencySceneConfig, got {type(config).__name__}")
        super().__init__(n, seed, config)

    def __getitem__(self, index: int) -> SaliencyScene:
        return make_saliency_scene((self.seed, self._index(index)), self.config)


def collate_scenes(scenes: Sequence[SyntheticScene]) -> tuple[torch.Tensor, list[SyntheticScene]]:
    """Batch scenes for a DataLoader: ``(erp (B, 3, H, W), scenes)``; boxes stay per scene.

    Raises:
        ShapeError: the scenes have different sizes.
    """
    sizes = {tuple(s.erp.shape) for s in scenes}
    if len(sizes) != 1:
        raise ShapeError(f"scenes must all have the same erp shape, got {sorted(sizes)}")
    return torch.stack([s.erp for s in scenes]), list(scenes)


#: Format tags of the JSON files written by :func:`write_face_scenes` and
#: :func:`write_saliency_scenes`.
FACE_SCENES_FORMAT = "pano360-synthetic-faces/1"
SALIENCY_SCENES_FORMAT = "pano360-synthetic-saliency/1"
_RECORD_CONVENTION = (
    "angles in degrees; lon right (east) in [-180, 180), lat up; bfov = [lon, lat, fov_x, "
    "fov_y]: a pinhole view aimed at the box centre, fields of view edge to edge; rbfov adds "
    "roll (> 0 clockwise). label: face (the face box) or object (the pasted photo window). "
    "band: index into config lat_bands_deg of a face's |lat|, -1 for objects. window_xyxy: the "
    "pasted part of the asset, in asset pixels (edges)."
)


def _progress(indices: range, show: bool) -> Iterable[int]:
    if not show:
        return indices
    from tqdm import tqdm

    return tqdm(indices, desc="scenes", unit="scene")


def write_face_scenes(
    folder: str | os.PathLike[str],
    n: int,
    seed: int = 0,
    config: SceneConfig | None = None,
    *,
    image_ext: str = ".jpg",
    quality: int = 95,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Write ``n`` face scenes to a folder: images and one JSON ground-truth file in degrees.

    Files: ``scene_00000.jpg`` ... (scene i made by ``make_face_scene((seed, i), config)``) and
    ``ground_truth.json``: ``{"format", "convention", "seed", "config", "scenes": [{"image",
    "seed", "erp_hw", "dropped", "items": [{"label", "asset", "bfov", "rbfov", "band", "flip",
    "brightness", "window_xyxy"}]}]}`` with bfov = [lon, lat, fov_x, fov_y] and rbfov = bfov +
    [roll] in degrees, lon in [-180, 180).

    Args:
        folder: output folder (created if missing).
        n: number of scenes, >= 1.
        seed: non-negative integer.
        config: :class:`SceneConfig`.
        image_ext: ".jpg", ".png", ".webp" or ".tif".
        quality: JPEG / WebP quality.
        overwrite: replace existing files; otherwise any existing target raises before anything
            is written.
        progress: show a progress bar (tqdm).

    Returns:
        The path of ``ground_truth.json``, written last (atomically).

    Raises:
        OutputExistsError: a target exists and ``overwrite`` is False.
        ImageIOError: unsupported ``image_ext`` or an unwritable folder.
        ValueRangeError: bad ``n`` or ``seed``.
    """
    n = check_positive_int(n, "n")
    data = SyntheticFaceScenes(n, seed, config)
    folder = _prepare_folder(folder)
    names = [f"scene_{i:05d}{image_ext}" for i in range(n)]
    for name in names:
        check_output_path(folder / name, overwrite=overwrite)
    gt = folder / "ground_truth.json"
    if gt.exists() and not overwrite:
        raise OutputExistsError(f"output '{gt}' already exists; pass overwrite=True to replace it")
    records = []
    for i in _progress(range(n), progress):
        scene = data[i]
        write_image(folder / names[i], scene.erp, overwrite=overwrite, quality=quality)
        records.append({"image": names[i], **scene.to_record()})
    meta = {
        "format": FACE_SCENES_FORMAT,
        "made_by": "pano360.data.synthetic.write_face_scenes",
        "convention": _RECORD_CONVENTION,
        "seed": data.seed,
        "config": _config_record(data.config),
        "scenes": records,
    }
    text = json.dumps(meta, indent=1) + "\n"
    write_atomic(gt, lambda f: f.write(text.encode()), overwrite)
    return gt


def _prepare_folder(folder: str | os.PathLike[str]) -> Path:
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ImageIOError(f"cannot create folder '{folder}': {e.strerror or e}") from e
    return folder


def write_saliency_scenes(
    folder: str | os.PathLike[str],
    n: int,
    seed: int = 0,
    config: SaliencySceneConfig | None = None,
    *,
    image_ext: str = ".png",
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Write ``n`` saliency scenes as a dataset in the generic saliency folder format.

    Scene i (``make_saliency_scene((seed, i), config)``) is the item ``scene_0000i``:
    ``images/scene_0000i{image_ext}``, ``maps/scene_0000i.npy`` (the density, float32) and
    ``fixations/scene_0000i.csv`` (degrees), readable with :class:`pano360.data.SaliencyFolder`;
    ``scenes.json`` holds the config and the photos' boxes in degrees, as in
    :func:`write_face_scenes`.

    Args:
        folder: the dataset folder (created if missing).
        n: number of scenes, >= 1.
        seed: non-negative integer.
        config: :class:`SaliencySceneConfig`.
        image_ext: extension of the images.
        overwrite: replace existing files; otherwise any existing target raises before anything
            is written.
        progress: show a progress bar (tqdm).

    Returns:
        The path of ``scenes.json``, written last.

    Raises:
        OutputExistsError: a target exists and ``overwrite`` is False.
        ImageIOError: unsupported ``image_ext`` or an unwritable folder.
        ValueRangeError: bad ``n`` or ``seed``.
    """
    n = check_positive_int(n, "n")
    data = SyntheticSaliencyScenes(n, seed, config)
    folder = _prepare_folder(folder)
    names = [f"scene_{i:05d}" for i in range(n)]
    targets = [folder / "scenes.json"]
    for name in names:
        targets += [folder / "maps" / f"{name}.npy", folder / "fixations" / f"{name}.csv"]
        (folder / "images").mkdir(exist_ok=True)
        check_output_path(folder / "images" / f"{name}{image_ext}", overwrite=overwrite)
    for target in targets:
        if target.exists() and not overwrite:
            raise OutputExistsError(
                f"output '{target}' already exists; pass overwrite=True to replace it"
            )
    records = []
    for i in _progress(range(n), progress):
        scene = data[i]
        write_saliency_sample(
            folder,
            names[i],
            image=scene.erp[None],
            saliency=scene.saliency[None],
            fixations=scene.fixations,
            image_format=image_ext,
            overwrite=overwrite,
        )
        records.append({"name": names[i], **scene.to_record()})
    meta = {
        "format": SALIENCY_SCENES_FORMAT,
        "made_by": "pano360.data.synthetic.write_saliency_scenes",
        "convention": _RECORD_CONVENTION,
        "seed": data.seed,
        "config": _config_record(data.config),
        "scenes": records,
    }
    text = json.dumps(meta, indent=1) + "\n"
    write_atomic(targets[0], lambda f: f.write(text.encode()), overwrite)
    return targets[0]
