"""Procedural background panoramas: a sky over a meadow, or a plain mottled colour.

Every value is a function of the pixel's direction, so nothing jumps at the seam or the poles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..._core import ShapeError, check_choice, check_hw, check_number
from ...geometry import erp_directions, rotation_matrix
from ._assets import asset_image
from ._seeding import scene_rng

__all__ = ["BACKGROUNDS", "scene_background"]


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
    grass = asset_image("grass")[:, :1]
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
    contrast = check_number(contrast, "contrast", lo=0.0, hi=0.5)
    _, rng = scene_rng(seed)
    # A random turn about the vertical, so the lattices' axes do not always line up with lon 0.
    dirs = erp_directions(hw, dtype=torch.float32) @ rotation_matrix(
        rng.uniform(-math.pi, math.pi), dtype=torch.float32
    )
    img = _sky_ground(dirs, rng) if style == "sky" else _plain(dirs, rng, contrast)
    return img.permute(2, 0, 1)[None].contiguous()


def supersampled_background(
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
