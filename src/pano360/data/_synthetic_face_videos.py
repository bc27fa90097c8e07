"""A synthetic 360-degree video of moving faces with exact per-frame boxes, for face tracking.

Three portraits of the synthetic scene compositor (:mod:`pano360.data.synthetic`) move over a
static procedural background, each along a path that breaks naive ERP tracking:

- ``seam``: along a parallel near the equator, across the seam (lon +-180 degrees);
- ``latitudes``: along a meridian, from 60 degrees south to 60 degrees north;
- ``pole``: up a meridian, over the north pole and down the opposite meridian.

Every face stays upright in its local frame (roll 0: its up vector points north; over the pole
it turns with the meridian, as it does for a person walking past a camera on a mast). Paths are
traversed once over the video whatever its length, so a short video moves faster. Each frame's
face boxes are exact (the compositor's ground truth); the paths keep the faces' caps apart.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from .._core import check_hw, check_int, check_number
from ..io import VideoWriter, write_atomic
from .synthetic import FACE_ASSETS, Placement, render_scene, scene_background
from .synthetic._seeding import scene_rng

__all__ = ["FACE_PATHS", "SyntheticFaceVideo"]

#: The faces' paths, in the order of the boxes of :meth:`SyntheticFaceVideo.boxes`.
FACE_PATHS: tuple[str, ...] = ("seam", "latitudes", "pole")

_DEG = math.pi / 180


class SyntheticFaceVideo:
    """Frames and exact face boxes of a synthetic 360-degree video (module docstring).

    Args:
        erp_hw: (H, W) of the frames, W == 2H.
        num_frames: number of frames, >= 2.
        fps: frame rate written by :meth:`write`.
        seed: drives the assets, sizes, start points and the background (deterministic).
        supersample: compositing supersampling (1 is fastest; 2 anti-aliases the pasted faces).

    Raises:
        ShapeError: ``erp_hw`` not a 2:1 size.
        ValueRangeError: ``num_frames`` < 2, ``fps`` not positive, bad ``seed`` or
            ``supersample``.

    Convention:
        Boxes are BFoV (lon, lat, fov_x, fov_y) radians (:mod:`pano360.geometry.boxes`),
        lon in [-pi, pi), one row per path of :data:`FACE_PATHS`.

    Example:
        >>> video = SyntheticFaceVideo((32, 64), num_frames=5, seed=1)
        >>> len(video), video.boxes(0).shape, tuple(video.frame(0).shape)
        (5, torch.Size([3, 4]), (3, 32, 64))
        >>> lon = [math.degrees(video.boxes(i)[0, 0]) for i in (0, 4)]
        >>> lon[0] > 90 and lon[1] < -90  # the seam face crossed lon 180
        True
    """

    def __init__(
        self,
        erp_hw: Sequence[int] = (256, 512),
        num_frames: int = 60,
        fps: float = 30.0,
        *,
        seed: int = 0,
        supersample: int = 1,
    ) -> None:
        self.erp_hw = check_hw(erp_hw, "erp_hw", erp=True)
        self.num_frames = check_int(num_frames, "num_frames", lo=2)
        self.fps = check_number(fps, "fps", lo=0.0, lo_open=True)
        self.supersample = check_int(supersample, "supersample", lo=1)
        self.seed, rng = scene_rng(seed)
        n = len(FACE_PATHS)
        self.assets = tuple(str(a) for a in rng.choice(FACE_ASSETS, size=n))
        self.widths = tuple(float(w) * _DEG for w in rng.uniform(11, 16, size=n))
        self._seam_lat = float(rng.uniform(-15, 15)) * _DEG
        self._seam_lon0 = float(rng.uniform(140, 160)) * _DEG  # ends at lon0 + 60 degrees
        self._meridian = float(rng.uniform(-30, 30)) * _DEG
        self._background = scene_background(self.erp_hw, int(rng.integers(2**63)))

    def __len__(self) -> int:
        return self.num_frames

    def placements(self, index: int) -> tuple[Placement, ...]:
        """Where each face is pasted in frame ``index``."""
        u = check_int(index, "index", lo=0, hi=self.num_frames - 1) / (self.num_frames - 1)
        seam = (self._seam_lon0 + u * 60 * _DEG, self._seam_lat)
        latitudes = (self._meridian, (-60 + 120 * u) * _DEG)
        # Up the meridian 90 degrees east of the `latitudes` face, from lat 55 over the pole
        # (s = 90 degrees) and down the opposite meridian to lat 55.
        s = (35 + 110 * u) * _DEG
        lon = self._meridian + math.pi / 2 + (math.pi if s > math.pi / 2 else 0.0)
        pole = (lon, math.pi / 2 - abs(math.pi / 2 - s))
        return tuple(
            Placement(asset, lon=math.remainder(lo, 2 * math.pi), lat=la, width=width)
            for asset, width, (lo, la) in zip(
                self.assets, self.widths, (seam, latitudes, pole), strict=True
            )
        )

    def _scene(self, index: int):
        return render_scene(
            self.placements(index),
            self.erp_hw,
            background=self._background,
            supersample=self.supersample,
        )

    def boxes(self, index: int) -> torch.Tensor:
        """(3, 4) float64 exact BFoV of the faces in frame ``index`` (order of FACE_PATHS)."""
        return self._scene(index).face_bfov

    def frame(self, index: int) -> torch.Tensor:
        """(3, H, W) float32 frame ``index`` in [0, 1]."""
        return self._scene(index).erp

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(frame, boxes)`` for every frame (each rendered once)."""
        for i in range(self.num_frames):
            scene = self._scene(i)
            yield scene.erp, scene.face_bfov

    def write(
        self,
        path: str | os.PathLike[str],
        boxes_path: str | os.PathLike[str] | None = None,
        *,
        quality: int = 18,
        overwrite: bool = False,
    ) -> None:
        """Write the video (atomically) and, optionally, its exact boxes as JSON (degrees).

        The JSON is ``{"fps", "erp_hw", "paths", "frames": [[[lon, lat, fov_x, fov_y], ...],
        ...]}``, one list of boxes per frame in the order of ``paths``.

        Raises:
            The errors of :class:`pano360.io.VideoWriter`.
        """
        frames = []
        with VideoWriter(path, self.fps, quality=quality, overwrite=overwrite) as out:
            for erp, boxes in self:
                out.write(erp)
                frames.append([[round(math.degrees(v), 6) for v in b] for b in boxes.tolist()])
        if boxes_path is not None:
            doc = {
                "fps": self.fps,
                "erp_hw": list(self.erp_hw),
                "paths": list(FACE_PATHS),
                "convention": "degrees; bfov = [lon, lat, fov_x, fov_y] (docs/conventions.md)",
                "frames": frames,
            }
            text = (json.dumps(doc) + "\n").encode()
            write_atomic(Path(boxes_path), lambda f: f.write(text), overwrite=overwrite)

    def __repr__(self) -> str:
        return (
            f"SyntheticFaceVideo(erp_hw={self.erp_hw}, num_frames={self.num_frames}, "
            f"fps={self.fps}, seed={self.seed!r})"
        )
