"""A deep ImageNet network on 360° images: every transfer strategy against its exact outputs.

The pretrained MobileNetV2 (``pano360.models``, torchvision's ImageNet weights) on synthetic
"spherical ImageNet" scenes (``pano360.transfer.object_scenes``: six public-domain photos per
panorama, two per |lat| band, 40-55 degrees wide) from seeds nothing was trained or tuned on.
Exact (SphConv's reference) is the network on the tangent-plane view around every output
location of a stage (``pano360.transfer.exact_features``). For direct, cubemap, multiview (a
rig covering the whole sphere) and spherical (zero-shot): per stage the RMSE against exact
divided by exact's standard deviation, by |lat| band; every photo's classification from the
last stage (its region averaged, then the classifier) against exact's (top-1 agreement, top-5
overlap); seconds per image of the last stage, all strategies on the same images, and the
ratios the deep-network issue asks for. Writes docs/transfer.md's "deep network" section and
docs/figures/deep_transfer_rmse.png unless --no-write or --quick.

    .venv/bin/python benchmarks/bench_deep_transfer.py [--scenes 8] [--seed 2027] [--cache DIR]
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
    parser.add_argument("--scenes", type=int, default=8, help="number of scenes")
    parser.add_argument("--seed", type=int, default=2027, help="seed of the scenes")
    parser.add_argument("--size", type=int, default=224, help="ERP height (width twice it)")
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
        "--distill", type=int, default=0, help="train a distilled student on this many scenes"
    )
    parser.add_argument(
        "--train-seed", type=int, default=1000, help="seed of the training scenes (not --seed)"
    )
    parser.add_argument(
        "--distill-stages",
        default="features.3,features.6,features.13",
        help="stages the student is trained against exact (comma-separated)",
    )
    parser.add_argument("--epochs", type=int, default=15, help="layer-wise epochs")
    parser.add_argument("--finetune-epochs", type=int, default=15, help="end-to-end epochs")
    parser.add_argument(
        "--student", type=Path, default=None, help="student file: loaded if it exists, else written"
    )
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="also classify from exact on the panorama turned a quarter cell (one more exact pass)",
    )
    parser.add_argument("--quick", action="store_true", help="1 small scene (a smoke test)")
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    return parser.parse_args(argv)


def _goals(result, whole: tuple[int, float] | None) -> list[tuple[str, str, str, bool]]:
    """(goal, measured, target, met) rows of the issue's done-when that this run measures."""
    ratios = result.ratios()
    polar = len(result.bands) - 1
    gain = result.top1["spherical"][polar] - result.top1["direct"][polar]
    band = f"{math.degrees(result.bands[polar][0]):.0f}-{math.degrees(result.bands[polar][1]):.0f}"
    distilled = []
    if "distilled" in result.top1:
        d, z = result.top1["distilled"], result.top1["spherical"]
        per_band = " / ".join(f"{a - b:+.1f}" for a, b in zip(d, z, strict=True))
        ok = all(a >= b for a, b in zip(d, z, strict=True)) and d[polar] > z[polar]
        distilled.append((
            "distilled top-1 agreement - spherical's, every band (better in the last)",
            f"{per_band} points", ">= 0, > 0 in the last", ok,
        ))  # fmt: skip
        if result.rmse.get("distilled"):
            diffs = {
                st: result.rmse["distilled"][st][polar] - result.rmse["spherical"][st][polar]
                for st in result.patch
            }
            distilled.append((
                f"distilled RMSE - spherical's at every stage, {band}",
                " / ".join(f"{v:+.3f}" for v in diffs.values()), "< 0 at every stage",
                all(v < 0 for v in diffs.values()),
            ))  # fmt: skip
    return distilled + [
        (f"spherical top-1 agreement - direct's, {band}", f"{gain:+.1f} points", ">= +20",
         gain >= 20),
        ("exact / spherical, s per image", f"{ratios['exact / spherical']:.1f}x", ">= 50x",
         ratios["exact / spherical"] >= 50),
        ("spherical / direct, s per image", f"{ratios['spherical / direct']:.2f}x", "<= 2x",
         ratios["spherical / direct"] <= 2),
    ] + ([] if whole is None else [
        (f"exact (whole receptive field, {whole[0]} px) / spherical", f"{whole[1]:.1f}x",
         ">= 50x", whole[1] >= 50),
    ])  # fmt: skip


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


def _student(args, model, h: int):
    """(the distilled student or None, the paragraph describing it)."""
    if args.student is not None and args.student.exists():
        student = load_backbone_student(model, args.student)
        how = f"read from `{args.student}`"
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
            stages=("features.3",) if args.quick else tuple(args.distill_stages.split(",")),
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
        print(f"distillation: {time.perf_counter() - start:.0f} s", file=sys.stderr)
        student.provenance["scenes"] = f"{n} scenes of seed {args.train_seed}"
        if args.student is not None and not args.quick:
            student.save(args.student, model)
        how = (
            f"trained here on {n} scenes of seed {args.train_seed} (never evaluated on), "
            f"{config.epochs} layer-wise and {config.finetune_epochs} end-to-end epochs against "
            f"exact at {', '.join(config.stages)}"
        )
    else:
        return None, ""
    source = sum(p.numel() for p in model.features.parameters())
    untied = ", ".join(b.replace("_", ".") for b in student.untied)
    note = (
        f"`distilled`: MobileNetV2's student (`pano360.transfer.distill_backbone`), {how}; "
        f"row-untied 3 x 3 kernels (one per output row) in the blocks with a stride ({untied}), "
        f"tangent taps (`SphereConv2d`, trained too) elsewhere, later stages zero-shot; "
        f"{student.parameter_count():,} parameters against the source's {source:,} "
        f"({student.parameter_count() / source:.2f}x; the classifier is shared).\n\n"
    )
    return student, note


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    n = 1 if args.quick else args.scenes
    h = 32 if args.quick else args.size
    model = create_model("mobilenet_v2", pretrained=True).eval()
    stages = ["features.3"] if args.quick else list(model.stages)
    scenes = object_scenes(n, args.seed, (h, 2 * h))
    student, student_note = _student(args, model, h)
    runners = None
    if student is not None:
        final = list(model.stages)[-1]
        runners = {s: backbone_runners(model, s) for s in dict.fromkeys([*stages, final])}
        for stage, entry in runners.items():
            entry["distilled"] = student.stage(stage)
    with torch.no_grad():
        result = evaluate_backbone(
            model,
            torch.stack([s.erp for s in scenes]),
            [s.bfov for s in scenes],
            stages,
            rmse_images=min(n, 1 if args.quick else args.rmse_scenes),
            timing_images=min(n, args.timing_scenes),
            max_patch=33 if args.quick else (args.max_patch or None),
            cache_dir=args.cache,
            name="mobilenet_v2",
            progress=sys.stderr.isatty(),
            runners=runners,
            ceiling=args.ceiling and not args.quick,
        )
        whole = None
        if args.whole_field_timing and not args.quick:
            final = list(model.stages)[-1]
            p = stage_patch_size(model, final)
            start = time.perf_counter()
            exact_features(model, scenes[0].erp[None], final, progress=sys.stderr.isatty())
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
        f"| {g} | {m} | {t} | {'yes' if ok else 'no'} |" for g, m, t, ok in _goals(result, whole)
    ]
    section = (
        f"Generated by {command} on {datetime.date.today()}.\n\nMachine: {machine}.\n\n"
        f"MobileNetV2 (torchvision's ImageNet weights) on {n} synthetic scenes (seed {args.seed}, "
        f"{2 * h} x {h}, six photos 40-55° wide per scene, two per band). Exact patches (side, "
        f"field of view): {patches}.\n\n"
        + student_note
        + "Per-stage RMSE against exact divided by exact's standard deviation, by |lat| band in "
        + f"degrees (the first {result.rmse_images} scenes; stage name and stride):\n\n"
        + result.rmse_markdown()
        + "\n\nClassification of every photo from the last stage (its region averaged, then the "
        "classifier), against exact's classification of the same region: top-1 agreement and "
        "top-5 overlap in percent, by |lat| band of the photo's centre:\n\n"
        + result.classification_markdown()
        + "\n\nSeconds per image of the last stage (medians; every strategy on the same images, "
        "exact computed afresh):\n\n"
        + result.speed_markdown()
        + (
            ""
            if whole is None
            else f"\n\nExact with the whole receptive field of {list(result.patch)[-1]} as patch "
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
