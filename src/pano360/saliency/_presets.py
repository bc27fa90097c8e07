"""Named metric conventions (presets) and :func:`compute_metrics`, which runs them.

Each preset is a :class:`MetricConfig`: every switch of every metric, fixed to what one reference
tool does, quirks included. ``docs/saliency-metrics.md`` lists the sources, every deviation of
each tool from its own documentation and what each preset does about it, and how much the
presets differ.

Convention: see :mod:`pano360.saliency._metrics` (maps, fixations and weightings).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .._core import ShapeError, check_choice
from ._fixations import FIXATION_PLACEMENTS
from ._metrics import _NEEDS, EPS, METRICS, Fixations, _check_options, evaluate_metrics
from ._weights import Weighting

__all__ = ["GT_AVERAGED_METRICS", "PRESETS", "MetricConfig", "compute_metrics", "list_presets"]

_NONE = Weighting("none")
_SOLID = Weighting("solid-angle")
_SIN_MULTIPLY = Weighting("sin-rows", "multiply")
_SIN_UNSCALED = Weighting("sin-rows", "multiply-unscaled")
#: The metrics :attr:`MetricConfig.average_with_gt` averages with the ground truth's own score
#: (the Salient360! tools' fixation metrics; information gain is not one of them).
GT_AVERAGED_METRICS: tuple[str, ...] = ("auc_judd", "auc_borji", "auc_shuffled", "nss")
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
        auc_thresholds: ``"inclusive"`` (MATLAB ``0:step:max``) or ``"exclusive"`` (NumPy
            ``np.r_[0:max:step]``), see :func:`pano360.saliency.auc_borji`.
        nss_std: ``"population"`` or ``"sample"``.
        sim_minmax: min-max normalise before SIM.
        kld_direction, kld_symmetric, kld_form: see :func:`pano360.saliency.kld`.
        ig_minmax: min-max normalise before information gain.
        eps: KLD's and information gain's regulariser.
        seed: seed of the random draws of the AUCs.
        fixation_placement: the pixel of each fixation given as (lon, lat): ``"cell"`` or
            ``"salient360"`` (the tools' ``int(u W - 1), int(v H - 1)``), see
            :func:`pano360.saliency.binary_fixation_map`. Fixation maps are used as given.
        average_with_gt: report each metric of :data:`GT_AVERAGED_METRICS` as the mean of the
            prediction's score and the ground-truth map's own score on the fixations
            (``gt_fixations`` of :func:`compute_metrics` when given), as the Salient360! 2018
            main script and the toolbox's ``compareSaliency`` do (their ``getSimVal`` averages
            ``metric(map 1, fixations 2)`` and ``metric(map 2, fixations 1)``). Needs
            ``gt_map``.
        in_place_weighting: reproduce the toolbox's command-line comparison
            (``compareSaliency``), whose SIM and KLD multiply their inputs by the row weights
            in place: SIM is the mean of SIM under the SIM weighting (first direction) and
            under its square (second direction), and KLD runs under the cube of the KLD
            weighting, as when every metric is computed in the tool's order.

    Raises:
        ValueError, ValueRangeError: an unknown choice or an out-of-range value.
        TypeError: a switch that must be a bool is not one.

    Example:
        >>> cfg = MetricConfig().with_weighting("none")
        >>> cfg.cc_weighting
        Weighting(kind='none', mode='measure', n_points=1256637, power=1)
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
    auc_thresholds: str = "inclusive"
    fixation_placement: str = "cell"
    average_with_gt: bool = False
    in_place_weighting: bool = False

    def __post_init__(self) -> None:
        for field in _WEIGHTING_FIELDS:
            object.__setattr__(self, field, Weighting.parse(getattr(self, field)))
        for metric in METRICS:
            _check_options(metric, self.options(metric))
        check_choice(self.fixation_placement, "fixation_placement", FIXATION_PLACEMENTS)
        for field in ("average_with_gt", "in_place_weighting"):
            if not isinstance(getattr(self, field), bool):
                raise TypeError(f"{field} must be a bool, got {getattr(self, field)!r}")

    def options(self, metric: str) -> dict:
        """Keyword options of the metric function of that name under this convention.

        Example:
            >>> PRESETS["mit"].options("nss")["weighting"]
            Weighting(kind='none', mode='measure', n_points=1256637, power=1)
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
                thresholds=self.auc_thresholds,
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
        source="Salient360! 2018 Python tool (as shipped with the ICCV'21 code, "
        "KrishnaTarun/360_unsupervised_saliency, Saliency/saliencyMeasures.py): maps in float64 "
        "times sin(linspace(0, pi, H)) plus eps, min-max normalised; both directions averaged; "
        "NSS and AUCs averaged with the ground truth's own score",
        auc_weighting=_SIN_UNSCALED,
        nss_weighting=_SIN_UNSCALED,
        cc_weighting=_SIN_UNSCALED,
        sim_weighting=_SIN_UNSCALED,
        kld_weighting=_SIN_UNSCALED,
        ig_weighting=_SIN_UNSCALED,
        auc_jitter=False,
        auc_jitter_scale="raw",
        auc_thresholds="exclusive",
        nss_std="population",
        sim_minmax=True,
        kld_symmetric=True,
        kld_form="ratio",
        ig_minmax=False,
        fixation_placement="salient360",
        average_with_gt=True,
    ),
    "salient360-toolbox": MetricConfig(
        name="salient360-toolbox",
        source="Salient360! toolbox (David-Ef/salient360Toolbox, saliencyMetrics.py) metric "
        "functions as documented: sine weights in KLD and SIM, weighted Pearson CC, NSS and "
        "AUC unweighted",
        auc_weighting=_NONE,
        nss_weighting=_NONE,
        cc_weighting=Weighting("sin-rows", "measure"),
        sim_weighting=_SIN_MULTIPLY,
        kld_weighting=_SIN_MULTIPLY,
        ig_weighting=_NONE,
        auc_jitter=False,
        auc_jitter_scale="raw",
        auc_thresholds="exclusive",
        nss_std="population",
        sim_minmax=True,
        kld_symmetric=False,
        kld_form="ratio",
        ig_minmax=False,
        fixation_placement="salient360",
    ),
    "salient360-toolbox-cli": MetricConfig(
        name="salient360-toolbox-cli",
        source="Salient360! toolbox's own comparison (compareSaliency, as its command line "
        "runs it): the metric functions, with SIM and KLD multiplying their inputs in place "
        "(SIM's second direction weighted sin^2, KLD sin^3) and NSS and AUCs averaged with "
        "the ground truth's own score",
        auc_weighting=_NONE,
        nss_weighting=_NONE,
        cc_weighting=Weighting("sin-rows", "measure"),
        sim_weighting=_SIN_MULTIPLY,
        kld_weighting=_SIN_MULTIPLY,
        ig_weighting=_NONE,
        auc_jitter=False,
        auc_jitter_scale="raw",
        auc_thresholds="exclusive",
        nss_std="population",
        sim_minmax=True,
        kld_symmetric=False,
        kld_form="ratio",
        ig_minmax=False,
        fixation_placement="salient360",
        average_with_gt=True,
        in_place_weighting=True,
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
        ['mit', 'salient360-2018', 'salient360-toolbox', 'salient360-toolbox-cli', 'sphere']
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
    gt_fixations: Fixations | None = None,
) -> dict[str, torch.Tensor]:
    """Compute several saliency metrics under one convention, sharing the work between them.

    Args:
        pred: (B, 1, H, W) predicted saliency maps.
        gt_map: (B, 1, H, W) ground-truth densities (for CC, SIM, KLD, and for the ground
            truth's own score when the convention averages with it).
        fixations: (B, 1, H, W) fixation map or B tensors (N_i, 2) of (lon, lat) radians (for
            the AUCs, NSS and information gain), placed by the convention's
            ``fixation_placement``.
        preset: a name from :func:`list_presets` or a :class:`MetricConfig`.
        metrics: names from ``METRICS``; default every metric the given inputs allow
            (shuffled AUC needs ``other_fixations``, information gain ``baseline``).
        baseline: (1 or B, 1, H, W) baseline map for information gain.
        other_fixations: other images' fixations for the shuffled AUC.
        gt_fixations: the fixations the ground-truth map is scored on when the convention
            averages with its own score (``average_with_gt``; the tools use a second scanpath
            file); default ``fixations``.

    Returns:
        metric name -> (B,) tensor, in the order of ``METRICS``.

    Raises:
        ValueError: unknown preset or metric, a requested metric whose inputs are missing, no
            metric computable from the inputs, or a convention that averages with the ground
            truth's own score without ``gt_map``.
        ShapeError, ValueRangeError: as the metric functions; ShapeError also when the
            averaged ground truth is not of pred's shape.

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
    requests = {m: config.options(m) for m in names}
    averaged = [m for m in names if m in GT_AVERAGED_METRICS] if config.average_with_gt else []
    if averaged:
        if gt_map is None:
            raise ValueError(
                f"preset {config.name!r} reports {', '.join(averaged)} as the mean of the "
                "prediction's and the ground-truth map's own score (average_with_gt), so it "
                "needs gt_map; use dataclasses.replace(config, average_with_gt=False) for the "
                "prediction's score alone"
            )
        if isinstance(gt_map, torch.Tensor) and gt_map.shape != pred.shape:
            raise ShapeError(
                f"gt_map must have pred's shape {tuple(pred.shape)}, got {tuple(gt_map.shape)} "
                "(maps are never resized)"
            )
    if config.in_place_weighting and "kld" in requests:
        requests["kld"]["weighting"] = _raised(requests["kld"]["weighting"], 3)
    kwargs = dict(
        gt_map=gt_map,
        fixations=fixations,
        baseline=baseline,
        other_fixations=other_fixations,
        placement=config.fixation_placement,
    )
    out = evaluate_metrics(pred, requests, **kwargs)
    if config.in_place_weighting and "sim" in requests:
        second = dict(requests["sim"], weighting=_raised(requests["sim"]["weighting"], 2))
        again = evaluate_metrics(pred, {"sim": second}, **kwargs)["sim"]
        out["sim"] = (out["sim"] + again) / 2
    if averaged:
        own = evaluate_metrics(
            gt_map,
            {m: requests[m] for m in averaged},
            fixations=fixations if gt_fixations is None else gt_fixations,
            other_fixations=other_fixations,
            placement=config.fixation_placement,
        )
        for m in averaged:
            out[m] = (out[m] + own[m].to(out[m].dtype)) / 2
    return out


def _raised(weighting: Weighting, times: int) -> Weighting:
    """The weighting with its row weights raised ``times`` times as far (an in-place product
    repeated)."""
    if not weighting.per_row:
        return weighting
    return dataclasses.replace(weighting, power=weighting.power * times)
