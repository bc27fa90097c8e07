"""The run folder of :func:`pano360.transfer.distill`: claim, resume, checkpoint, finish, load.

Layout of ``out_dir``:
    ``distill.json`` (config, fingerprints of the stack and the images, completed epochs,
    history; the commit point, written last and atomically), ``checkpoint-NNNN.safetensors``
    (student and optimizer state after epoch NNNN), and when done ``student.safetensors`` (the
    distilled weights, :func:`load_student`). Tensors are only ever stored as safetensors, never
    pickled. An existing folder is resumed only when its run matches (same config, stack and
    images); anything else there is an error, never overwritten. ``distill.json`` carries a
    format name and version (``pano360.transfer.distill``, 1): folders written by earlier
    releases of the same version resume.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import safetensors.torch
import torch
from torch import nn

from .._core import OutputExistsError, ValueRangeError
from ..io import write_atomic
from ._builders import build_student

if TYPE_CHECKING:
    from ._train import DistillConfig

__all__ = ["load_student"]

# The name and version of distill.json's format: unchanged since the first release, so that
# run folders written before keep resuming.
_FORMAT = "pano360.transfer.distill"
_VERSION = 1
_RUN_FILE = "distill.json"
_STUDENT_FILE = "student.safetensors"


def _stack_fingerprint(stack: nn.Sequential) -> str:
    digest = hashlib.sha256()
    for name, layer in stack.named_children():
        digest.update(f"{name}:{layer!r}".encode())
    for key, t in stack.state_dict().items():
        digest.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _jsonable(value):
    return json.loads(json.dumps(value))


def _write_json(path: Path, record: dict) -> None:
    data = (json.dumps(record, indent=1) + "\n").encode()
    write_atomic(path, lambda f: f.write(data), overwrite=True)


def _write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict) -> None:
    data = safetensors.torch.save(
        {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
        metadata={k: str(v) for k, v in metadata.items()},
    )
    write_atomic(path, lambda f: f.write(data), overwrite=True)


def _read_run(out_dir: Path) -> dict | None:
    path = out_dir / _RUN_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise OutputExistsError(
            f"out_dir '{out_dir}' holds an unreadable {_RUN_FILE} ({e}); it is not a distill "
            "run this version can resume: choose another out_dir"
        ) from None
    if not isinstance(record, dict) or record.get("format") != _FORMAT:
        raise OutputExistsError(
            f"out_dir '{out_dir}' holds a {_RUN_FILE} that is not a pano360 distill run; "
            "choose another out_dir"
        )
    if record.get("version") != _VERSION:
        raise OutputExistsError(
            f"out_dir '{out_dir}' holds a distill run of format version "
            f"{record.get('version')}, this pano360 writes version {_VERSION}"
        )
    return record


def _differences(record: dict, config: dict, fingerprint: dict) -> list[str]:
    diffs = []
    saved = record.get("config", {})
    for key in sorted(set(saved) | set(config)):
        if saved.get(key) != config.get(key):
            diffs.append(f"config {key}: {saved.get(key)!r} there, {config.get(key)!r} now")
    names = {"stack": "the stack's layers or weights", "images": "the images"}
    for key in sorted(set(record.get("fingerprint", {})) | set(fingerprint)):
        if record.get("fingerprint", {}).get(key) != fingerprint.get(key):
            diffs.append(f"{names.get(key, key)} differ")
    return diffs


class _RunDir:
    """The checkpoint folder of one run: claim, resume, save each epoch, finish."""

    def __init__(self, out_dir, config: DistillConfig, fingerprint: dict) -> None:
        self.dir = Path(out_dir)
        self.config = _jsonable(asdict(config))
        self.fingerprint = fingerprint
        self.total = config.epochs + config.finetune_epochs

    def _record(self, completed: int, checkpoint: str | None, history: list, done: bool) -> dict:
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "config": self.config,
            "fingerprint": self.fingerprint,
            "completed_epochs": completed,
            "total_epochs": self.total,
            "checkpoint": checkpoint,
            "complete": done,
            "student": _STUDENT_FILE if done else None,
            "history": history,
        }

    def open(self, resume: bool) -> dict | None:
        """The run to resume (its record), or None after claiming an empty folder."""
        if self.dir.exists() and not self.dir.is_dir():
            raise OutputExistsError(f"out_dir '{self.dir}' exists and is not a folder")
        record = _read_run(self.dir) if self.dir.is_dir() else None
        if record is None:
            if self.dir.is_dir() and any(self.dir.iterdir()):
                raise OutputExistsError(
                    f"out_dir '{self.dir}' is not empty and holds no distill run; choose an "
                    "empty or new folder (nothing there was changed)"
                )
            self.dir.mkdir(parents=True, exist_ok=True)
            _write_json(self.dir / _RUN_FILE, self._record(0, None, [], False))
            return None
        diffs = _differences(record, self.config, self.fingerprint)
        if diffs:
            raise OutputExistsError(
                f"out_dir '{self.dir}' holds a different distill run ({'; '.join(diffs)}); "
                "choose another out_dir, or repeat that run's settings to resume it"
            )
        if not resume:
            raise OutputExistsError(
                f"out_dir '{self.dir}' already holds this distill run "
                f"({record['completed_epochs']} of {record['total_epochs']} epochs done); pass "
                "resume=True to continue it, or choose another out_dir"
            )
        return record

    def load(self, name: str, epoch: int) -> dict[str, torch.Tensor]:
        path = self.dir / name
        try:
            with safetensors.safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        except (OSError, safetensors.SafetensorError) as e:
            raise OutputExistsError(f"cannot read the checkpoint '{path}': {e}") from None
        if meta.get("epoch") != str(epoch):
            raise OutputExistsError(
                f"the checkpoint '{path}' is of epoch {meta.get('epoch')}, {_RUN_FILE} says "
                f"{epoch}; the folder was changed by hand"
            )
        tensors["__phase__"] = meta.get("phase")
        return tensors

    def save(self, epoch: int, student, optimizer, phase: str, history: list) -> None:
        name = f"checkpoint-{epoch:04d}.safetensors"
        tensors = {f"student.{k}": v for k, v in student.state_dict().items()}
        states = optimizer.state_dict()["state"] if optimizer is not None else {}
        for pid, state in states.items():
            for key, value in state.items():
                tensors[f"optimizer.{pid}.{key}"] = torch.as_tensor(value)
        _write_tensors(self.dir / name, tensors, {"epoch": epoch, "phase": phase})
        _write_json(self.dir / _RUN_FILE, self._record(epoch, name, history, False))
        for old in self.dir.glob("checkpoint-*.safetensors"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def finish(self, student, history: list) -> None:
        _write_tensors(
            self.dir / _STUDENT_FILE,
            student.state_dict(),
            {"format": _FORMAT, "stack": self.fingerprint["stack"]},
        )
        checkpoint = f"checkpoint-{self.total:04d}.safetensors"
        _write_json(self.dir / _RUN_FILE, self._record(self.total, checkpoint, history, True))


def _optimizer_state(tensors: dict) -> dict:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    return state


def _student_state(tensors: dict) -> dict:
    return {k[len("student.") :]: v for k, v in tensors.items() if k.startswith("student.")}


def load_student(stack: nn.Sequential, out_dir: str | os.PathLike[str]) -> nn.Sequential:
    """The distilled student of a finished :func:`~pano360.transfer.distill` run.

    Args:
        stack: the source stack the run distilled (checked against the run's fingerprint).
        out_dir: the run's folder.

    Returns:
        The student in eval mode, as :func:`~pano360.transfer.distill` returned it.

    Raises:
        ValueRangeError: ``out_dir`` holds no finished distill run, or ``stack`` is not the
            one it distilled (layers or weights differ).
        OutputExistsError: ``out_dir`` holds a file named like a run's that is not one.

    Example:
        >>> import tempfile
        >>> from pano360.transfer import DistillConfig, distill
        >>> stack = nn.Sequential(nn.Conv2d(3, 2, 3))
        >>> with tempfile.TemporaryDirectory() as run:
        ...     student, _ = distill(stack, torch.rand(1, 3, 8, 16), DistillConfig(epochs=1), run)
        ...     loaded = load_student(stack, run)
        >>> torch.equal(loaded[0].weights[3], student[0].weights[3])
        True
    """
    out_dir = Path(out_dir)
    record = _read_run(out_dir) if out_dir.is_dir() else None
    if record is None or not record.get("complete"):
        raise ValueRangeError(f"out_dir '{out_dir}' holds no finished distill run")
    if record["fingerprint"]["stack"] != _stack_fingerprint(stack):
        raise ValueRangeError(
            f"stack differs from the one distilled in '{out_dir}' (layers or weights)"
        )
    cfg = record["config"]
    student = build_student(
        stack, tuple(record["fingerprint"]["erp_hw"]), cfg["row_group_size"], cfg["tap_spacing"]
    )
    state = safetensors.torch.load_file(str(out_dir / _STUDENT_FILE))
    student.to(dtype=next(v.dtype for v in state.values() if v.is_floating_point()))
    student.load_state_dict(state)
    return student.eval()
