"""A tiny saliency model and an in-memory clip dataset of the shape pano360.data's clips have,
shared by the training tests and the scripts they run in subprocesses (DDP, SIGKILL)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.data import Dataset

HW = (8, 16)


class TinySaliency(nn.Module):
    """Two convolutions; takes the earlier-frame map as a fourth channel unless prior='none'."""

    def __init__(self, prior: str = "gt", width: int = 4) -> None:
        super().__init__()
        self.prior = prior
        self.conv1 = nn.Conv2d(3 if prior == "none" else 4, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 1, 3, padding=1)

    def forward(self, frames: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        x = frames if self.prior == "none" else torch.cat([frames, prior], dim=1)
        return self.conv2(torch.relu(self.conv1(x)))


def _bump(h: int, w: int, row: int, col: int) -> torch.Tensor:
    y = torch.arange(h, dtype=torch.float32)[:, None]
    x = torch.arange(w, dtype=torch.float32)[None, :]
    dx = torch.minimum((x - col).abs(), w - (x - col).abs())
    return torch.exp(-((y - row) ** 2 + dx**2) / 4.0)


class TinyClips(Dataset):
    """Videos whose salient spot is a bright red square at a position drawn from the seed;
    clips of ``clip_len`` frames, their maps, the earlier frame's map and fixation maps."""

    def __init__(self, videos: int = 4, frames: int = 6, clip_len: int = 1, seed: int = 0) -> None:
        self.videos, self.frames, self.clip_len, self.seed = videos, frames, clip_len, seed
        self.per_video = frames - clip_len + 1
        self.sample_videos = [f"v{v}" for v in range(videos) for _ in range(self.per_video)]

    def __len__(self) -> int:
        return self.videos * self.per_video

    def _frame(self, video: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = HW
        gen = torch.Generator().manual_seed(self.seed * 1000 + video * 100 + index)
        image = 0.3 * torch.rand(3, h, w, generator=gen)
        row = int(torch.randint(1, h - 1, (1,), generator=gen))
        col = int(torch.randint(0, w, (1,), generator=gen))
        image[0, row, col] = 1.0
        return image, _bump(h, w, row, col)[None]

    def __getitem__(self, i: int) -> dict:
        video, start = divmod(i, self.per_video)
        frames, maps, priors, fixations = [], [], [], []
        for index in range(start, start + self.clip_len):
            image, sal = self._frame(video, index)
            prior = self._frame(video, index - 1)[1] if index > 0 else torch.zeros_like(sal)
            frames.append(image)
            maps.append(sal)
            priors.append(prior)
            fixations.append((sal > math.exp(-0.1)).float())
        return {
            "frames": torch.stack(frames),
            "saliency": torch.stack(maps),
            "prior": torch.stack(priors),
            "fixations": torch.stack(fixations),
            "video": f"v{video}",
            "frame_index": torch.arange(start, start + self.clip_len),
        }
