"""A deep ImageNet network on 360° images: every transfer strategy against its exact outputs.

The pretrained MobileNetV2 (``pano360.models``, torchvision's ImageNet weights) on synthetic
"spherical ImageNet" scenes (``pano360.transfer.object_scenes``: six public-domain photos per
panorama, two per |lat| band, 40-55 degrees wide) from seeds nothing was trained or tuned on.
Exact (SphConv's reference) is the network on the tangent-plane view around every output
location of a stage (``pano360.transfer.exact_features``); every map is on the network's own
grid (``stage_grid``: output (i, j) of stride s on input pixel (s i, s j)). Two measurements:

- at --size (default 448 x 224), on --rmse-scenes: per stage the RMSE of direct, cubemap,
  multiview (a rig covering the whole sphere), spherical (zero-shot) and distilled against
  exact, divided by exact's standard deviation, by |lat| band; seconds per image of the last
  stage, exact timed afresh on --timing-scenes, and the ratios the deep-network issue asks for;
- at --class-size (default 896 x 448, where the photos are 4-5 cells of the stride-32 map
  wide), on --scenes: every photo's classification from the last stage (its region averaged,
  then the classifier) against exact's classification of the photo (the network on its own
  tangent-plane view): top-1 agreement and top-5 overlap.

A distilled student is made for one ERP size, so --distill N trains one per size (or reads
them from --students DIR). Writes docs/transfer.md's "deep network" section and
docs/figures/deep_transfer_rmse.png unless --no-write or --quick.

    .venv/bin/python benchmarks/bench_deep_transfer.py [--scenes 16] [--cache DIR]
        [--distill 4 --students DIR]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import time
from pathlib import Path

import torch
from _common import ROOT, machine_info, write_section

from pano360.models import create_model
from pano360.transfer import (
    BackboneDistillConfig,
    backbone_runners,
    distill_backbone,
    evaluate_backbone,
    exact_features,
    load_backbone_student,
    object_scenes,
    stage_patch_size,
)

TRANSFER_DOC = ROOT / "docs" / "transfer.md"
FIGURE = ROOT / "docs" / "figures" / "deep_transfer_rmse.png"


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=16, help="scenes of the classification")
    parser.add_argument("--seed", type=int, default=2027, help="seed of the scenes")
    parser.add_argument("--size", type=int, default=224, help="ERP height of the RMSE table")
    parser.add_argument(
        "--class-size", type=int, default=448, help="ERP height of the classification"
    )
    parser.add_argument(
        "--max-patch", type=int, default=0, help="largest exact patch side (0: no limit)"
    )
    parser.add_argument("--rmse-scenes", type=int, default=2, help="scenes in the RMSE table")
    parser.add_argument("--timing-scenes", type=int, default=1, help="scenes exact is timed on")
    parser.add_argument("--cache", type=Path, default=None, help="cache folder of exact outputs")
    parser.add_argument(
        "--whole-field-timing",
        action="store_true",
        help="also time exact with the whole receptive field as patch (first scene, no cache)",
    )
    parser.add_argument(
        "--distill", type=int, default=0, help="train distilled students on this many scenes"
    )
    parser.add_argument(
        "--train-seed", type=int, default=1000, help="seed of the training scenes (not --seed)"
    )
    parser.add_argument(
        "--distill-stages",
        default="features.3,features.6,features.13",
        help="stages the --size student is trained against exact (comma-separated)",
    )
    parser.add_argument(
        "--class-distill-stages",
        default="features.3,features.6",
        help="stages the --class-size student is trained against (exact costs 4x there)",
    )
    parser.add_argument("--epochs", type=int, default=15, help="layer-wise epochs")
    parser.add_argument("--finetune-epochs", type=int, default=15, help="end-to-end epochs")
    parser.add_argument(
        "--students",
        type=Path,
        default=None,
        help="folder of students (mobilenet_v2-WxH.safetensors): read if there, else written",
    )
    parser.add_argument("--quick", action="store_true", help="1 small scene (a smoke test)")
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    return parser.parse_args(argv)


def _goals(result, classes, whole) -> list[tuple[str, str, str, bool]]:
    """(goal, measured, target, met) rows of the issue's done-when this run measures: the RMSE
    and speed from ``result``, the classification from ``classes``."""
    ratios = result.ratios()
    polar = len(result.bands) - 1
    band = f"{math.degrees(result.bands[polar][0]):.0f}-{math.degrees(result.bands[polar][1]):.0f}"
    rows = []
    if "distilled" in classes.top1:
        d, z = classes.top1["distilled"], classes.top1["spherical"]
        per_band = " / ".join(f"{a - b:+.1f}" for a, b in zip(d, z, strict=True))
        ok = all(a >= b for a, b in zip(d, z, strict=True)) and d[polar] > z[polar]
        rows.append((
            "distilled top-1 agreement - spherical's, every band (better in the last)",
            f"{per_band} points", ">= 0, > 0 in the last", ok,
        ))  # fmt: skip
    if result.rmse.get("distilled"):
        diffs = [
            result.rmse["distilled"][st][polar] - result.rmse["spherical"][st][polar]
            for st in result.patch
        ]
        rows.append((
            f"distilled RMSE - spherical's at every stage, {band}",
            " / ".join(f"{v:+.3f}" for v in diffs), "< 0 at every stage", all(v < 0 for v in diffs),
        ))  # fmt: skip
    gain = classes.top1["spherical"][polar] - classes.top1["direct"][polar]
    rows.append((
        f"spherical top-1 agreement - direct's, {band}", f"{gain:+.1f} points", ">= +20",
        gain >= 20,
    ))  # fmt: skip
    if ratios:
        rows += [
            ("exact / spherical, s per image", f"{ratios['exact / spherical']:.1f}x", ">= 50x",
             ratios["exact / spherical"] >= 50),
            ("spherical / direct, s per image", f"{ratios['spherical / direct']:.2f}x", "<= 2x",
             ratios["spherical / direct"] <= 2),
        ]  # fmt: skip
    if whole is not None:
        rows.append((
            f"exact (whole receptive field, {whole[0]} px) / spherical", f"{whole[1]:.1f}x",
            ">= 50x", whole[1] >= 50,
        ))  # fmt: skip
    return rows


def _plot(result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = list(result.patch)
    fig, axes = plt.subplots(
        1, len(result.bands), figsize=(4 * len(result.bands), 3.4), sharey=True
    )
    for k, ax in enumerate(axes):
        lo, hi = (math.degrees(v) for v in result.bands[k])
        for name in result.rmse:
            ax.plot(range(len(stages)), [result.rmse[name][s][k] for s in stages], "o-", label=name)
        ax.set_xticks(range(len(stages)), [f"{s}\n/{2 ** (i + 2)}" for i, s in enumerate(stages)])
        ax.set_title(f"|lat| {lo:.0f}-{hi:.0f}°")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("RMSE against exact / std of exact")
    axes[-1].legend()
    fig.suptitle(f"{result.model} at {result.erp_hw[1]} x {result.erp_hw[0]}: per-stage error")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _student(args, model, h: int, stages: str):
    """(the distilled student for h x 2h panoramas or None, the sentence describing it)."""
    path = None
    if args.students is not None:
        path = args.students / f"mobilenet_v2-{2 * h}x{h}.safetensors"
    if path is not None and path.exists():
        student = load_backbone_student(model, path)
        how = f"read from `{path}`"
        if student.provenance is not None:
            t = student.provenance
            how += (
                f", trained on {t.get('scenes', str(t['images']) + ' images')} (never evaluated"
                f" on), {t['epochs']} layer-wise and {t['finetune_epochs']} end-to-end epochs "
                f"against exact at {', '.join(t['stages'])}"
            )
    elif args.distill > 0 or args.quick:
        n = 1 if args.quick else args.distill
        config = BackboneDistillConfig(
            stages=("features.3",) if args.quick else tuple(stages.split(",")),
            epochs=1 if args.quick else args.epochs,
            finetune_epochs=1 if args.quick else args.finetune_epochs,
        )
        train = object_scenes(n, args.train_seed, (h, 2 * h))
        start = time.perf_counter()
        student = distill_backbone(
            model,
            torch.stack([s.erp for s in train]),
            config,
            cache_dir=args.cache,
            progress=sys.stderr.isatty(),
            log=lambda phase, epoch, losses: print(
                phase, epoch, {k: round(v, 4) for k, v in losses.items()}, file=sys.stderr
            ),
        )
        print(
            f"distillation at {2 * h} x {h}: {time.perf_counter() - start:.0f} s", file=sys.stderr
        )
        student.provenance["scenes"] = f"{n} scenes of seed {args.train_seed}"
        if path is not None and not args.quick:
            path.parent.mkdir(parents=True, exist_ok=True)
            student.save(path, model)
        how = (
            f"trained here on {n} scenes of seed {args.train_seed} (never evaluated on), "
            f"{config.epochs} layer-wise and {config.finetune_epochs} end-to-end epochs against "
            f"exact at {', '.join(config.stages)}"
        )
    else:
        return None, ""
    return student, f"at {2 * h} x {h}, {how}"


def _with_student(model, stages, student):
    """backbone_runners of ``stages`` (and the last) with the student as "distilled"."""
    if student is None:
        return None
    final = list(model.stages)[-1]
    runners = {s: backbone_runners(model, s) for s in dict.fromkeys([*stages, final])}
    for stage, entry in runners.items():
        entry["distilled"] = student.stage(stage)
    return runners


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    n = 1 if args.quick else args.scenes
    h = 32 if args.quick else args.size
    hc = 32 if args.quick else args.class_size
    model = create_model("mobilenet_v2", pretrained=True).eval()
    stages = ["features.3"] if args.quick else list(model.stages)
    final = list(model.stages)[-1]
    n_rmse = 1 if args.quick else args.rmse_scenes
    rmse_scenes = object_scenes(n_rmse, args.seed, (h, 2 * h))
    class_scenes = object_scenes(n, args.seed + 1, (hc, 2 * hc))
    student, student_how = _student(args, model, h, args.distill_stages)
    class_student, class_how = _student(args, model, hc, args.class_distill_stages)
    progress = sys.stderr.isatty()
    with torch.no_grad():
        result = evaluate_backbone(
            model,
            torch.stack([s.erp for s in rmse_scenes]),
            [s.rbfov for s in rmse_scenes],
            stages,
            timing_images=min(n_rmse, args.timing_scenes),
            max_patch=33 if args.quick else (args.max_patch or None),
            cache_dir=args.cache,
            name="mobilenet_v2",
            progress=progress,
            runners=_with_student(model, stages, student),
        )
        classes = evaluate_backbone(
            model,
            torch.stack([s.erp for s in class_scenes]),
            [s.rbfov for s in class_scenes],
            [],
            rmse_images=0,
            timing_images=0,
            name="mobilenet_v2",
            runners=_with_student(model, [], class_student),
        )
        whole = None
        if args.whole_field_timing and not args.quick:
            p = stage_patch_size(model, final)
            start = time.perf_counter()
            exact_features(model, rmse_scenes[0].erp[None], final, progress=progress)
            seconds = time.perf_counter() - start
            whole = (p, seconds / result.seconds["spherical"])
            print(f"exact with a {p} px patch: {seconds:.1f} s", file=sys.stderr)
    info = machine_info()
    command = "`.venv/bin/python benchmarks/bench_deep_transfer.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    command = command.rstrip() + "`"
    machine = "; ".join(f"{key}: {value}" for key, value in info.items())
    patches = ", ".join(f"{s}: {p} px, {fov:.0f}°" for s, (p, fov) in result.patch.items())
    goals = ["| goal | measured | target | met |", "|---|---:|---|---|"]
    goals += [
        f"| {g} | {m} | {t} | {'yes' if ok else 'no'} |"
        for g, m, t, ok in _goals(result, classes, whole)
    ]
    note = ""
    if student is not None or class_student is not None:
        shown = student if student is not None else class_student
        source = sum(p.numel() for p in model.features.parameters())
        untied = ", ".join(b.replace("_", ".") for b in shown.untied)
        hows = "; ".join(x for x in (student_how, class_how) if x)
        note = (
            f"`distilled`: MobileNetV2's student (`pano360.transfer.distill_backbone`), one per "
            f"ERP size: {hows}. Row-untied 3 x 3 kernels (one per output row) in the blocks "
            f"with a stride ({untied}), tangent taps (`SphereConv2d`, trained too) elsewhere, "
            f"stages after the last trained one zero-shot; {shown.parameter_count():,} "
            f"parameters at {shown.erp_hw[1]} x {shown.erp_hw[0]} against the source's "
            f"{source:,} ({shown.parameter_count() / source:.2f}x; the classifier is "
            "shared).\n\n"
        )
    section = (
        f"Generated by {command} on {datetime.date.today()}.\n\nMachine: {machine}.\n\n"
        f"MobileNetV2 (torchvision's ImageNet weights) on synthetic scenes of six photos 40-55° "
        f"wide, two per band: {n_rmse} scenes (seed {args.seed}) at {2 * h} x {h} for the RMSE "
        f"table and the speed, {n} scenes (seed {args.seed + 1}) at {2 * hc} x {hc} for the "
        f"classification. Every map is on MobileNetV2's own grid (output (i, j) of stride s "
        f"on input pixel (s i, s j)). Exact patches (side, field of view): {patches}.\n\n"
        + note
        + "Per-stage RMSE against exact divided by exact's standard deviation, by |lat| band in "
        + f"degrees ({2 * h} x {h}, {result.rmse_images} scenes; stage name and stride):\n\n"
        + result.rmse_markdown()
        + f"\n\nClassification of every photo ({2 * hc} x {hc}) from the last stage (its region "
        "averaged, then the classifier), against exact's classification of the photo (the "
        "network on the photo's own tangent-plane view, pixels as far apart as the panorama's): "
        "top-1 agreement and top-5 overlap in percent, by |lat| band of the photo's centre:\n\n"
        + classes.classification_markdown()
        + f"\n\nSeconds per image of the last stage at {2 * h} x {h} (medians; every strategy "
        "on the same images, exact computed afresh):\n\n"
        + result.speed_markdown()
        + f"\n\nAt {2 * hc} x {hc}, on the classification's {n} scenes (no exact):\n\n"
        + classes.speed_markdown()
        + (
            ""
            if whole is None
            else f"\n\nExact with the whole receptive field of {final} as patch "
            f"({whole[0]} px), timed on the first scene: {whole[1]:.1f}x spherical's seconds."
        )
        + "\n\nThe issue's goals measured here:\n\n"
        + "\n".join(goals)
        + "\n\n"
    )
    print(section)
    print(json.dumps(result.to_dict()["ratios"]))
    if not args.no_write and not args.quick:
        write_section("deep_transfer", section, TRANSFER_DOC)
        _plot(result, FIGURE)
        print(f"wrote {TRANSFER_DOC.relative_to(ROOT)} and {FIGURE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
