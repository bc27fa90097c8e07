"""Benchmark the Spherical U-Net against its planar and tangent-tap baselines on the CPU.

Run from the repository root::

    .venv/bin/python benchmarks/bench_unet_speed.py [--repeats N] [--quick] [--no-write]

It prints the parameter counts of ``spherical_unet`` (crown taps), ``spherical_unet_tangent`` and
``planar_unet`` against the seed's ``Final1`` (computed from its layer shapes), then times, at
128 x 256 and batch 4 (the seed's working size; ``--quick``: 16 x 32, batch 1, channels 4, a
smoke run), one training step's forward+backward of each model (train mode, gradients for the
weights, loss ``spherical_mse`` against a random target) and inference (eval mode, no_grad),
interleaved, median of several runs after a warm-up. Ratios are to ``planar_unet`` in the same
run; the issue's goal is a training step of the spherical U-Net at most 2x the planar one.
Inference is reported as frames per second. Finally, one forward+backward of every convolution
alone, at its own input size, crown against planar, shows where the time goes.

Results are printed and written to docs/training.md between the ``bench_unet_speed`` markers.
"""

from __future__ import annotations

import datetime
import sys
import time
from collections.abc import Callable

import torch
from _common import ROOT, backward_fn, machine_info, median_times, parse_args, write_section
from torch import nn

from pano360.models import (
    SPHERICAL_UNET_LAYERS,
    SaliencyUNet,
    crown_layout,
    seed_parameter_count,
)
from pano360.nn import spherical_mse

DOC = ROOT / "docs" / "training.md"
KINDS = {"crown": "spherical_unet", "tangent": "spherical_unet_tangent", "planar": "planar_unet"}


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def parameter_table() -> str:
    seed = seed_parameter_count()
    counts = {kind: n_params(SaliencyUNet(kind)) for kind in KINDS}
    lines = [
        "| model | convolution | parameters | vs seed | vs planar_unet |",
        "|---|---|---:|---:|---:|",
        f"| seed `Final1` | crown, kθ x kφ bilinear kernel | {seed:,} | 1.000 | "
        f"{seed / counts['planar']:.3f} |",
    ]
    for kind, name in KINDS.items():
        n = counts[kind]
        lines.append(f"| `{name}` | {kind} | {n:,} | {n / seed:.3f} | {n / counts['planar']:.3f} |")
    lines += [
        "",
        "| layer | channels | crown radius | seed kernel (weights) | our crown: rings x azimuths "
        "(taps) | planar kernel (taps), dilation |",
        "|---|---|---|---|---|---|",
    ]
    for spec in SPHERICAL_UNET_LAYERS:
        kt, kp = spec.seed_kernel
        rings, azimuths = crown_layout(spec.seed_kernel)
        kh, kw = spec.planar_kernel
        n = round(torch.pi / spec.radius)
        radius = "pi" if n == 1 else f"pi/{n}"
        lines.append(
            f"| {spec.name} | {spec.in_channels} -> {spec.out_channels} | "
            f"{radius} | {kt} x {kp} ({kt * kp}) | "
            f"{rings} x {azimuths} ({1 + rings * azimuths}) | {kh} x {kw} ({kh * kw}), "
            f"{spec.planar_dilation} |"
        )
    return "\n".join(lines) + "\n"


def train_step_fn(model: nn.Module, x: torch.Tensor, prior, target) -> Callable[[], object]:
    def run() -> object:
        model.train()
        model.zero_grad(set_to_none=True)
        loss = spherical_mse(model(x, prior), 10 * target)
        loss.backward()
        return loss

    return run


def inference_fn(model: nn.Module, x: torch.Tensor, prior) -> Callable[[], object]:
    def run() -> object:
        model.eval()
        with torch.no_grad():
            return model(x, prior)

    return run


def logged(label: str, fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` printing its time on every call, so that a long run shows its progress."""

    def run() -> object:
        start = time.perf_counter()
        out = fn()
        print(f"  {label}: {time.perf_counter() - start:.2f} s", flush=True)
        return out

    return run


def time_models(hw, batch: int, channels: int, repeats: int) -> tuple[dict, dict]:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, *hw, generator=gen)
    prior = torch.rand(batch, 1, *hw, generator=gen)
    target = torch.rand(batch, 1, *hw, generator=gen)
    torch.manual_seed(0)
    models = {kind: SaliencyUNet(kind, "gt", channels) for kind in KINDS}
    fns = [logged(f"{k} step", train_step_fn(m, x, prior, target)) for k, m in models.items()]
    step, _ = median_times(fns, repeats)
    print("timed the training steps", flush=True)
    fns = [logged(f"{k} inference", inference_fn(m, x, prior)) for k, m in models.items()]
    infer, _ = median_times(fns, repeats)
    print("timed inference", flush=True)
    return dict(zip(KINDS, step, strict=True)), dict(zip(KINDS, infer, strict=True))


def time_layers(hw, batch: int, channels: int, repeats: int) -> list[tuple[str, str, float, float]]:
    """(layer, input shape, crown seconds, planar seconds) of each convolution's fwd+bwd."""
    crown, planar = SaliencyUNet("crown", "gt", channels), SaliencyUNet("planar", "gt", channels)
    h, w = hw
    # Input resolution of each conv: conv1, conv7 at H; conv2, conv6 at H/2; conv3, conv5 at H/4.
    scale = {"conv1": 1, "conv2": 2, "conv3": 4, "conv4": 8, "conv5": 4, "conv6": 2, "conv7": 1}
    rows = []
    for spec in SPHERICAL_UNET_LAYERS:
        c_in = getattr(crown, spec.name).in_channels
        size = (batch, c_in, h // scale[spec.name], w // scale[spec.name])
        x = torch.rand(*size, generator=torch.Generator().manual_seed(0))
        (t_crown, t_planar), _ = median_times(
            [
                logged(f"{spec.name} {kind}", backward_fn(getattr(m, spec.name), x))
                for kind, m in (("crown", crown), ("planar", planar))
            ],
            repeats,
        )
        rows.append((spec.name, "x".join(map(str, size)), t_crown, t_planar))
        print(f"timed {spec.name}", flush=True)
    return rows


def render(params, step, infer, layers, info, command, hw, batch, channels, repeats) -> str:
    lines = [
        "### Parameter counts and speed",
        "",
        f"Generated by `{command}` on {datetime.date.today().isoformat()}.",
        "",
        params,
        "Machine: " + "; ".join(f"{k}: {v}" for k, v in info.items()) + ".",
        "",
        f"{hw[0]} x {hw[1]}, batch {batch}, channels {channels}, float32, random input; median "
        f"of {repeats} runs after one warm-up, the models interleaved. Training step: forward "
        "and backward in train mode (loss `spherical_mse(raw, 10 * target)`). Inference: eval "
        "mode, no_grad. Ratios are to `planar_unet` in the same run. "
        "Goal: the spherical U-Net's training step at most 2x the planar U-Net's.",
        "",
        "| model | training step (s) | ratio | inference (s per batch) | frames/s | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, name in KINDS.items():
        lines.append(
            f"| `{name}` | {step[kind]:.2f} | {step[kind] / step['planar']:.2f}x | "
            f"{infer[kind]:.2f} | {batch / infer[kind]:.2f} | "
            f"{infer[kind] / infer['planar']:.2f}x |"
        )
    lines += [
        "",
        "Each convolution alone, forward+backward (input and weight gradients) at its input "
        "size in the model, crown (SphereConv2d) against planar (spherical padding + "
        "nn.Conv2d):",
        "",
        "| layer | input | crown (ms) | planar (ms) | ratio | share of crown total |",
        "|---|---|---:|---:|---:|---:|",
    ]
    total = sum(r[2] for r in layers)
    for name, size, t_crown, t_planar in layers:
        lines.append(
            f"| {name} | {size} | {t_crown * 1e3:.0f} | {t_planar * 1e3:.0f} | "
            f"{t_crown / t_planar:.2f}x | {t_crown / total:.0%} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, "16 x 32, batch 1, channels 4, 1 repeat: a smoke run", argv)
    repeats = args.repeats or (1 if args.quick else 5)
    hw, batch, channels = ((16, 32), 1, 4) if args.quick else ((128, 256), 4, 64)
    argv = sys.argv[1:] if argv is None else argv
    command = " ".join([".venv/bin/python benchmarks/bench_unet_speed.py", *argv])
    info = machine_info()
    start = time.perf_counter()
    params = parameter_table()
    print(params, flush=True)
    step, infer = time_models(hw, batch, channels, repeats)
    layers = time_layers(hw, batch, channels, repeats)
    section = render(params, step, infer, layers, info, command, hw, batch, channels, repeats)
    print()
    print(section)
    print(f"total {time.perf_counter() - start:.0f} s")
    if not args.no_write:
        write_section("bench_unet_speed", section, DOC)
        print(f"wrote the bench_unet_speed section of {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
