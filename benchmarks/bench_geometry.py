"""Benchmark pano360's projections against py360convert and the torch peers on the CPU.

Run from the repository root::

    .venv/bin/python benchmarks/bench_geometry.py [--repeats N] [--quick] [--no-write]

On one synthetic 2048 x 1024 RGB float32 image it times, at batch 1 unless a row says otherwise,
ours against pytorch360convert 0.2.3 and pyequilib 0.6.0 (the torch libraries users would pick
instead; both in the dev extra) and py360convert 1.0.4 (NumPy): the median of several runs
after a warm-up, all libraries interleaved so that noise hits them alike, and ratios
peer time / our time measured in the same run. Rows:

- cached: the same geometry every call, so every library's caches hit (only py360convert and
  ours cache sampling coordinates; equilib caches a 3 x 3 matrix, pytorch360convert nothing);
- cold: a new yaw, a new rotation or a new camera per image on every call, or every cache of
  every library cleared before each call (e2c, c2e), as a random-view data pipeline or a
  one-off CLI call runs.

Conventions are converted where the peers allow (pytorch360convert takes py360convert's
angles and fov; equilib looks left for yaw > 0 and down for pitch > 0, and puts its principal
point half a pixel off), and the mean absolute difference of each peer's output from ours on
the benchmark image is printed, so that what is compared is known. It also measures the peak
memory (growth of the resident set) of a first ``e2c`` call in a fresh process per library,
and our throughput at batch 8 (``--quick``: 1 repeat, batch 2, a smoke run). The results are
printed and written into docs/benchmarks.md between the ``bench_geometry`` markers (the rest
of the file is left alone).
"""

from __future__ import annotations

import datetime
import functools
import importlib
import itertools
import math
import pkgutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from _common import (  # benchmarks/ is on sys.path when a script here runs
    DOC,
    ROOT,
    median_times,
    parse_args,
    write_section,
)
from _common import machine_info as common_machine_info

import pano360.geometry
from pano360.geometry import (
    cubemap_to_erp,
    erp_to_cubemap,
    erp_to_perspective,
    py360convert_fov,
    rotate_erp,
)
from pano360.geometry._cache import GridCache

try:
    import equilib
    import py360convert
    import py360convert.utils
    import pytorch360convert
except ImportError:  # pragma: no cover - the dev extra installs them
    sys.exit("py360convert, pytorch360convert and pyequilib are needed: pip install -e '.[dev]'")

ERP_HW = (1024, 2048)
FACE_W = 512
VIEW_FOV_DEG = 90.0
VIEW_HW = (600, 800)  # (h, w), the size `make demo` renders
VIEW_ANGLES_DEG = (30.0, 15.0, 5.0)  # yaw, pitch, roll
PEERS = ("pytorch360convert", "equilib", "py360convert")
TORCH_PEERS = ("pytorch360convert", "equilib")


def machine_info() -> dict[str, str]:
    import scipy

    try:
        import cv2  # noqa: F401

        backend = "OpenCV remap"
    except ImportError:
        backend = "scipy map_coordinates (no OpenCV)"
    info = common_machine_info()
    info["peers"] = (
        f"pytorch360convert {pytorch360convert.__version__}, "
        f"pyequilib {getattr(equilib, '__version__', '?')}, "
        f"py360convert {getattr(py360convert, '__version__', '?')} ({backend})"
    )
    info["numpy / scipy"] = f"{np.__version__} / {scipy.__version__}"
    return info


def caches() -> dict[str, object]:
    """Every geometry cache of ours (GridCache, lru_cache) and every lru_cache of the peers."""
    found: dict[str, object] = {}

    def scan(module) -> None:
        for name, obj in vars(module).items():
            if isinstance(obj, GridCache) or (
                isinstance(obj, functools._lru_cache_wrapper) and obj.__module__ == module.__name__
            ):
                found[f"{module.__name__}.{name}"] = obj
            elif isinstance(getattr(obj, "cache", None), GridCache):  # grid_cache functions
                found[f"{module.__name__}.{name}"] = obj.cache
            elif isinstance(obj, type) and obj.__module__ == module.__name__:
                for attr, member in vars(obj).items():
                    inner = getattr(member, "__func__", member)
                    if isinstance(inner, functools._lru_cache_wrapper):
                        found[f"{module.__name__}.{name}.{attr}"] = inner

    for package in (pano360.geometry, equilib, pytorch360convert):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            scan(importlib.import_module(info.name))
    scan(py360convert.utils)
    return found


def clear_caches() -> None:
    for cache in CACHES.values():
        cache.cache_clear()


def make_inputs(batch: int):
    """Deterministic synthetic inputs: a smooth pattern plus fine noise, in [0, 1]."""
    gen = torch.Generator().manual_seed(0)
    h, w = ERP_HW
    lat = torch.linspace(math.pi / 2, -math.pi / 2, h)[:, None]
    lon = torch.linspace(-math.pi, math.pi, w)[None, :]
    base = torch.stack(
        (
            0.5 + 0.4 * torch.cos(lat) * torch.sin(3 * lon),
            0.5 + 0.4 * torch.sin(2 * lat) * torch.cos(lon),
            0.5 + 0.4 * torch.sin(5 * lon + lat),
        )
    )
    noise = torch.rand(batch, 3, h, w, generator=gen)
    return (0.8 * base + 0.2 * noise).clamp(0, 1).float().contiguous()


def cold(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` after every cache of every library is cleared."""

    def run() -> object:
        clear_caches()
        return fn()

    return run


def equilib_rots(yaw: float, pitch: float, roll: float) -> dict[str, float]:
    """Our camera angles (radians) as equilib's: it looks left for yaw > 0, down for pitch > 0."""
    return {"roll": roll, "pitch": -pitch, "yaw": -yaw}


def as_tensor(x) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x).permute(2, 0, 1)
    return x


def difference(ours, theirs) -> float:
    """Mean absolute difference of two results (tensors (..., C, h, w), HWC arrays or dicts)."""
    if isinstance(ours, dict):
        keys = dict(zip("FRBLUD", ("Front", "Right", "Back", "Left", "Up", "Down"), strict=True))
        parts = []
        for k, v in ours.items():
            t = theirs[k] if k in theirs else theirs[keys[k]]
            parts.append(difference(v, t))
        return sum(parts) / len(parts)
    a, b = as_tensor(ours).float().squeeze(0), as_tensor(theirs).float().squeeze(0)
    return (a - b).abs().mean().item()


def run(repeats: int, batch: int) -> tuple[list[dict], dict[str, dict[str, float]], list[dict]]:
    erp_b = make_inputs(batch)
    erp = erp_b[:1].contiguous()
    chw = erp[0]
    img = np.ascontiguousarray(chw.permute(1, 2, 0).numpy())  # (H, W, 3) float32
    h, w = ERP_HW
    fov = math.radians(VIEW_FOV_DEG)
    py_fov = py360convert_fov(fov, VIEW_HW)
    yaw, pitch, roll = (math.radians(a) for a in VIEW_ANGLES_DEG)
    vh, vw = VIEW_HW
    deg = math.degrees

    cube = erp_to_cubemap(erp, FACE_W, layout="dict")
    cube_chw = {k: v[0] for k, v in cube.items()}
    py_cube = {k: np.ascontiguousarray(v.permute(1, 2, 0).numpy()) for k, v in cube_chw.items()}
    no_rots = {"roll": 0.0, "pitch": 0.0, "yaw": 0.0}
    p3_names = ("Front", "Right", "Back", "Left", "Up", "Down")
    p3_cube = dict(zip(p3_names, cube_chw.values(), strict=True))  # its dict keys

    # New geometry on every call: yaw (or the rotation) steps by 0.01 degree per call.
    steps = {name: itertools.count() for name in ("ours", *PEERS, "rot", "rot_p3", "rot_eq")}

    def new_yaw(name: str) -> float:
        return yaw + math.radians(0.01 * next(steps[name]))

    # A batch of cameras, one per image, new on every call.
    batch_step = itertools.count()
    yaws = torch.linspace(-math.pi, math.pi, batch + 1)[:-1]

    def cameras() -> list[float]:
        shift = math.radians(0.01 * next(batch_step))
        return [float(v) + shift for v in yaws]

    fns: dict[str, dict[str, Callable[[], object]]] = {
        f"e2p {VIEW_FOV_DEG:g}° {vw}x{vh}, same view (cached)": {
            "ours": lambda: erp_to_perspective(erp, fov, VIEW_HW, yaw, pitch, roll),
            "pytorch360convert": lambda: pytorch360convert.e2p(
                chw, py_fov, deg(yaw), deg(pitch), VIEW_HW, deg(roll)
            ),
            "equilib": lambda: equilib.equi2pers(
                chw, equilib_rots(yaw, pitch, roll), vh, vw, VIEW_FOV_DEG
            ),
            "py360convert": lambda: py360convert.e2p(
                img, py_fov, deg(yaw), deg(pitch), VIEW_HW, deg(roll)
            ),
        },
        f"e2c face {FACE_W} (cached)": {
            "ours": lambda: erp_to_cubemap(erp, FACE_W, layout="dict"),
            "pytorch360convert": lambda: pytorch360convert.e2c(chw, FACE_W, cube_format="dict"),
            "equilib": lambda: equilib.equi2cube(chw, no_rots, FACE_W, "dict"),
            "py360convert": lambda: py360convert.e2c(img, face_w=FACE_W, cube_format="dict"),
        },
        f"c2e face {FACE_W} -> {w}x{h} (cached)": {
            "ours": lambda: cubemap_to_erp(cube, ERP_HW, layout="dict"),
            "pytorch360convert": lambda: pytorch360convert.c2e(p3_cube, h, w, cube_format="dict"),
            "equilib": lambda: equilib.cube2equi(cube_chw, "dict", h, w),
            "py360convert": lambda: py360convert.c2e(py_cube, h, w, cube_format="dict"),
        },
        f"e2p {VIEW_FOV_DEG:g}° {vw}x{vh}, new yaw each call": {
            "ours": lambda: erp_to_perspective(erp, fov, VIEW_HW, new_yaw("ours"), pitch, roll),
            "pytorch360convert": lambda: pytorch360convert.e2p(
                chw, py_fov, deg(new_yaw("pytorch360convert")), deg(pitch), VIEW_HW, deg(roll)
            ),
            "equilib": lambda: equilib.equi2pers(
                chw, equilib_rots(new_yaw("equilib"), pitch, roll), vh, vw, VIEW_FOV_DEG
            ),
            "py360convert": lambda: py360convert.e2p(
                img, py_fov, deg(new_yaw("py360convert")), deg(pitch), VIEW_HW, deg(roll)
            ),
        },
        f"e2c face {FACE_W}, caches cleared": {
            "ours": cold(lambda: erp_to_cubemap(erp, FACE_W, layout="dict")),
            "pytorch360convert": cold(
                lambda: pytorch360convert.e2c(chw, FACE_W, cube_format="dict")
            ),
            "equilib": cold(lambda: equilib.equi2cube(chw, no_rots, FACE_W, "dict")),
            "py360convert": cold(lambda: py360convert.e2c(img, face_w=FACE_W, cube_format="dict")),
        },
        f"c2e face {FACE_W} -> {w}x{h}, caches cleared": {
            "ours": cold(lambda: cubemap_to_erp(cube, ERP_HW, layout="dict")),
            "pytorch360convert": cold(
                lambda: pytorch360convert.c2e(p3_cube, h, w, cube_format="dict")
            ),
            "equilib": cold(lambda: equilib.cube2equi(cube_chw, "dict", h, w)),
            "py360convert": cold(lambda: py360convert.c2e(py_cube, h, w, cube_format="dict")),
        },
        "rotate ERP, new rotation each call": {
            "ours": lambda: rotate_erp(erp, yaw=new_yaw("rot"), pitch=pitch, roll=roll),
            # pytorch360convert's e2e turns about other axes: only its yaw agrees with ours.
            "pytorch360convert": lambda: pytorch360convert.e2e(
                chw, roll=deg(roll), h_deg=deg(new_yaw("rot_p3")), v_deg=deg(pitch)
            ),
            "equilib": lambda: equilib.equi2equi(chw, equilib_rots(new_yaw("rot_eq"), pitch, roll)),
        },
        f"e2p batch {batch}, a new camera per image": {
            "ours": lambda: erp_to_perspective(
                erp_b, fov, VIEW_HW, torch.tensor(cameras()), pitch, roll
            ),
            # pytorch360convert takes one camera per call.
            "pytorch360convert": lambda: [
                pytorch360convert.e2p(erp_b[i], py_fov, deg(c), deg(pitch), VIEW_HW, deg(roll))
                for i, c in enumerate(cameras())
            ],
            "equilib": lambda: equilib.equi2pers(
                erp_b, [equilib_rots(c, pitch, roll) for c in cameras()], vh, vw, VIEW_FOV_DEG
            ),
        },
    }

    rows = []
    for name, by_lib in fns.items():
        print(f"  timing {name} ...", flush=True)
        libs = list(by_lib)
        times, _ = median_times([by_lib[lib] for lib in libs], repeats)
        rows.append({"op": name, **dict(zip(libs, times, strict=True))})

    # Agreement with ours on the benchmark image (the same parameters, conventions converted).
    agree: dict[str, dict[str, float]] = {}

    def restart() -> None:  # every library at its first step: the same angles
        for key in steps:
            steps[key] = itertools.count()

    for name, by_lib in fns.items():
        if "batch" in name:
            continue
        restart()
        ours = by_lib["ours"]()
        agree[name] = {}
        for lib, fn in by_lib.items():
            if lib != "ours":
                restart()
                agree[name][lib] = difference(ours, fn())

    throughput = []
    cube_b = erp_to_cubemap(erp_b, FACE_W, layout="dict")
    for name, fn, out_pixels in (
        (f"e2c face {FACE_W}", lambda: erp_to_cubemap(erp_b, FACE_W, layout="dict"), 6 * FACE_W**2),
        (
            f"c2e face {FACE_W} -> {w}x{h}",
            lambda: cubemap_to_erp(cube_b, ERP_HW, layout="dict"),
            h * w,
        ),
    ):
        print(f"  timing {name} at batch {batch} ...", flush=True)
        (t,), _ = median_times([fn], max(3, repeats // 3))
        throughput.append(
            {"op": name, "batch": batch, "time": t, "images_s": batch / t,
             "mpix_s": batch * out_pixels / t / 1e6}
        )  # fmt: skip
    return rows, agree, throughput


def first_e2c_peak(lib: str) -> float:
    """Growth of the peak resident set (MiB) of a first e2c call in a fresh process."""
    code = f"""
import sys, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, {str(ROOT / "benchmarks")!r})
import bench_geometry as b
erp = b.make_inputs(1)
chw = erp[0]
img = b.np.ascontiguousarray(chw.permute(1, 2, 0).numpy())
call = {{
    "ours": lambda: b.erp_to_cubemap(erp, b.FACE_W, layout="dict"),
    "pytorch360convert": lambda: b.pytorch360convert.e2c(chw, b.FACE_W, cube_format="dict"),
    "equilib": lambda: b.equilib.equi2cube(
        chw, {{"roll": 0.0, "pitch": 0.0, "yaw": 0.0}}, b.FACE_W, "dict"
    ),
    "py360convert": lambda: b.py360convert.e2c(img, face_w=b.FACE_W, cube_format="dict"),
}}[{lib!r}]
def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets the peak resident set (VmHWM) to the current one
before = status("VmRSS:")
out = call()
print((status("VmHWM:") - before) / 1024)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return float(done.stdout.strip().splitlines()[-1])


def ms(seconds: float) -> str:
    return f"{1e3 * seconds:.1f}"


def ratio(row: dict, lib: str) -> str:
    return f"{row[lib] / row['ours']:.2f}x" if lib in row else "–"


def render(rows, agree, peaks, throughput, info, command: str, repeats: int) -> str:
    lines = [
        "## Geometry: pano360 vs pytorch360convert, equilib and py360convert (CPU)",
        "",
        f"Generated by `{command}` on {datetime.date.today().isoformat()}.",
        "",
        "Machine: " + "; ".join(f"{k}: {v}" for k, v in info.items()) + ".",
        "",
        f"Input: one synthetic {ERP_HW[1]}x{ERP_HW[0]} RGB image, float32 (torch peers: the "
        "same tensor, (C, H, W); py360convert: an (H, W, 3) float32 array), bilinear, layout "
        f"`dict`. Median of {repeats} runs after one warm-up, all libraries interleaved. "
        "Ratios = peer time / our time in the same run (above 1: we are faster). Goals: every "
        "cold row at least 2x faster than the faster torch peer, cached rows at least 3x "
        "faster than every peer. *Cached*: the same geometry each call (py360convert and ours "
        "keep sampling coordinates; equilib caches a 3 x 3 matrix, pytorch360convert nothing). "
        "*Cold*: new geometry each call, or every library's caches cleared before each call.",
        "",
        "| operation | ours (ms) | pytorch360convert (ms) | equilib (ms) | py360convert (ms) "
        "| pytorch360convert / ours | equilib / ours | py360convert / ours "
        "| faster torch peer / ours |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        best = min(r[lib] for lib in TORCH_PEERS)
        cells = [ms(r[lib]) if lib in r else "–" for lib in ("ours", *PEERS)]
        lines.append(
            f"| {r['op']} | " + " | ".join(cells) + " | "
            + " | ".join(ratio(r, lib) for lib in PEERS) + f" | {best / r['ours']:.2f}x |"
        )  # fmt: skip
    lines += [
        "",
        "What is compared: the mean absolute difference of each peer's output from ours on "
        "the benchmark image (values in [0, 1]), with the conventions converted (equilib: "
        "yaw and pitch negated; pytorch360convert and py360convert: py360convert's fov "
        "between outer pixel centres, `py360convert_fov`). The remaining differences are the "
        "peers' pixel grids (cube faces and ERP on linspace grids, equilib's principal point "
        "half a pixel off) and, for pytorch360convert's `e2e`, rotation axes that only agree "
        "with ours in yaw:",
        "",
        "| operation | pytorch360convert | equilib | py360convert |",
        "|---|---:|---:|---:|",
    ]
    for op, by_lib in agree.items():
        cells = [f"{by_lib[lib]:.2e}" if lib in by_lib else "–" for lib in PEERS]
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Peak memory of a first e2c call (face {FACE_W}) in a fresh process: growth of the "
        "peak resident set during the call (MiB). Goal: ours at most the torch peers' + 20%.",
        "",
        "| ours | pytorch360convert | equilib | py360convert |",
        "|---:|---:|---:|---:|",
        "| " + " | ".join(f"{peaks[lib]:.0f}" for lib in ("ours", *PEERS)) + " |",
        "",
        "Our throughput at larger batch (default threads):",
        "",
        "| operation | batch | ours (ms per batch) | images/s | output Mpixel/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for t in throughput:
        lines.append(
            f"| {t['op']} | {t['batch']} | {ms(t['time'])} | {t['images_s']:.2f} "
            f"| {t['mpix_s']:.1f} |"
        )
    ours_c = ", ".join(
        f"`{n.removeprefix('pano360.geometry.')}` (at most {c.max_bytes / 2**20:.0f} MiB)"
        for n, c in CACHES.items()
        if isinstance(c, GridCache)
    )
    lines += [
        "",
        f"Our geometry caches, each bounded in bytes: {ours_c}. No row above depends on them "
        "except the cached ones.",
    ]
    return "\n".join(lines) + "\n"


CACHES: dict[str, object] = {}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, "1 repeat, batch 2 (a smoke run)", argv)
    repeats = args.repeats or (1 if args.quick else 15)
    batch = 2 if args.quick else 8
    argv = sys.argv[1:] if argv is None else argv
    command = " ".join([".venv/bin/python benchmarks/bench_geometry.py", *argv])
    warnings.filterwarnings("ignore")  # the peers' deprecation warnings
    CACHES.update(caches())

    info = machine_info()
    print("pano360 geometry benchmark")
    for k, v in info.items():
        print(f"  {k}: {v}")
    start = time.perf_counter()
    rows, agree, throughput = run(repeats, batch)
    print("  peak memory of a first e2c call, fresh processes ...", flush=True)
    peaks = {lib: first_e2c_peak(lib) for lib in ("ours", *PEERS)}
    section = render(rows, agree, peaks, throughput, info, command, repeats)
    print()
    print(section)
    print(f"total {time.perf_counter() - start:.0f} s")
    if not args.no_write:
        write_section("bench_geometry", section)
        print(f"wrote the bench_geometry section of {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
