"""The folder of a distillation run (:func:`pano360.training.distill`): claim, match, finish,
and :func:`load_student`, the reader of the student it leaves.

Layout of ``out_dir``:
    ``distill.json`` (config, fingerprints of the stack and the images, and when done the
    history; written atomically when the folder is claimed and when the run finishes),
    ``checkpoints/last.ckpt`` (Lightning's checkpoint, what a stopped run resumes from), and
    when done ``student.safetensors`` (the distilled weights, :func:`load_student`; safetensors,
    never a pickle). An existing folder is resumed only when its run matches (same config, stack
    and images); anything else there is an error, never overwritten. ``distill.json`` carries a
    format name and version (``pano360.transfer.distill``, 2). Finished runs of version 1 (the
    release whose checkpoints were our own ``checkpoint-NNNN.safetensors``) load as before; an
    unfinished one cannot be resumed (its checkpoints are not Lightning's).

The run of a deep backbone (:func:`pano360.training.distill` on a
:class:`~pano360.models.backbones.Backbone`) has the same layout, its fingerprint naming the
backbone instead of a stack, plus ``exact/``, the cache of its exact targets
(:func:`~pano360.transfer.exact_features`: a resumed run does not compute them again); its
``student.safetensors`` is :meth:`~pano360.transfer.BackboneStudent.save`'s, read by
:func:`~pano360.transfer.load_backbone_student`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import safetensors.torch
import torch
from torch import nn

from .._core import OutputExistsError, ValueRangeError
from ..io import write_atomic
from ._builders import build_student

if TYPE_CHECKING:
    from ._deep_distill import BackboneDistillConfig
    from ._distillation import DistillConfig

__all__ = ["load_student"]

# The name and version of distill.json's format. Version 2: the checkpoints are Lightning's
# (checkpoints/last.ckpt); version 1's were checkpoint-NNNN.safetensors. The student file is
# the same in both, so finished runs of either load.
_FORMAT = "pano360.transfer.distill"
_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_RUN_FILE = "distill.json"
_STUDENT_FILE = "student.safetensors"
#: Lightning's checkpoint of a run in progress, relative to its folder.
CHECKPOINT = Path("checkpoints") / "last.ckpt"


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
    if record.get("version") not in _READABLE_VERSIONS:
        raise OutputExistsError(
            f"out_dir '{out_dir}' holds a distill run of format version "
            f"{record.get('version')}, this pano360 reads versions "
            f"{', '.join(map(str, _READABLE_VERSIONS))}"
        )
    return record


def _differences(record: dict, config: dict, fingerprint: dict) -> list[str]:
    diffs = []
    saved = record.get("config", {})
    for key in sorted(set(saved) | set(config)):
        if saved.get(key) != config.get(key):
            diffs.append(f"config {key}: {saved.get(key)!r} there, {config.get(key)!r} now")
    names = {
        "stack": "the stack's layers or weights",
        "backbone": "the backbone's layers or weights",
        "images": "the images",
    }
    for key in sorted(set(record.get("fingerprint", {})) | set(fingerprint)):
        if record.get("fingerprint", {}).get(key) != fingerprint.get(key):
            diffs.append(f"{names.get(key, key)} differ")
    return diffs


class _RunDir:
    """The folder of one run: claim it (or find the run to resume), and finish it."""

    def __init__(
        self, out_dir, config: DistillConfig | BackboneDistillConfig, fingerprint: dict
    ) -> None:
        self.dir = Path(out_dir)
        self.config = _jsonable(asdict(config))
        self.fingerprint = fingerprint
        self.total = config.epochs + config.finetune_epochs
        self.checkpoint = self.dir / CHECKPOINT

    def _record(self, history: list, done: bool) -> dict:
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "config": self.config,
            "fingerprint": self.fingerprint,
            "total_epochs": self.total,
            "completed_epochs": self.total if done else None,
            "checkpoint": str(CHECKPOINT.as_posix()),
            "complete": done,
            "student": _STUDENT_FILE if done else None,
            "history": history,
        }

    def open(self, resume: bool) -> dict | None:
        """The run to resume (its record), or None after claiming an empty folder.

        A record that is not complete resumes from :data:`CHECKPOINT` when it exists (a run
        stopped before its first checkpoint starts over)."""
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
            _write_json(self.dir / _RUN_FILE, self._record([], False))
            return None
        diffs = _differences(record, self.config, self.fingerprint)
        if diffs:
            raise OutputExistsError(
                f"out_dir '{self.dir}' holds a different distill run ({'; '.join(diffs)}); "
                "choose another out_dir, or repeat that run's settings to resume it"
            )
        if not resume:
            done = "finished" if record.get("complete") else "not finished"
            raise OutputExistsError(
                f"out_dir '{self.dir}' already holds this distill run ({done}); pass "
                "resume=True to continue it, or choose another out_dir"
            )
        if record.get("version") != _VERSION and not record.get("complete"):
            raise OutputExistsError(
                f"out_dir '{self.dir}' holds an unfinished distill run of format version "
                f"{record.get('version')}, whose checkpoints this pano360 cannot resume; "
                "choose another out_dir"
            )
        return record

    @property
    def student_file(self) -> Path:
        """Where the finished run's student is written."""
        return self.dir / _STUDENT_FILE

    def finish(self, save_student: Callable[[Path], None], history: list) -> None:
        """Write the student (``save_student(path)``, atomically), then the record that says
        the run is complete (the commit)."""
        save_student(self.student_file)
        _write_json(self.dir / _RUN_FILE, self._record(history, True))


def _read_student(stack: nn.Sequential, out_dir: Path, record: dict[str, Any]) -> nn.Sequential:
    """The student of the finished run ``record`` in ``out_dir``, in eval mode."""
    cfg = record["config"]
    student = build_student(
        stack, tuple(record["fingerprint"]["erp_hw"]), cfg["row_group_size"], cfg["tap_spacing"]
    )
    state = safetensors.torch.load_file(str(out_dir / _STUDENT_FILE))
    student.to(dtype=next(v.dtype for v in state.values() if v.is_floating_point()))
    student.load_state_dict(state)
    return student.eval()


def load_student(stack: nn.Sequential, out_dir: str | os.PathLike[str]) -> nn.Sequential:
    """The distilled student of a finished distillation run (:func:`pano360.training.distill`,
    ``pano360 distill``).

    Args:
        stack: the source stack the run distilled (checked against the run's fingerprint).
        out_dir: the run's folder.

    Returns:
        The student in eval mode, as :func:`pano360.training.distill` returned it.

    Raises:
        ValueRangeError: ``out_dir`` holds no finished distill run of a stack (a backbone's
            is read by :func:`~pano360.transfer.load_backbone_student`), or ``stack`` is not
            the one it distilled (layers or weights differ).
        OutputExistsError: ``out_dir`` holds a file named like a run's that is not one.

    Example:
        >>> import tempfile
        >>> from pano360.training import distill
        >>> from pano360.transfer import DistillConfig
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
    if "stack" not in record["fingerprint"]:
        raise ValueRangeError(
            f"out_dir '{out_dir}' holds the run of a backbone: read its student with "
            "pano360.transfer.load_backbone_student"
        )
    if record["fingerprint"]["stack"] != _stack_fingerprint(stack):
        raise ValueRangeError(
            f"stack differs from the one distilled in '{out_dir}' (layers or weights)"
        )
    return _read_student(stack, out_dir, record)
