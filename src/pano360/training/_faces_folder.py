"""Blurring a folder larger than one machine: :class:`~pano360.detection.FaceFolderJob` run by
Lightning's predict loop on many processes, GPUs and nodes (DDP).

Lightning does the distribution: it starts the processes (or joins those torchrun or SLURM
started), gives each its device, and shards the file list with its predict sampler
(``UnrepeatedDistributedSamplerWrapper``: every file goes to exactly one process, none is
repeated to even out the shards, unlike the DistributedSampler of training). Each process
decodes its files in its own DataLoader workers and writes their outputs; the per-file results
are then exchanged with the strategy's ``broadcast`` and global rank 0 writes the summary.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import lightning.pytorch as pl
import torch.distributed
from torch.utils.data import DataLoader, Dataset

from .._core import check_int
from ..detection import FaceFolderJob, FolderFaceResult
from ._lightning import StderrProgressBar, quiet_lightning

__all__ = ["FaceFolderPredictTask", "blur_faces_in_folder_ddp"]


class _AtLeast(Dataset):
    """``dataset`` padded with None items up to ``size`` (Lightning's predict sampler needs an
    item on every process; a None item is no file)."""

    def __init__(self, dataset: Dataset, size: int):
        self.dataset, self.size = dataset, max(size, len(dataset))

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int):
        return self.dataset[index] if index < len(self.dataset) else None


class FaceFolderPredictTask(pl.LightningModule):
    """A :class:`~pano360.detection.FaceFolderJob` as a LightningModule for ``trainer.predict``:
    its DataLoader decodes the job's files in ``jobs`` workers (Lightning shards it over the
    processes) and ``predict_step`` processes one file on the process's device, returning its
    :class:`~pano360.detection.FolderFaceResult` (kept in :attr:`results`).

    Args:
        job: the folder, outputs and settings.
        jobs: DataLoader workers per process (0: decode in the process).
        on_result: called with each result as it comes (an error line).

    Example:
        >>> import os, tempfile, torch
        >>> from pano360.io import write_image
        >>> with tempfile.TemporaryDirectory() as tmp, quiet_lightning():
        ...     os.mkdir(f"{tmp}/in")
        ...     write_image(f"{tmp}/in/a.png", torch.rand(3, 32, 64))
        ...     job = FaceFolderJob(f"{tmp}/in", f"{tmp}/out", min_face_deg=24)
        ...     task = FaceFolderPredictTask(job)
        ...     trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
        ...     _ = trainer.predict(task, return_predictions=False)
        ...     [r.status for r in task.results]
        ['done']
    """

    def __init__(
        self,
        job: FaceFolderJob,
        jobs: int = 0,
        on_result: Callable[[FolderFaceResult], None] | None = None,
    ):
        super().__init__()
        self.job, self.jobs, self.on_result = job, check_int(jobs, "jobs", lo=0), on_result
        self.results: list[FolderFaceResult] = []

    def predict_dataloader(self) -> DataLoader:
        return self.job.loader(self.jobs, _AtLeast(self.job.dataset(), self.trainer.world_size))

    def transfer_batch_to_device(self, batch, device, dataloader_idx: int):
        # The item stays as decoded: FaceFolderJob.run moves the image to the device itself
        # (and Lightning's transfer refuses the frozen ImageInfo inside).
        return batch

    def predict_step(self, item: dict | None, batch_idx: int) -> FolderFaceResult | None:
        if item is None:
            return None
        result = self.job.run(item, self.device, rank=self.global_rank)
        self.results.append(result)
        if self.on_result is not None:
            self.on_result(result)
        return result


def blur_faces_in_folder_ddp(
    job: FaceFolderJob,
    *,
    devices: int | str = "auto",
    num_nodes: int = 1,
    accelerator: str = "auto",
    jobs: int = 0,
    progress: bool = False,
    on_result: Callable[[FolderFaceResult], None] | None = None,
) -> list[FolderFaceResult] | None:
    """Run a :class:`~pano360.detection.FaceFolderJob` with ``Trainer(strategy="ddp",
    devices=..., num_nodes=...).predict``: every process takes its share of the files; global
    rank 0 writes the summary.

    Args:
        job: the folder, outputs and settings (every process builds the same one: the file
            list is the sorted list of the input folder, which the run does not change).
        devices, num_nodes, accelerator: Lightning's Trainer arguments ("cpu" with
            ``devices=2`` runs 2 CPU processes, gloo). The strategy is "ddp": Lightning starts
            the other processes of a node by running the same command again (or joins those
            torchrun or SLURM started: docs/cli.md); the calling process is one of the ranks.
        jobs: DataLoader workers per process.
        progress: Lightning's progress bar (on stderr, global rank 0).
        on_result: called on the process that handled a file with its result.

    Returns:
        On global rank 0, one :class:`~pano360.detection.FolderFaceResult` per file of
        ``job.files``, in its order, with the rank that did it; None on the other ranks.

    Raises:
        ValueRangeError: ``jobs`` < 0.
        ImageIOError: the summary cannot be written.
    """
    task = FaceFolderPredictTask(job, jobs, on_result)
    environment = dict(os.environ)
    with quiet_lightning():
        trainer = pl.Trainer(
            accelerator=accelerator,
            devices=devices,
            num_nodes=num_nodes,
            strategy="ddp",
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=progress,
            callbacks=[StderrProgressBar()] if progress else None,
            default_root_dir=str(job.dst),
        )
        trainer.predict(task, return_predictions=False)
    # Every rank's results, one rank after the other, through the strategy's collective.
    gathered: dict[str, FolderFaceResult] = {}
    for rank in range(trainer.world_size):
        for result in trainer.strategy.broadcast(task.results, src=rank):
            # A sampler that pads shards with repeated files would give a file twice: once
            # done, once skipped (done meanwhile) or failed on the output the other wrote.
            # Count it once, by what was done to it.
            kept = gathered.get(result.file)
            if kept is None or _rank(result) < _rank(kept):
                gathered[result.file] = result
    # Lightning leaves the process group (and its port) and its launch variables (MASTER_PORT,
    # LOCAL_RANK, ...) behind: a later run from this process, or a child it starts, would take
    # itself for a rank of this finished run and wait for its peers.
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    for key in set(os.environ) | set(environment):
        if os.environ.get(key) != environment.get(key):
            if key in environment:
                os.environ[key] = environment[key]
            else:
                del os.environ[key]
    if trainer.global_rank != 0:
        return None
    lost = "no process reported this file"
    results = [gathered.get(f) or FolderFaceResult(f, "failed", None, 0.0, lost) for f in job.files]
    job.write_summary(results)
    return results


def _rank(result: FolderFaceResult) -> int:
    # The result to keep of a file reported twice: done, then skipped, then failed.
    return ("done", "skipped", "failed").index(result.status)
