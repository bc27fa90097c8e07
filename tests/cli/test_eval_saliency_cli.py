"""``pano360 eval saliency``: the table, JSON and CSV against the library's metrics; videos
frame by frame; missing predictions; the presets' switches; errors."""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from pano360.data import (
    SaliencyFolder,
    SaliencySceneConfig,
    write_saliency_sample,
    write_saliency_scenes,
)
from pano360.saliency import (
    PRESETS,
    compute_metrics,
    fixation_map,
    frame_fixation_indices,
    predict_saliency,
)
from pano360.testing import run_cli


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
    code, out, err = run_cli("eval", "saliency", "--pred", str(preds["spectral"]), "--gt", str(gt),
                         "--out", str(tmp_path), "--quiet")  # fmt: skip
    assert code == 0, err
    assert "| cc |" in out and "4 image(s), preset 'sphere': mean ± std over images" in out
    assert "pixel whose cell holds them" in out and "not computed" not in out
    doc = json.loads((tmp_path / "saliency_eval.json").read_text())
    assert sorted(doc["per_item"]) == SaliencyFolder(gt).names
    assert doc["missing_predictions"] == [] and doc["settings"]["fixation_placement"] == "cell"
    sample = SaliencyFolder(gt)[0]
    pred = torch.from_numpy(np.load(preds["spectral"] / f"{sample.name}_saliency.npy"))
    others = torch.cat([s.fixations for s in SaliencyFolder(gt) if s.name != sample.name])
    gt_map, fixations = sample.saliency.double(), [sample.fixations]
    expected = compute_metrics(
        pred[None, None].double(), gt_map, fixations, preset="sphere", other_fixations=[others]
    )
    for metric, value in expected.items():
        assert doc["per_item"][sample.name][metric] == pytest.approx(float(value[0]), abs=1e-9)
    rows = list(csv.DictReader((tmp_path / "saliency_eval.csv").open()))
    assert [r["name"] for r in rows] == sorted(doc["per_item"])
    assert float(rows[0]["cc"]) == pytest.approx(doc["per_item"][rows[0]["name"]]["cc"], rel=1e-5)


def test_the_image_model_beats_uniform_on_scenes_with_known_objects(dataset, tmp_path):
    gt, preds = dataset
    means = {}
    for model, folder in preds.items():
        out = tmp_path / model
        out.mkdir()
        code, _, err = run_cli("eval", "saliency", "--pred", str(folder), "--gt", str(gt),
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
        (
            ["--pred", str(preds["uniform"]), "--gt", str(gt), "--fixation-placement", "x"],
            "--fixation-placement must be one of",
        ),
        (["--pred", str(preds["uniform"]), "--gt", str(gt), "--fps", "0"], "--fps must be"),
        (["--pred", str(preds["uniform"]), "--gt", str(gt), "--window", "-1"], "--window must"),
    ]
    for args, message in cases:
        code, _, err = run_cli("eval", "saliency", *args, "--out", str(tmp_path), "-q")
        assert code == 2 and message in err and err.count("\n") == 1, err
    assert not list(tmp_path.glob("saliency_eval.*"))
    (tmp_path / "saliency_eval.json").write_text("{}")
    code, _, err = run_cli("eval", "saliency", "--pred", str(preds["uniform"]), "--gt", str(gt),
                       "--out", str(tmp_path), "-q")  # fmt: skip
    assert code == 2 and "already exists" in err
    assert (tmp_path / "saliency_eval.json").read_text() == "{}"


def test_the_tool_presets_name_their_placement_and_averaging(dataset, tmp_path):
    gt, preds = dataset
    sample = SaliencyFolder(gt)[1]
    pred = torch.from_numpy(np.load(preds["spectral"] / f"{sample.name}_saliency.npy"))
    others = torch.cat([s.fixations for s in SaliencyFolder(gt) if s.name != sample.name])
    cases = [
        ([], PRESETS["salient360-2018"], ["int(u W - 1)", "ground-truth map's own score"]),
        (
            ["--fixation-placement", "cell", "--no-average-with-gt"],
            dataclasses.replace(
                PRESETS["salient360-2018"], fixation_placement="cell", average_with_gt=False
            ),
            ["pixel whose cell holds them"],
        ),
    ]
    for k, (flags, config, notes) in enumerate(cases):
        out_dir = tmp_path / str(k)
        out_dir.mkdir()
        code, out, err = run_cli("eval", "saliency", "--pred", str(preds["spectral"]),
                                 "--gt", str(gt), "--preset", "salient360-2018",
                                 "--out", str(out_dir), "-q", *flags)  # fmt: skip
        assert code == 0, err
        for note in notes:
            assert note in out, out
        if not config.average_with_gt:
            assert "own score" not in out
        doc = json.loads((out_dir / "saliency_eval.json").read_text())
        assert doc["settings"]["fixation_placement"] == config.fixation_placement
        assert doc["settings"]["average_with_gt"] == config.average_with_gt
        expected = compute_metrics(
            pred[None, None].double(),
            sample.saliency.double(),
            [sample.fixations],
            preset=config,
            metrics=["auc_judd", "nss", "cc"],
            other_fixations=[others],
        )
        for metric, value in expected.items():
            got = doc["per_item"][sample.name][metric]
            assert got == pytest.approx(float(value[0]), abs=1e-9), (flags, metric)


def _video_item(root, name, frames, fps, shift_deg=0.0):
    """A video item: per frame k, three fixations at time (k + 0.5) / fps, drifting east; frames
    after the first moved east by shift_deg; maps made from the fixations."""
    hw = (16, 32)
    lonlat, times = [], []
    for k in range(frames):
        move = math.radians(shift_deg) if k > 0 else 0.0
        for j in range(3):
            lonlat.append([-2.5 + 0.4 * k + 0.9 * j + move, 0.3 * (j - 1)])
            times.append((k + 0.5) / fps)
    lonlat = torch.tensor(lonlat, dtype=torch.float64)
    lonlat[:, 0] = torch.remainder(lonlat[:, 0] + math.pi, 2 * math.pi) - math.pi
    times = torch.tensor(times, dtype=torch.float64)
    pooled = frame_fixation_indices(times, frames, fps)
    maps = fixation_map([lonlat[i] for i in pooled], hw, sigma_deg=12.0)
    write_saliency_sample(root, name, saliency=maps, fixations=lonlat, times=times)
    return maps


def test_videos_are_scored_on_every_frame(tmp_path):
    frames, fps = 6, 2.0  # windows of 0.2 s do not reach the neighbouring frames
    gt, shifted, preds = tmp_path / "gt", tmp_path / "shifted", tmp_path / "pred"
    preds.mkdir()
    maps = _video_item(gt, "clip", frames, fps)
    _video_item(shifted, "clip", frames, fps, shift_deg=105.0)
    np.save(preds / "clip.npy", maps[:, 0].numpy())  # the true maps as the prediction
    scores = {}
    for name, root in (("same", gt), ("shifted", shifted)):
        out_dir = tmp_path / f"out_{name}"
        out_dir.mkdir()
        code, out, err = run_cli("eval", "saliency", "--pred", str(preds), "--gt", str(root),
                             "--fps", str(fps), "--out", str(out_dir), "-q")  # fmt: skip
        assert code == 0, err
        assert f"1 video(s) of {frames} frames" in out and "per frame: mean ± std" in out
        doc = json.loads((out_dir / "saliency_eval.json").read_text())
        assert doc["frames"] == {"clip": frames} and len(doc["per_frame"]["clip"]) == frames
        scores[name] = doc
    same, moved = scores["same"], scores["shifted"]
    assert same["summary"]["cc"]["mean"] == pytest.approx(1.0, abs=1e-9)
    assert moved["summary_per_frame"]["cc"]["n"] == frames
    # Frames 1 to 5 of the ground truth moved 105 degrees: their scores fall, frame 0's not.
    for metric in ("cc", "nss", "auc_judd"):
        assert moved["summary"][metric]["mean"] < same["summary"][metric]["mean"] - 0.1, metric
        first = [doc["per_frame"]["clip"][0][metric] for doc in (same, moved)]
        assert first[0] == pytest.approx(first[1], abs=1e-9)
    # A frame count that does not match, and no frame rate, are errors.
    np.save(preds / "clip.npy", maps[:4, 0].numpy())
    code, _, err = run_cli("eval", "saliency", "--pred", str(preds), "--gt", str(gt), "--fps", "10",
                       "--out", str(tmp_path), "-q")  # fmt: skip
    assert code == 2 and "has 4 frame(s)" in err and err.count("\n") == 1
    np.save(preds / "clip.npy", maps[:, 0].numpy())
    code, _, err = run_cli("eval", "saliency", "--pred", str(preds), "--gt", str(gt),
                       "--out", str(tmp_path), "-q")  # fmt: skip
    assert code == 2 and "give --fps" in err
    assert not list(tmp_path.glob("saliency_eval.*"))


def test_a_missing_prediction_stops_or_is_listed(dataset, tmp_path):
    gt, preds = dataset
    partial = tmp_path / "partial"
    partial.mkdir()
    names = SaliencyFolder(gt).names
    for name in names[1:]:
        (partial / f"{name}_saliency.npy").write_bytes(
            (preds["uniform"] / f"{name}_saliency.npy").read_bytes()
        )
    code, _, err = run_cli("eval", "saliency", "--pred", str(partial), "--gt", str(gt),
                       "--out", str(tmp_path), "-q")  # fmt: skip
    assert code == 2 and err.count("\n") == 1
    assert f"for 1 of 4 ground-truth item(s): {names[0]}" in err and "--allow-missing" in err
    assert not list(tmp_path.glob("saliency_eval.*"))
    code, out, err = run_cli("eval", "saliency", "--pred", str(partial), "--gt", str(gt),
                         "--out", str(tmp_path), "-q", "--allow-missing")  # fmt: skip
    assert code == 0, err
    assert "3 image(s)" in out and "missing predictions: 1 of 4 ground-truth item(s)" in out
    assert names[0] in out.split("missing predictions")[1]
    doc = json.loads((tmp_path / "saliency_eval.json").read_text())
    assert doc["missing_predictions"] == [names[0]] and sorted(doc["per_item"]) == names[1:]
    rows = list(csv.DictReader((tmp_path / "saliency_eval.csv").open()))
    assert [r["name"] for r in rows] == [*names[1:], names[0]] and rows[-1]["cc"] == ""


def test_switches_that_cannot_apply_are_errors(dataset, tmp_path):
    gt, preds = dataset
    sample = SaliencyFolder(gt)[0]
    only_fix, untimed = tmp_path / "only_fix", tmp_path / "untimed"
    write_saliency_sample(only_fix, sample.name, fixations=sample.fixations)
    code, _, err = run_cli("eval", "saliency", "--pred", str(preds["spectral"]),
                           "--gt", str(only_fix), "--preset", "salient360-2018", "--allow-missing",
                           "--out", str(tmp_path), "-q")  # fmt: skip
    assert code == 2 and "--no-average-with-gt" in err and err.count("\n") == 1
    code, _, err = run_cli("eval", "saliency", "--pred", str(preds["spectral"]),
                           "--gt", str(only_fix), "--preset", "salient360-2018", "--allow-missing",
                           "--no-average-with-gt", "--out", str(tmp_path), "-q")  # fmt: skip
    assert code == 0, err
    # A video whose fixation file has no times cannot be pooled per frame.
    video = torch.rand(3, 1, 16, 32)
    write_saliency_sample(untimed, "clip", saliency=video, fixations=sample.fixations)
    preds_video = tmp_path / "pv"
    preds_video.mkdir()
    np.save(preds_video / "clip.npy", video[:, 0].numpy())
    code, _, err = run_cli("eval", "saliency", "--pred", str(preds_video), "--gt", str(untimed),
                       "--fps", "2", "--out", str(tmp_path), "-q", "--overwrite")  # fmt: skip
    assert code == 2 and "lon,lat,t" in err


def test_one_item_says_the_shuffled_auc_is_left_out(dataset, tmp_path):
    gt, preds = dataset
    one = tmp_path / "one"
    sample = SaliencyFolder(gt)[2]
    write_saliency_sample(one, sample.name, saliency=sample.saliency, fixations=sample.fixations)
    code, out, err = run_cli("eval", "saliency", "--pred", str(preds["spectral"]), "--gt", str(one),
                         "--out", str(tmp_path), "-q", "--allow-missing")  # fmt: skip
    assert code == 0, err
    assert "auc_shuffled: not computed" in out and "| auc_shuffled |" not in out
    doc = json.loads((tmp_path / "saliency_eval.json").read_text())
    assert "auc_shuffled" in doc["not_computed"] and "auc_shuffled" not in doc["summary"]


def test_docs_cli_describes_every_option_and_preset():
    """docs/cli.md names every option of `eval saliency`, and its preset table gives each
    preset's fixation placement and averaging as the code has them."""
    import re
    from pathlib import Path

    import typer.main

    from pano360.cli._eval_saliency import eval_saliency
    from pano360.saliency import PRESETS, list_presets

    doc = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    section = doc[doc.index("### `pano360 eval saliency") : doc.index("### `pano360 eval faces`")]
    app = typer.Typer(add_completion=False)
    app.command()(eval_saliency)
    for param in typer.main.get_command(app).params:
        for option in param.opts + param.secondary_opts:
            if option in ("--overwrite", "--quiet"):  # one rule for every command
                assert f"`{option}" in doc, option
            elif option.startswith("--") and option != "--help":
                assert f"`{option}" in section or f"/{option}" in section, option
    for name in list_presets():
        row = re.search(
            rf"^\s*\| `{re.escape(name)}`( \(default\))? +\|[^|]+\| `(\w+)` +\| (\w+)",
            section,
            re.M,
        )
        assert row is not None, name
        placement, averaged = row.group(2), row.group(3) == "yes"
        assert (placement, averaged) == (
            PRESETS[name].fixation_placement,
            PRESETS[name].average_with_gt,
        ), name
