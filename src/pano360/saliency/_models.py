"""The registered saliency models (task ``"saliency"`` of :func:`pano360.models.list_models`)
and :func:`predict_saliency`, which runs one by name.

The task's contract: a model maps ERP images (B, C, H, W) to saliency maps (B, 1, H, W) on the
same grid, non-negative, each summing to 1 over its pixels.
"""

from __future__ import annotations

import torch
from torch import nn

from .._core import check_choice, check_erp, create_model
from .._core.registry import list_models, model_info, register_model
from ..models import _saliency_task  # noqa: F401  (registers the "saliency" task)
from ._baselines import EquatorBias, SpectralResidualSaliency, uniform_saliency

__all__ = ["UniformSaliency", "predict_saliency"]


class UniformSaliency(nn.Module):
    """Chance level: every pixel equally salient (:func:`uniform_saliency`).

    Shapes:
        forward: erp (B, C, H, W) -> (B, 1, H, W), every value 1 / (H W).
    """

    def forward(self, erp: torch.Tensor) -> torch.Tensor:
        check_erp(erp)
        dtype = erp.dtype if erp.is_floating_point() else torch.float32
        return uniform_saliency(erp.shape[-2:], erp.shape[0], dtype=dtype, device=erp.device)


@register_model("uniform", task="saliency", input_size=(3, 16, 32))
def uniform(**kwargs) -> nn.Module:
    """Training-free: every pixel equally salient (chance level)."""
    return UniformSaliency(**kwargs)


@register_model("equator", task="saliency", input_size=(3, 16, 32))
def equator(**kwargs) -> nn.Module:
    """Training-free: equator bias, a Gaussian in latitude (or a profile fitted to maps)."""
    return EquatorBias(**kwargs)


@register_model("spectral", task="saliency", input_size=(3, 16, 32))
def spectral(**kwargs) -> nn.Module:
    """Training-free: spectral residual on 14 tangent views, merged on the sphere, times the
    equator prior (image statistics, not learned from people's gaze)."""
    return SpectralResidualSaliency(**kwargs)


def predict_saliency(erp: torch.Tensor, model: str = "spectral", **kwargs) -> torch.Tensor:
    """Run a registered saliency model on panoramas.

    Args:
        erp: (B, C, H, W) panoramas in [0, 1], W == 2H.
        model: a name from ``list_models(task="saliency")``; ``"spectral"`` (the default) is
            the training-free image model, ``"equator"`` and ``"uniform"`` are the baselines.
        **kwargs: passed to the model's builder (e.g. ``sigma_deg`` or ``profile`` for
            ``"equator"``).

    Returns:
        (B, 1, H, W) maps summing to 1 over the pixels.

    Raises:
        ValueError: unknown ``model``, or a learned model (one with parameters, such as
            ``"spherical_unet"``) that has no weights to run with: train it (``pano360 train
            saliency``) and load the exported model with ``create_model(PATH)``; plus the
            model's own errors.

    Example:
        >>> predict_saliency(torch.rand(2, 3, 16, 32), "equator").shape
        torch.Size([2, 1, 16, 32])
    """
    check_choice(model, "model", list_models(task="saliency"))
    net = create_model(model, **kwargs)
    if any(True for _ in net.parameters()) and model_info(model).weights is None:
        # An untrained network's maps would look like predictions and mean nothing.
        raise ValueError(
            f"model {model!r} is learned and has no weights: train it with 'pano360 train "
            "saliency' and run the exported model (create_model(PATH), or pano360 saliency "
            "--model PATH)"
        )
    with torch.no_grad():
        return net(erp)
