"""Faces on high-resolution panoramas: what blurring costs beside detecting, small faces, memory.

Run from the repository root::

    .venv/bin/python benchmarks/bench_faces_hires.py [--repeats N] [--quick] [--no-write]

Synthetic 8192 x 4096 scenes (pano360.data.synthetic: faces 10-14 degrees wide pasted on a
background, on five rows of latitude from -60 to 60 degrees, one across the seam) with 8 and
with 40 faces. For each, ``pano360 faces IMAGE`` and ``pano360 faces IMAGE --blur`` run as
separate processes, interleaved, the median of the runs: the ratio of their seconds (the issue
asks for at most 1.5) and each run's peak resident memory. Then one scene with a face 1 degree
wide (about 23 pixels at this size) and ``pano360 faces --min-face 1 --blur``: whether the face
is found (spherical IoU > 0.5 with its true box), its seconds and peak memory beside the
estimate the command checks before detecting (``pano360.detection.face_detection_memory`` plus
what the process holds and its outputs), which is meant to be an upper bound. ``--quick``: a
1024 x 512 scene with 2 faces 20-25 degrees wide, a 6 degree face with ``--min-face 5``, one
run each (a smoke run).
Writes the table into docs/benchmarks.md between the ``bench_faces_hires`` markers unless
--no-write.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import DOC, ROOT, machine_info, parse_args, write_section

from pano360.data.synthetic import SCENE_ASSETS, Placement, render_scene
from pano360.geometry import resize_erp, sph_iou_exact
from pano360.io import write_image

GB = 2**30
# Rows of latitude (degrees) and faces per row of the 40-face scene; the 8-face scene takes
# every fifth of its faces.
LATS = (-60, -30, 0, 30, 60)
PER_ROW = 8


def _face_window(asset: str, margin: float = 0.3) -> tuple[float, float, float, float]:
    """The face and a margin around it (more below, for the chin): a small pasted photo."""
    x0, y0, x1, y1 = SCENE_ASSETS[asset].face_xyxy
    h, w = SCENE_ASSETS[asset].size_hw
    m = margin * (x1 - x0)
    return (max(0.0, x0 - m), max(0.0, y0 - m), min(w, x1 + m), min(h, y1 + 2 * m))


def _placements(n: int, width_deg: tuple[float, float]) -> list[Placement]:
    """``n`` faces on the rows of LATS, 45 degrees apart (alternate rows offset by 22.5, one
    face on the seam), widths cycling through ``width_deg``."""
    spots = []
    for r, lat in enumerate(LATS):
        offset = 22.5 if r % 2 else 0.0
        spots += [(-180.0 + offset + 360.0 * k / PER_ROW, lat) for k in range(PER_ROW)]
    chosen = spots if n >= len(spots) else spots[:: len(spots) // n][:n]
    lo, hi = width_deg
    faces = []
    for k, (lon, lat) in enumerate(chosen):
        asset = ("astronaut", "grace_hopper")[k % 2]
        width = lo + (hi - lo) * (k % 3) / 2
        faces.append(
            Placement(
                asset,
                lon=math.radians(lon),
                lat=math.radians(lat),
                width=math.radians(width),
                window=_face_window(asset),
            )
        )
    return faces


def _scene(placements: list[Placement], hw: tuple[int, int], path: Path) -> torch.Tensor:
    """Render the faces on an upsampled procedural background; write it; return the boxes."""
    background = render_scene([], (512, 1024), supersample=1).erp
    if hw != (512, 1024):
        background = resize_erp(background[None], hw)[0]
    scene = render_scene(placements, hw, background=background, supersample=1)
    write_image(path, scene.erp)
    return scene.bfov


def _cli(args: list[str], expect: int = 0) -> tuple[float, int, str]:
    """Run ``pano360 ARGS`` in a new process: (seconds, peak resident bytes, its stderr)."""
    cmd = [sys.executable, "-m", "pano360", *args]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != expect:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err[-2000:]}")
    return seconds, usage.ru_maxrss * 1024, err  # ru_maxrss: kilobytes on Linux


def _blur_ratio(image: Path, out: Path, repeats: int) -> dict:
    """Median seconds and peak memory of ``faces`` and ``faces --blur``, interleaved."""
    runs = {"faces": [], "blur": []}
    for _ in range(repeats):
        for name, extra in (("faces", []), ("blur", ["--blur"])):
            args = ["faces", str(image), "--out", str(out), "-q", "--overwrite", *extra]
            runs[name].append(_cli(args)[:2])
    found = len(json.loads((out / f"{image.stem}_faces.json").read_text())["faces"])
    med = {k: statistics.median(s for s, _ in v) for k, v in runs.items()}
    peak = {k: max(m for _, m in v) for k, v in runs.items()}
    return {"found": found, "seconds": med, "peak": peak, "ratio": med["blur"] / med["faces"]}


def _small_face(path: Path, out: Path, hw, width_deg: float, min_face: float) -> dict:
    """One face ``width_deg`` wide, found with ``--min-face min_face --blur``?"""
    lon, lat = math.radians(30.0), math.radians(20.0)
    face = Placement("astronaut", lon=lon, lat=lat, width=math.radians(width_deg))
    truth = _scene([face], hw, path)
    args = ["faces", str(path), "--out", str(out), "-q", "--blur", "--min-face", f"{min_face:g}"]
    # The estimate the command checks before detecting, from its refusal under a tiny limit.
    refusal = _cli([*args, "--max-memory", "0.001"], expect=2)[2]
    estimate = float(re.search(r"needs about ([0-9.]+) GB", refusal).group(1)) * GB
    seconds, peak, _ = _cli(args)
    doc = json.loads((out / f"{path.stem}_faces.json").read_text())
    boxes = torch.tensor([[math.radians(v) for v in f["bfov"]] for f in doc["faces"]])
    iou = float(sph_iou_exact(truth.float(), boxes).max()) if len(boxes) else 0.0
    return {"iou": iou, "seconds": seconds, "peak": peak, "estimate": estimate}


def run(quick: bool, repeats: int, folder: Path) -> tuple[list[str], dict]:
    hw = (512, 1024) if quick else (4096, 8192)
    counts = (2,) if quick else (8, 40)
    widths = (20.0, 25.0) if quick else (10.0, 14.0)
    rows = []
    for n in counts:
        path = folder / f"scene_{n}.png"
        start = time.perf_counter()
        _scene(_placements(n, widths), hw, path)
        print(f"scene with {n} faces: {time.perf_counter() - start:.0f} s to render", flush=True)
        r = _blur_ratio(path, folder / f"out_{n}", repeats)
        rows.append(
            f"| {hw[1]}x{hw[0]}, {n} faces | {r['found']} | {r['seconds']['faces']:.1f} | "
            f"{r['seconds']['blur']:.1f} | **{r['ratio']:.2f}** | {r['peak']['faces'] / GB:.2f} | "
            f"{r['peak']['blur'] / GB:.2f} |"
        )
        print(rows[-1], flush=True)
    width, min_face = (6.0, 5.0) if quick else (1.0, 1.0)
    small = _small_face(folder / "small.png", folder / "out_small", hw, width, min_face)
    small["width"], small["min_face"], small["hw"] = width, min_face, hw
    small["widths"] = widths
    return rows, small


def render(rows: list[str], small: dict, info: dict, command: str, repeats: int) -> str:
    h, w = small["hw"]
    found = "found" if small["iou"] > 0.5 else "**not found**"
    lines = [
        "## Faces on high-resolution panoramas: blurring beside detecting, small faces, memory",
        "",
        f"`{command}` ({datetime.date.today().isoformat()}; {info['CPU']}, {info['cores']}, "
        f"torch {info['torch']}). `pano360 faces IMAGE` and `... --blur` as separate processes, "
        f"interleaved, median of {repeats} run(s); peak resident memory of the process. Faces "
        f"{small['widths'][0]:g}-{small['widths'][1]:g} degrees wide on rows from -60 to 60 "
        "degrees latitude, one across the seam.",
        "",
        "| panorama | faces found | faces (s) | faces --blur (s) | ratio (goal <= 1.5) | "
        "peak faces (GB) | peak --blur (GB) |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"A face {small['width']:g} degree(s) wide in a {w}x{h} panorama, "
        f"`pano360 faces --min-face {small['min_face']:g} --blur`: {found} "
        f"(spherical IoU {small['iou']:.2f} with its true box), {small['seconds']:.0f} s, "
        f"peak resident memory {small['peak'] / GB:.2f} GB; the command's estimate, which it "
        f"checks against `--max-memory` or the memory available before detecting (read from "
        f"its refusal under `--max-memory 0.001`): {small['estimate'] / GB:.1f} GB.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, "1024 x 512 scenes, one run each (a smoke run)", argv)
    repeats = args.repeats or (1 if args.quick else 2)
    argv = sys.argv[1:] if argv is None else argv
    command = " ".join([".venv/bin/python benchmarks/bench_faces_hires.py", *argv])
    info = machine_info()
    print("pano360 high-resolution faces benchmark")
    for k, v in info.items():
        print(f"  {k}: {v}")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rows, small = run(args.quick, repeats, Path(tmp))
    section = render(rows, small, info, command, repeats)
    print()
    print(section)
    print(f"total {time.perf_counter() - start:.0f} s")
    if not args.no_write:
        write_section("bench_faces_hires", section)
        print(f"wrote the bench_faces_hires section of {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
