"""``pano360.training.distill`` killed with SIGKILL mid-epoch and resumed from Lightning's
``last.ckpt``: the same student and history as a run never stopped, bitwise."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import torch
from _run_distill import run

from pano360.transfer import load_student

SCRIPT = Path(__file__).resolve().parent / "_run_distill.py"


def states_equal(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def kill_then_resume(tmp_path, script_args, run_fn, at_checkpoint):
    """Start the script killing itself (SIGKILL) after a step, run ``run_fn`` uninterrupted as
    the reference meanwhile, check the killed run's checkpoint with ``at_checkpoint(ckpt,
    killed)`` and resume it with ``run_fn``; one torch thread throughout (bitwise equality).

    Returns ``(killed folder, (reference, history), (resumed, history), at_checkpoint's)``."""
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(killed), *script_args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reference = run_fn(tmp_path / "whole")
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == -signal.SIGKILL, err[-2000:]
        assert not (killed / "student.safetensors").exists()
        ckpt = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)
        assert len(ckpt["optimizer_states"]) == 2  # one Adam per phase
        seen = at_checkpoint(ckpt, killed)
        resumed = run_fn(killed)
    finally:
        torch.set_num_threads(threads)
    return killed, reference, resumed, seen


def test_distill_killed_by_sigkill_mid_epoch_resumes_bitwise(tmp_path):
    # 3 images, 2 a batch: 2 steps an epoch, 8 in all. Killed after step 5, the first of
    # fine-tuning epoch 3; its checkpoint is of step 4, the last of layer-wise epoch 2.
    def at_checkpoint(ckpt, killed):
        assert ckpt["global_step"] == 4 and ckpt["distill"]["epoch"] == 1

    killed, (reference, ref_history), (resumed, history), _ = kill_then_resume(
        tmp_path, ["5"], run, at_checkpoint
    )
    assert states_equal(resumed, reference)
    assert history == ref_history and [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert states_equal(load_student(_stack(), killed), reference)
    record = json.loads((killed / "distill.json").read_text())
    assert record["complete"] and record["history"] == ref_history


def _stack():
    from _run_distill import stack

    return stack()


def test_backbone_distill_killed_mid_epoch_resumes_bitwise_without_new_targets(tmp_path):
    from _run_distill import backbone, run_backbone

    from pano360.transfer import load_backbone_student

    # 2 images, one a step: 2 steps an epoch, 6 in all. Killed after step 3, the first of
    # layer-wise epoch 2; its checkpoint is of step 2, the last of epoch 1.
    def at_checkpoint(ckpt, killed):
        assert ckpt["global_step"] == 2 and ckpt["distill"]["epoch"] == 0
        # The exact targets were cached in the run folder; resuming reads them, never rewrites.
        cached = {p: p.stat().st_mtime_ns for p in (killed / "exact").iterdir()}
        assert len(cached) == 2  # one file per image (stage features.3)
        return cached

    killed, (reference, ref_history), (resumed, history), cached = kill_then_resume(
        tmp_path, ["3", "backbone"], run_backbone, at_checkpoint
    )
    assert {p: p.stat().st_mtime_ns for p in (killed / "exact").iterdir()} == cached
    assert states_equal(resumed, reference)
    assert history == ref_history and [r["phase"] for r in history] == ["layerwise"] * 2 + [
        "finetune"
    ]
    assert states_equal(
        load_backbone_student(backbone(), killed / "student.safetensors"), reference
    )
    record = json.loads((killed / "distill.json").read_text())
    assert record["complete"] and record["history"] == ref_history
