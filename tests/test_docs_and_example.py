"""The README's quick start runs as written, and the embedded example is what it claims to be."""

import json
import re
from pathlib import Path

import pytest

from pano360.io import read_image

ROOT = Path(__file__).resolve().parents[1]


DOCS = ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]
#: A python block, optionally followed by the text block of what it prints.
BLOCK = re.compile(r"```python\n(.*?)```(?:\s*```text\n(.*?)```)?", flags=re.S)


def doc_blocks(path: Path) -> list[tuple[str, str]]:
    """(code, expected output or "") of every python block of a doc, in order. A block right
    after ``<!-- not run: reason -->`` is skipped (e.g. one that writes 500 scenes)."""
    text = re.sub(r"<!-- not run:[^>]*-->\s*```python\n.*?```", "", path.read_text(), flags=re.S)
    return BLOCK.findall(text)


def run_doc(path: Path, capsys) -> list[str]:
    """Run a doc's python blocks in one namespace; return the blocks whose printed output
    differs from the text block shown after them."""
    namespace: dict = {}
    wrong = []
    for i, (code, expected) in enumerate(doc_blocks(path)):
        capsys.readouterr()
        exec(compile(code, f"{path.name} block {i + 1}", "exec"), namespace)
        printed = capsys.readouterr().out
        if expected and printed != expected:
            wrong.append(f"{path.name} block {i + 1} printed:\n{printed}expected:\n{expected}")
    return wrong


@pytest.mark.parametrize("doc", [d for d in DOCS if doc_blocks(ROOT / d)])
def test_python_blocks_in_docs_run_and_print_what_the_docs_show(doc, tmp_path, monkeypatch, capsys):
    """Every python block runs as written (blocks of one page share a namespace); where the page
    shows the output in a text block right after it, the block prints exactly that."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    assert run_doc(ROOT / doc, capsys) == []
    if doc == "README.md":
        assert (tmp_path / "view.jpg").stat().st_size > 0


def test_a_doc_showing_the_wrong_output_is_caught(tmp_path, capsys):
    (tmp_path / "d.md").write_text(
        "```python\nprint(1 + 1)\n```\n\n```text\n3\n```\n\n"
        "<!-- not run: would fail -->\n```python\nraise RuntimeError\n```\n"
    )
    (wrong,) = run_doc(tmp_path / "d.md", capsys)
    assert "printed:\n2\nexpected:\n3" in wrong


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
