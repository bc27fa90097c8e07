"""Benchmark spherical convolutions against nn.Conv2d of the same shape (CPU).

Run from the repository root::

    .venv/bin/python benchmarks/bench_sphere_conv.py [--repeats N] [--quick] [--no-write]

For four shapes (k = 3, batch 1): 3->64 at 256x512, 64->64 at 128x256, 128->128 at 64x128 and
256->256 at 32x64, it times forward and forward+backward of SphereConv2d (tangent taps),
SphereConv2d (crown taps, 1 ring of 8), RowUntiedConv2d (default row groups) and a SphereNet-style
reference implemented here (grid_sample of the same taps into a 3H x 3W map, then a stride-3
convolution), each as a ratio to nn.Conv2d (padding 1) timed in the same run, interleaved. It also
reports the peak extra memory of one forward+backward as a ratio to nn.Conv2d's (torch profiler
memory events). A second table times depthwise 3 x 3 convolutions (groups == channels) at the
sizes MobileNetV2's depthwise layers have on a 224 x 448 ERP input, SphereConv2d (tangent taps)
against nn.Conv2d (padding 1, groups == channels), forward and forward+backward, batch 1, both
fed NCHW maps, then both fed channels-last maps.
Results are printed and written to docs/benchmarks.md between the ``bench_sphere_conv`` markers.
"""

from __future__ import annotations

import datetime
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from _common import (
    DOC,
    ROOT,
    backward_fn,
    forward_fn,
    machine_info,
    median_times,
    parse_args,
    write_section,
)
from torch import nn

from pano360.geometry import spherical_pad
from pano360.nn import RowUntiedConv2d, SphereConv2d
from pano360.nn._taps import default_tap_spacing, sphere_conv_grid, tangent_tap_directions

SHAPES = [(3, 64, 256), (64, 64, 128), (128, 128, 64), (256, 256, 32)]  # (C_in, C_out, H)
# MobileNetV2's depthwise layers on a 224 x 448 ERP: (channels, input H, stride).
DEPTHWISE = [
    (32, 112, 1), (96, 112, 2), (144, 56, 1), (144, 56, 2), (192, 28, 1), (192, 28, 2),
    (384, 14, 1), (576, 14, 1), (576, 14, 2), (960, 7, 1),
]  # fmt: skip
# --quick checks that the script runs: shapes small enough for a smoke test (no figures).
QUICK_SHAPES, QUICK_DEPTHWISE = [(16, 16, 16)], [(32, 16, 2)]
LAYOUTS = {torch.contiguous_format: "NCHW", torch.channels_last: "channels-last"}


class SphereNetReference(nn.Module):
    """SphereNet-style layer: sample the k x k taps of every output pixel into a kH x kW map,
    then convolve with stride k (the formulation of Coors et al., ECCV 2018)."""

    def __init__(self, conv: nn.Conv2d, hw: tuple[int, int]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(conv.in_channels, conv.out_channels, 3, stride=3)
        self.conv.load_state_dict(conv.state_dict())
        h, w = hw
        local = tangent_tap_directions((3, 3), 1, default_tap_spacing(w))
        key = tuple(tuple(v) for v in local.tolist())
        grid = sphere_conv_grid(key, hw, 1, torch.float32, torch.device("cpu"))  # (1, 9H, W, 2)
        # Tap k = (a, b) of output (i, j) goes to (3i + a, 3j + b).
        grid = grid.reshape(3, 3, h, w, 2).permute(2, 0, 3, 1, 4).reshape(1, 3 * h, 3 * w, 2)
        self.register_buffer("grid", grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        taps = F.grid_sample(spherical_pad(x, 1), self.grid, align_corners=False)
        return self.conv(taps)


def layers(c_in: int, c_out: int, h: int) -> dict[str, nn.Module]:
    conv = nn.Conv2d(c_in, c_out, 3, padding=1)
    tangent = SphereConv2d(c_in, c_out, 3)
    tangent.load_state_dict(conv.state_dict())
    return {
        "nn.Conv2d": conv,
        "SphereConv2d tangent": tangent,
        "SphereConv2d crown": SphereConv2d(c_in, c_out, 3, taps="crown"),
        "RowUntiedConv2d": RowUntiedConv2d.from_conv(conv, (h, 2 * h)),
        "SphereNet-style ref.": SphereNetReference(conv, (h, 2 * h)),
    }


def peak_memory(fn: Callable[[], object]) -> int:
    """Peak bytes allocated on the CPU during one call (profiler memory events, in time order)."""
    fn()  # warm caches so that only the call itself is measured
    with torch.profiler.profile(profile_memory=True) as prof:
        fn()
    # Every op's own allocations and frees (children excluded), plus the frees the profiler
    # records outside any op ("[memory]"), replayed in time order.
    events = [e for e in prof.events() if e.self_cpu_memory_usage]
    events.sort(key=lambda e: e.time_range.start)
    level = peak = 0
    for e in events:
        level += e.self_cpu_memory_usage
        peak = max(peak, level)
    return peak


def run(repeats: int, shapes, tries: int = 3) -> list[dict]:
    rows = []
    for c_in, c_out, h in shapes:
        torch.manual_seed(0)
        x = torch.rand(1, c_in, h, 2 * h)
        mods = layers(c_in, c_out, h)
        names = list(mods)
        fwd, _ = median_times([forward_fn(mods[n], x) for n in names], repeats)
        bwd, _ = median_times([backward_fn(mods[n], x) for n in names], repeats)
        # The profiler occasionally misses a block; keep the largest of `tries` measurements, and
        # never let the reference fall below its output's size (it must allocate at least that).
        mem = [max(peak_memory(backward_fn(mods[n], x)) for _ in range(tries)) for n in names]
        mem[0] = max(mem[0], c_out * h * 2 * h * x.element_size())
        for i, name in enumerate(names):
            rows.append(
                {
                    "shape": f"{c_in}->{c_out} at {h}x{2 * h}",
                    "layer": name,
                    "fwd_ms": fwd[i] * 1e3,
                    "fwd_ratio": fwd[i] / fwd[0],
                    "bwd_ms": bwd[i] * 1e3,
                    "bwd_ratio": bwd[i] / bwd[0],
                    "mem_ratio": mem[i] / max(mem[0], 1),
                    "params": sum(p.numel() for p in mods[name].parameters()),
                }
            )
        print(f"done {c_in}->{c_out} at {h}x{2 * h}", flush=True)
    return rows


def run_depthwise(repeats: int, shapes, layout=torch.contiguous_format) -> list[dict]:
    """Both layers fed ``x`` in ``layout`` (nn.Conv2d's oneDNN kernel takes either)."""
    rows = []
    for c, h, stride in shapes:
        torch.manual_seed(0)
        x = torch.rand(1, c, h, 2 * h).contiguous(memory_format=layout)
        conv = nn.Conv2d(c, c, 3, stride, padding=1, groups=c)
        sphere = SphereConv2d(c, c, 3, stride, groups=c)
        sphere.load_state_dict(conv.state_dict())
        fwd, _ = median_times([forward_fn(m, x) for m in (conv, sphere)], repeats)
        bwd, _ = median_times([backward_fn(m, x) for m in (conv, sphere)], repeats)
        rows.append(
            {
                "shape": f"{c} at {h}x{2 * h}, stride {stride}",
                "layout": LAYOUTS[layout],
                "fwd_ms": (fwd[0] * 1e3, fwd[1] * 1e3),
                "bwd_ms": (bwd[0] * 1e3, bwd[1] * 1e3),
            }
        )
        print(f"done depthwise {c} at {h}x{2 * h} stride {stride}, {LAYOUTS[layout]}", flush=True)
    return rows


def render_depthwise(rows, repeats: int) -> str:
    lines = [
        "",
        "### Depthwise 3 x 3 (MobileNetV2's layers on a 224 x 448 ERP)",
        "",
        f"groups == channels, batch 1, float32; median of {repeats} runs after one warm-up, "
        "interleaved. SphereConv2d (tangent taps) against nn.Conv2d (padding 1) in the same run, "
        "both fed the same input: NCHW (contiguous) rows, then channels-last rows. "
        "Goal: at most 2x nn.Conv2d, forward and forward+backward.",
        "",
        "| channels at input size, stride | layout | nn.Conv2d fwd (ms) | SphereConv2d fwd (ms) "
        "| ratio | nn.Conv2d fwd+bwd (ms) | SphereConv2d fwd+bwd (ms) | ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        (f0, f1), (b0, b1) = r["fwd_ms"], r["bwd_ms"]
        lines.append(
            f"| {r['shape']} | {r['layout']} | {f0:.2f} | {f1:.2f} | {f1 / f0:.2f}x "
            f"| {b0:.2f} | {b1:.2f} | {b1 / b0:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def render(rows, info, command: str, repeats: int) -> str:
    lines = [
        "## Spherical convolutions vs nn.Conv2d (CPU)",
        "",
        f"Generated by `{command}` on {datetime.date.today().isoformat()}.",
        "",
        "Machine: " + "; ".join(f"{k}: {v}" for k, v in info.items()) + ".",
        "",
        "Batch 1, k = 3, float32, random input. Median of "
        f"{repeats} runs after one warm-up, all layers of a shape interleaved. Ratios are to "
        "nn.Conv2d (padding 1) of the same shape in the same run; forward under no_grad, "
        "forward+backward computes gradients for the input and the weights. Memory: peak bytes "
        "allocated during one forward+backward (torch profiler, largest of 3), as a ratio to "
        "nn.Conv2d's (at least its output's size). "
        "Goal: SphereConv2d within 2x (forward) and 2.5x (forward+backward) of nn.Conv2d.",
        "",
        "| shape | layer | forward (ms) | ratio | fwd+bwd (ms) | ratio | peak memory ratio "
        "| parameters |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['shape']} | {r['layer']} | {r['fwd_ms']:.1f} | {r['fwd_ratio']:.2f}x "
            f"| {r['bwd_ms']:.1f} | {r['bwd_ratio']:.2f}x | {r['mem_ratio']:.2f}x "
            f"| {r['params']:,} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, "a smoke run: 1 repeat of one small shape", argv)
    repeats = args.repeats or (1 if args.quick else 7)
    shapes = QUICK_SHAPES if args.quick else SHAPES
    argv = sys.argv[1:] if argv is None else argv
    command = " ".join([".venv/bin/python benchmarks/bench_sphere_conv.py", *argv])
    info = machine_info()
    start = time.perf_counter()
    rows = run(repeats, shapes, tries=1 if args.quick else 3)
    depthwise = [
        row
        for layout in LAYOUTS
        for row in run_depthwise(repeats, QUICK_DEPTHWISE if args.quick else DEPTHWISE, layout)
    ]
    section = render(rows, info, command, repeats) + render_depthwise(depthwise, repeats)
    print()
    print(section)
    print(f"total {time.perf_counter() - start:.0f} s")
    if not args.no_write:
        write_section("bench_sphere_conv", section)
        print(f"wrote the bench_sphere_conv section of {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
