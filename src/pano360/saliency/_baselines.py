"""Saliency baselines that need no weights: uniform, equator bias, and spectral residual on views.

Every model maps an ERP image (B, C, H, W) to saliency maps (B, 1, H, W) that sum to 1 over the
pixels (a probability per pixel, as :func:`pano360.saliency._fixations.normalize_saliency` with
``"sum"``). They are registered (task ``"saliency"``) in :mod:`._models`.

Convention: see :mod:`pano360.geometry.conventions` (lat up; row i of an ERP image has its
centre at lat = (0.5 - (i + 0.5) / H) pi; views aimed by yaw right, pitch up).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._core import ShapeError, ValueRangeError, check_erp, check_hw, check_positive_int
from ..geometry import ViewRig, merge_views, render_views, resize_erp
from ._fixations import normalize_saliency

__all__ = [
    "DEFAULT_EQUATOR_SIGMA_DEG",
    "EquatorBias",
    "SpectralResidualSaliency",
    "equator_bias",
    "fit_latitude_profile",
    "spectral_residual",
    "spectral_saliency",
    "uniform_saliency",
]

#: Standard deviation (degrees of latitude) of the default equator prior. People exploring a
#: 360-degree scene look mostly near the horizon; this broad default is not fitted to a dataset:
#: fit your own with :func:`fit_latitude_profile` when you have training maps.
DEFAULT_EQUATOR_SIGMA_DEG: float = 20.0


def _check_maps(maps: torch.Tensor, name: str) -> None:
    check_erp(maps, name)
    if maps.shape[1] != 1:
        raise ShapeError(f"{name} must be (B, 1, H, W) saliency maps, got {tuple(maps.shape)}")


# --- uniform and equator bias -------------------------------------------------------------------


def uniform_saliency(
    hw: Sequence[int],
    batch: int = 1,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The uniform baseline: every pixel equally salient.

    Args:
        hw: (H, W) with W == 2H.
        batch: number of maps B.

    Returns:
        (B, 1, H, W) maps of 1 / (H W) (they sum to 1 over the pixels).

    Raises:
        ShapeError: ``hw`` not 2:1.
        ValueRangeError: ``batch`` not a positive integer.

    Note:
        Uniform per *pixel*, which on the sphere weights the poles more than the equator, as
        a pixel's solid angle shrinks with cos(lat). This is the chance level of metrics that
        compare ERP maps pixel by pixel.
    """
    h, w = check_hw(hw, "hw", erp=True)
    batch = check_positive_int(batch, "batch")
    return torch.full((batch, 1, h, w), 1.0 / (h * w), dtype=dtype, device=device)


def _row_latitudes(h: int, dtype, device) -> torch.Tensor:
    return math.pi / 2 - (torch.arange(h, dtype=torch.float64, device=device) + 0.5) * (math.pi / h)


def fit_latitude_profile(maps: torch.Tensor) -> torch.Tensor:
    """Fit the latitude profile of saliency: the mean share of saliency in each row.

    Args:
        maps: (B, 1, H, W) training saliency maps, non-negative, W == 2H. Each map is first
            normalised to sum 1, so every map counts equally.

    Returns:
        (H,) float64 profile, row 0 at the north pole; it sums to 1 / W (a per-pixel
        probability, constant along each row). Pass it to :func:`equator_bias`.

    Raises:
        ShapeError: ``maps`` is not (B, 1, H, W) with W == 2H.
        ValueRangeError: negative or non-finite values, or every map is zero.

    Example:
        >>> maps = equator_bias((16, 32), sigma_deg=15.0).expand(4, -1, -1, -1)
        >>> p = fit_latitude_profile(maps)
        >>> p.shape, round(float(p.sum() * 32), 6)
        (torch.Size([16]), 1.0)
    """
    _check_maps(maps, "maps")
    maps = maps.detach().to(torch.float64)
    if not bool(torch.isfinite(maps).all()) or bool((maps < 0).any()):
        raise ValueRangeError("maps must be finite and non-negative")
    total = maps.sum(dim=(-2, -1))
    keep = total[:, 0] > 0
    if not bool(keep.any()):
        raise ValueRangeError("maps are all zero: there is no saliency to fit a profile to")
    maps = maps[keep] / total[keep][..., None, None]
    w = maps.shape[-1]
    return maps.mean(dim=(0, 1)).sum(-1) / w


def equator_bias(
    hw: Sequence[int],
    sigma_deg: float = DEFAULT_EQUATOR_SIGMA_DEG,
    *,
    profile: torch.Tensor | None = None,
    batch: int = 1,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The equator-bias baseline: saliency that depends on latitude only.

    Args:
        hw: (H, W) with W == 2H.
        sigma_deg: width of the default prior, a Gaussian in latitude centred on the equator
            (degrees). Ignored when ``profile`` is given.
        profile: a fitted latitude profile (:func:`fit_latitude_profile`) of any length H'
            (row 0 at the north pole); resampled to H rows by linear interpolation in
            latitude.
        batch: number of maps B.

    Returns:
        (B, 1, H, W) maps, constant along each row, summing to 1 over the pixels.

    Raises:
        ShapeError: ``hw`` not 2:1 or ``profile`` not 1-D.
        ValueRangeError: ``sigma_deg`` not positive; ``profile`` negative, non-finite or zero.

    Convention:
        The default prior is exp(-lat^2 / (2 sigma^2)) per pixel, lat of the row's centre.

    Example:
        >>> m = equator_bias((8, 16))
        >>> m.shape, bool(m[0, 0, 3, 0] > m[0, 0, 0, 0]), round(float(m.sum()), 5)
        (torch.Size([1, 1, 8, 16]), True, 1.0)
    """
    h, w = check_hw(hw, "hw", erp=True)
    batch = check_positive_int(batch, "batch")
    lat = _row_latitudes(h, torch.float64, device)
    if profile is None:
        if not (math.isfinite(sigma_deg) and sigma_deg > 0):
            raise ValueRangeError(
                f"sigma_deg must be a positive number of degrees, got {sigma_deg}"
            )
        rows = torch.exp(-0.5 * (lat / math.radians(sigma_deg)) ** 2)
    else:
        rows = _resample_profile(profile, lat)
    rows = rows / (rows.sum() * w)
    return rows[None, None, :, None].expand(batch, 1, h, w).to(dtype).contiguous()


def _resample_profile(profile: torch.Tensor, lat: torch.Tensor) -> torch.Tensor:
    profile = torch.as_tensor(profile).detach().to(torch.float64).to(lat.device)
    if profile.ndim != 1 or profile.shape[0] < 1:
        raise ShapeError(f"profile must be a 1-D tensor (H',), got {tuple(profile.shape)}")
    if not bool(torch.isfinite(profile).all()) or bool((profile < 0).any()):
        raise ValueRangeError("profile must be finite and non-negative")
    if not bool((profile > 0).any()):
        raise ValueRangeError("profile is zero everywhere")
    n = profile.shape[0]
    # Fractional row of each target latitude in the profile's own grid, clamped at the poles.
    pos = ((math.pi / 2 - lat) / (math.pi / n) - 0.5).clamp(0, n - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=n - 1)
    frac = pos - lo
    return profile[lo] * (1 - frac) + profile[hi] * frac


class EquatorBias(nn.Module):
    """Equator-bias predictor: a latitude profile, the default Gaussian or one fitted to maps.

    Args:
        sigma_deg: width of the default Gaussian profile (degrees).
        profile: a fitted (H',) profile (see :func:`fit_latitude_profile`), stored as a buffer
            so that it travels with ``state_dict``.

    Shapes:
        forward: erp (B, C, H, W) -> (B, 1, H, W), equal to :func:`equator_bias` at that size.

    Example:
        >>> model = EquatorBias.fit(equator_bias((16, 32), sigma_deg=10.0))
        >>> model(torch.rand(2, 3, 8, 16)).shape
        torch.Size([2, 1, 8, 16])
    """

    profile: torch.Tensor

    def __init__(
        self, sigma_deg: float = DEFAULT_EQUATOR_SIGMA_DEG, profile: torch.Tensor | None = None
    ) -> None:
        super().__init__()
        self.sigma_deg = float(sigma_deg)
        if profile is not None:
            _resample_profile(profile, _row_latitudes(1, torch.float64, None))  # validate
            profile = torch.as_tensor(profile, dtype=torch.float64).detach().clone()
        self.register_buffer("profile", profile if profile is not None else torch.empty(0))

    @classmethod
    def fit(cls, maps: torch.Tensor) -> EquatorBias:
        """An :class:`EquatorBias` whose profile is fitted to training maps (B, 1, H, W)."""
        return cls(profile=fit_latitude_profile(maps))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # A default module holds an empty profile: take the stored one's length.
        key = prefix + "profile"
        if key in state_dict:
            self.profile = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, erp: torch.Tensor) -> torch.Tensor:
        check_erp(erp)
        profile = self.profile if self.profile.numel() else None
        return equator_bias(
            erp.shape[-2:],
            self.sigma_deg,
            profile=profile,
            batch=erp.shape[0],
            dtype=erp.dtype if erp.is_floating_point() else torch.float32,
            device=erp.device,
        )

    def extra_repr(self) -> str:
        if self.profile.numel():
            return f"profile=fitted({self.profile.shape[0]} rows)"
        return f"sigma_deg={self.sigma_deg}"


# --- spectral residual on views of the sphere -------------------------------------------------


def spectral_residual(
    images: torch.Tensor, *, average: int = 3, blur_px: float = 2.5
) -> torch.Tensor:
    """Spectral-residual saliency (Hou and Zhang, CVPR 2007) of flat images, channel by channel.

    The log amplitude spectrum minus its local average (the "residual") is recombined with the
    phase and transformed back; what is left is what the image does not share with generic
    images of its size: edges of objects that stand out, not repeated texture.

    Args:
        images: (B, C, h, w) real images.
        average: side of the box filter that smooths the log amplitude (odd, >= 1).
        blur_px: standard deviation in pixels of the Gaussian blur of the result (0: none).

    Returns:
        (B, C, h, w) non-negative maps, one per channel. The output's total does not depend
        on the image's contrast (a property of the method); weigh channels yourself.

    Raises:
        ShapeError: ``images`` is not 4-D.
        ValueRangeError: ``average`` not a positive odd integer or ``blur_px`` negative.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ShapeError(
            f"images must be a (B, C, h, w) tensor, got {getattr(images, 'shape', images)!r}"
        )
    average = check_positive_int(average, "average")
    if average % 2 == 0:
        raise ValueRangeError(f"average must be odd, got {average}")
    if not (math.isfinite(blur_px) and blur_px >= 0):
        raise ValueRangeError(f"blur_px must be >= 0 pixels, got {blur_px}")
    dtype = images.dtype if images.dtype == torch.float64 else torch.float32
    spectrum = torch.fft.fft2(images.to(dtype))
    log_amp = torch.log(spectrum.abs() + 1e-8)
    phase = torch.angle(spectrum)
    b, c, h, w = images.shape
    pad = average // 2
    # The spectrum is periodic: pad circularly before averaging.
    padded = F.pad(log_amp.reshape(b * c, 1, h, w), (pad, pad, pad, pad), mode="circular")
    smooth = F.avg_pool2d(padded, average, stride=1).reshape(b, c, h, w)
    residual = log_amp - smooth
    sal = torch.fft.ifft2(torch.exp(torch.complex(residual, phase))).abs().square()
    return _gaussian_blur(sal, blur_px).clamp_min(0)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma <= 0:
        return x
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    b, c, h, w = x.shape
    y = x.reshape(b * c, 1, h, w)
    # Replicate padding: view borders are not periodic.
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))
    return y.reshape(b, c, h, w)


def _opponent_channels(erp: torch.Tensor) -> torch.Tensor:
    """Intensity and two colour-opponent channels (red-green, blue-yellow)."""
    if erp.shape[1] < 3:
        return erp[:, :1]
    r, g, b = erp[:, 0], erp[:, 1], erp[:, 2]
    return torch.stack(((r + g + b) / 3, r - g, b - (r + g) / 2), dim=1)


def spectral_saliency(
    erp: torch.Tensor,
    *,
    view_size: int = 64,
    fov_deg: float = 100.0,
    work_height: int = 128,
    blur_deg: float = 3.0,
    prior_sigma_deg: float | None = DEFAULT_EQUATOR_SIGMA_DEG,
    prior_floor: float = 0.1,
) -> torch.Tensor:
    """Training-free 360-degree saliency: spectral residual on 14 tangent views, merged on the
    sphere and multiplied by the equator prior.

    How it works: the panorama is box-filtered down to ``work_height`` rows (so views do not
    alias), split into intensity, red-green and blue-yellow channels, and rendered as 14
    overlapping pinhole views (:meth:`pano360.geometry.ViewRig.sphere14`, ``fov_deg`` wide, so
    each sees little
    distortion). :func:`spectral_residual` runs on every view and channel; each channel's map
    is weighted by that channel's variance in the view, since spectral residual alone is blind
    to contrast (a plain sky would score like a busy street). The views are pasted back on the
    sphere (:func:`pano360.geometry.merge_views`) and averaged with weights that
    fall smoothly to 0 at ``fov_deg / 2`` from each view's axis, which hides the views' borders.
    The result is resampled to the input size and multiplied by ``prior_floor + equator prior``
    (the prior scaled to peak 1).

    Args:
        erp: (B, C, H, W) panoramas in [0, 1], W == 2H; C == 1 (gray) or C >= 3 (RGB, extra
            channels such as alpha are ignored).
        view_size: side of each square view in pixels.
        fov_deg: field of view of the views (degrees, edge to edge), in (72, 180) so that the
            views cover the sphere.
        work_height: rows of the working panorama (at most the input's).
        blur_deg: blur of the saliency in degrees of arc (at the view centres).
        prior_sigma_deg: width of the equator prior in degrees; None for no prior.
        prior_floor: saliency kept far from the equator, relative to the prior's peak.

    Returns:
        (B, 1, H, W) maps summing to 1 over the pixels (float64 for float64 input, else
        float32).

    Raises:
        ShapeError: ``erp`` is not (B, C, H, W) with W == 2H and C == 1 or C >= 3.
        ValueRangeError: a parameter out of range.

    Convention:
        Views aimed by (yaw, pitch) as in :mod:`pano360.geometry.conventions`; the output is an
        ERP map on the input's pixel grid, continuous across the seam and the poles.

    Example:
        >>> spectral_saliency(torch.rand(1, 3, 32, 64)).shape
        torch.Size([1, 1, 32, 64])
    """
    check_erp(erp)
    if erp.shape[1] == 2:
        raise ShapeError(f"erp must have 1 or at least 3 channels, got {tuple(erp.shape)}")
    view_size = check_positive_int(view_size, "view_size")
    work_height = check_positive_int(work_height, "work_height")
    if not (math.isfinite(fov_deg) and 72 < fov_deg < 180):
        raise ValueRangeError(f"fov_deg must be in (72, 180) degrees, got {fov_deg}")
    if not (math.isfinite(blur_deg) and blur_deg >= 0):
        raise ValueRangeError(f"blur_deg must be >= 0 degrees, got {blur_deg}")
    if not (math.isfinite(prior_floor) and prior_floor >= 0):
        raise ValueRangeError(f"prior_floor must be >= 0, got {prior_floor}")
    b, _, h, w = erp.shape
    dtype = erp.dtype if erp.dtype == torch.float64 else torch.float32
    x = erp.to(dtype)
    wh = min(work_height, h)
    x = resize_erp(x, (wh, 2 * wh))
    feats = _opponent_channels(x)
    fov = math.radians(fov_deg)
    rig = ViewRig.sphere14(fov, hw=(view_size, view_size))
    blur_px = math.radians(blur_deg) / (fov / view_size)
    maps = []
    for i in range(b):
        views = render_views(feats[i : i + 1], rig)  # (V, C, n, n)
        sal = spectral_residual(views, blur_px=blur_px)
        var = views.var(dim=(-2, -1), keepdim=True)
        sal = (sal / sal.mean(dim=(-2, -1), keepdim=True).clamp_min(1e-12) * var).sum(1, True)
        maps.append(merge_views(sal, rig, (wh, 2 * wh), blend="cos2"))
    merged = resize_erp(torch.cat(maps), (h, w)).clamp_min(0)
    if prior_sigma_deg is not None:
        prior = equator_bias((h, w), prior_sigma_deg, dtype=dtype, device=erp.device)
        merged = merged * (prior_floor + prior / prior.amax())
    return normalize_saliency(merged, "sum")


class SpectralResidualSaliency(nn.Module):
    """Module form of :func:`spectral_saliency` (stores its configuration; no weights).

    Shapes:
        forward: erp (B, C, H, W) -> (B, 1, H, W), summing to 1 per map.

    Example:
        >>> SpectralResidualSaliency(view_size=32)(torch.rand(1, 3, 16, 32)).shape
        torch.Size([1, 1, 16, 32])
    """

    def __init__(
        self,
        *,
        view_size: int = 64,
        fov_deg: float = 100.0,
        work_height: int = 128,
        blur_deg: float = 3.0,
        prior_sigma_deg: float | None = DEFAULT_EQUATOR_SIGMA_DEG,
        prior_floor: float = 0.1,
    ) -> None:
        super().__init__()
        self.config = {
            "view_size": view_size,
            "fov_deg": fov_deg,
            "work_height": work_height,
            "blur_deg": blur_deg,
            "prior_sigma_deg": prior_sigma_deg,
            "prior_floor": prior_floor,
        }

    def forward(self, erp: torch.Tensor) -> torch.Tensor:
        return spectral_saliency(erp, **self.config)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())
