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
from pano360.transfer import evaluate_backbone, exact_features, object_scenes, stage_patch_size

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
    parser.add_argument("--quick", action="store_true", help="1 small scene (a smoke test)")
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    return parser.parse_args(argv)


def _goals(result, whole: tuple[int, float] | None) -> list[tuple[str, str, str, bool]]:
    """(goal, measured, target, met) rows of the issue's done-when that this run measures."""
    ratios = result.ratios()
    polar = len(result.bands) - 1
    gain = result.top1["spherical"][polar] - result.top1["direct"][polar]
    band = f"{math.degrees(result.bands[polar][0]):.0f}-{math.degrees(result.bands[polar][1]):.0f}"
    return [
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
        for name in result.strategies:
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


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    n = 1 if args.quick else args.scenes
    h = 32 if args.quick else args.size
    model = create_model("mobilenet_v2", pretrained=True).eval()
    stages = ["features.3"] if args.quick else None
    scenes = object_scenes(n, args.seed, (h, 2 * h))
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
        f"Per-stage RMSE against exact divided by exact's standard deviation, by |lat| band in "
        f"degrees (the first {result.rmse_images} scenes; stage name and stride):\n\n"
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
