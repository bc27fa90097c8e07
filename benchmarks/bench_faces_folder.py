"""Faces of a folder of panoramas: images per second decoding in the main process (--jobs 0)
and in 2 DataLoader workers (--jobs 2), and the share of decoding.

Run from the repository root::

    .venv/bin/python benchmarks/bench_faces_folder.py [--repeats N] [--quick] [--no-write]

A folder of 6 JPEG panoramas of 1920 x 960 (the embedded example, each turned by another yaw so
that no two are alike) is blurred with ``pano360.detection.blur_faces_in_folder`` (what
``pano360 faces DIR --blur --out DIR2 --jobs J`` runs; default settings, CPU), into a new output
folder each time, --jobs 0 and --jobs 2 interleaved, the median of the runs. Beside them: the
seconds of decoding the same files in the main process (``pano360.io.read_image``), the part
of the work that workers take off the detector's process. ``--quick``: 2 images of 256 x 128,
faces of 24 degrees and more, one run each (a smoke run). Writes the table into
docs/benchmarks.md between the ``bench_faces_folder`` markers unless --no-write.
"""

from __future__ import annotations

import datetime
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import ROOT, machine_info, parse_args, write_section

from pano360.detection import FaceFolderJob, blur_faces_in_folder
from pano360.io import read_image, write_image

EXAMPLE = ROOT / "examples" / "panorama.jpg"


def make_folder(root: Path, n: int, hw: tuple[int, int]) -> list[Path]:
    erp = F.interpolate(read_image(EXAMPLE), size=hw, mode="area")
    paths = []
    for k in range(n):
        path = root / f"pano_{k:03d}.jpg"
        write_image(path, erp.roll(k * hw[1] // n, -1))
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, "2 images of 256 x 128, one run (a smoke run)", argv)
    hw = (128, 256) if args.quick else (960, 1920)
    n = 2 if args.quick else 6
    min_face = 24.0 if args.quick else 8.0
    repeats = args.repeats or (1 if args.quick else 2)
    info = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        paths = make_folder(src, n, hw)
        decode = []
        seconds: dict[int, list[float]] = {0: [], 2: []}
        faces: dict[int, int] = {}
        for r in range(repeats):
            start = time.perf_counter()
            for p in paths:
                read_image(p)
            decode.append(time.perf_counter() - start)
            for jobs in seconds:
                job = FaceFolderJob(src, Path(tmp) / f"out_{jobs}_{r}", min_face_deg=min_face)
                start = time.perf_counter()
                results = blur_faces_in_folder(job, jobs=jobs)
                seconds[jobs].append(time.perf_counter() - start)
                assert all(x.status == "done" for x in results), results
                faces[jobs] = sum(x.faces for x in results)
    base = statistics.median(seconds[0])
    rows = [
        f"| --jobs {jobs} | {faces[jobs]} | {statistics.median(ts):.1f} | "
        f"{n / statistics.median(ts):.3f} | {base / statistics.median(ts):.2f} |"
        for jobs, ts in seconds.items()
    ]
    command = "python benchmarks/bench_faces_folder.py" + (" --quick" if args.quick else "")
    if args.repeats:
        command += f" --repeats {args.repeats}"
    section = (
        "## Faces of a folder of panoramas: DataLoader workers\n\n"
        f"`{command}` ({datetime.date.today()}; {info['CPU']}, {info['cores']}, "
        f"torch {info['torch']}). {n} JPEG panoramas of {hw[1]}x{hw[0]} blurred by "
        "`blur_faces_in_folder` (`pano360 faces DIR --blur --out DIR2 --jobs J`, "
        f"--min-face {min_face:g}, CPU), median of {repeats} run(s), interleaved.\n\n"
        "| decoding | faces found | seconds | images per second | speed-up over --jobs 0 |\n"
        "|---|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n\n"
        f"Decoding the {n} files alone in one process: {statistics.median(decode):.2f} s "
        f"({100 * statistics.median(decode) / base:.1f}% of the --jobs 0 run): the most that "
        "workers can take off the detector's process. On a CPU the detector already uses every "
        "core, so workers compete with it rather than overlap; they are meant for GPUs, where "
        "detection is faster and decoding a larger share (not measured here).\n"
    )
    print(section)
    if not args.quick and not args.no_write:
        write_section("bench_faces_folder", section)


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
