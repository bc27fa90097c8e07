"""Saliency on 360-degree images: metrics under every published convention, and more.

Metrics take predicted maps (B, 1, H, W) and ground truth (density maps or fixations) and return
one value per map. Every switch of the reference tools is explicit; named presets reproduce the
MIT benchmark, the Salient360! tools, and our recommendation for the sphere
(docs/saliency-metrics.md).

Convention: see :mod:`pano360.geometry.conventions`.
"""

from ._baselines import (
    DEFAULT_EQUATOR_SIGMA_DEG,
    EquatorBias,
    SpectralResidualSaliency,
    equator_bias,
    fit_latitude_profile,
    spectral_residual,
    spectral_saliency,
    uniform_saliency,
)
from ._fixations import (
    FIXATION_PLACEMENTS,
    NORMALIZATIONS,
    SIGMA_HEAD_DEG,
    SIGMA_HEAD_EYE_DEG,
    binary_fixation_map,
    fixation_map,
    frame_fixation_indices,
    normalize_saliency,
    video_fixation_maps,
)
from ._metrics import (
    AUC_THRESHOLDS,
    EPS,
    JITTER_SCALES,
    KL_DIRECTIONS,
    KL_FORMS,
    METRICS,
    NSS_STDS,
    auc_borji,
    auc_judd,
    auc_shuffled,
    cc,
    information_gain,
    kld,
    nss,
    sim,
)
from ._models import UniformSaliency, predict_saliency
from ._presets import (
    GT_AVERAGED_METRICS,
    PRESETS,
    MetricConfig,
    compute_metrics,
    list_presets,
)
from ._weights import (
    DEFAULT_SPHERE_POINTS,
    WEIGHT_MODES,
    WEIGHTINGS,
    Weighting,
    row_weights,
    sphere_sample_points,
)

__all__ = [
    "AUC_THRESHOLDS",
    "DEFAULT_EQUATOR_SIGMA_DEG",
    "DEFAULT_SPHERE_POINTS",
    "EPS",
    "FIXATION_PLACEMENTS",
    "GT_AVERAGED_METRICS",
    "JITTER_SCALES",
    "KL_DIRECTIONS",
    "KL_FORMS",
    "METRICS",
    "NORMALIZATIONS",
    "NSS_STDS",
    "PRESETS",
    "SIGMA_HEAD_DEG",
    "SIGMA_HEAD_EYE_DEG",
    "WEIGHTINGS",
    "WEIGHT_MODES",
    "EquatorBias",
    "MetricConfig",
    "SpectralResidualSaliency",
    "UniformSaliency",
    "Weighting",
    "auc_borji",
    "auc_judd",
    "auc_shuffled",
    "binary_fixation_map",
    "cc",
    "compute_metrics",
    "equator_bias",
    "fit_latitude_profile",
    "fixation_map",
    "frame_fixation_indices",
    "information_gain",
    "kld",
    "list_presets",
    "normalize_saliency",
    "nss",
    "predict_saliency",
    "row_weights",
    "sim",
    "spectral_residual",
    "spectral_saliency",
    "sphere_sample_points",
    "uniform_saliency",
    "video_fixation_maps",
]
