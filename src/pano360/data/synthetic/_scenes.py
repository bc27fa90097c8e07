"""Scenes: photos pasted where their bounding caps keep apart, rendered with exact ground truth.

Ground truth
    Because the face box is centred on the camera's axis, its spherical box is exact:
    ``rbfov = (lon, lat, fov_x, fov_y, roll)`` is the view of a pinhole camera aimed at the face
    centre and rolled like the face, whose field of view is exactly the face box. ``bfov`` drops
    the roll. For other photos the box is that of the pasted window. Pasted items never overlap
    in generated scenes (bounding caps on the sphere are kept apart), so every face is fully
    visible.

Rendering
    Everything is composited at ``supersample`` times the resolution and averaged over aligned
    blocks, which keeps faces of 8 degrees (23 pixels at 1024 x 512) crisp. The procedural
    background is made at the output size (it has no fine detail).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..._core import check_hw, check_positive_int
from ...geometry import (
    caps_apart,
    erp_directions,
    lonlat_to_xyz,
    pixel_solid_angle,
    pixel_to_lonlat,
    wrap_lon,
)
from ._assets import SCENE_ASSETS, SceneAsset
from ._backgrounds import supersampled_background
from ._compositor import Item, Placement, make_item, paste, window_of
from ._config import SaliencySceneConfig, SceneConfig
from ._seeding import scene_rng

__all__ = [
    "SaliencyScene",
    "SyntheticScene",
    "make_face_scene",
    "make_saliency_scene",
    "render_scene",
]


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
                    "window_xyxy": list(window_of(p)),
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


def _render(
    placements: Sequence[Placement],
    erp_hw: tuple[int, int],
    background: str | torch.Tensor,
    ss: int,
    rng: np.random.Generator,
    *,
    contrast: float = 0.04,
    keep_alpha: bool = False,
) -> tuple[torch.Tensor, list[Item], list[torch.Tensor]]:
    big = supersampled_background(background, erp_hw, ss, rng, contrast)
    items = [make_item(p, erp_hw, ss) for p in placements]
    alphas = []
    for item in items:
        alpha = paste(big, item, keep_alpha)
        if alpha is not None:
            alphas.append(alpha)
    erp = F.avg_pool2d(big, ss)[0].clamp(0, 1) if ss > 1 else big[0].clamp(0, 1)
    return erp, items, alphas


def _scene(
    erp: torch.Tensor,
    items: Sequence[Item],
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
    scene generators do: compare their :func:`placement_cap` with
    :func:`pano360.geometry.caps_apart`).

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
    seed, rng = scene_rng(seed)
    erp, items, _ = _render(placements, hw, background, ss, rng)
    return _scene(erp, items, [-1] * len(items), seed if isinstance(background, str) else None, 0)


# --- drawing placements and packing them ---------------------------------------------------------


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
        self.centres: list[tuple[float, float]] = []
        self.radii: list[float] = []

    def fits(self, item: Item) -> bool:
        if not self.centres:
            return True
        f64 = torch.float64
        apart = caps_apart(
            torch.tensor([item.cap], dtype=f64),
            torch.tensor([item.radius], dtype=f64),
            torch.tensor(self.centres, dtype=f64),
            torch.tensor(self.radii, dtype=f64),
            self.gap,
        )
        return bool(apart.all())

    def add(self, item: Item) -> None:
        self.centres.append(item.cap)
        self.radii.append(item.radius)

    def place(
        self, rng: np.random.Generator, p: Placement, draw_lat, max_tries: int
    ) -> Item | None:
        for _ in range(max_tries):
            lon = float(rng.uniform(-math.pi, math.pi))
            moved = dataclasses.replace(p, lon=lon, lat=draw_lat())
            item = make_item(moved, self.hw, self.ss)
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
        return (room, -make_item(p, hw, ss).radius)

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
    seed, rng = scene_rng(seed)
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
    seed, rng = scene_rng(seed)
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
