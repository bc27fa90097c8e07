"""Scene configs: every field checked once, shared fields in one place, canonical values."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from pano360.data import (
    SaliencySceneConfig,
    SceneConfig,
    make_face_scene,
    write_face_scenes,
    write_saliency_scenes,
)
from pano360.errors import ShapeError, ValueRangeError

DEG = math.pi / 180
SHARED = ("roll", "brightness", "flip", "face_context", "min_gap", "supersample", "max_tries")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_faces": (3, 2)}, ValueRangeError, "SceneConfig.n_faces"),
        ({"n_faces": (-1, 2)}, ValueRangeError, "SceneConfig.n_faces"),
        ({"n_objects": (1.5, 2)}, ValueRangeError, "SceneConfig.n_objects"),
        ({"face_width": (8, 25)}, ValueRangeError, r"SceneConfig.face_width.*degrees"),
        ({"face_width": (0.0, 0.2)}, ValueRangeError, "SceneConfig.face_width"),
        ({"object_width": (0.5, 0.4)}, ValueRangeError, "SceneConfig.object_width"),
        ({"lat_bands": ()}, ValueRangeError, "SceneConfig.lat_bands"),
        ({"lat_bands": ((0.5, 0.2),)}, ValueRangeError, "SceneConfig.lat_bands"),
        ({"lat_bands": ((0.0, 0.6), (0.5, 1.0))}, ValueRangeError, "SceneConfig.lat_bands"),
        ({"lat_bands": ((0.0, 2.0),)}, ValueRangeError, "SceneConfig.lat_bands"),
        ({"lat_sampling": "gauss"}, ValueError, "SceneConfig.lat_sampling must be one of"),
        ({"face_assets": ("coffee",)}, ValueRangeError, "SceneConfig.face_assets"),
        ({"face_assets": ()}, ValueRangeError, "SceneConfig.face_assets"),
        ({"object_assets": "coffee"}, ValueRangeError, "SceneConfig.object_assets"),
        ({"object_assets": ("astronaut",)}, ValueRangeError, "SceneConfig.object_assets"),
    ],
)
def test_bad_scene_config_raises_naming_the_field(kwargs, error, match):
    with pytest.raises(error, match=match):
        SceneConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_objects": (0, 3)}, ValueRangeError, r"SaliencySceneConfig.n_objects.*min >= 1"),
        ({"object_width": (0.1, 2.0)}, ValueRangeError, "SaliencySceneConfig.object_width"),
        ({"max_abs_lat": 2.0}, ValueRangeError, "SaliencySceneConfig.max_abs_lat"),
        ({"assets": ("grass",)}, ValueRangeError, "SaliencySceneConfig.assets"),
        ({"face_weight": 0}, ValueRangeError, "SaliencySceneConfig.face_weight"),
        ({"n_fixations": 0}, ValueRangeError, "SaliencySceneConfig.n_fixations"),
        ({"sigma": 0.0}, ValueRangeError, "SaliencySceneConfig.sigma"),
        ({"background_contrast": 0.9}, ValueRangeError, "SaliencySceneConfig.background_contrast"),
        ({"roll": (0.1, 0.0)}, ValueRangeError, "SaliencySceneConfig.roll"),
    ],
)
def test_bad_saliency_config_raises_naming_the_field(kwargs, error, match):
    with pytest.raises(error, match=match):
        SaliencySceneConfig(**kwargs)


@pytest.mark.parametrize("cls", [SceneConfig, SaliencySceneConfig])
@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"erp_hw": (100, 300)}, ShapeError, "erp_hw"),
        ({"roll": (-4.0, 0.0)}, ValueRangeError, r"roll.*degrees"),
        ({"brightness": (0.0, 1.0)}, ValueRangeError, "brightness"),
        ({"flip": 1}, ValueRangeError, "flip"),
        ({"face_context": (0.5, float("nan"))}, ValueRangeError, "face_context"),
        ({"min_gap": -0.1}, ValueRangeError, "min_gap"),
        ({"supersample": 0}, ValueRangeError, "supersample"),
        ({"max_tries": 0}, ValueRangeError, "max_tries"),
        ({"max_tries": 1.5}, ValueRangeError, "max_tries"),
        ({"erp_hw": (10, 10)}, ShapeError, "erp_hw"),
    ],
)
def test_shared_fields_are_checked_once_for_both_configs(cls, kwargs, error, field):
    with pytest.raises(error, match=f"{cls.__name__}.{field}"):
        cls(**kwargs)


def test_shared_fields_have_one_declaration_and_are_keyword_only():
    for cls in (SceneConfig, SaliencySceneConfig):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        assert tuple(n for n, f in fields.items() if f.kw_only) == SHARED
        assert next(n for n, f in fields.items() if not f.kw_only) == "erp_hw"
    face, sal = SceneConfig(), SaliencySceneConfig()
    assert all(getattr(face, n) == getattr(sal, n) for n in SHARED)  # the same defaults
    # The own fields keep their positions; the shared ones are keyword-only.
    cfg = SceneConfig((32, 64), (2, 2), (0.2, 0.3), ((0.0, 0.5),), "uniform", (0, 0))
    assert (
        cfg.face_width == (0.2, 0.3) and cfg.lat_sampling == "uniform" and cfg.n_objects == (0, 0)
    )
    assert SaliencySceneConfig((32, 64), (1, 2), (0.1, 0.2), 0.5).max_abs_lat == 0.5
    with pytest.raises(TypeError):
        SceneConfig(*[getattr(face, f.name) for f in dataclasses.fields(SceneConfig)])
    # The repr lists the fields in constructor order.
    assert repr(face).startswith("SceneConfig(erp_hw=(512, 1024), n_faces=(3, 6), face_width=")
    assert repr(face).endswith("supersample=2, max_tries=200)")


def test_configs_store_canonical_values_and_draw_the_same_scenes(tmp_path):
    """Lists, numpy scalars and numpy bools are accepted and stored as tuples, ints, floats and
    bools: equal configs compare and hash equal, JSON can hold them, the scenes do not change."""
    plain = SceneConfig(
        erp_hw=(16, 32), n_faces=(1, 2), n_objects=(0, 0), roll=(-0.1, 0.1), min_gap=0.02
    )
    numpy = SceneConfig(
        erp_hw=[np.int64(16), 32],
        n_faces=[np.int32(1), 2],
        n_objects=(0, np.int64(0)),
        roll=[np.float32(-0.1), 0.1],
        flip=np.True_,
        min_gap=np.float64(0.02),
    )
    assert numpy.erp_hw == (16, 32) and type(numpy.erp_hw) is tuple
    assert type(numpy.n_faces[0]) is int and type(numpy.flip) is bool
    assert type(numpy.roll[0]) is float and numpy.roll[0] == float(np.float32(-0.1))
    assert hash(SceneConfig(erp_hw=[16, 32])) == hash(SceneConfig(erp_hw=(16, 32)))
    exact = dataclasses.replace(numpy, roll=(float(np.float32(-0.1)), 0.1))
    assert numpy == exact and numpy != plain
    assert torch.equal(make_face_scene(3, numpy).erp, make_face_scene(3, exact).erp)
    gt = write_face_scenes(tmp_path / "faces", 1, config=numpy, image_ext=".png")
    config = json.loads(gt.read_text())["config"]
    assert config["erp_hw"] == [16, 32] and config["flip"] is True
    assert config["roll_deg"] == pytest.approx([-math.degrees(0.1), math.degrees(0.1)])
    names = [f.name for f in dataclasses.fields(SceneConfig) if not f.kw_only] + list(SHARED)
    angles = {"face_width", "lat_bands", "object_width", "roll", "min_gap"}
    assert list(config) == [f"{n}_deg" if n in angles else n for n in names]
    sal = SaliencySceneConfig(erp_hw=(16, 32), n_fixations=np.int64(5), sigma=np.float32(0.05))
    path = write_saliency_scenes(tmp_path / "sal", 1, config=sal)
    assert json.loads(path.read_text())["config"]["n_fixations"] == 5
