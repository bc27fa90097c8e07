"""Train the Spherical U-Net and the planar U-Net of equal size on synthetic 360° video saliency
(CPU, a fixed compute budget each), then score them on held-out synthetic videos against the
equator-bias baseline and the training-free model, by latitude band; and time both networks.

Training data: ``SyntheticSaliencyVideos`` of seed 0 (a share of its videos held out for the
validation curve); test data: the same generator with seed 1, which training never sees, half
of whose videos (``--test-polar-share``) have their photos circle a pole at 60-85 degrees of
latitude, so that band is measured on enough frames (the training videos keep the generator's
default: photos on great circles, passing the poles as often as the sphere's area says; the
test enriches the band to measure it, it does not teach it). Both networks train with the same
data, seed, recipe (SGD lr 0.003, momentum 0.9, weight decay 1e-5, spherical MSE on the target x
10), the same output head (``--output``: softplus by default), batch size and compute budget
(``--minutes`` of the process's CPU time divided by torch's thread count: equal to wall-clock
minutes on an idle machine, and not shortened when other work shares the cores), on the frame
alone (``prior="none"``, the default here) or with their own previous prediction
(``--prior prediction``). The equator-bias baseline is a
latitude profile fitted to the training targets; the training-free model is ``spectral``.

Scores: CC, KLD and NSS under the metric preset ``sphere`` on every test frame (NSS on the
pixels of the frame's gaze points), averaged over all frames and over the frames whose viewers
look into each |latitude| band (the median |lat| of the frame's gaze points: 0-30, 30-60 and
60-85 degrees). Speed: one training step (forward and backward, batch 1) and inference frames per
second of both networks at 128 x 256, interleaved, medians after warm-up.

    .venv/bin/python benchmarks/bench_saliency_training.py [--minutes 8] [--size 128x64]

Writes the results section of docs/training.md and the Spherical U-Net's learning curve to
docs/figures/saliency_training_curve.png unless --no-write (or --quick).
"""

from __future__ import annotations

import argparse
import datetime
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from _common import ROOT, machine_info, median_times, write_section
from torch.utils.data import Dataset
from tqdm import tqdm

from pano360.data import SyntheticSaliencyVideos, VideoSaliencyClips
from pano360.geometry import pixel_solid_angle
from pano360.models import create_model, raw_to_saliency
from pano360.saliency import (
    EquatorBias,
    binary_fixation_map,
    compute_metrics,
    fit_latitude_profile,
    predict_saliency,
)
from pano360.training import SaliencyDataModule, SaliencyTask, plot_learning_curve
from pano360.transfer import LAT_BANDS

DOC = ROOT / "docs" / "training.md"
FIGURE = ROOT / "docs" / "figures" / "saliency_training_curve.png"
NETWORKS = ("spherical_unet", "planar_unet")
#: Uniform shares tried in each network's calibration (0: the clamped map alone).
SHARES = (0.0, 0.003, 0.01, 0.03, 0.1, 0.3)
METRICS = ("cc", "kld", "nss")


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--minutes",
        type=float,
        default=8.0,
        help="training budget per network: minutes of process CPU time / torch threads",
    )
    parser.add_argument("--size", default="128x64", help="WIDTHxHEIGHT, 2:1 (e.g. 256x128)")
    parser.add_argument("--train-videos", type=int, default=16, help="synthetic training videos")
    parser.add_argument("--test-videos", type=int, default=8, help="held-out synthetic videos")
    parser.add_argument(
        "--calibration-videos",
        type=int,
        default=2,
        help="synthetic videos (seed 2) on which each network's uniform share is chosen",
    )
    parser.add_argument(
        "--test-polar-share",
        type=float,
        default=0.5,
        help="share of the held-out videos whose photos circle a pole at 60-85 deg of latitude",
    )
    parser.add_argument("--frames", type=int, default=60, help="frames per synthetic video")
    parser.add_argument("--frame-step", type=int, default=3, help="sample every N-th frame")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--prior", default="none", choices=("none", "prediction"))
    parser.add_argument(
        "--output",
        default="linear",
        choices=("linear", "softplus"),
        help="the U-Nets' output head (linear: the seed's)",
    )
    parser.add_argument(
        "--channels", type=int, default=16, help="U-Net width (conv1's channels; the seed: 64)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per speed measurement")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds of training")
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    args = parser.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    if w != 2 * h:
        parser.error(f"--size must be WIDTHxHEIGHT with width = 2 x height, got {args.size}")
    args.hw = (h, w)
    if args.quick:
        args.hw, args.minutes, args.train_videos, args.test_videos = (16, 32), 0.1, 3, 2
        args.calibration_videos = 1
        args.frames, args.repeats, args.channels = 12, 1, 4
    return args


class _Cached(Dataset):
    """Every clip rendered once (with its gaze's fixation map), then served from memory."""

    def __init__(self, clips: VideoSaliencyClips, desc: str) -> None:
        source = clips.source
        self.items = []
        for i in tqdm(range(len(clips)), desc=desc, unit="clip", file=sys.stderr):
            item = clips[i]
            hw = tuple(item["saliency"].shape[-2:])
            gaze = [source.gaze(item["video"], f) for f in item["frame_index"].tolist()]
            item["fixations"] = torch.cat([binary_fixation_map(g, hw) for g in gaze])
            item["gaze"] = gaze
            self.items.append(item)
        self.sample_videos = [it["video"] for it in self.items]
        self.source = source

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return {k: v for k, v in self.items[i].items() if k != "gaze"}


def _clips(
    n_videos: int, seed: int, args, desc: str, clip_len: int, polar_share: float = 0.0
) -> _Cached:
    source = SyntheticSaliencyVideos(
        n_videos, args.frames, args.hw, seed=seed, supersample=1, polar_share=polar_share
    )
    clips = VideoSaliencyClips(
        source, clip_len=clip_len, frame_step=args.frame_step, size=args.hw, prior_offset=None
    )
    return _Cached(clips, desc)


class _CpuBudget(pl.Callback):
    """Stops training once the process has used ``minutes`` x threads of CPU time: a budget
    that other work on the machine does not shorten (Lightning's ``max_time`` is wall-clock)."""

    def __init__(self, minutes: float) -> None:
        self.seconds = minutes * 60 * torch.get_num_threads()

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = time.process_time()

    def on_train_batch_end(self, trainer, *args) -> None:
        if time.process_time() - self.start >= self.seconds:
            trainer.should_stop = True


def _train(name: str, data: _Cached, args, run_dir: Path) -> tuple[SaliencyTask, Path, dict]:
    pl.seed_everything(args.seed, verbose=False)
    config = {"prior": args.prior, "channels": args.channels, "output": args.output}
    task = SaliencyTask(name, model_config=config)
    module = SaliencyDataModule(data, val_fraction=0.125, batch_size=args.batch_size, seed=0)
    logger = pl.loggers.CSVLogger(str(run_dir), name=name, version="")
    trainer = pl.Trainer(
        max_epochs=10_000,
        callbacks=[_CpuBudget(args.minutes)],
        accelerator="cpu",
        devices=1,
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=10,
    )
    start, cpu = time.perf_counter(), time.process_time()
    trainer.fit(task, datamodule=module)
    info = {
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "minutes": (time.perf_counter() - start) / 60,
        "cpu_minutes": (time.process_time() - cpu) / 60 / torch.get_num_threads(),
        "parameters": sum(p.numel() for p in task.net.parameters()),
    }
    logger.save()
    return task.eval(), Path(logger.log_dir) / "metrics.csv", info


class _NetPredictor:
    """A trained network's density for each test frame: its raw map clamped at 0, normalised and
    mixed with the uniform density (``raw_to_saliency(raw, True, share)``); fed its own previous
    map (on the targets' scale) when it takes one."""

    def __init__(self, task: SaliencyTask, share: float = 0.0) -> None:
        self.task, self.share, self.last = task, share, None

    def raw(self, item: dict, previous) -> torch.Tensor:
        prior = self.last if (self.task.prior == "prediction" and previous is not None) else None
        with torch.no_grad():
            out = self.task(item["frames"], prior)
        self.last = raw_to_saliency(out)
        return out

    def __call__(self, item: dict, previous) -> torch.Tensor:
        return raw_to_saliency(self.raw(item, previous), True, self.share)


def _calibrate(task: SaliencyTask, items: list[dict]) -> tuple[float, dict[float, float]]:
    """The uniform share of SHARES with the lowest mean KLD on the calibration frames."""
    predictor = _NetPredictor(task)
    raws, last_video, previous = [], None, None
    for item in items:
        if item["video"] != last_video:
            previous, last_video = None, item["video"]
        raws.append(predictor.raw(item, previous))
        previous = raws[-1]
    kld = {}
    for share in SHARES:
        values = [
            compute_metrics(
                raw_to_saliency(raw, True, share).double(),
                item["saliency"].double(),
                preset="sphere",
                metrics=["kld"],
            )["kld"]
            for raw, item in zip(raws, items, strict=True)
        ]
        kld[share] = float(torch.cat(values).mean())
    return min(kld, key=kld.get), kld


def _zero_mass(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """Share of the ground truth's mass (by solid angle) on pixels where ``pred`` is 0."""
    mass = gt.double() * pixel_solid_angle(gt.shape[-2:], dtype=torch.float64)
    return float(mass[pred <= 0].sum() / mass.sum())


def _band(gaze: torch.Tensor) -> int | None:
    lat = float(torch.as_tensor(gaze)[:, 1].abs().median())
    for i, (lo, hi) in enumerate(LAT_BANDS):
        if lo <= lat < hi or (i == len(LAT_BANDS) - 1 and lat == hi):
            return i
    return None


def _evaluate(predictors: dict, test: _Cached) -> tuple[dict, list[int | None]]:
    """Per model: metric -> per-frame values, over the test frames in order (clips of 1)."""
    scores = {name: {m: [] for m in (*METRICS, "zeros")} for name in predictors}
    bands = []
    previous = {name: None for name in predictors}
    last_video = None
    for item in tqdm(test.items, desc="test", unit="clip", file=sys.stderr):
        if item["video"] != last_video:  # a new video: no earlier prediction
            previous = {name: None for name in predictors}
            last_video = item["video"]
        gt = item["saliency"].double()
        fix = item["fixations"]
        bands.append(_band(item["gaze"][0]))
        for name, predict in predictors.items():
            pred = predict(item, previous[name])
            previous[name] = pred
            values = compute_metrics(pred.double(), gt, fix, preset="sphere", metrics=METRICS)
            for m in METRICS:
                scores[name][m].append(float(values[m][0]))
            scores[name]["zeros"].append(_zero_mass(pred, gt))
    return scores, bands


def _table(scores: dict, bands: list[int | None]) -> str:
    labels = ["all"] + [f"{math.degrees(lo):.0f}-{math.degrees(hi):.0f}" for lo, hi in LAT_BANDS]
    lines = [
        "| model | \\|lat\\| of gaze (deg) | frames | CC ↑ | KLD ↓ | NSS ↑ "
        "| viewers' mass on zeros |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, per in scores.items():
        for b, label in enumerate(labels):
            keep = [i for i, band in enumerate(bands) if b == 0 or band == b - 1]
            if not keep:
                lines.append(f"| {name} | {label} | 0 | | | | |")
                continue
            cells = [statistics.fmean(per[m][i] for i in keep) for m in (*METRICS, "zeros")]
            lines.append(
                f"| {name} | {label} | {len(keep)} | "
                + " | ".join(f"{v:.3f}" for v in cells)
                + " |"
            )
    return "\n".join(lines)


def _speed(args) -> tuple[str, dict]:
    """Training step (forward + backward) and inference of both networks at 128 x 256."""
    hw = (16, 32) if args.quick else (128, 256)
    torch.manual_seed(0)
    config = {"prior": args.prior, "channels": args.channels, "output": args.output}
    nets = {n: create_model(n, **config) for n in NETWORKS}
    x = torch.rand(1, 3, *hw)
    prior = torch.rand(1, 1, *hw) if args.prior != "none" else None

    def step(net):
        def run():
            net.zero_grad(set_to_none=True)
            out = net(x) if prior is None else net(x, prior=prior)
            out.square().mean().backward()

        return run

    def infer(net):
        def run():
            with torch.no_grad():
                return net(x) if prior is None else net(x, prior=prior)

        return run

    for net in nets.values():
        net.train()
    train_s, _ = median_times([step(nets[n]) for n in NETWORKS], args.repeats, warmup=2)
    for net in nets.values():
        net.eval()
    infer_s, _ = median_times([infer(nets[n]) for n in NETWORKS], args.repeats, warmup=2)
    t = dict(zip(NETWORKS, train_s, strict=True))
    i = dict(zip(NETWORKS, infer_s, strict=True))
    lines = [
        f"| at {hw[1]} x {hw[0]}, batch 1, width {args.channels} "
        "| spherical_unet | planar_unet | ratio | goal |",
        "|---|---:|---:|---:|---|",
        f"| training step, forward + backward (s) | {t[NETWORKS[0]]:.3f} | {t[NETWORKS[1]]:.3f} "
        f"| {t[NETWORKS[0]] / t[NETWORKS[1]]:.2f}x | at most 2x |",
        f"| inference (frames per second) | {1 / i[NETWORKS[0]]:.2f} | {1 / i[NETWORKS[1]]:.2f} "
        f"| {i[NETWORKS[0]] / i[NETWORKS[1]]:.2f}x the time | |",
    ]
    return "\n".join(lines), {"train": t, "infer": i}


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    torch.manual_seed(args.seed)
    train = _clips(
        args.train_videos, 0, args, "render train", 2 if args.prior == "prediction" else 1
    )
    # Test clips are single frames in order: a model fed its previous prediction gets it.
    test = _clips(args.test_videos, 1, args, "render test", 1, args.test_polar_share)
    profile = fit_latitude_profile(torch.cat([it["saliency"] for it in train.items]))
    equator = EquatorBias(profile=profile)
    # Calibration: the uniform share of each network's density is chosen on videos of a third
    # seed (neither trained on nor tested).
    calib = _clips(args.calibration_videos, 2, args, "render calibration", 1)
    predictors = {}
    infos, curves, shares, calibration = {}, {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in NETWORKS:
            task, csv, infos[name] = _train(name, train, args, Path(tmp))
            curves[name] = csv.read_text()
            shares[name], calibration[name] = _calibrate(task, calib.items)
            predictors[name] = _NetPredictor(task, shares[name])
            predictors[f"{name}, clamped"] = _NetPredictor(task, 0.0)
        predictors["equator (fitted)"] = lambda item, prev: equator(item["frames"])
        predictors["spectral (training-free)"] = lambda item, prev: predict_saliency(
            item["frames"], "spectral"
        )
        scores, bands = _evaluate(predictors, test)
        speed, _ = _speed(args)
        curve_csv = Path(tmp) / "spherical_unet.csv"
        curve_csv.write_text(curves["spherical_unet"])
        if not args.no_write and not args.quick:
            plot_learning_curve(
                curve_csv, FIGURE, title=f"spherical_unet, synthetic videos, {args.size}"
            )

    n_polar = sum(test.source.is_polar(v) for v in test.source.videos)
    info = machine_info()
    command = "`.venv/bin/python benchmarks/bench_saliency_training.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    command = command.rstrip() + "`"
    machine = "; ".join(f"{key}: {value}" for key, value in info.items())
    runs = "; ".join(
        f"{n}: {v['parameters']:,} parameters, {v['epochs']} epochs, {v['steps']} steps, "
        f"{v['cpu_minutes']:.1f} min of budget in {v['minutes']:.1f} min wall-clock"
        for n, v in infos.items()
    )
    section = (
        "## Results\n\n"
        f"Generated by {command} on {datetime.date.today()}.\n\nMachine: {machine}.\n\n"
        f"Training: {len(train)} clips of {args.train_videos} synthetic videos (seed 0, "
        f"{args.frames} frames, one in {args.frame_step}, {args.hw[1]} x {args.hw[0]}), "
        f"prior `{args.prior}`, width {args.channels} (the seed's: 64), batch {args.batch_size}, "
        f"a budget of {args.minutes:g} min (process CPU time / {torch.get_num_threads()} "
        f"threads) of training per network ({runs}).\n\n"
        f"Test: {len(test)} frames of {args.test_videos} held-out synthetic videos (seed 1, "
        f"`polar_share={args.test_polar_share:g}`: {n_polar} of them polar, their photos "
        "circling a pole at 60-85° of latitude; the training videos have none, their photos "
        "move on great circles and pass the poles as often as the sphere's area says). "
        "Metric preset `sphere`; a frame counts in the band of the median |lat| of its viewers' "
        "gaze points. Each network's map is its raw output clamped at 0 (the seed's head, "
        f"`--output {args.output}`), normalised and mixed with the uniform density "
        "(`raw_to_saliency(raw, normalize=True, uniform_share=s)`), s chosen among "
        + ", ".join(f"{v:g}" for v in SHARES)
        + f" for the lowest mean KLD on {len(calib)} frames of {args.calibration_videos} "
        "calibration videos (seed 2, neither trained on nor tested): "
        + "; ".join(
            f"{n}: s = {shares[n]:g} (calibration KLD "
            + ", ".join(f"{v:.2f}" for v in calibration[n].values())
            + ")"
            for n in NETWORKS
        )
        + ". The rows `, clamped` are the same networks without the mix (s = 0). The last "
        "column is the share of the viewers' mass (the target density, by solid angle) on "
        "pixels the map sets to exactly 0, where KL divergence charges about log(1 / eps) ~ 36 "
        "per unit:\n\n" + _table(scores, bands) + "\n\n"
        "Speed, both networks in one run, interleaved, medians after warm-up:\n\n"
        + speed
        + "\n\n"
        + "The Spherical U-Net's learning curve (train and validation loss, validation metrics):"
        "\n\n![learning curve](figures/saliency_training_curve.png)\n\n"
    )
    print(section)
    if not args.no_write and not args.quick:
        write_section("training_results", section, DOC)
        print(f"wrote {DOC.relative_to(ROOT)} and {FIGURE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
