"""The data side of training: a LightningDataModule over clip datasets, split by video, and a
sampler that resumes mid-epoch at the exact sample it stopped at.

Samples are dicts as :class:`pano360.data.VideoSaliencyClips` returns them (``frames``
(T, 3, H, W), ``saliency`` (T, 1, H, W), ``prior`` (T, 1, H, W), ``video`` str, ...); any dataset
of such dicts works.

Resuming: Lightning saves the state of a *stateful* train loader in its checkpoints and restores
it before the first batch of the resumed run. Our loader's state is (epoch, batches delivered in
that epoch); the sampler then skips exactly those samples' indices (without loading them) and the
run continues with the batch the killed run would have trained on next. Lightning fetches from a
loader of known length without prefetching, so "delivered" is "trained on".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from .._core import (
    ValueRangeError,
    check_bool,
    check_int,
    check_number,
    check_positive_int,
    check_seed,
)
from ..data import VideoSaliencyClips
from ..saliency import binary_fixation_map

__all__ = ["SaliencyDataModule", "split_by_video"]


class _ResumableSampler(DistributedSampler):
    """torch's DistributedSampler (seeded shuffle, one shard per rank; Lightning leaves a
    DistributedSampler in place), which can start an epoch part-way through.

    ``order``, when given, replaces the shuffle: epoch -> the order of all the dataset's
    indices (a task with a random stream of its own, such as distillation's), of which rank r
    takes every ``num_replicas``-th from r.
    """

    def __init__(
        self,
        dataset,
        num_replicas: int,
        rank: int,
        shuffle: bool,
        seed: int,
        order: Callable[[int], Sequence[int]] | None = None,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.order = order
        self.skip = 0  # indices to skip at the start of the next iteration (a resumed epoch)

    def __iter__(self) -> Iterator[int]:
        if self.order is None:
            indices = list(super().__iter__())
        else:
            indices = list(self.order(self.epoch))[self.rank :: self.num_replicas]
        skip, self.skip = self.skip, 0
        return iter(indices[skip:])


class _ResumableLoader(DataLoader):
    """A DataLoader with ``state_dict``/``load_state_dict`` (Lightning's stateful loaders)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._epoch = 0
        self._delivered = 0  # batches handed out in epoch self._epoch

    def __iter__(self):
        sampler = self.sampler
        if sampler.epoch != self._epoch:  # a new epoch (Lightning called set_epoch)
            self._epoch, self._delivered = sampler.epoch, 0
        sampler.skip = self._delivered * self.batch_size
        for batch in super().__iter__():
            self._delivered += 1
            yield batch
        self._delivered = 0
        self._epoch = sampler.epoch + 1  # a fresh iterator of this epoch would start over

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self._epoch, "batches": self._delivered}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._epoch, self._delivered = int(state["epoch"]), int(state["batches"])
        self.sampler.set_epoch(self._epoch)


def _sample_videos(dataset: Dataset) -> list[str]:
    """The video of every sample, read cheaply: ``dataset.sample_videos`` or
    ``dataset.clip(i)[0]`` (:class:`pano360.data.VideoSaliencyClips`) when the dataset has
    them, otherwise each sample's ``"video"`` (which reads every sample once)."""
    videos = getattr(dataset, "sample_videos", None)
    if videos is None and callable(getattr(dataset, "clip", None)):
        videos = [dataset.clip(i)[0] for i in range(len(dataset))]
    if videos is None:
        videos = [dataset[i]["video"] for i in range(len(dataset))]
    videos = [str(v) for v in videos]
    if len(videos) != len(dataset):
        raise ValueRangeError(
            f"dataset.sample_videos must name one video per sample ({len(dataset)}), "
            f"got {len(videos)}"
        )
    return videos


def split_by_video(
    videos: Sequence[str], val_fraction: float, seed: int = 0
) -> tuple[list[int], list[int]]:
    """Split sample indices into train and validation so that no video is in both.

    Args:
        videos: the video of every sample.
        val_fraction: share of the videos (not samples) held out, in [0, 1); at least one video
            when > 0.
        seed: the seed of the shuffle of the sorted video names.

    Returns:
        (train indices, validation indices), each in increasing order.

    Raises:
        ValueRangeError: ``val_fraction`` outside [0, 1), or > 0 with fewer than 2 videos.

    Example:
        >>> split_by_video(["a", "a", "b", "c"], 0.3, seed=0)  # ceil(0.3 x 3 videos) = 1 held out
        ([0, 1, 2], [3])
    """
    check_number(val_fraction, "val_fraction", lo=0, hi=1, hi_open=True)
    names = sorted(set(videos))
    if val_fraction == 0:
        return list(range(len(videos))), []
    if len(names) < 2:
        raise ValueRangeError(
            f"cannot hold out videos for validation (val_fraction={val_fraction:g}): the dataset "
            f"has {len(names)} video(s); give a val_dataset or val_fraction=0"
        )
    n_val = min(len(names) - 1, max(1, math.ceil(val_fraction * len(names))))
    order = torch.randperm(len(names), generator=torch.Generator().manual_seed(seed)).tolist()
    held = {names[i] for i in order[:n_val]}
    train = [i for i, v in enumerate(videos) if v not in held]
    val = [i for i, v in enumerate(videos) if v in held]
    return train, val


class _WithFixations(Dataset):
    """Adds ``"fixations"`` (T, 1, H, W), the binary fixation maps of the clip's gaze points
    (for NSS), to the samples of a :class:`VideoSaliencyClips` whose source knows its gaze."""

    def __init__(self, clips: Dataset, source) -> None:
        self.clips, self.source = clips, source

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        item = self.clips[index]
        hw = tuple(item["saliency"].shape[-2:])
        maps = []
        for frame in item["frame_index"].tolist():
            gaze = self.source.gaze(item["video"], frame)
            if gaze is None or len(gaze) == 0:
                return item  # a frame without gaze points: no NSS for this clip
            maps.append(binary_fixation_map(torch.as_tensor(gaze), hw)[0])
        return {**item, "fixations": torch.stack(maps)}


def _gaze_source(dataset: Dataset):
    """The gaze-knowing source under a VideoSaliencyClips (possibly in a Subset), or None."""
    base = dataset.dataset if isinstance(dataset, Subset) else dataset
    source = getattr(base, "source", None) if isinstance(base, VideoSaliencyClips) else None
    return source if callable(getattr(source, "gaze", None)) else None


class SaliencyDataModule(pl.LightningDataModule):
    """Train and validation loaders over a clip dataset, split by video.

    Args:
        dataset: the training clips, a :class:`pano360.data.VideoSaliencyClips` over any
            video source (``ECCV18Videos``, ``FolderVideos``, ``Salient360Videos``,
            ``SyntheticSaliencyVideos`` or one's own ``VideoSaliencySource``); from Python any
            dataset of such dicts. In a YAML config: ``dataset: {source: {class_path:
            pano360.data.ECCV18Videos, init_args: {root: DIR}}, clip_len: 1}``.
        val_dataset: validation samples; default: ``val_fraction`` of ``dataset``'s videos.
        val_fraction: share of the videos held out for validation when ``val_dataset`` is not
            given (0: no validation).
        batch_size: clips per batch and per process (with DDP the global batch is
            ``batch_size`` x processes).
        num_workers: DataLoader worker processes (0: load in the training process).
        shuffle: shuffle the training samples every epoch (seeded by ``seed`` and the epoch).
        seed: seed of the split and of the shuffles.
        fixations: give validation clips the binary fixation maps of their gaze points (when
            their source knows them), so that validation reports NSS too.

    Raises:
        ValueRangeError: a non-positive ``batch_size``, a negative ``num_workers``, a
            ``val_fraction`` outside [0, 1); at setup, no ``dataset``, an empty split.
    """

    def __init__(
        self,
        dataset: VideoSaliencyClips | None = None,
        val_dataset: VideoSaliencyClips | None = None,
        val_fraction: float = 0.2,
        batch_size: int = 8,
        num_workers: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        fixations: bool = True,
    ) -> None:
        super().__init__()
        check_number(val_fraction, "val_fraction", lo=0, hi=1, hi_open=True)
        check_positive_int(batch_size, "batch_size")
        check_int(num_workers, "num_workers", lo=0)
        self.dataset = dataset
        self.val_dataset = val_dataset
        self.val_fraction = float(val_fraction)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.shuffle = bool(shuffle)
        self.seed = check_seed(seed)
        self.fixations = check_bool(fixations, "fixations")
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    def describe(self) -> dict[str, Any]:
        """What the data were, for a model card: dataset classes, sizes, split and seed."""

        def name(d):
            return None if d is None else f"{type(d).__module__}.{type(d).__qualname__}"

        info = {
            "dataset": name(self.dataset),
            "val_dataset": name(self.val_dataset),
            "dataset_repr": None if self.dataset is None else repr(self.dataset)[:2000],
            "val_fraction": self.val_fraction,
            "seed": self.seed,
            "batch_size": self.batch_size,
        }
        for key in ("train_set", "val_set"):
            part = getattr(self, key)
            info[f"{key}_samples"] = None if part is None else len(part)
        describe = getattr(self.dataset, "describe", None)
        if callable(describe):
            info["dataset_description"] = describe()
        return info

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        if self.dataset is None:
            raise ValueRangeError(
                "data.dataset is required: the training clips, e.g. "
                "{class_path: pano360.data.VideoSaliencyClips, init_args: {source: DIR}}"
            )
        if self.val_dataset is not None:
            self.train_set, self.val_set = self.dataset, self.val_dataset
        else:
            train, val = split_by_video(_sample_videos(self.dataset), self.val_fraction, self.seed)
            self.train_set = Subset(self.dataset, train)
            self.val_set = Subset(self.dataset, val) if val else None
        if len(self.train_set) == 0:
            raise ValueRangeError("the training set is empty")
        source = _gaze_source(self.val_set) if self.val_set is not None else None
        if self.fixations and source is not None:
            self.val_set = _WithFixations(self.val_set, source)

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 1, 0
        return trainer.world_size, trainer.global_rank

    def train_dataloader(self) -> DataLoader:
        replicas, rank = self._world()
        sampler = _ResumableSampler(self.train_set, replicas, rank, self.shuffle, self.seed)
        return _ResumableLoader(
            self.train_set,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=False,
            drop_last=False,
        )

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None:
            return []
        return DataLoader(self.val_set, batch_size=self.batch_size, num_workers=self.num_workers)
