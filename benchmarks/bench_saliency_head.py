"""Why the U-Nets' KLD was large and erratic: train each U-Net with the seed's linear output
head (maps clamped at 0 before scoring) and with a softplus head, on the same data, recipe and
CPU budget as bench_saliency_training.py, then score the held-out test frames.

Printed per (network, head): CC, KLD (mean and worst frame) and NSS under the preset ``sphere``;
the share of the viewers' mass (the ground-truth density, by solid angle) on pixels the model
predicts as exactly 0 (KL divergence charges about log(1 / eps) ~ 36 per unit of it); the
validation KLD's range over the training epochs; and, for the linear head, the KLD after
mixing the normalised map with the uniform density (``raw_to_saliency(raw, True, s)``), the
readout bench_saliency_training.py calibrates.

    .venv/bin/python benchmarks/bench_saliency_head.py [--minutes 2] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import sys
import tempfile
from pathlib import Path

import torch
from bench_saliency_training import SHARES, _clips, _train, _zero_mass
from bench_saliency_training import _args as training_args
from tqdm import tqdm

from pano360.models import raw_to_saliency
from pano360.saliency import compute_metrics

NETWORKS = ("spherical_unet", "planar_unet")
HEADS = ("linear", "softplus")


def _val_kld(text: str) -> tuple[float, float]:
    rows = [r for r in csv.DictReader(io.StringIO(text)) if r.get("val/kld")]
    values = [float(r["val/kld"]) for r in rows]
    return (min(values), max(values)) if values else (float("nan"), float("nan"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="CPU budget per training")
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument("--quick", action="store_true")
    own = parser.parse_args(argv)
    args = training_args(["--minutes", str(own.minutes)] + (["--quick"] if own.quick else []))
    train = _clips(args.train_videos, 0, args, "render train", 1)
    test = _clips(args.test_videos, 1, args, "render test", 1, args.test_polar_share)
    header = (
        "| network | head | CC | KLD | worst KLD | NSS | mass on zeros | frames with > 1% "
        "| val KLD over epochs |"
    )
    lines = [header, "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    mix_lines = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in own.networks.split(","):
            for head in HEADS:
                args.output = head
                task, csv_path, info = _train(name, train, args, Path(tmp) / head)
                lo, hi = _val_kld(csv_path.read_text())
                scores = {m: [] for m in ("cc", "kld", "nss")}
                zeros = []
                mixed = {share: [] for share in SHARES[1:]}
                for item in tqdm(test.items, desc=f"{name} {head}", file=sys.stderr):
                    with torch.no_grad():
                        raw = task(item["frames"], None)
                    pred = raw.clamp_min(0).double()
                    gt = item["saliency"].double()
                    values = compute_metrics(pred, gt, item["fixations"], preset="sphere")
                    for m in scores:
                        scores[m].append(float(values[m][0]))
                    zeros.append(_zero_mass(pred, gt))
                    if head == "linear":
                        for share in mixed:
                            density = raw_to_saliency(raw, True, share).double()
                            kld = compute_metrics(density, gt, preset="sphere", metrics=["kld"])
                            mixed[share].append(float(kld["kld"][0]))
                lines.append(
                    f"| {name} | {head} | {statistics.fmean(scores['cc']):.3f} "
                    f"| {statistics.fmean(scores['kld']):.3f} | {max(scores['kld']):.2f} "
                    f"| {statistics.fmean(scores['nss']):.3f} | {statistics.fmean(zeros):.4f} "
                    f"| {sum(z > 0.01 for z in zeros)} / {len(zeros)} "
                    f"| {lo:.2f} - {hi:.2f} ({info['epochs']} epochs, {info['steps']} steps) |"
                )
                if head == "linear":
                    mix_lines.append(
                        f"{name}, linear head, KLD with uniform share "
                        + ", ".join(f"{k:g}: {statistics.fmean(v):.3f}" for k, v in mixed.items())
                    )
                print(lines[-1], flush=True)
    print("\n".join(lines))
    print("\n".join(mix_lines))


if __name__ == "__main__":
    main()
