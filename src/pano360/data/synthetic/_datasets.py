"""Datasets of synthetic scenes for a DataLoader, and writers of scene sets to disk."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..._core import (
    ImageIOError,
    OutputExistsError,
    ShapeError,
    check_int,
    check_positive_int,
    check_seed,
)
from ...io import check_output_path, write_atomic, write_image
from .._folder import write_saliency_sample
from ._config import SaliencySceneConfig, SceneConfig, config_record
from ._scenes import SaliencyScene, SyntheticScene, make_face_scene, make_saliency_scene

__all__ = [
    "FACE_SCENES_FORMAT",
    "SALIENCY_SCENES_FORMAT",
    "SyntheticFaceScenes",
    "SyntheticSaliencyScenes",
    "collate_scenes",
    "write_face_scenes",
    "write_saliency_scenes",
]


class _SceneDataset(Dataset):
    def __init__(self, n: int, seed: int, config: Any) -> None:
        self.n = check_int(n, "n", lo=0)
        self.seed = check_seed(seed)
        self.config = config

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


def _progress(indices: range, show: bool, what: str) -> Iterable[int]:
    """The scene indices, with a progress bar on stderr (tqdm) when ``show``."""
    if not show:
        return indices
    from tqdm import tqdm

    return tqdm(indices, desc=what, unit="scene")


def write_face_scenes(
    folder: str | os.PathLike[str],
    n: int,
    seed: int = 0,
    config: SceneConfig | None = None,
    *,
    image_ext: str = ".jpg",
    quality: int = 95,
    overwrite: bool = False,
    progress: bool = True,
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
        progress: show a progress bar on stderr (tqdm) while the scenes are made (the
            default); False writes quietly.

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
    for i in _progress(range(n), progress, "face scenes"):
        scene = data[i]
        write_image(folder / names[i], scene.erp, overwrite=overwrite, quality=quality)
        records.append({"image": names[i], **scene.to_record()})
    meta = {
        "format": FACE_SCENES_FORMAT,
        "made_by": "pano360.data.synthetic.write_face_scenes",
        "convention": _RECORD_CONVENTION,
        "seed": data.seed,
        "config": config_record(data.config),
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
    progress: bool = True,
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
        progress: show a progress bar on stderr (tqdm) while the scenes are made (the
            default); False writes quietly.

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
    for i in _progress(range(n), progress, "saliency scenes"):
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
        "config": config_record(data.config),
        "scenes": records,
    }
    text = json.dumps(meta, indent=1) + "\n"
    write_atomic(targets[0], lambda f: f.write(text.encode()), overwrite)
    return targets[0]
