"""Datasets and data generators: 360° saliency dataset readers, video clip datasets, synthetic
spherical scenes and videos.

Image I/O lives in :mod:`pano360.io`; this package reads datasets built from such files.
"""

from .._core import DatasetFormatError
from ..io import write_atomic
from ._folder import (
    SaliencyFolder,
    SaliencySample,
    read_fixations_csv,
    read_saliency_map,
    write_fixations_csv,
    write_saliency_map,
    write_saliency_sample,
)
from ._safe_pickle import load_restricted_pickle
from ._salient360 import (
    Salient360BinInfo,
    Salient360Images,
    Salient360VideoMaps,
    Scanpath,
    lonlat_to_salient360,
    parse_salient360_bin_name,
    read_salient360_map,
    read_salient360_scanpaths,
    salient360_to_lonlat,
    write_salient360_map,
)
from ._synthetic_face_videos import FACE_PATHS, SyntheticFaceVideo
from ._synthetic_videos import SyntheticSaliencyVideos, write_eccv18_videos
from ._video_clips import VideoSaliencyClips
from ._video_sources import (
    SEED_SIGMA_DEG,
    ECCV18Videos,
    FolderVideos,
    Salient360Videos,
    VideoSaliencySource,
    gaze_saliency_map,
)
from .synthetic import (
    Placement,
    SaliencyScene,
    SaliencySceneConfig,
    SceneConfig,
    SyntheticFaceScenes,
    SyntheticSaliencyScenes,
    SyntheticScene,
    collate_scenes,
    make_face_scene,
    make_saliency_scene,
    render_scene,
    write_face_scenes,
    write_saliency_scenes,
)

__all__: list[str] = [
    "FACE_PATHS",
    "SEED_SIGMA_DEG",
    "DatasetFormatError",
    "ECCV18Videos",
    "FolderVideos",
    "Placement",
    "SaliencyFolder",
    "SaliencySample",
    "SaliencyScene",
    "SaliencySceneConfig",
    "Salient360BinInfo",
    "Salient360Images",
    "Salient360VideoMaps",
    "Salient360Videos",
    "Scanpath",
    "SceneConfig",
    "SyntheticFaceScenes",
    "SyntheticFaceVideo",
    "SyntheticSaliencyScenes",
    "SyntheticSaliencyVideos",
    "SyntheticScene",
    "VideoSaliencyClips",
    "VideoSaliencySource",
    "collate_scenes",
    "gaze_saliency_map",
    "load_restricted_pickle",
    "lonlat_to_salient360",
    "make_face_scene",
    "make_saliency_scene",
    "parse_salient360_bin_name",
    "read_fixations_csv",
    "read_saliency_map",
    "read_salient360_map",
    "read_salient360_scanpaths",
    "render_scene",
    "salient360_to_lonlat",
    "write_atomic",
    "write_eccv18_videos",
    "write_face_scenes",
    "write_fixations_csv",
    "write_saliency_map",
    "write_saliency_sample",
    "write_saliency_scenes",
    "write_salient360_map",
]
