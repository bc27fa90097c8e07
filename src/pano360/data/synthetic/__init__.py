r"""Synthetic spherical scenes: photos pasted onto the sphere, with exact ground truth.

The "spherical PASCAL" protocol of the 360-degree detection and saliency papers: perspective
photos (portraits, other photos) are pasted onto a background sphere as if taken by pinhole
cameras aimed in chosen directions, so where every face lands is known exactly.

Convention:
    :mod:`pano360.geometry.conventions`. Angles are radians (degrees only in the JSON files of
    :func:`write_face_scenes`); lon is positive to the right (east), lat positive up; camera
    roll > 0 turns the pasted picture's up vector clockwise as seen from the centre.

One module per idea:

- assets (``_assets``): the shipped photos, their licences, provenance and face boxes
  (:data:`SCENE_ASSETS`, :func:`load_asset`);
- the compositor (``_compositor``): a :class:`Placement` pasted with alpha, a windowed
  :func:`~pano360.geometry.perspective_to_erp` evaluated on the photo's bounding cap
  (:func:`placement_view`, :func:`placement_cap`);
- procedural backgrounds (``_backgrounds``): :func:`scene_background`;
- configs (``_config``): :class:`SceneConfig`, :class:`SaliencySceneConfig`;
- scenes (``_scenes``): :func:`render_scene`, and :func:`make_face_scene` /
  :func:`make_saliency_scene`, which pack their items where the caps keep apart;
- datasets and files (``_datasets``): :class:`SyntheticFaceScenes`,
  :class:`SyntheticSaliencyScenes`, :func:`collate_scenes`, :func:`write_face_scenes`,
  :func:`write_saliency_scenes`.

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

from ._assets import FACE_ASSETS, OBJECT_ASSETS, SCENE_ASSETS, SceneAsset, load_asset
from ._backgrounds import BACKGROUNDS, scene_background
from ._compositor import Placement, placement_cap, placement_view
from ._config import LAT_SAMPLING, SaliencySceneConfig, SceneConfig
from ._datasets import (
    FACE_SCENES_FORMAT,
    SALIENCY_SCENES_FORMAT,
    SyntheticFaceScenes,
    SyntheticSaliencyScenes,
    collate_scenes,
    write_face_scenes,
    write_saliency_scenes,
)
from ._scenes import (
    SaliencyScene,
    SyntheticScene,
    make_face_scene,
    make_saliency_scene,
    render_scene,
)

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
    "placement_cap",
    "placement_view",
    "render_scene",
    "scene_background",
    "write_face_scenes",
    "write_saliency_scenes",
]
