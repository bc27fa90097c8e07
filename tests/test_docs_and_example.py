"""The README's quick start runs as written, and the embedded example is what it claims to be."""

import json
import re
from pathlib import Path

import pytest

from pano360.io import read_image

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("doc", ["README.md", "docs/conventions.md", "docs/layers.md"])
def test_python_blocks_in_docs_run(doc, tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / doc).read_text(), flags=re.S)
    assert blocks, f"{doc} has no python block"
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, doc, "exec"), {})
    if doc == "README.md":
        assert (tmp_path / "view.jpg").stat().st_size > 0


def test_example_panorama_is_a_2to1_erp_under_1mb():
    path = ROOT / "examples" / "panorama.jpg"
    assert path.stat().st_size <= 1_000_000
    erp = read_image(path)
    assert erp.shape == (1, 3, 1024, 2048)


def test_example_has_faces_at_several_latitudes_including_beyond_60_degrees():
    meta = json.loads((ROOT / "examples" / "panorama.json").read_text())
    lats = [p["face"]["lat"] for p in meta["placements"] if "face" in p]
    assert len(lats) >= 4
    assert max(lats) > 60 and min(lats) < -60
    assert len({round(v / 10) for v in lats}) >= 4  # spread over latitudes
    lons = [p["face"]["lon"] for p in meta["placements"] if "face" in p]
    assert any(abs(abs(v) - 180) < 1 for v in lons)  # one face straddles the seam


@pytest.mark.parametrize(
    "name",
    [
        "conventions.md",
        "cli.md",
        "report.md",
        "benchmarks.md",
        "layers.md",
        "transfer.md",
        "saliency-metrics.md",
        "saliency-data.md",
        "synthetic-scenes.md",
    ],
)
def test_docs_exist_and_link_figures_that_exist(name):
    text = (ROOT / "docs" / name).read_text()
    for link in re.findall(r"\]\((figures/[^)]+)\)", text):
        assert (ROOT / "docs" / link).is_file(), link
