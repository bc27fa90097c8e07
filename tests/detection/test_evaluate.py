"""Face-detection evaluation per latitude band: AP, matching, bands, the eval faces command."""

import contextlib
import io
import json
import math

import pytest
import torch

from pano360.cli import main
from pano360.detection import average_precision, evaluate_faces


def test_average_precision_by_hand():
    # Ranked: TP, FP, TP with 3 faces: precision 1, 1/2, 2/3 at recall 1/3, 1/3, 2/3.
    scores = torch.tensor([0.9, 0.8, 0.7])
    is_tp = torch.tensor([True, False, True])
    assert average_precision(scores, is_tp, 3) == pytest.approx(1 / 3 + (2 / 3) / 3)
    assert average_precision(scores, torch.ones(3, dtype=torch.bool), 3) == pytest.approx(1.0)
    assert average_precision(torch.zeros(0), torch.zeros(0, dtype=torch.bool), 2) == 0.0
    assert math.isnan(average_precision(scores, is_tp, 0))


def _result(*rows):
    """A detection result from (lon, lat, size, score) rows."""
    t = torch.tensor(rows, dtype=torch.float64)
    boxes = torch.stack((t[:, 0], t[:, 1], t[:, 2], t[:, 2]), -1)
    return {"boxes": boxes, "scores": t[:, 3], "labels": torch.zeros(len(rows), dtype=torch.long)}


def test_matching_and_bands():
    deg = math.radians
    faces = torch.tensor([[0.0, deg(10), deg(10), deg(10)],  # band 0
                          [1.0, deg(45), deg(10), deg(10)],  # band 1
                          [3.1, deg(-70), deg(10), deg(10)]])  # band 2  # fmt: skip
    found = _result(
        (0.0, deg(10), deg(10), 0.99),  # matches face 0
        (0.001, deg(10.2), deg(10), 0.98),  # duplicate of face 0: a false positive
        # Face 2 seen across the seam: 2 pi - 6.2 rad of lon apart, 1.6 degrees at lat -70.
        (-3.1, deg(-70), deg(10), 0.9),
        (3.1, deg(-70), deg(10), 0.8),  # the same face again: a false positive
    )
    result = evaluate_faces([(torch.zeros(3, 8, 16), faces)], {"d": lambda erp: found})
    band0, band1, band2 = result.results["d"]
    assert (band0.n_gt, band0.tp, band0.fp) == (1, 1, 1)
    assert (band1.n_gt, band1.tp, band1.fp) == (1, 0, 0) and band1.recall == 0
    assert (band2.n_gt, band2.tp, band2.fp) == (1, 1, 1)
    assert band0.precision == 0.5 and band2.recall == 1.0
    doc = result.to_dict()
    assert doc["strategies"]["d"]["bands"][1]["precision"] is None  # no detection there
    assert "| d |" in result.to_markdown()


def test_eval_faces_command(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    args = ["eval", "faces", "--scenes", "1", "--seed", "5", "--size", "256x128",
            "--strategies", "direct,spherical", "--rmse-size", "64x32", "--out", str(tmp_path),
            "-q"]  # fmt: skip
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    assert code == 0, err.getvalue()
    doc = json.loads((tmp_path / "faces_eval.json").read_text())
    assert sorted(doc["strategies"]) == ["direct", "spherical"]
    assert doc["scenes"] == {"n": 1, "seed": 5, "size": [256, 128]}
    rmse = doc["layer_rmse"]["models"]["spherical (zero-shot)"]
    assert rmse["conv1"][0] < 1e-4  # the first conv on the sphere is exact
    assert "| spherical |" in (tmp_path / "faces_eval.md").read_text()
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(err := io.StringIO()),
    ):
        code = main([*args[:-3], "--out", str(tmp_path), "-q"])
    assert code == 2 and "already exists" in err.getvalue()
