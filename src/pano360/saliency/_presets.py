"""Named metric conventions (presets) and :func:`compute_metrics`, which runs them.

Each preset is a :class:`MetricConfig`: every switch of every metric, fixed to what one reference
tool does. ``docs/saliency-metrics.md`` lists the sources and how much the presets differ.

Convention: see :mod:`pano360.saliency._metrics` (maps, fixations and weightings).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .._core import check_choice
from ._metrics import _NEEDS, EPS, METRICS, Fixations, _check_options, evaluate_metrics
from ._weights import Weighting

__all__ = ["PRESETS", "MetricConfig", "compute_metrics", "list_presets"]

_NONE = Weighting("none")
_SOLID = Weighting("solid-angle")
_SIN_MULTIPLY = Weighting("sin-rows", "multiply")
_WEIGHTING_FIELDS = (
    "auc_weighting",
    "nss_weighting",
    "cc_weighting",
    "sim_weighting",
    "kld_weighting",
    "ig_weighting",
)


@dataclass(frozen=True)
class MetricConfig:
    """Every switch of every metric: one convention for computing saliency scores.

    The defaults are the ``"sphere"`` preset. Derive variants with
    ``dataclasses.replace(PRESETS["mit"], nss_std="population")`` or :meth:`with_weighting`.

    Attributes:
        name: a label (reported in tables).
        source: where the convention comes from.
        auc_weighting: weighting of AUC-Judd, AUC-Borji and shuffled AUC.
        nss_weighting, cc_weighting, sim_weighting, kld_weighting, ig_weighting: of each metric.
            A kind name is accepted and becomes ``Weighting(kind)`` (measure mode).
        auc_jitter, auc_jitter_amplitude, auc_jitter_scale: AUC-Judd's tie-breaking noise.
        auc_splits, auc_step: AUC-Borji's and shuffled AUC's splits and threshold step.
        nss_std: ``"population"`` or ``"sample"``.
        sim_minmax: min-max normalise before SIM.
        kld_direction, kld_symmetric, kld_form: see :func:`pano360.saliency.kld`.
        ig_minmax: min-max normalise before information gain.
        eps: KLD's and information gain's regulariser.
        seed: seed of the random draws of the AUCs.

    Raises:
        ValueError, ValueRangeError: an unknown choice or an out-of-range value.

    Example:
        >>> cfg = MetricConfig().with_weighting("none")
        >>> cfg.cc_weighting
        Weighting(kind='none', mode='measure', n_points=1256637)
    """

    name: str = "custom"
    source: str = ""
    auc_weighting: Weighting = _SOLID
    nss_weighting: Weighting = _SOLID
    cc_weighting: Weighting = _SOLID
    sim_weighting: Weighting = _SOLID
    kld_weighting: Weighting = _SOLID
    ig_weighting: Weighting = _SOLID
    auc_jitter: bool = True
    auc_jitter_amplitude: float = 1e-7
    auc_jitter_scale: str = "range"
    auc_splits: int = 100
    auc_step: float = 0.1
    nss_std: str = "population"
    sim_minmax: bool = True
    kld_direction: str = "gt||pred"
    kld_symmetric: bool = False
    kld_form: str = "mit"
    ig_minmax: bool = True
    eps: float = EPS
    seed: int = 0

    def __post_init__(self) -> None:
        for field in _WEIGHTING_FIELDS:
            object.__setattr__(self, field, Weighting.parse(getattr(self, field)))
        for metric in METRICS:
            _check_options(metric, self.options(metric))

    def options(self, metric: str) -> dict:
        """Keyword options of the metric function of that name under this convention.

        Example:
            >>> PRESETS["mit"].options("nss")
            {'weighting': Weighting(kind='none', mode='measure', n_points=1256637), 'std': 'sample'}
        """
        check_choice(metric, "metric", METRICS)
        if metric == "auc_judd":
            return dict(
                weighting=self.auc_weighting,
                jitter=self.auc_jitter,
                jitter_amplitude=self.auc_jitter_amplitude,
                jitter_scale=self.auc_jitter_scale,
                seed=self.seed,
            )
        if metric in ("auc_borji", "auc_shuffled"):
            return dict(
                weighting=self.auc_weighting,
                n_splits=self.auc_splits,
                step=self.auc_step,
                seed=self.seed,
            )
        if metric == "nss":
            return dict(weighting=self.nss_weighting, std=self.nss_std)
        if metric == "cc":
            return dict(weighting=self.cc_weighting)
        if metric == "sim":
            return dict(weighting=self.sim_weighting, minmax=self.sim_minmax)
        if metric == "kld":
            return dict(
                weighting=self.kld_weighting,
                direction=self.kld_direction,
                symmetric=self.kld_symmetric,
                form=self.kld_form,
                eps=self.eps,
            )
        return dict(weighting=self.ig_weighting, minmax=self.ig_minmax, eps=self.eps)

    def with_weighting(self, weighting: str | Weighting) -> MetricConfig:
        """The same convention with one weighting for every metric."""
        w = Weighting.parse(weighting)
        return dataclasses.replace(self, **dict.fromkeys(_WEIGHTING_FIELDS, w))


#: The named conventions. See docs/saliency-metrics.md for each one's source.
PRESETS: dict[str, MetricConfig] = {
    "mit": MetricConfig(
        name="mit",
        source="MIT saliency benchmark MATLAB code (cvzoya/saliency, code_forMetrics), planar",
        auc_weighting=_NONE,
        nss_weighting=_NONE,
        cc_weighting=_NONE,
        sim_weighting=_NONE,
        kld_weighting=_NONE,
        ig_weighting=_NONE,
        auc_jitter=True,
        auc_jitter_scale="raw",
        nss_std="sample",
        sim_minmax=True,
        kld_form="mit",
        ig_minmax=True,
    ),
    "salient360-2018": MetricConfig(
        name="salient360-2018",
        source="Salient360! 2018 Python tool: maps times sin(linspace(0, pi, H)) first, "
        "scores averaged over both directions",
        auc_weighting=_SIN_MULTIPLY,
        nss_weighting=_SIN_MULTIPLY,
        cc_weighting=_SIN_MULTIPLY,
        sim_weighting=_SIN_MULTIPLY,
        kld_weighting=_SIN_MULTIPLY,
        ig_weighting=_SIN_MULTIPLY,
        auc_jitter=False,
        auc_jitter_scale="raw",
        nss_std="population",
        sim_minmax=True,
        kld_symmetric=True,
        kld_form="ratio",
        ig_minmax=False,
    ),
    "salient360-toolbox": MetricConfig(
        name="salient360-toolbox",
        source="Salient360! toolbox (David-Ef/salient360Toolbox, saliencyMetrics.py): sine "
        "weights in KLD and SIM, weighted Pearson CC, NSS and AUC unweighted",
        auc_weighting=_NONE,
        nss_weighting=_NONE,
        cc_weighting=Weighting("sin-rows", "measure"),
        sim_weighting=_SIN_MULTIPLY,
        kld_weighting=_SIN_MULTIPLY,
        ig_weighting=_NONE,
        auc_jitter=False,
        auc_jitter_scale="raw",
        nss_std="population",
        sim_minmax=True,
        kld_symmetric=False,
        kld_form="ratio",
        ig_minmax=False,
    ),
    "sphere": MetricConfig(
        name="sphere",
        source="pano360's recommendation: exact pixel solid angles as the measure of every "
        "metric, map values unchanged",
    ),
}


def list_presets() -> list[str]:
    """Names of the presets, in the order of :data:`PRESETS`.

    Example:
        >>> list_presets()
        ['mit', 'salient360-2018', 'salient360-toolbox', 'sphere']
    """
    return list(PRESETS)


def compute_metrics(
    pred: torch.Tensor,
    gt_map: torch.Tensor | None = None,
    fixations: Fixations | None = None,
    *,
    preset: str | MetricConfig = "sphere",
    metrics: Sequence[str] | None = None,
    baseline: torch.Tensor | None = None,
    other_fixations: Fixations | None = None,
) -> dict[str, torch.Tensor]:
    """Compute several saliency metrics under one convention, sharing the work between them.

    Args:
        pred: (B, 1, H, W) predicted saliency maps.
        gt_map: (B, 1, H, W) ground-truth densities (for CC, SIM, KLD).
        fixations: (B, 1, H, W) fixation map or B tensors (N_i, 2) of (lon, lat) radians (for
            the AUCs, NSS and information gain).
        preset: a name from :func:`list_presets` or a :class:`MetricConfig`.
        metrics: names from ``METRICS``; default every metric the given inputs allow
            (shuffled AUC needs ``other_fixations``, information gain ``baseline``).
        baseline: (1 or B, 1, H, W) baseline map for information gain.
        other_fixations: other images' fixations for the shuffled AUC.

    Returns:
        metric name -> (B,) tensor, in the order of ``METRICS``.

    Raises:
        ValueError: unknown preset or metric, a requested metric whose inputs are missing, or
            no metric computable from the inputs.
        ShapeError, ValueRangeError: as the metric functions.

    Example:
        >>> g = torch.rand(2, 1, 8, 16)
        >>> fix = (g > 0.9).float()
        >>> out = compute_metrics(g, g, fix, preset="mit")
        >>> sorted(out)
        ['auc_borji', 'auc_judd', 'cc', 'kld', 'nss', 'sim']
    """
    if isinstance(preset, str):
        check_choice(preset, "preset", list_presets())
        config = PRESETS[preset]
    elif isinstance(preset, MetricConfig):
        config = preset
    else:
        raise TypeError(f"preset must be a name or a MetricConfig, got {type(preset).__name__}")
    if metrics is None:
        have = {
            "gt_map": gt_map is not None,
            "fixations": fixations is not None,
            "baseline": baseline is not None,
            "other_fixations": other_fixations is not None,
        }
        names = [m for m in METRICS if all(have[n] for n in _NEEDS[m])]
        if not names:
            raise ValueError("no metric can be computed: give gt_map and/or fixations")
    else:
        if isinstance(metrics, str):
            metrics = [metrics]
        names = [check_choice(m, "metric", METRICS) for m in metrics]
        names = [m for m in METRICS if m in names]
    return evaluate_metrics(
        pred,
        {m: config.options(m) for m in names},
        gt_map=gt_map,
        fixations=fixations,
        baseline=baseline,
        other_fixations=other_fixations,
    )
