"""Blurring faces in 360° videos: how often every face is covered by blur, and what it costs.

Coverage: a synthetic 360° video (pano360.data.SyntheticFaceVideo: three faces moving across
latitudes, across the seam and over the north pole, exact per-frame boxes) is blurred by
``blur_faces_in_video`` with the per-frame detector alone and with tracking, the detector run on
every frame and on one frame in N (``detect_every``; same detector, same blur margin). For each
frame and face, the share of the face's true box (by solid angle) inside the union of the
blurred regions; a frame counts when every face is at least 90% covered.

Speed: the whole pipeline (decode, detect, track, blur, encode) against decoding and
re-encoding the same video without detection (``transcode_video`` with the identity), one run
each, in the same process and with the same torch threads, at 1920x960 and 3840x1920, on the
CPU (and on a GPU when one is there, with --device cuda). The speed videos are the first
--speed-frames frames of a 2-second clip (faces moving about 2 degrees per frame, as people
do), so tracks follow them from frame to frame.

    .venv/bin/python benchmarks/bench_video_faces.py [--frames 60] [--speed-frames 8]
        [--every 1,2,3,5] [--speed-every 1,3] [--threads 1,2]

Writes a section of docs/benchmarks.md unless --no-write.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import machine_info, write_section

from pano360.data import FACE_PATHS, SyntheticFaceVideo
from pano360.detection import blur_faces_in_video
from pano360.geometry import pixel_solid_angle, sph_box_mask
from pano360.io import transcode_video, write_video

COVERED = 0.9  # a face counts as blurred when this share of its true box is
MASK_HW = (256, 512)  # the grid coverage is measured on


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=60, help="frames of the coverage video")
    parser.add_argument("--size", type=int, default=960, help="coverage video width")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--speed-frames", type=int, default=8, help="frames of the speed videos")
    parser.add_argument("--speed-sizes", default="1920,3840", help="widths timed")
    parser.add_argument(
        "--every", default="1,2,3,5", help="detect_every values of the coverage rows (tracking)"
    )
    parser.add_argument("--speed-every", default="1,3", help="detect_every values timed")
    parser.add_argument(
        "--threads",
        default="",
        help="torch thread counts timed, the first also for the coverage runs (default: torch's)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="a tiny video (a smoke test)")
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.size, args.speed_frames, args.speed_sizes = 4, 256, 2, "256"
        args.every, args.speed_every = "2", "2"
    args.every = [int(n) for n in args.every.split(",")]
    args.speed_every = [int(n) for n in args.speed_every.split(",")]
    args.threads = [int(n) for n in args.threads.split(",")] if args.threads else []
    return args


def coverage(truth: torch.Tensor, blurred: torch.Tensor) -> torch.Tensor:
    """(F,) share (by solid angle) of each true box inside the union of the blurred boxes."""
    weight = pixel_solid_angle(MASK_HW, dtype=torch.float64)
    inside = sph_box_mask(truth, MASK_HW).double() * weight
    if len(blurred) == 0:
        return torch.zeros(len(truth), dtype=torch.float64)
    union = sph_box_mask(blurred, MASK_HW).any(0).double()
    return (inside * union).sum((-2, -1)) / inside.sum((-2, -1))


def _coverage_rows(video_path, truth, tmp: Path, args) -> list[dict]:
    rows = []
    for track, every in [(False, 1), *((True, n) for n in args.every)]:
        report = tmp / f"faces_{track}_{every}.json"
        start = time.perf_counter()
        blur_faces_in_video(
            video_path,
            tmp / f"out_{track}_{every}.mp4",
            report=report,
            track=track,
            detect_every=every,
            device=args.device,
        )
        seconds = time.perf_counter() - start
        frames = json.loads(report.read_text())["frames"]
        per_face = []
        for boxes, frame in zip(truth, frames, strict=True):
            blurred = [[math.radians(v) for v in f["blurred"]] for f in frame["faces"]]
            blurred = torch.tensor(blurred, dtype=torch.float64).reshape(-1, 4)
            per_face.append(coverage(boxes, blurred))
        cov = torch.stack(per_face)  # (T, F)
        method = (
            "per-frame detector"
            if not track
            else "tracking (SphereTracker)"
            + ("" if every == 1 else f", detector on 1 frame in {every}")
        )
        rows.append(
            {
                "method": method,
                "all_faces": float((cov >= COVERED).all(1).double().mean()),
                "per_path": [float((cov[:, k] >= COVERED).double().mean()) for k in range(3)],
                "mean_cov": float(cov.mean()),
                "seconds": seconds,
            }
        )
    return rows


def _speed_video(path: Path, width: int, args) -> None:
    """The first --speed-frames frames of a 2-second clip: faces move as people do."""
    clip = SyntheticFaceVideo(
        (width // 2, width), max(args.speed_frames, round(2 * args.fps)), args.fps,
        seed=args.seed + 1,
    )  # fmt: skip
    frames = (erp for erp, _ in itertools.islice(iter(clip), args.speed_frames))
    write_video(path, frames, args.fps)


def _speed_rows(args, tmp: Path) -> list[dict]:
    rows = []
    default_threads = torch.get_num_threads()
    widths = [int(w) for w in args.speed_sizes.split(",")]
    for width in widths:
        _speed_video(tmp / f"speed_{width}.mp4", width, args)
    n = args.speed_frames
    for threads in args.threads or [default_threads]:
        torch.set_num_threads(threads)
        for width in widths:
            path = tmp / f"speed_{width}.mp4"
            start = time.perf_counter()
            transcode_video(
                path, tmp / "copy.mp4", lambda frames: (f for _, f in frames), overwrite=True
            )
            plain = time.perf_counter() - start
            for every in args.speed_every:
                start = time.perf_counter()
                blur_faces_in_video(
                    path, tmp / "blur.mp4", detect_every=every, device=args.device,
                    overwrite=True,
                )  # fmt: skip
                whole = time.perf_counter() - start
                rows.append(
                    {
                        "size": f"{width}x{width // 2}",
                        "threads": threads,
                        "every": every,
                        "plain_fps": n / plain,
                        "fps": n / whole,
                        "ratio": whole / plain,
                    }
                )
    torch.set_num_threads(default_threads)
    return rows


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    if args.threads:  # the coverage runs too (their results do not depend on it)
        torch.set_num_threads(args.threads[0])
    torch.manual_seed(0)
    hw = (args.size // 2, args.size)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        video = SyntheticFaceVideo(hw, args.frames, args.fps, seed=args.seed)
        gt = tmp / "truth.json"
        video.write(tmp / "faces.mp4", gt)
        truth = [
            torch.tensor(boxes, dtype=torch.float64).deg2rad()
            for boxes in json.loads(gt.read_text())["frames"]
        ]
        cov_rows = _coverage_rows(tmp / "faces.mp4", truth, tmp, args)
        load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
        speed_rows = _speed_rows(args, tmp)

    lines = [
        f"Synthetic video: {args.frames} frames of {hw[1]}x{hw[0]} at {args.fps:g} fps, seed "
        f"{args.seed}; faces along the paths {', '.join(FACE_PATHS)} (coverage measured on a "
        f"{MASK_HW[1]}x{MASK_HW[0]} grid by solid angle; blur margin 1.3, strategy spherical).",
        "",
        f"| method | frames with every face >= {COVERED:.0%} blurred | "
        + " | ".join(f"{p} face" for p in FACE_PATHS)
        + " | mean coverage | seconds |",
        "|---|---|" + "---|" * len(FACE_PATHS) + "---|---|",
    ]
    for r in cov_rows:
        per_path = " | ".join(f"{v:.1%}" for v in r["per_path"])
        lines.append(
            f"| {r['method']} | {r['all_faces']:.1%} | {per_path} | {r['mean_cov']:.1%} | "
            f"{r['seconds']:.1f} |"
        )
    lines += [
        "",
        f"Speed, one run each ({args.speed_frames} frames, device {args.device}): the whole "
        "pipeline (tracking on, the detector on 1 frame in N) against decoding and re-encoding "
        "the same video (H.264, CRF 18), both with the same torch threads, in the same run. "
        f"Load average of the machine when the timing started: {load}.",
        "",
        "| size | torch threads | detector on 1 frame in N | decode + re-encode (fps) | "
        "whole pipeline (fps) | ratio (goal <= 3) |",
        "|---|---|---|---|---|---|",
    ]
    for r in speed_rows:
        lines.append(
            f"| {r['size']} | {r['threads']} | {r['every']} | {r['plain_fps']:.2f} | "
            f"{r['fps']:.2f} | {r['ratio']:.1f}x |"
        )
    machine = ", ".join(f"{k}: {v}" for k, v in machine_info().items())
    lines += ["", f"Machine: {machine}.", ""]
    command = "python benchmarks/bench_video_faces.py " + " ".join(
        a for a in (argv if argv is not None else sys.argv[1:]) if a != "--no-write"
    )
    section = f"## Face blurring in videos\n\n`{command.strip()}`\n\n" + "\n".join(lines)
    print(section)
    if not args.no_write and not args.quick:
        write_section("video_faces", section)
        print("wrote docs/benchmarks.md")


if __name__ == "__main__":
    main()
