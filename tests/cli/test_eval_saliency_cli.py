"""``pano360 eval saliency``: the table, JSON and CSV against the library's metrics; errors."""

from __future__ import annotations

import contextlib
import csv
import io
import json

import numpy as np
import pytest
import torch

from pano360.cli import main
from pano360.data import SaliencyFolder, SaliencySceneConfig, write_saliency_scenes
from pano360.saliency import compute_metrics, predict_saliency


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Four synthetic scenes (maps and fixations) and predictions of two models."""
    root = tmp_path_factory.mktemp("eval")
    gt = root / "gt"
    write_saliency_scenes(gt, 4, seed=3, config=SaliencySceneConfig(erp_hw=(32, 64)))
    preds = {}
    for model in ("uniform", "spectral"):
        folder = root / model
        folder.mkdir()
        for sample in SaliencyFolder(gt):
            saliency = predict_saliency(sample.image, model)[0, 0].numpy()
            np.save(folder / f"{sample.name}_saliency.npy", saliency)
        preds[model] = folder
    return gt, preds


def test_table_json_and_csv_match_the_library(dataset, tmp_path):
    gt, preds = dataset
    code, out, err = run("eval", "saliency", "--pred", str(preds["spectral"]), "--gt", str(gt),
                         "--out", str(tmp_path), "--quiet")  # fmt: skip
    assert code == 0, err
    assert "| cc |" in out and "4 map(s), preset 'sphere'" in out
    doc = json.loads((tmp_path / "saliency_eval.json").read_text())
    assert sorted(doc["per_map"]) == SaliencyFolder(gt).names
    sample = SaliencyFolder(gt)[0]
    pred = torch.from_numpy(np.load(preds["spectral"] / f"{sample.name}_saliency.npy"))
    others = torch.cat([s.fixations for s in SaliencyFolder(gt) if s.name != sample.name])
    gt_map, fixations = sample.saliency.double(), [sample.fixations]
    expected = compute_metrics(
        pred[None, None].double(), gt_map, fixations, preset="sphere", other_fixations=[others]
    )
    for metric, value in expected.items():
        assert doc["per_map"][sample.name][metric] == pytest.approx(float(value[0]), abs=1e-9)
    rows = list(csv.DictReader((tmp_path / "saliency_eval.csv").open()))
    assert [r["name"] for r in rows] == sorted(doc["per_map"])
    assert float(rows[0]["cc"]) == pytest.approx(doc["per_map"][rows[0]["name"]]["cc"], rel=1e-5)


def test_the_image_model_beats_uniform_on_scenes_with_known_objects(dataset, tmp_path):
    gt, preds = dataset
    means = {}
    for model, folder in preds.items():
        out = tmp_path / model
        out.mkdir()
        code, _, err = run("eval", "saliency", "--pred", str(folder), "--gt", str(gt),
                           "--out", str(out), "-q", "--preset", "salient360-toolbox")  # fmt: skip
        assert code == 0, err
        means[model] = json.loads((out / "saliency_eval.json").read_text())["summary"]
    assert means["spectral"]["cc"]["mean"] > means["uniform"]["cc"]["mean"] + 0.1
    assert means["spectral"]["nss"]["mean"] > means["uniform"]["nss"]["mean"]


def test_errors_exit_2_and_write_nothing(dataset, tmp_path):
    gt, preds = dataset
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["--pred", str(empty), "--gt", str(gt)], "matches"),
        (["--pred", str(tmp_path / "missing"), "--gt", str(gt)], "not a directory"),
        (["--pred", str(preds["uniform"]), "--gt", str(gt), "--preset", "bogus"], "--preset"),
    ]
    for args, message in cases:
        code, _, err = run("eval", "saliency", *args, "--out", str(tmp_path), "-q")
        assert code == 2 and message in err and err.count("\n") == 1, err
    assert not list(tmp_path.glob("saliency_eval.*"))
    (tmp_path / "saliency_eval.json").write_text("{}")
    code, _, err = run("eval", "saliency", "--pred", str(preds["uniform"]), "--gt", str(gt),
                       "--out", str(tmp_path), "-q")  # fmt: skip
    assert code == 2 and "already exists" in err
    assert (tmp_path / "saliency_eval.json").read_text() == "{}"
