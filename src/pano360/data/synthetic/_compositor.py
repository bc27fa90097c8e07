"""Pasting a photo onto the sphere: a windowed :func:`~pano360.geometry.perspective_to_erp` with
alpha.

A :class:`Placement` names an asset and where its *anchor* lands: the face box centre for a
portrait, the centre of the pasted window for any other photo. The photo (or a window of it) is
laid in the image plane of a pinhole camera whose optical axis goes through the anchor, with the
focal length that makes the face (or the window) ``width`` radians wide, and pasted with the
mapping of :func:`~pano360.geometry.perspective_to_erp` at ``yaw=lon, pitch=lat, roll=roll``,
evaluated only on the ERP rows and columns the photo can reach (its bounding cap,
:func:`~pano360.geometry.window_cap` and :func:`~pano360.geometry.cap_footprint`). The part of
that camera's image plane outside the window is transparent (an alpha channel, anti-aliased by
exact pixel coverage), so head-and-shoulders crops need not be centred on the face.

Convention:
    :mod:`pano360.geometry.conventions`; lon positive to the right, lat up, roll > 0 turns the
    pasted picture's up vector clockwise as seen from the centre.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..._core import (
    ValueRangeError,
    check_bool,
    check_choice,
    check_hw,
    check_number,
    check_positive_int,
)
from ...geometry import (
    cap_footprint,
    erp_directions,
    rotation_matrix,
    view_pixel_coords,
    window_cap,
    wrap_lon,
)
from ._assets import FACE_ASSETS, OBJECT_ASSETS, SCENE_ASSETS, asset_image

__all__ = ["Placement", "placement_cap", "placement_view"]


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
        check_number(self.lon, "Placement.lon")
        check_number(self.lat, "Placement.lat", lo=-math.pi / 2, hi=math.pi / 2)
        check_number(self.width, "Placement.width", lo=0.0, hi=2 * math.pi / 3, lo_open=True)
        check_number(self.roll, "Placement.roll", lo=-math.pi, hi=math.pi)
        check_number(self.brightness, "Placement.brightness", lo=0.0, lo_open=True)
        check_bool(self.flip, "Placement.flip")
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
class Item:
    """A placement's camera: everything in asset pixels except the angles."""

    placement: Placement
    window: tuple[float, float, float, float]
    anchor: tuple[float, float]
    focal: float  # asset pixels
    box: tuple[float, float, float, float]  # (lon, lat, fov_x, fov_y)
    step: float  # asset pixels per canvas pixel
    cap: tuple[float, float]  # (lon, lat) of the centre of a cap holding every touched pixel
    radius: float  # the cap's angular radius


def window_of(p: Placement) -> tuple[float, float, float, float]:
    """The pasted window of a placement, in asset pixels (edges)."""
    if p.window is None:
        h, w = SCENE_ASSETS[p.asset].size_hw
        return (0.0, 0.0, float(w), float(h))
    return tuple(float(v) for v in p.window)


def make_item(p: Placement, erp_hw: tuple[int, int], supersample: int) -> Item:
    """The camera that pastes ``p`` onto an ERP of ``erp_hw`` composited at ``supersample``."""
    asset = SCENE_ASSETS[p.asset]
    window = window_of(p)
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
    return Item(p, window, (ax, ay), focal, box, step, cap, radius)


def _bounding_cap(p: Placement, window, anchor, focal: float, step: float):
    """(lon, lat) and radius of a cap holding every ERP pixel the pasted window can touch.

    Centred on the window's centre (not the anchor: a portrait's window reaches further below
    the face than above it).
    """
    x0, y0, x1, y1 = window
    ax, ay = anchor
    sign = -1.0 if p.flip else 1.0
    # Bilinear reads reach 1.5 canvas pixels past the window: dilate it by 2. Asset pixels
    # (y down) -> the camera's image plane (y up, z = 1).
    d = 2 * step
    xs = sorted((sign * (x0 - d - ax) / focal, sign * (x1 + d - ax) / focal))
    ys = sorted((-(y1 + d - ay) / focal, -(y0 - d - ay) / focal))
    plane = torch.tensor([xs[0], ys[0], xs[1], ys[1]], dtype=torch.float64)
    centre, radius = window_cap(plane, float(p.lon), float(p.lat), float(p.roll))
    lon, lat = centre.tolist()
    return (lon, lat), float(radius)


def canvas(item: Item) -> tuple[torch.Tensor, float]:
    """The pinhole image to paste: (1, 4, Ny, Nx) premultiplied RGB and alpha, and its fov."""
    p = item.placement
    image = asset_image(p.asset)
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


def paste(erp: torch.Tensor, item: Item, keep_alpha: bool = False) -> torch.Tensor | None:
    """Composite ``item`` onto ``erp`` (1, 3, H, W) in place; return its alpha (H, W) if asked.

    The mapping is :func:`pano360.geometry.perspective_to_erp`'s (both through
    :func:`~pano360.geometry.view_pixel_coords`), evaluated only on the ERP rows and columns
    that the item's bounding cap reaches (a test pins the two together): a full-sphere pass per
    item would cost ten times more at 1024 x 2048.
    """
    view, fov = canvas(item)
    hw = tuple(erp.shape[-2:])
    rows, cols = cap_footprint(item.cap, item.radius, hw)
    dirs = erp_directions(hw, dtype=torch.float32)[rows][:, cols]
    lon, lat = item.box[:2]
    R = rotation_matrix(lon, lat, float(item.placement.roll), dtype=torch.float32)
    # World to camera for row vectors: (R^T d)^T = d^T R; then the view's pinhole.
    n_y, n_x = view.shape[-2:]
    tan_half = torch.tensor([math.tan(fov / 2)], dtype=torch.float32)
    points, inside = view_pixel_coords((dirs @ R)[None], (n_y, n_x), tan_half)
    inside = inside[0]
    grid = (2 * points + 1) / points.new_tensor([n_x, n_y]) - 1
    grid = torch.where(inside[None, ..., None], grid, torch.zeros_like(grid))
    pasted = F.grid_sample(view, grid, padding_mode="border", align_corners=False)
    pasted = pasted * inside.to(pasted.dtype)
    alpha = pasted[:, 3:]
    index = (slice(None), slice(None), rows, cols)
    erp[index] = erp[index] * (1 - alpha) + pasted[:, :3]
    if not keep_alpha:
        return None
    full = erp.new_zeros(hw)
    full[index[2:]] = alpha[0, 0]
    return full


def _checked_item(placement: Placement, erp_hw: Sequence[int], supersample: int) -> Item:
    if not isinstance(placement, Placement):
        raise TypeError(f"placement must be a Placement, got {type(placement).__name__}")
    hw = check_hw(erp_hw, "erp_hw", erp=True)
    return make_item(placement, hw, check_positive_int(supersample, "supersample"))


def placement_cap(
    placement: Placement, erp_hw: Sequence[int], supersample: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """The cap on the sphere that holds everything a placement changes in a rendered scene.

    :func:`render_scene` pastes items without checking that they stay apart; the scene
    generators keep these caps ``min_gap`` apart with :func:`pano360.geometry.caps_apart`, and
    so can you.

    Args:
        placement: the pasted photo.
        erp_hw: (H, W) of the scene, W == 2H.
        supersample: the scene's ``supersample``.

    Returns:
        ``(centre, radius)``: (2,) float64 (lon, lat) and a float64 scalar, radians: every ERP
        pixel whose value the placement changes has its centre in the cap. Centred on the
        pasted window's centre, not the anchor; it includes the reach of interpolation and of
        the block averaging at ``supersample``.

    Raises:
        TypeError: ``placement`` is not a :class:`Placement`.
        ShapeError: ``erp_hw`` is not a 2:1 size.
        ValueRangeError: bad ``supersample``.

    Example:
        >>> p = Placement("coffee", lon=0.0, lat=0.0, width=math.radians(30))
        >>> centre, radius = placement_cap(p, (256, 512))
        >>> centre.tolist(), round(math.degrees(radius), 1)  # the 30 x 25 degree photo's corners
        ([0.0, 0.0], 20.8)
    """
    item = _checked_item(placement, erp_hw, supersample)
    return torch.tensor(item.cap, dtype=torch.float64), torch.tensor(item.radius).double()


def placement_view(
    placement: Placement, erp_hw: Sequence[int], supersample: int = 2
) -> tuple[torch.Tensor, float]:
    """The pinhole image a placement pastes, with its alpha: what :func:`render_scene` composites.

    Pasting it with ``perspective_to_erp(view, fov, (H * supersample, W * supersample),
    yaw=lon, pitch=lat, roll=placement.roll)`` (lon, lat: the placement's anchor) gives the
    premultiplied colours and the alpha of the item on the supersampled scene, which
    :func:`render_scene` composites over the background (``background * (1 - alpha) + rgb``)
    and averages over ``supersample`` x ``supersample`` blocks.

    Args:
        placement: the pasted photo.
        erp_hw: (H, W) of the scene, W == 2H.
        supersample: the scene's ``supersample`` (it sets the view's pixel pitch).

    Returns:
        ``(view, fov)``: view (1, 4, h, w) float32, RGB premultiplied by alpha, then alpha, all in
        [0, 1]; its principal point (the image centre) is the anchor; fov its horizontal field of
        view in radians.

    Raises:
        TypeError: ``placement`` is not a :class:`Placement`.
        ShapeError: ``erp_hw`` is not a 2:1 size.
        ValueRangeError: bad ``supersample``.

    Example:
        >>> p = Placement("coffee", 0.0, 0.0, math.radians(30), window=(0, 0, 120, 100))
        >>> view, fov = placement_view(p, (64, 128), supersample=1)
        >>> view.shape, round(math.degrees(fov), 1)  # whole pixels round the 30-degree window
        (torch.Size([1, 4, 10, 12]), 32.8)
    """
    return canvas(_checked_item(placement, erp_hw, supersample))
