"""The benchmark scripts that write the figures in docs/ still run (quick mode, nothing written)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Script -> a line its output must contain (the heading of the table it writes into docs/).
SCRIPTS = {
    "bench_faces_folder.py": "| decoding | faces found |",
    "bench_faces_hires.py": "| panorama | faces found |",
    "bench_geometry.py": "| py360convert (ms) |",
    "bench_sphere_conv.py": "nn.Conv2d",
    "bench_saliency_metrics.py": "| preset | ours (s) |",
    "bench_saliency_training.py": "| training step, forward + backward (s) |",
    "bench_transfer.py": "| ratio of seconds per image | measured | goal |",
    "bench_unet_speed.py": "| model | training step (s) | ratio |",
    "bench_video_faces.py": "| method | frames with every face >= 90% blurred |",
    "bench_deep_transfer.py": "| goal | measured | target | met |",
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_benchmark_runs_in_quick_mode(script):
    docs_before = {p: p.read_bytes() for p in (ROOT / "docs").glob("*.md")}
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--no-write"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert SCRIPTS[script] in run.stdout
    assert {p: p.read_bytes() for p in (ROOT / "docs").glob("*.md")} == docs_before
