"""The scene writers show their progress by default (a data set of hundreds of scenes takes
minutes) and write quietly with progress=False."""

import pytest

from pano360.data import (
    SaliencySceneConfig,
    SceneConfig,
    write_face_scenes,
    write_saliency_scenes,
)

WRITERS = {
    "face scenes": lambda folder, **kw: write_face_scenes(
        folder, 2, config=SceneConfig(erp_hw=(32, 64), n_faces=(1, 1), n_objects=(0, 0)), **kw
    ),
    "saliency scenes": lambda folder, **kw: write_saliency_scenes(
        folder, 2, config=SaliencySceneConfig(erp_hw=(32, 64)), **kw
    ),
}


@pytest.mark.parametrize("what", sorted(WRITERS))
def test_writers_show_a_progress_bar_by_default_and_none_with_progress_false(
    what, tmp_path, capsys
):
    WRITERS[what](tmp_path / "a")
    err = capsys.readouterr().err
    assert f"{what}: 100%" in err and "2/2" in err
    WRITERS[what](tmp_path / "b", progress=False)
    assert capsys.readouterr().err == ""
