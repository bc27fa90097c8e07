"""``pano360 eval``: evaluation commands (saliency maps, 360° face detection)."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path
from typing import Annotated

import torch
import typer
from tqdm import tqdm

from .._core import (
    DatasetFormatError,
    ImageIOError,
    ValueRangeError,
    check_choice,
)
from ..data import (
    SaliencyFolder,
    SceneConfig,
    SyntheticFaceScenes,
    read_fixations_csv,
    read_saliency_map,
)
from ..detection import detect_faces, evaluate_faces, load_pnet_students
from ..geometry import resize_erp
from ..io import write_images
from ..saliency import METRICS, compute_metrics, list_presets
from ..transfer import LAT_BANDS, build_spherical, layer_rmse, model_stack
from ._options import Overwrite, Quiet, check_outputs, parse_size

__all__ = ["eval_app"]

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

eval_app = typer.Typer(
    name="eval",
    help="Evaluate predictions against ground truth and print a table (also JSON and CSV).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings=_CONTEXT,
)

_PRED_SUFFIXES = (".npy", ".png")


def _predictions(folder: Path) -> dict[str, Path]:
    """NAME -> map file; ``NAME_saliency.npy`` (what ``pano360 saliency`` writes) counts as NAME.
    A .npy file wins over a .png of the same name (full precision)."""
    if not folder.is_dir():
        raise ImageIOError(f"--pred '{folder}' is not a directory")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in _PRED_SUFFIXES or path.name.startswith("."):
            continue
        name = path.stem.removesuffix("_saliency")
        if name not in found or path.suffix.lower() == ".npy":
            found[name] = path
    return found


def _fit(pred: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    # Predictions at another resolution are resampled to the ground truth's on the sphere
    # (area averages when smaller, bilinear when larger).
    return resize_erp(pred, hw)


def _summary_table(names: list[str], rows: list[dict[str, float]], preset: str) -> str:
    metrics = [m for m in METRICS if any(m in r for r in rows)]
    lines = [f"{len(names)} map(s), preset {preset!r}: mean ± std over maps", ""]
    lines.append("| metric | mean ± std |")
    lines.append("|---|---:|")
    for m in metrics:
        values = torch.tensor([r[m] for r in rows if m in r], dtype=torch.float64)
        std = float(values.std(unbiased=False)) if len(values) > 1 else 0.0
        lines.append(f"| {m} | {float(values.mean()):.4f} ± {std:.4f} |")
    return "\n".join(lines)


@eval_app.command("saliency", context_settings=_CONTEXT)
def eval_saliency(
    pred: Annotated[
        Path,
        typer.Option(
            "--pred",
            metavar="DIR",
            help="Predicted maps: NAME.npy or NAME.png (NAME_saliency.npy as written by "
            "'pano360 saliency' also counts as NAME).",
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
            help="Fixation CSV files NAME.csv (lon, lat in degrees), if not in --gt.",
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
    out: Annotated[
        Path,
        typer.Option("--out", metavar="DIR", help="Folder for saliency_eval.json and .csv."),
    ] = Path("."),
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Score predicted saliency maps against ground-truth maps and fixations.

    Each metric is computed per map under --preset; the table gives mean ± std over maps (as in
    the ICCV'21 paper's Table 1). Metrics that need maps (CC, SIM, KLD) or fixations (AUC-Judd,
    AUC-Borji, NSS; shuffled AUC with the other images' fixations) run where those exist.
    Predictions of another size are resampled to the ground truth's size.

    \b
    Examples:
      pano360 eval saliency --pred preds/ --gt dataset/
      pano360 eval saliency --pred preds/ --gt dataset/ --preset salient360-2018 --out results/
    """
    check_choice(preset, "--preset", list_presets())
    json_path, csv_path = out / "saliency_eval.json", out / "saliency_eval.csv"
    if not out.is_dir():
        raise ImageIOError(f"--out '{out}' is not a directory")
    check_outputs(
        [("--out", json_path, False), ("--out", csv_path, False)], [], overwrite=overwrite
    )
    predictions = _predictions(pred)
    truth = SaliencyFolder(gt)
    fix_files = {}
    if fixations is not None:
        if not fixations.is_dir():
            raise ImageIOError(f"--fixations '{fixations}' is not a directory")
        fix_files = {p.stem: p for p in sorted(fixations.glob("*.csv"))}
    names = [n for n in truth.names if n in predictions]
    if not names:
        raise DatasetFormatError(
            f"no prediction in --pred '{pred}' matches a name in --gt '{gt}' "
            f"(predictions: {sorted(predictions)[:5]}, ground truth: {truth.names[:5]})"
        )
    samples = {}
    for name in names:
        sample = truth[name]
        fix = sample.fixations
        if name in fix_files:
            fix = read_fixations_csv(fix_files[name])[0]
        if sample.saliency is None and fix is None:
            continue
        samples[name] = (sample.saliency, fix)
    if not samples:
        raise DatasetFormatError(f"--gt '{gt}' has no maps or fixations for the predictions")
    rows: list[dict[str, float]] = []
    for name in tqdm(list(samples), desc="eval saliency", unit="map", disable=quiet):
        gt_map, fix = samples[name]
        hw = tuple(gt_map.shape[-2:]) if gt_map is not None else None
        p = read_saliency_map(predictions[name])[:1].double()
        if hw is None:
            hw = tuple(p.shape[-2:])
        p = _fit(p, hw)
        others = [f for n, (_, f) in samples.items() if n != name and f is not None]
        result = compute_metrics(
            p,
            gt_map[:1].double() if gt_map is not None else None,
            [fix] if fix is not None else None,
            preset=preset,
            other_fixations=[torch.cat(others)] if fix is not None and others else None,
        )
        rows.append({m: float(v[0]) for m, v in result.items()})
    table = _summary_table(list(samples), rows, preset)
    typer.echo(table)
    summary = {}
    for m in METRICS:
        values = [r[m] for r in rows if m in r and math.isfinite(r[m])]
        if values:
            t = torch.tensor(values, dtype=torch.float64)
            std = float(t.std(unbiased=False)) if len(values) > 1 else 0.0
            summary[m] = {"mean": float(t.mean()), "std": std, "n": len(values)}
    doc = {
        "preset": preset,
        "pred": str(pred),
        "gt": str(gt),
        "summary": summary,
        "per_map": dict(zip(samples, rows, strict=True)),
    }
    buffer = io.StringIO()
    columns = [m for m in METRICS if any(m in r for r in rows)]
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", *columns])
    for name, row in zip(samples, rows, strict=True):
        writer.writerow([name, *(f"{row[m]:.6g}" if m in row else "" for m in columns)])
    write_images(
        {json_path: json.dumps(doc, indent=2) + "\n", csv_path: buffer.getvalue()},
        overwrite=overwrite,
    )
    typer.echo(f"wrote {json_path} and {csv_path}")


_FACE_STRATEGIES = ("direct", "cubemap", "multiview", "exact", "spherical")


@eval_app.command("faces", context_settings=_CONTEXT)
def eval_faces(
    scenes: Annotated[
        int, typer.Option("--scenes", metavar="N", help="Number of synthetic scenes.")
    ] = 20,
    seed: Annotated[
        int, typer.Option("--seed", metavar="S", help="Seed of the scenes (scene i: (S, i)).")
    ] = 0,
    strategies: Annotated[
        str,
        typer.Option(
            "--strategies",
            metavar="LIST",
            help="Comma-separated strategies to compare: " + ", ".join(_FACE_STRATEGIES) + ".",
        ),
    ] = ",".join(_FACE_STRATEGIES),
    size: Annotated[
        str, typer.Option("--size", metavar="WxH", help="Size of the scenes (2:1).")
    ] = "1024x512",
    students: Annotated[
        Path | None,
        typer.Option(
            "--students",
            metavar="DIR",
            help="A folder of finished 'pano360 distill --model mtcnn_pnet' runs, one per "
            "pyramid level: adds the 'distilled' strategy, and the per-layer RMSE of the "
            "student trained at --rmse-size next to the zero-shot spherical P-Net's.",
        ),
    ] = None,
    rmse_size: Annotated[
        str | None,
        typer.Option(
            "--rmse-size",
            metavar="WxH",
            help="ERP size for the per-layer RMSE of P-Net (with --students: a student's "
            "size).  [default: 256x128, with --students the student's size nearest to it]",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path,
        typer.Option("--out", metavar="DIR", help="Folder for faces_eval.json and .md."),
    ] = Path("."),
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Compare the strategies of 360° face detection on synthetic scenes, per latitude band.

    Scenes (pano360.data.synthetic) hold faces 8-25 degrees wide at every latitude up to 85
    degrees, with known spherical boxes. For each strategy the table gives recall (R),
    precision (P) and average precision (AP) at spherical IoU 0.5, in percent, for |lat| in
    0-30, 30-60 and 60-85 degrees, and the median seconds per image. A second table gives the
    per-layer RMSE of P-Net run on the sphere against its exact (tangent-plane) outputs.

    \b
    Examples:
      pano360 eval faces --scenes 50 --seed 7
      pano360 eval faces --strategies direct,spherical --students runs/ --out results/
    """
    names = [s.strip() for s in strategies.split(",") if s.strip()]
    for name in names:
        check_choice(name, "--strategies", _FACE_STRATEGIES)
    if not names:
        raise ValueRangeError("--strategies is empty")
    if scenes < 1:
        raise ValueRangeError(f"--scenes must be >= 1, got {scenes}")
    if seed < 0:
        raise ValueRangeError(f"--seed must be >= 0, got {seed}")
    hw = parse_size(size, erp=True)
    rmse_hw = parse_size(rmse_size, "--rmse-size", erp=True) if rmse_size else (128, 256)
    if not out.is_dir():
        raise ImageIOError(f"--out '{out}' is not a directory")
    json_path, md_path = out / "faces_eval.json", out / "faces_eval.md"
    check_outputs([("--out", json_path, False), ("--out", md_path, False)], [], overwrite=overwrite)
    stack = model_stack("mtcnn_pnet")
    trained = load_pnet_students(students) if students is not None else {}
    if students is not None:
        names.append("distilled")
        if rmse_size is None:
            rmse_hw = min(trained, key=lambda hw: abs(hw[0] - 128))
        if rmse_hw not in trained:
            sizes = ", ".join(f"{w}x{h}" for h, w in sorted(trained))
            raise ValueRangeError(f"--rmse-size must be the size of a student ({sizes})")

    data = SyntheticFaceScenes(scenes, seed=seed, config=SceneConfig(erp_hw=hw))
    detectors = {
        name: (lambda erp, s=name: detect_faces(erp, s, students=trained or None)) for name in names
    }
    bar = (
        (lambda it: tqdm(it, total=scenes, desc="eval faces", unit="scene")) if not quiet else None
    )
    with torch.inference_mode():
        result = evaluate_faces(((s.erp, s.face_bfov) for s in data), detectors, progress=bar)
        erps = torch.stack([resize_erp(data[i].erp[None], rmse_hw)[0] for i in range(scenes)])
        models = {"spherical (zero-shot)": build_spherical(stack, rmse_hw)}
        if trained:
            models["distilled"] = trained[rmse_hw]
        rmse = {name: layer_rmse(m, stack, erps) for name, m in models.items()}
    table = result.to_markdown()
    layer_names = [n for n, _ in stack.named_children()]
    rmse_lines = [
        f"Per-layer RMSE against exact at {rmse_hw[1]}x{rmse_hw[0]}, by |lat| band (degrees):",
        "",
        "| model | layer | "
        + " | ".join(f"{math.degrees(lo):.0f}-{math.degrees(hi):.0f}" for lo, hi in LAT_BANDS)
        + " |",
        "|---|---" + "|---:" * len(LAT_BANDS) + "|",
    ]
    for name, per_layer in rmse.items():
        for layer, bands in per_layer.items():
            cells = " | ".join(f"{v:.4f}" for v in bands.values())
            rmse_lines.append(f"| {name} | {layer_names[layer]} | {cells} |")
    report = "\n".join([table, "", *rmse_lines])
    typer.echo(report)
    doc = result.to_dict()
    doc.update(
        {
            "scenes": {"n": scenes, "seed": seed, "size": [hw[1], hw[0]]},
            "command": "pano360 eval faces " + " ".join(sys.argv[2:] if len(sys.argv) > 2 else []),
            "layer_rmse": {
                "erp_size": [rmse_hw[1], rmse_hw[0]],
                "bands_deg": [[math.degrees(lo), math.degrees(hi)] for lo, hi in LAT_BANDS],
                "models": {
                    name: {layer_names[k]: list(v.values()) for k, v in per_layer.items()}
                    for name, per_layer in rmse.items()
                },
            },
        }
    )
    write_images(
        {json_path: json.dumps(doc, indent=2) + "\n", md_path: report + "\n"},
        overwrite=overwrite,
    )
    typer.echo(f"wrote {json_path} and {md_path}")
