"""The Spherical U-Net of Zhang et al., "Saliency Detection in 360° Videos" (ECCV 2018), and two
baselines of (nearly) equal size: the same U-Net with tangent-plane taps and with nn.Conv2d.

The architecture is the seed's code (``spherical_unet.py``, class ``Final1``, in
github.com/xuyanyu-shh/Saliency-detection-in-360-video): seven spherical crown convolutions
without bias, batch norm and ReLU after the first six, 2 x 2 max-pooling and nearest x2
upsampling, skip connections by concatenation (:data:`SPHERICAL_UNET_LAYERS` lists the layers).
The file's header comment gives conv7 an 8 x 16 kernel followed by batch norm, ReLU and a 5 x 5
convolution; its code, which we follow, has conv7 with a 4 x 8 kernel and nothing after it.
Optionally (``output="softplus"``) a softplus after conv7, so that the maps are positive
everywhere; the default ``output="linear"`` is the seed's head. The loss is the seed's either way.

Crown taps:
    The seed's crown kernel of size kθ x kφ and radius ρ is a bilinear image over (θ, φ) in
    [0, ρ] x [0, 2π) of the cap around the output pixel (grid_sample with corners aligned).
    Its weight (i, j) sits at the angle ρ i / (kθ - 1) from the centre and at the azimuth
    2π j / (kφ - 1) counted from "down" (towards the south pole): row i = 0 is the centre,
    columns j = 0 and kφ - 1 are the same direction, so its kθ kφ weights sit on
    1 + (kθ - 1)(kφ - 1) directions. Ours (:class:`pano360.nn.SphereConv2d`, ``taps="crown"``)
    has ``rings = kθ - 1`` rings at ρ r / rings and ``azimuths = 2 (kφ - 1)`` taps per ring
    from "up": kφ - 1 is odd in the seed's layers, so its azimuths are half a step off a set of
    kφ - 1 azimuths from up, and doubling puts every one of the seed's directions on one of our
    taps (within 1e-12 rad, tested). A kernel then has 1 + 2 (kθ - 1)(kφ - 1) weights:
    211 for the seed's 8 x 16 (128 weights), 43 for its 4 x 8 (32 weights).

Operator:
    The seed resamples its kernel onto every input pixel of the cap and divides the sum by the
    cap's pixel count, so a constant input gives a response that varies by row; ours reads the
    input bilinearly at each tap's exact direction, the same taps at every latitude.

Interface (every model here):
    ``model(frames, prior=None)``: frames (B, 3, H, W) in [0, 1] (no normalisation: the seed
    feeds ``ToTensor()`` images), W == 2H, H divisible by 8; prior (B, 1, H, W), the saliency
    map of an earlier frame on the seed's scale (unit-peak Gaussians averaged over the gaze
    count), multiplied by :data:`MAP_SCALE` inside as the seed does, or None (zeros: nothing
    known). Returns (B, 1, H, W) raw maps on the scale of ``MAP_SCALE`` x the target (any sign
    with the seed's linear head, the default; positive with the softplus head): train
    with ``spherical_mse(raw, MAP_SCALE * target)`` (the seed's SphereMSE);
    :func:`raw_to_saliency` makes saliency maps of them. ``model.prior`` says what the trainer
    feeds: ``"gt"`` the ground-truth map of an earlier frame (the seed's teacher forcing, for
    reproduction; not known at test time), ``"prediction"`` the model's own earlier prediction
    (usable at test time), ``"none"`` nothing (no fourth input channel).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .._core import (
    ShapeError,
    ValueRangeError,
    check_choice,
    check_erp,
    check_number,
    check_positive_int,
    register_model,
)
from ..nn import SphereConv2d, SphericalPad2d
from . import _saliency_task  # noqa: F401  (registers the "saliency" task first)

__all__ = [
    "LAYER_KINDS",
    "MAP_SCALE",
    "OUTPUT_KINDS",
    "PRIOR_MODES",
    "SEED_INPUT_HW",
    "SPHERICAL_UNET_LAYERS",
    "SaliencyUNet",
    "UNetLayer",
    "crown_layout",
    "raw_to_saliency",
    "seed_parameter_count",
]

#: The seed's scale factor of saliency maps: the prior input and the training target are both
#: multiplied by it (``last * 10``, ``target * 10`` in its train.py).
MAP_SCALE = 10.0

#: What a model is fed as its fourth input channel (see the module docstring).
PRIOR_MODES: tuple[str, ...] = ("gt", "prediction", "none")

#: How the U-Net's convolutions are made: SphereConv2d with crown taps (the seed's), with
#: tangent-plane taps (SphereNet's), or nn.Conv2d on spherically padded maps.
LAYER_KINDS: tuple[str, ...] = ("crown", "tangent", "planar")

#: What follows the last convolution: ``"linear"`` (nothing: the seed's code, the default; its
#: maps can be negative and are clamped at 0 afterwards) or ``"softplus"`` (positive maps).
OUTPUT_KINDS: tuple[str, ...] = ("linear", "softplus")


@dataclass(frozen=True)
class UNetLayer:
    """One convolution of the Spherical U-Net.

    Attributes:
        name: the seed's attribute name (``conv1`` ... ``conv7``).
        in_channels, out_channels: channel counts (with the skip concatenation for conv5-7).
        radius: the crown's radius in radians (the seed's ``kernel_rad``).
        seed_kernel: the seed's (kθ, kφ) kernel size.
        planar_kernel: (kh, kw) of the baselines' kernel: odd sizes whose kh kw is closest to
            the crown's tap count 1 + 2 (kθ - 1)(kφ - 1) (43 or 211 are prime, so never equal).
        planar_dilation: the baselines' dilation, so that their kernel's half-width reaches
            about the crown's radius at the default 128 x 256 input (2 for conv3 and conv5,
            radius 8 pixels at their 32 x 64 maps; 1 elsewhere, conv4's crown covers the sphere).
    """

    name: str
    in_channels: int
    out_channels: int
    radius: float
    seed_kernel: tuple[int, int]
    planar_kernel: tuple[int, int]
    planar_dilation: int = 1


_PI = torch.pi

#: The seven convolutions of the seed's ``Final1``, in order (4 input channels: RGB and the
#: prior; 3 with ``prior="none"``).
SPHERICAL_UNET_LAYERS: tuple[UNetLayer, ...] = (
    UNetLayer("conv1", 4, 64, _PI / 32, (8, 16), (11, 19)),
    UNetLayer("conv2", 64, 128, _PI / 16, (4, 8), (5, 9)),
    UNetLayer("conv3", 128, 256, _PI / 4, (4, 8), (5, 9), 2),
    UNetLayer("conv4", 256, 256, _PI, (8, 16), (11, 19)),
    UNetLayer("conv5", 256 + 256, 128, _PI / 4, (4, 8), (5, 9), 2),
    UNetLayer("conv6", 128 + 128, 64, _PI / 16, (4, 8), (5, 9)),
    UNetLayer("conv7", 64 + 64, 1, _PI / 32, (4, 8), (5, 9)),
)


def crown_layout(seed_kernel: tuple[int, int]) -> tuple[int, int]:
    """(rings, azimuths) of the crown that holds every tap of the seed's kθ x kφ kernel:
    (kθ - 1, 2 (kφ - 1)).

    Example:
        >>> crown_layout((8, 16)), crown_layout((4, 8))
        ((7, 30), (3, 14))
    """
    k_theta, k_phi = seed_kernel
    return k_theta - 1, 2 * (k_phi - 1)


def seed_parameter_count(prior: bool = True) -> int:
    """Parameters of the seed's ``Final1``, from its layer shapes: conv weights of
    (C_out, C_in, kθ, kφ) without bias, and each batch norm's weight and bias.

    Example:
        >>> seed_parameter_count()
        12359424
    """
    total = 0
    for i, layer in enumerate(SPHERICAL_UNET_LAYERS):
        c_in = layer.in_channels - (0 if prior or i else 1)
        total += layer.out_channels * c_in * layer.seed_kernel[0] * layer.seed_kernel[1]
        if i < len(SPHERICAL_UNET_LAYERS) - 1:
            total += 2 * layer.out_channels
    return total


def raw_to_saliency(
    raw: torch.Tensor, normalize: bool = False, uniform_share: float = 0.0
) -> torch.Tensor:
    """Saliency maps from a U-Net's raw output.

    Args:
        raw: (B, 1, H, W) raw maps on the ``MAP_SCALE`` x target scale.
        normalize: divide each map by its sum (a uniform map where nothing is positive): the
            saliency task's contract. Otherwise the maps stay on the seed's target scale, the
            scale of the ``prior`` input (what ``prior="prediction"`` feeds back).
        uniform_share: with ``normalize``, mix the density with the uniform one:
            ``(1 - s) map / sum + s / (H W)``. Clamping leaves exact zeros where the model
            undershoots, and KL divergence charges about log(1 / eps) ~ 36 per unit of the
            viewers' mass there; a share s > 0 bounds that charge by log(1 / s) and keeps the
            map a density. 0 keeps the clamped map.

    Returns:
        (B, 1, H, W), non-negative: ``clamp(raw, min=0) / MAP_SCALE``, or that normalised
        (and mixed).

    Raises:
        ValueRangeError: ``uniform_share`` outside [0, 1].

    Example:
        >>> raw_to_saliency(torch.tensor([[[[-1.0, 5.0]]]]))
        tensor([[[[0.0000, 0.5000]]]])
        >>> raw_to_saliency(torch.tensor([[[[-1.0, 5.0]]]]), normalize=True)
        tensor([[[[0., 1.]]]])
        >>> raw_to_saliency(torch.tensor([[[[-1.0, 5.0]]]]), normalize=True, uniform_share=0.2)
        tensor([[[[0.1000, 0.9000]]]])
    """
    share = check_number(uniform_share, "uniform_share", lo=0.0, hi=1.0)
    maps = raw.clamp(min=0) / MAP_SCALE
    if not normalize:
        return maps
    total = maps.sum(dim=(-2, -1), keepdim=True)
    uniform = torch.full_like(maps, 1.0 / (maps.shape[-2] * maps.shape[-1]))
    density = torch.where(total > 0, maps / total.clamp(min=torch.finfo(maps.dtype).tiny), uniform)
    return density if share == 0 else (1 - share) * density + share * uniform


def _saliency_task_output(raw: torch.Tensor) -> torch.Tensor:
    return raw_to_saliency(raw, normalize=True)


def _conv(layer: UNetLayer, in_channels: int, out_channels: int, kind: str) -> nn.Module:
    """The U-Net's convolution ``layer`` made as ``kind`` (no bias, as in the seed)."""
    if kind == "crown":
        rings, azimuths = crown_layout(layer.seed_kernel)
        return SphereConv2d(
            in_channels, out_channels, kernel_size=2 * rings + 1, bias=False,
            taps="crown", crown_rings=rings, crown_azimuths=azimuths, crown_radius=layer.radius,
        )  # fmt: skip
    kh, kw = layer.planar_kernel
    d = layer.planar_dilation
    if kind == "tangent":
        return SphereConv2d(in_channels, out_channels, (kh, kw), dilation=d, bias=False)
    # Spherical padding (seam wraps, poles continue) rather than zeros: the planar baseline
    # then differs from the spherical models only in where its taps sit.
    pad_w, pad_h = d * (kw - 1) // 2, d * (kh - 1) // 2
    return nn.Sequential(
        SphericalPad2d((pad_w, pad_w, pad_h, pad_h)),
        nn.Conv2d(in_channels, out_channels, (kh, kw), dilation=d, bias=False),
    )


class SaliencyUNet(nn.Module):
    """The Spherical U-Net (ECCV 2018) for 360° video saliency, with a choice of convolution.

    Args:
        layer: ``"crown"`` (the seed's spherical crown convolutions), ``"tangent"``
            (SphereConv2d with tangent-plane taps) or ``"planar"`` (nn.Conv2d on spherically
            padded maps); the baselines use kernels of :attr:`UNetLayer.planar_kernel`.
        prior: ``"gt"``, ``"prediction"`` or ``"none"``: what the trainer feeds as the fourth
            channel (see the module docstring); ``"none"`` builds a 3-channel first layer.
        channels: conv1's output channels, 64 in the seed; the others scale with it (64, 128,
            256, 256, 128, 64 at 64). The seed's model has 64; fewer make a model small enough
            to train on a CPU.
        output: ``"linear"`` (default): conv7's output as it is, the seed's code, negative
            where the model undershoots (clamped at 0 by :func:`raw_to_saliency`, whose
            ``uniform_share`` keeps the density KL-safe); ``"softplus"``: softplus after conv7,
            positive everywhere, trained with the same loss (spherical MSE against the target
            x 10), but its gradient fades where it undershoots
            (``benchmarks/bench_saliency_head.py`` compares the two).

    Shapes:
        forward: frames (B, 3, H, W) in [0, 1], W == 2H, H divisible by 8; prior
        (B, 1, H, W) or None -> raw maps (B, 1, H, W) on the ``MAP_SCALE`` x target scale.

    Raises:
        ChoiceError: unknown ``layer``, ``prior`` or ``output``.
        ValueRangeError: ``channels`` is not a positive integer.

    Example:
        >>> model = SaliencyUNet("crown", prior="none", channels=4).eval()
        >>> raw = model(torch.rand(1, 3, 32, 64))
        >>> raw.shape, raw_to_saliency(raw).min() >= 0
        (torch.Size([1, 1, 32, 64]), tensor(True))
    """

    map_scale: float = MAP_SCALE

    def __init__(
        self,
        layer: str = "crown",
        prior: str = "gt",
        channels: int = 64,
        output: str = "linear",
    ) -> None:
        super().__init__()
        self.layer = check_choice(layer, "layer", LAYER_KINDS)
        self.prior = check_choice(prior, "prior", PRIOR_MODES)
        self.channels = check_positive_int(channels, "channels")
        self.output = check_choice(output, "output", OUTPUT_KINDS)
        self.in_channels = 3 if prior == "none" else 4
        c = channels
        widths = ((self.in_channels, c), (c, 2 * c), (2 * c, 4 * c), (4 * c, 4 * c))
        widths += ((8 * c, 2 * c), (4 * c, c), (2 * c, 1))  # decoder: skip concatenations
        for spec, (c_in, c_out) in zip(SPHERICAL_UNET_LAYERS, widths, strict=True):
            setattr(self, spec.name, _conv(spec, c_in, c_out, layer))
        for i, (_, c_out) in enumerate(widths[:6], start=1):
            setattr(self, f"bn{i}", nn.BatchNorm2d(c_out))

    def _inputs(self, frames: torch.Tensor, prior: torch.Tensor | None) -> torch.Tensor:
        check_erp(frames, "frames")
        b, c, h, w = frames.shape
        if c != 3 or h % 8:
            raise ShapeError(
                f"frames must be (B, 3, H, W) with W == 2H and H divisible by 8, got "
                f"{tuple(frames.shape)}"
            )
        if self.prior == "none":
            if prior is not None:
                raise ValueRangeError("prior must be None for a model built with prior='none'")
            return frames
        if prior is None:
            prior = frames.new_zeros(b, 1, h, w)
        elif not isinstance(prior, torch.Tensor) or tuple(prior.shape) != (b, 1, h, w):
            got = tuple(prior.shape) if isinstance(prior, torch.Tensor) else type(prior).__name__
            raise ShapeError(f"prior must be (B, 1, H, W) = {(b, 1, h, w)}, got {got}")
        return torch.cat((frames, prior.to(frames.dtype) * MAP_SCALE), dim=1)

    def forward(self, frames: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """Raw maps (B, 1, H, W); see the class docstring.

        Raises:
            ShapeError: ``frames`` not (B, 3, H, W) with W == 2H and H divisible by 8, or
                ``prior`` not (B, 1, H, W).
            ValueRangeError: a ``prior`` given to a model built with ``prior="none"``.
        """
        x = self._inputs(frames, prior)
        r1 = F.relu(self.bn1(self.conv1(x)))
        r2 = F.relu(self.bn2(self.conv2(F.max_pool2d(r1, 2))))
        r3 = F.relu(self.bn3(self.conv3(F.max_pool2d(r2, 2))))
        r4 = F.relu(self.bn4(self.conv4(F.max_pool2d(r3, 2))))
        r5 = F.relu(self.bn5(self.conv5(torch.cat((_up(r4), r3), dim=1))))
        r6 = F.relu(self.bn6(self.conv6(torch.cat((_up(r5), r2), dim=1))))
        raw = self.conv7(torch.cat((_up(r6), r1), dim=1))
        return F.softplus(raw) if self.output == "softplus" else raw

    def to_saliency(
        self, raw: torch.Tensor, normalize: bool = False, uniform_share: float = 0.0
    ) -> torch.Tensor:
        """:func:`raw_to_saliency` of this model's raw output."""
        return raw_to_saliency(raw, normalize, uniform_share)

    def extra_repr(self) -> str:
        return (
            f"layer={self.layer!r}, prior={self.prior!r}, channels={self.channels}, "
            f"output={self.output!r}"
        )


def _up(x: torch.Tensor) -> torch.Tensor:
    """The seed's nn.Upsample(scale_factor=2): nearest neighbour."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


#: The seed's working size (H, W); the models take any H divisible by 8 with W == 2H.
SEED_INPUT_HW = (128, 256)

# The registry's test input (the test runs every registered model on it): small, the models
# are fully convolutional.
_INPUT_SIZE = (3, 16, 32)


@register_model(task="saliency", input_size=_INPUT_SIZE, postprocess=_saliency_task_output)
def spherical_unet(prior: str = "gt", channels: int = 64, output: str = "linear") -> SaliencyUNet:
    """Learned, untrained (no shipped weights; train with ``pano360 train saliency``): the
    Spherical U-Net of Zhang et al. (ECCV 2018), crown convolutions, 128 x 256 frames plus the
    saliency map of an earlier frame."""
    return SaliencyUNet("crown", prior, channels, output)


@register_model(task="saliency", input_size=_INPUT_SIZE, postprocess=_saliency_task_output)
def spherical_unet_tangent(
    prior: str = "gt", channels: int = 64, output: str = "linear"
) -> SaliencyUNet:
    """Learned, untrained (no shipped weights): the Spherical U-Net with tangent-plane taps
    (SphereConv2d) instead of crowns, a baseline of about equal size."""
    return SaliencyUNet("tangent", prior, channels, output)


@register_model(task="saliency", input_size=_INPUT_SIZE, postprocess=_saliency_task_output)
def planar_unet(prior: str = "gt", channels: int = 64, output: str = "linear") -> SaliencyUNet:
    """Learned, untrained (no shipped weights): the Spherical U-Net's architecture with
    nn.Conv2d on spherically padded maps, a planar baseline of about equal size."""
    return SaliencyUNet("planar", prior, channels, output)
