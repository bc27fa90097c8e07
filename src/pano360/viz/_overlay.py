"""Saliency maps shown over the panorama they belong to."""

from __future__ import annotations

import torch

__all__ = ["overlay_saliency"]

# Colour map for overlays: black-red-yellow-white ("hot"), as (position, r, g, b) stops.
_HOT = torch.tensor(
    [[0.0, 0.0, 0.0, 0.0], [0.4, 0.9, 0.0, 0.0], [0.75, 1.0, 0.85, 0.0], [1.0, 1.0, 1.0, 1.0]]
)


def _colourise(m: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) values in [0, 1] -> (B, 3, H, W) colours, piecewise linear between stops."""
    pos = _HOT[:, 0].contiguous().to(m)
    cols = _HOT[:, 1:].to(m)
    idx = torch.bucketize(m.clamp(0, 1), pos).clamp(1, len(pos) - 1)
    lo, hi = pos[idx - 1], pos[idx]
    t = ((m - lo) / (hi - lo)).clamp(0, 1)
    c = cols[idx - 1] * (1 - t[..., None]) + cols[idx] * t[..., None]  # (B, 1, H, W, 3)
    return c[:, 0].permute(0, 3, 1, 2)


def overlay_saliency(
    image: torch.Tensor, saliency: torch.Tensor, alpha: float = 0.7
) -> torch.Tensor:
    """Blend a heat-coloured saliency map over an image.

    Args:
        image: (B, C, H, W) in [0, 1], C in (1, 3, 4) (alpha is dropped, gray is repeated).
        saliency: (B, 1, H, W) non-negative maps; each is scaled to peak 1.
        alpha: opacity of the colour where the map peaks (it fades to 0 where the map is 0).

    Returns:
        (B, 3, H, W) in [0, 1].
    """
    rgb = image[:, :3] if image.shape[1] >= 3 else image[:, :1].expand(-1, 3, -1, -1)
    peak = saliency.amax(dim=(-2, -1), keepdim=True)
    m = saliency / torch.where(peak > 0, peak, torch.ones_like(peak))
    a = alpha * m.sqrt()  # sqrt: low saliency stays visible
    return (rgb * (1 - a) + _colourise(m) * a).clamp(0, 1)
