"""Small tensor helpers shared across subpackages."""

from __future__ import annotations

import torch

__all__ = ["memory_format_of"]


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """``torch.channels_last`` for a 4-D tensor stored channels-last (and not also plainly
    contiguous, as 1 x 1 maps are), else ``torch.contiguous_format``: the format to allocate
    outputs in so that a channels-last pipeline stays channels-last."""
    if (
        x.dim() == 4
        and not x.is_contiguous()
        and x.is_contiguous(memory_format=torch.channels_last)
    ):
        return torch.channels_last
    return torch.contiguous_format
