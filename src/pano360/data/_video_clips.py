"""Clips of 360-degree video saliency data for training: a torch Dataset over any video source."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .._core import check_hw, check_int, check_number
from ..geometry import resize_erp
from ._video_sources import VideoSaliencySource

__all__ = ["VideoSaliencyClips"]


class VideoSaliencyClips(Dataset):
    """Clips of T frames with their target maps and the maps of earlier frames, for training.

    Frames are sampled every ``frame_step`` frames of each video (or at ``fps`` frames per
    second when the source knows its videos' rate): a clip is T sampled frames in a row,
    ``t, t + s, ..., t + (T - 1) s`` with s the step, every one of which has a target. Clips
    start on the grid ``t0 + k s`` (t0 the video's first frame with a target), every
    ``clip_stride`` sampled frames. Nothing is decoded until an item is asked for, and then only
    that item's frames; items depend only on their index, so DataLoader workers (and
    ``shuffle``) are fine.

    Args:
        source: a :class:`pano360.data.VideoSaliencySource`: :class:`ECCV18Videos`,
            :class:`FolderVideos`, :class:`Salient360Videos` or
            :class:`SyntheticSaliencyVideos`.
        clip_len: T, frames per clip (>= 1).
        frame_step: s, in frames of the video (default 5, the seed's "every 5th frame").
        size: (H, W) of the returned frames and maps, W == 2H (default (128, 256), the Spherical
            U-Net's input). Frames are resized with :func:`pano360.geometry.resize_erp`; maps
            are made at this size.
        prior_offset: the ``prior`` of frame k is the target map of frame ``k - prior_offset``
            (default 5, the seed's), in frames of the video; zeros when that frame has no target
            (before the start, or a frame without gaze). None: always zeros.
        fps: sample at this rate instead: s = max(1, round(video fps / fps)) for each video
            whose source gives a rate; videos without one use ``frame_step``.
        clip_stride: sampled frames between the starts of two clips (default ``clip_len``:
            clips do not overlap).

    Items are dicts:

    - ``"frames"``: (T, 3, H, W) float32 in [0, 1];
    - ``"saliency"``: (T, 1, H, W) float32 target maps (the source's scale; for gaze data the
      mean of unit-peak Gaussians, :func:`pano360.data.gaze_saliency_map`);
    - ``"prior"``: (T, 1, H, W) float32 target maps of the frames ``prior_offset`` earlier;
    - ``"video"``: the video's name (str);
    - ``"frame_index"``: (T,) int64 frame indices on the video's time line.

    The default ``collate_fn`` of a DataLoader stacks them to (B, T, ...) (and a list of
    names).

    Raises:
        ValueRangeError: a parameter out of range (the message names it).
        ShapeError: ``size`` is not (H, W) with W == 2H.
        TypeError: ``source`` is not a :class:`VideoSaliencySource`.
        The source's errors (e.g. DatasetFormatError for a corrupt or missing frame) when an
        item is read.

    Example:
        >>> from pano360.data import SyntheticSaliencyVideos
        >>> source = SyntheticSaliencyVideos(2, 12, (32, 64), seed=0)
        >>> clips = VideoSaliencyClips(source, clip_len=2, frame_step=3, size=(16, 32))
        >>> len(clips), clips[0]["frames"].shape, clips[0]["frame_index"].tolist()
        (4, torch.Size([2, 3, 16, 32]), [0, 3])
    """

    def __init__(
        self,
        source: VideoSaliencySource,
        *,
        clip_len: int = 1,
        frame_step: int = 5,
        size: Sequence[int] = (128, 256),
        prior_offset: int | None = 5,
        fps: float | None = None,
        clip_stride: int | None = None,
    ) -> None:
        if not isinstance(source, VideoSaliencySource):
            raise TypeError(
                f"source must be a VideoSaliencySource (ECCV18Videos, FolderVideos, "
                f"Salient360Videos, SyntheticSaliencyVideos), got {type(source).__name__}"
            )
        self.source = source
        self.clip_len = check_int(clip_len, "clip_len", lo=1)
        self.frame_step = check_int(frame_step, "frame_step", lo=1)
        self.size = check_hw(size, "size", erp=True)
        self.prior_offset = check_int(prior_offset, "prior_offset", lo=1, optional=True)
        self.fps = (
            None if fps is None else check_number(fps, "fps", lo=0.0, lo_open=True, hi=math.inf)
        )
        stride = self.clip_len if clip_stride is None else clip_stride
        self.clip_stride = check_int(stride, "clip_stride", lo=1)
        self._clips: list[tuple[str, int, int]] = []  # (video, first frame, step)
        for video in source.videos:
            step = self._step(video)
            have = source.frame_indices(video)
            if len(have) == 0:
                continue
            starts = have[0] + np.arange(0, have[-1] - have[0] + 1, step * self.clip_stride)
            offsets = np.arange(self.clip_len) * step
            ok = np.isin(starts[:, None] + offsets[None, :], have).all(axis=1)
            self._clips += [(video, int(t), step) for t in starts[ok]]

    def _step(self, video: str) -> int:
        if self.fps is None:
            return self.frame_step
        rate = self.source.fps(video)
        if rate is None:
            return self.frame_step
        return max(1, round(rate / self.fps))

    def __len__(self) -> int:
        return len(self._clips)

    def clip(self, index: int) -> tuple[str, list[int]]:
        """The video and the frame indices of item ``index``, without reading anything."""
        video, start, step = self._clips[index]
        return video, [start + k * step for k in range(self.clip_len)]

    def __getitem__(self, index: int) -> dict:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an integer, got {type(index).__name__}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"clip {index} out of range for {n} clips")
        video, frames = self.clip(int(index) % n)
        images = self.source.read_frames(video, frames).float()
        images = resize_erp(images, self.size).clamp_(0, 1)
        if self.prior_offset is None:
            saliency = self.source.target_maps(video, frames, self.size).float()
            prior = torch.zeros_like(saliency)
        else:  # one call: sources batch the maps
            earlier = [f - self.prior_offset for f in frames]
            maps = self.source.target_maps(video, frames + earlier, self.size).float()
            saliency, prior = maps[: len(frames)], maps[len(frames) :]
        return {
            "frames": images.contiguous(),
            "saliency": saliency.contiguous(),
            "prior": prior.contiguous(),
            "video": video,
            "frame_index": torch.tensor(frames, dtype=torch.int64),
        }

    def __repr__(self) -> str:
        return (
            f"VideoSaliencyClips({self.source!r}, clip_len={self.clip_len}, "
            f"frame_step={self.frame_step}, size={self.size}, prior_offset={self.prior_offset}, "
            f"fps={self.fps}, clip_stride={self.clip_stride}: {len(self)} clips)"
        )
