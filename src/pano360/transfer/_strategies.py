"""Ways of running a perspective CNN on ERP images, and the pieces they share.

The strategies (:data:`STRATEGIES`) differ in what the network sees:

- ``direct``: the ERP image as it is (fast; faces near the poles are stretched sideways);
- ``cubemap``: the six 90° faces of the cube map (:func:`cubemap_views`), results mapped back;
- ``multiview``: a ring (or rings) of overlapping tangent views (:func:`multiview_views`; by
  default 16 views of 45° with 50% overlap around the horizon, as common tools do);
- ``exact``: every output location gets the network applied to its own tangent-plane
  neighbourhood (the SphConv papers' "Exact"; slow, the oracle; see :mod:`._exact`);
- ``spherical``: the network's convolutions replaced by tangent-tap spherical convolutions
  (:func:`~pano360.transfer.distill.build_spherical`), one pass over the ERP;
- ``distilled``: row-untied spherical convolutions trained to reproduce the exact outputs
  (:mod:`pano360.transfer.distill`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .._core import ValueRangeError
from ..geometry import erp_to_perspective

__all__ = [
    "STRATEGIES",
    "ViewLayout",
    "cubemap_views",
    "multiview_views",
    "render_views",
]

#: Names of the strategies, cheapest first except the oracle.
STRATEGIES: tuple[str, ...] = ("direct", "cubemap", "multiview", "exact", "spherical", "distilled")


@dataclass(frozen=True)
class ViewLayout:
    """Pinhole cameras that cover (part of) the sphere: one view per (yaw, pitch), roll 0.

    Attributes:
        yaw: radians, > 0 looks right (one per view).
        pitch: radians, > 0 looks up (one per view).
        fov: horizontal and vertical field of view of every (square) view, radians.
    """

    yaw: tuple[float, ...]
    pitch: tuple[float, ...]
    fov: float

    def __len__(self) -> int:
        return len(self.yaw)

    def view_px(self, erp_width: int) -> int:
        """Side of a view with as many pixels per radian of fov as the ERP has along its equator
        (a cube face of W / 4 pixels, as usual)."""
        return max(12, round(self.fov / (2 * math.pi) * erp_width))


def cubemap_views() -> ViewLayout:
    """The six cube faces as 90° views: front, right, back, left, up, down.

    Convention:
        Faces F R B L U D of :mod:`pano360.geometry.conventions`, each rendered upright for a
        camera with roll 0 (the up and down faces are seen with yaw 0).
    """
    half = math.pi / 2
    return ViewLayout(
        yaw=(0.0, half, math.pi, -half, 0.0, 0.0),
        pitch=(0.0, 0.0, 0.0, 0.0, half, -half),
        fov=half,
    )


def multiview_views(
    fov_deg: float = 45.0, overlap: float = 0.5, pitches_deg: Sequence[float] = (0.0,)
) -> ViewLayout:
    """Rings of tangent views around the vertical axis.

    Args:
        fov_deg: field of view of each square view, degrees in (0, 180).
        overlap: fraction of a view shared with its neighbour in the ring, in [0, 1).
        pitches_deg: one ring per pitch (degrees); each ring has ceil(360 / (fov (1 -
            overlap))) views starting at yaw 0.

    Returns:
        A :class:`ViewLayout`; the default is 16 views of 45° with 50% overlap on the horizon,
        which see nothing beyond +-22.5° of latitude.

    Raises:
        ValueRangeError: ``fov_deg``, ``overlap`` or a pitch out of range.
    """
    if not 0 < fov_deg < 180:
        raise ValueRangeError(f"fov_deg must be in (0, 180), got {fov_deg}")
    if not 0 <= overlap < 1:
        raise ValueRangeError(f"overlap must be in [0, 1), got {overlap}")
    if not pitches_deg or any(not -90 <= p <= 90 for p in pitches_deg):
        raise ValueRangeError(f"pitches_deg must be in [-90, 90], got {tuple(pitches_deg)}")
    n = math.ceil(360 / (fov_deg * (1 - overlap)) - 1e-9)
    yaw, pitch = [], []
    for p in pitches_deg:
        for k in range(n):
            yaw.append(math.remainder(2 * math.pi * k / n, 2 * math.pi))
            pitch.append(math.radians(p))
    return ViewLayout(tuple(yaw), tuple(pitch), math.radians(fov_deg))


def render_views(erp: torch.Tensor, layout: ViewLayout, size: int) -> torch.Tensor:
    """The square views of ``layout`` rendered from one ERP image.

    Args:
        erp: (1, C, H, W).
        layout: the cameras.
        size: side of each view in pixels.

    Returns:
        (V, C, size, size), one view per camera (bilinear).
    """
    opts = {"dtype": erp.dtype, "device": erp.device}
    return erp_to_perspective(
        erp,
        torch.full((len(layout),), layout.fov, **opts),
        (size, size),
        yaw=torch.tensor(layout.yaw, **opts),
        pitch=torch.tensor(layout.pitch, **opts),
    )
