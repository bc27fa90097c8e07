"""``pano360 eval saliency``: score predicted saliency maps against ground truth.

Its help lists the metric presets, so this module imports :mod:`pano360.saliency` (and torch).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from pathlib import Path
from typing import Annotated

import torch
import typer

from .._core import DatasetFormatError, ImageIOError, ValueRangeError, check_choice
from ..data import (
    SaliencyFolder,
    read_fixations_csv,
)
from ..geometry import resize_erp
from ..io import read_saliency_maps, video_info, write_images
from ..saliency import (
    FIXATION_PLACEMENTS,
    METRICS,
    PRESETS,
    MetricConfig,
    compute_metrics,
    frame_fixation_indices,
    list_presets,
)
from ._options import Overwrite, Quiet
from ._outputs import prepare_out_dir, prepare_outputs, progress, say_done

__all__ = ["eval_saliency"]

# What a prediction may be, most precise first: of two with one NAME the first kind wins.
_PRED_KINDS = (".npy", ".npz", "folder", ".png")


def _predictions(folder: Path) -> dict[str, Path]:
    """NAME -> predicted maps: ``NAME.npy`` (float32 or float16), ``NAME.npz`` (compressed),
    a folder ``NAME/`` of PNG frames, or ``NAME.png``, in every format ``pano360 saliency
    --map-format`` writes; ``NAME_saliency.*`` (its names) counts as NAME. Of several for one
    NAME the most precise wins (in that order)."""
    if not folder.is_dir():
        raise ImageIOError(f"--pred '{folder}' is not a directory")
    found: dict[str, tuple[int, Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir():
            if not any(p.suffix.lower() == ".png" for p in path.iterdir()):
                continue
            kind, name = "folder", path.name
        else:
            kind, name = path.suffix.lower(), path.stem
            if kind not in _PRED_KINDS:
                continue
        name = name.removesuffix("_saliency")
        rank = _PRED_KINDS.index(kind)
        if name not in found or rank < found[name][0]:
            found[name] = (rank, path)
    return {name: path for name, (_, path) in found.items()}


def _fit(pred: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    # Predictions at another resolution are resampled to the ground truth's on the sphere
    # (area averages when smaller, bilinear when larger).
    return resize_erp(pred, hw)


def _stats(values: list[float]) -> dict[str, float]:
    """Mean, population std and count of finite values (NaN-free by construction)."""
    t = torch.tensor(values, dtype=torch.float64)
    std = float(t.std(unbiased=False)) if len(values) > 1 else 0.0
    return {"mean": float(t.mean()), "std": std, "n": len(values)}


def _cell(s: dict[str, float] | None) -> str:
    return "" if s is None else f"{s['mean']:.4f} ± {s['std']:.4f} ({s['n']})"


def _summary_table(
    summary: dict[str, dict],
    per_frame: dict[str, dict] | None,
    header: str,
    notes: list[str],
) -> str:
    lines = [header, *notes, ""]
    if per_frame is None:
        lines += ["| metric | mean ± std (n) |", "|---|---:|"]
        lines += [f"| {m} | {_cell(s)} |" for m, s in summary.items()]
    else:
        lines += [
            "| metric | per item: mean ± std (n) | per frame: mean ± std (n) |",
            "|---|---:|---:|",
        ]
        lines += [f"| {m} | {_cell(s)} | {_cell(per_frame.get(m))} |" for m, s in summary.items()]
    return "\n".join(lines)


_MAP_METRICS = ("cc", "sim", "kld")
_FIXATION_METRICS = ("auc_judd", "auc_borji", "auc_shuffled", "nss")
_PLACEMENT_NOTES = {
    "cell": "fixations in the pixel whose cell holds them (--fixation-placement cell)",
    "salient360": "fixations where the Salient360! tools place them: column int(u W - 1), row "
    "int(v H - 1) (--fixation-placement salient360)",
}


def _video_fps(item: str, sample, fps: float | None) -> float:
    """The frame rate of an item's maps: --fps, else its video's in --gt."""
    if fps is not None:
        return fps
    if sample.video is None:
        raise DatasetFormatError(
            f"--gt item {item!r} is a video with timed fixations but --gt has no "
            f"videos/{item}.*: give --fps, the frame rate of its maps"
        )
    return video_info(sample.video).fps


def _score_item(
    p: torch.Tensor,
    gt_map: torch.Tensor | None,
    frame_fix: list[torch.Tensor] | None,
    others: torch.Tensor | None,
    config: MetricConfig,
) -> tuple[list[dict[str, float]], dict[str, int]]:
    """Every metric on every frame (T, 1, H, W) of one item: one dict per frame, and how many
    frames each group of metrics left out (no fixations, an all-zero ground-truth map)."""
    t = p.shape[0]
    rows: list[dict[str, float]] = [{} for _ in range(t)]
    skipped = {}
    if gt_map is not None:
        keep = [k for k in range(t) if float(gt_map[k].amax()) > 0]
        skipped["map"] = t - len(keep)
        if keep:
            out = compute_metrics(p[keep], gt_map[keep], preset=config, metrics=_MAP_METRICS)
            for m, v in out.items():
                for i, k in enumerate(keep):
                    rows[k][m] = float(v[i])
    if frame_fix is not None:
        keep = [k for k in range(t) if frame_fix[k].shape[0] > 0]
        skipped["fixations"] = t - len(keep)
        metrics = [m for m in _FIXATION_METRICS if m != "auc_shuffled" or others is not None]
        if keep:
            out = compute_metrics(
                p[keep],
                gt_map[keep] if gt_map is not None else None,
                [frame_fix[k] for k in keep],
                preset=config,
                metrics=metrics,
                other_fixations=[others] * len(keep) if others is not None else None,
            )
            for m, v in out.items():
                for i, k in enumerate(keep):
                    rows[k][m] = float(v[i])
    return rows, skipped


def eval_saliency(
    pred: Annotated[
        Path,
        typer.Option(
            "--pred",
            metavar="DIR",
            help="Predicted maps: NAME.npy (float32 or float16; (T, H, W) for a video), "
            "NAME.npz (compressed), a folder NAME/ of PNG frames (8 or 16 bits), or NAME.png: "
            "every --map-format of 'pano360 saliency' (whose NAME_saliency.* counts as NAME).",
        ),
    ],
    gt: Annotated[
        Path,
        typer.Option(
            "--gt",
            metavar="DIR",
            help="Ground truth in pano360's folder format (maps/NAME.npy|png, "
            "fixations/NAME.csv; see docs/saliency-data.md).",
        ),
    ],
    fixations: Annotated[
        Path | None,
        typer.Option(
            "--fixations",
            metavar="DIR",
            help="Fixation CSV files NAME.csv (lon, lat in degrees; t in seconds for videos), "
            "if not in --gt.",
        ),
    ] = None,
    preset: Annotated[
        str,
        typer.Option(
            "--preset",
            metavar="[" + "|".join(list_presets()) + "]",
            help="Metric conventions (docs/saliency-metrics.md); 'sphere' weights every pixel "
            "by its solid angle.",
        ),
    ] = "sphere",
    fixation_placement: Annotated[
        str | None,
        typer.Option(
            "--fixation-placement",
            metavar="[" + "|".join(FIXATION_PLACEMENTS) + "]",
            help="Pixel of each fixation: 'cell' (the pixel holding it) or 'salient360' (the "
            "Salient360! tools' int(u W - 1), int(v H - 1)).  [default: the preset's]",
            show_default=False,
        ),
    ] = None,
    average_with_gt: Annotated[
        bool | None,
        typer.Option(
            "--average-with-gt/--no-average-with-gt",
            help="Report NSS and the AUCs as the mean of the prediction's and the ground-truth "
            "map's own score, as the Salient360! 2018 main script and the toolbox's "
            "compareSaliency do.  [default: the preset's]",
            show_default=False,
        ),
    ] = None,
    fps: Annotated[
        float | None,
        typer.Option(
            "--fps",
            metavar="F",
            help="Frame rate of video maps, to pool each frame's fixations by time.  "
            "[default: the frame rate of videos/NAME.* in --gt]",
            show_default=False,
        ),
    ] = None,
    window: Annotated[
        float,
        typer.Option(
            "--window",
            metavar="S",
            help="Seconds of fixations each video frame pools, centred on the frame.",
        ),
    ] = 0.2,
    allow_missing: Annotated[
        bool,
        typer.Option(
            "--allow-missing",
            help="Score the ground-truth items that have a prediction and list the others, "
            "instead of stopping.",
        ),
    ] = False,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Folder for saliency_eval.json and .csv; created if missing.",
        ),
    ] = Path("."),
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Score predicted saliency maps against ground-truth maps and fixations.

    Each metric is computed per map under --preset. Metrics that need maps (CC, SIM, KLD) or
    fixations (AUC-Judd, AUC-Borji, NSS; shuffled AUC with the other items' fixations) run
    where those exist. A video (a (T, H, W) map) is scored on every frame, each frame against
    the fixations whose time overlaps a --window centred on it; the table then gives mean ±
    std over items (a video counts once, as the mean of its frames) and over all frames.
    Every ground-truth item needs a prediction (or --allow-missing). Predictions of another
    size are resampled to the ground truth's size.

    \b
    Examples:
      pano360 eval saliency --pred preds/ --gt dataset/
      pano360 eval saliency --pred preds/ --gt dataset/ --preset salient360-2018 --out results/
      pano360 eval saliency --pred preds/ --gt videos/ --fps 30 --allow-missing
    """
    check_choice(preset, "--preset", list_presets())
    config = PRESETS[preset]
    if fixation_placement is not None:
        check_choice(fixation_placement, "--fixation-placement", FIXATION_PLACEMENTS)
        config = dataclasses.replace(config, fixation_placement=fixation_placement)
    if average_with_gt is not None:
        config = dataclasses.replace(config, average_with_gt=average_with_gt)
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise ValueRangeError(f"--fps must be a positive number of frames per second, got {fps:g}")
    if not (math.isfinite(window) and window > 0):
        raise ValueRangeError(f"--window must be a positive number of seconds, got {window:g}")
    prepare_out_dir(out)
    json_path, csv_path = out / "saliency_eval.json", out / "saliency_eval.csv"
    prepare_outputs(
        [("--out", json_path, False), ("--out", csv_path, False)], [], overwrite=overwrite
    )
    predictions = _predictions(pred)
    truth = SaliencyFolder(gt)
    fix_files = {}
    if fixations is not None:
        if not fixations.is_dir():
            raise ImageIOError(f"--fixations '{fixations}' is not a directory")
        fix_files = {p.stem: p for p in sorted(fixations.glob("*.csv"))}
    # Ground-truth items: the names with a map or fixations (an image alone is no ground truth).
    samples = {}
    for name in truth.names:
        sample = truth[name]
        fix, times = sample.fixations, sample.times
        if name in fix_files:
            fix, times = read_fixations_csv(fix_files[name])
        if sample.saliency is None and fix is None:
            continue
        samples[name] = (sample, fix, times)
    if not samples:
        raise DatasetFormatError(f"--gt '{gt}' has no maps or fixations")
    missing = [n for n in samples if n not in predictions]
    names = [n for n in samples if n in predictions]
    if not names:
        raise DatasetFormatError(
            f"no prediction in --pred '{pred}' matches a name in --gt '{gt}' "
            f"(predictions: {sorted(predictions)[:5]}, ground truth: {list(samples)[:5]})"
        )
    if missing and not allow_missing:
        shown = ", ".join(missing[:10]) + (", ..." if len(missing) > 10 else "")
        raise DatasetFormatError(
            f"no prediction in --pred '{pred}' for {len(missing)} of {len(samples)} "
            f"ground-truth item(s): {shown} (--allow-missing scores the others and lists these)"
        )
    if config.average_with_gt:
        unmapped = [
            n for n in names if samples[n][0].saliency is None and samples[n][1] is not None
        ]
        if unmapped:
            raise DatasetFormatError(
                f"--preset {preset} reports NSS and the AUCs averaged with the ground-truth "
                f"map's own score, but item {unmapped[0]!r} has no map in --gt; use "
                "--no-average-with-gt"
            )
    per_item: dict[str, dict[str, float]] = {}
    per_frame: dict[str, list[dict[str, float]]] = {}
    skipped: dict[str, dict[str, int]] = {}
    frames: dict[str, int] = {}
    for name in progress(names, quiet=quiet, desc="eval saliency", unit="item"):
        sample, fix, times = samples[name]
        gt_map = sample.saliency
        hw = tuple(gt_map.shape[-2:]) if gt_map is not None else None
        p = read_saliency_maps(predictions[name]).double()
        if hw is None:
            hw = tuple(p.shape[-2:])
        p = _fit(p, hw)
        t = p.shape[0]
        if gt_map is not None and gt_map.shape[0] != t:
            raise DatasetFormatError(
                f"prediction '{predictions[name]}' has {t} frame(s) but the ground-truth map of "
                f"{name!r} has {gt_map.shape[0]}"
            )
        frame_fix = None
        if fix is not None and t == 1:
            frame_fix = [fix]
        elif fix is not None:
            if times is None:
                raise DatasetFormatError(
                    f"the fixations of video {name!r} have no times: a video's fixation file "
                    "needs the header lon,lat,t"
                )
            rate = _video_fps(name, sample, fps)
            pooled = frame_fixation_indices(times, t, rate, window_s=window)
            frame_fix = [fix[idx] for idx in pooled]
        others = [samples[n][1] for n in names if n != name and samples[n][1] is not None]
        rows, skipped[name] = _score_item(
            p,
            gt_map.double() if gt_map is not None else None,
            frame_fix,
            torch.cat(others) if others and fix is not None else None,
            config,
        )
        frames[name] = t
        per_frame[name] = rows
        per_item[name] = {
            m: float(torch.tensor([r[m] for r in rows if m in r], dtype=torch.float64).mean())
            for m in METRICS
            if any(m in r for r in rows)
        }
    metrics = [m for m in METRICS if any(m in r for r in per_item.values())]
    summary = {m: _stats([r[m] for r in per_item.values() if m in r]) for m in metrics}
    videos = [n for n in names if frames[n] > 1]
    frame_summary = None
    if videos:
        frame_summary = {
            m: _stats([r[m] for n in names for r in per_frame[n] if m in r]) for m in metrics
        }
    not_computed = {}
    if len(names) == 1 and any(samples[n][1] is not None for n in names):
        not_computed["auc_shuffled"] = (
            "needs the fixations of other items as negatives; there is only one item"
        )
    if videos:
        total = sum(frames[n] for n in videos)
        header = (
            f"{len(names)} item(s) ({len(names) - len(videos)} image(s), {len(videos)} video(s) "
            f"of {total} frames), preset {preset!r}: mean ± std over items (a video counts "
            "once, as the mean of its frames) and over frames (an image is one frame)"
        )
    else:
        header = f"{len(names)} image(s), preset {preset!r}: mean ± std over images"
    notes = [_PLACEMENT_NOTES[config.fixation_placement] + "."]
    if config.average_with_gt:
        notes.append(
            "NSS and AUCs: the mean of the prediction's and the ground-truth map's own score "
            "(--no-average-with-gt for the prediction alone)."
        )
    if videos:
        notes.append(
            f"video frames pool the fixations overlapping a {window:g} s window centred on "
            "each frame (--window)."
        )
        left = [n for n in videos if any(skipped[n].values())]
        if left:
            notes.append(
                "frames left out of the metrics that need them (no fixation in the window / "
                "an all-zero ground-truth map): "
                + ", ".join(
                    f"{n} {skipped[n].get('fixations', 0)} / {skipped[n].get('map', 0)} of "
                    f"{frames[n]}"
                    for n in left
                )
                + "."
            )
    for m, why in not_computed.items():
        notes.append(f"{m}: not computed ({why}).")
    if missing:
        notes.append(
            f"missing predictions: {len(missing)} of {len(samples)} ground-truth item(s) not "
            f"scored (--allow-missing): {', '.join(missing)}."
        )
    table = _summary_table(summary, frame_summary, header, notes)
    typer.echo(table)
    doc = {
        "preset": preset,
        "settings": {
            "fixation_placement": config.fixation_placement,
            "average_with_gt": config.average_with_gt,
            "window_s": window,
            "fps": fps,
        },
        "pred": str(pred),
        "gt": str(gt),
        "summary": summary,
        "summary_per_frame": frame_summary,
        "per_item": per_item,
        "per_frame": {n: per_frame[n] for n in videos},
        "frames": frames,
        "frames_left_out": {n: skipped[n] for n in videos},
        "missing_predictions": missing,
        "not_computed": not_computed,
    }
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", "frames", *metrics])
    for name in names:
        row = per_item[name]
        writer.writerow(
            [name, frames[name], *(f"{row[m]:.6g}" if m in row else "" for m in metrics)]
        )
    for name in missing:
        writer.writerow([name, "", *("" for _ in metrics)])
    write_images(
        {json_path: json.dumps(doc, indent=2) + "\n", csv_path: buffer.getvalue()},
        overwrite=overwrite,
    )
    say_done(f"wrote {json_path} and {csv_path}", quiet=quiet)
