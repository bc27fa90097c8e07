r"""How the transfer strategies do on a deep ImageNet backbone, against its exact outputs.

Three measurements on ERP images, all against :func:`~pano360.transfer.exact_features` (the
reference of SphConv, Su and Grauman 2017; no labels needed):

- per stage, the RMSE of each strategy's feature map against exact's, divided by the standard
  deviation of exact's, by |lat| band;
- "spherical ImageNet": for every object pasted in the scene (a spherical box), each strategy's
  final feature map is averaged over the object's region (the cells whose centres lie in the
  box, weighted by solid angle) and put through the backbone's classifier; the top-1 class is
  compared with exact's classification of the object (agreement), and the top-5 sets (overlap,
  the fraction of exact's 5 classes found). Exact's classification is the whole network on the
  object's own tangent-plane view (the pinhole camera aimed at the box, its field of view the
  box's, pixels as far apart as the ERP's at the equator): the source network on the photo as
  a perspective camera saw it, SphConv's reference at the object's location. (Pooling exact's
  final map over the region instead gives a reference that changes with where the cells fall:
  at 448 x 224, with the photos 2-3 cells wide, exact's own class changed for 25-75% of the
  objects when the grid moved a quarter of a cell.)
- seconds per image of the final stage, every strategy on the same images.

Convention:
    :mod:`pano360.geometry.conventions`; bands are ``(low, high)`` bounds on |lat| in radians
    (:data:`~pano360.transfer.LAT_BANDS`); a map row belongs to a band by its centre's
    latitude, an object by its box centre's. Every map is on its stage's own grid
    (:func:`~pano360.transfer.stage_grid`: MobileNetV2 and ResNet put output (i, j) on input
    pixel (s i, s j)), and so is every strategy's output and exact's.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._core import ShapeError, check_choice, check_erp, check_int
from ..geometry import (
    erp_to_perspective,
    lonlat_to_xyz,
    pixel_solid_angle,
    sph_box_mask,
    strided_lonlat_grid,
)
from ..models.backbones import Backbone
from ._apply import TransferredModel
from ._evaluate import LAT_BANDS, band_rmse
from ._exact_features import exact_features, stage_grid, stage_patch_size

__all__ = [
    "BACKBONE_STRATEGIES",
    "BackboneTransferResult",
    "backbone_runners",
    "evaluate_backbone",
    "object_scenes",
]

#: The strategies compared with exact on a backbone, cheapest first (``multiview`` uses
#: :func:`~pano360.transfer.default_rig`, a cover of the whole sphere).
BACKBONE_STRATEGIES: tuple[str, ...] = ("direct", "cubemap", "multiview", "spherical")

Runner = Callable[[torch.Tensor], torch.Tensor]


def backbone_runners(
    model: Backbone, stage: str, strategies: Sequence[str] = BACKBONE_STRATEGIES
) -> dict[str, Runner]:
    """Each strategy's way of computing ``stage`` of ``model`` on ERP images: ``{name: f}``
    with ``f(erp: (B, 3, H, W)) -> (B, C_s, H / s, W / s)`` on the stage's own grid
    (:class:`TransferredModel` on :meth:`~pano360.models.backbones.Backbone.stage_module` with
    ``output_grid=``:func:`stage_grid`, built once).

    A trained student joins the comparison as one more entry (e.g. ``runners["distilled"] =
    student``) before :func:`evaluate_backbone`.

    Raises:
        ValueError: an unknown strategy or stage.
    """
    check_choice(stage, "stage", tuple(model.stages))
    network = model.stage_module(stage).eval()
    grid = stage_grid(model, stage)
    runners = {}
    for name in strategies:
        check_choice(name, "strategies", BACKBONE_STRATEGIES)
        runners[name] = TransferredModel(
            network, name, stride=model.stages[stage], output_grid=grid
        )
    return runners


def object_scenes(
    n: int, seed: int, erp_hw: Sequence[int] = (224, 448), *, width_deg=(40.0, 55.0)
) -> list:
    """``n`` synthetic scenes of six photos each, two per |lat| band of
    :data:`~pano360.transfer.LAT_BANDS` (centres at |lat| 0-25, 35-55 and 63-80 degrees, one
    north and one south, 60 degrees of longitude apart), ``width_deg`` wide, on the sky
    background: the "spherical ImageNet" of :func:`evaluate_backbone`.

    The photos are the public-domain and CC0 assets of :mod:`pano360.data.synthetic` (skimage's
    astronaut, coffee, chelsea, rocket; Grace Hopper's portrait). Scene i depends only on
    ``(seed, i)``.

    Returns:
        A list of :class:`pano360.data.SyntheticScene` (``erp`` (3, H, W), ``bfov`` (6, 4)).

    Example:
        >>> scene = object_scenes(1, seed=0, erp_hw=(32, 64))[0]
        >>> tuple(scene.erp.shape), tuple(scene.bfov.shape)
        ((3, 32, 64), (6, 4))
    """
    from ..data.synthetic import FACE_ASSETS, OBJECT_ASSETS, Placement, render_scene

    check_int(n, "n", lo=1)
    assets = OBJECT_ASSETS + FACE_ASSETS
    # (|lat| range in degrees, sign) of the six objects, in order of longitude.
    slots = [((63, 80), 1), ((35, 55), -1), ((0, 25), 1), ((63, 80), -1), ((35, 55), 1)]
    slots.append(((0, 25), -1))
    scenes = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        base = rng.uniform(-math.pi, math.pi)
        order = rng.permutation(len(assets))
        placements = []
        for k, ((lo, hi), sign) in enumerate(slots):
            lon = math.remainder(base + k * math.pi / 3, 2 * math.pi)
            placements.append(
                Placement(
                    assets[order[k % len(assets)]],
                    lon=lon,
                    lat=sign * math.radians(rng.uniform(lo, hi)),
                    width=math.radians(rng.uniform(*width_deg)),
                    flip=bool(rng.integers(2)),
                )
            )
        scenes.append(render_scene(placements, tuple(erp_hw), seed=[seed, i]))
    return scenes


def _band_of(lat: float, bands) -> int:
    for k, (lo, hi) in enumerate(bands):
        if lo <= abs(lat) < hi:
            return k
    return -1


def _region_logits(
    model: Backbone, features: torch.Tensor, boxes: torch.Tensor, erp_hw, grid: str
) -> torch.Tensor:
    """Logits (N, K) of every box's region of one final feature map (1, C, h, w) of an
    ``erp_hw`` panorama on ``grid``: the cells whose directions lie in the box, averaged with
    their solid angles (the nearest cell when none does), through ``model.forward_head``."""
    h, w = features.shape[-2:]
    s = erp_hw[0] // h
    if grid == "planar":  # cell (i, j) is input pixel (s i, s j)
        mask = sph_box_mask(boxes, erp_hw)[:, ::s, ::s]
        area = pixel_solid_angle(erp_hw, dtype=features.dtype)[::s]
    else:
        mask = sph_box_mask(boxes, (h, w))
        area = pixel_solid_angle((h, w), dtype=features.dtype)
    weights = mask.to(features.dtype) * area.reshape(1, h, 1)
    empty = torch.nonzero(weights.sum(dim=(1, 2)) == 0).flatten().tolist()
    if empty:
        cells = lonlat_to_xyz(strided_lonlat_grid(erp_hw, s, grid, dtype=torch.float64))
    for i in empty:
        centre = lonlat_to_xyz(boxes[i, :2].to(torch.float64))
        nearest = int((cells @ centre).argmax())
        weights[i].view(-1)[nearest] = 1.0
    weights = weights / weights.sum(dim=(1, 2), keepdim=True)
    pooled = torch.einsum("chw,nhw->nc", features[0], weights)
    return model.forward_head(pooled[:, :, None, None])


def _object_view_logits(model: Backbone, erp: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Exact's classification of objects: the whole network on each box's tangent-plane view.

    Args:
        model: the backbone with its classifier.
        erp: (1, 3, H, W) RGB in [0, 1].
        boxes: (N, 4) BFoV or (N, 5) RBFoV (radians): each view is the pinhole camera aimed at
            the box centre (rolled by the roll), its field of view the box's, its pixels
            tan(2 pi / W) apart on the tangent plane (the ERP's spacing at the equator), at
            least 32 pixels a side.

    Returns:
        (N, K) logits.
    """
    spacing = math.tan(min(2 * math.pi / erp.shape[-1], math.pi / 4))
    logits = []
    for box in boxes.to(torch.float64).tolist():
        lon, lat, fov_x, fov_y = box[:4]
        roll = box[4] if len(box) > 4 else 0.0
        w = max(32, round(2 * math.tan(fov_x / 2) / spacing))
        h = max(32, round(2 * math.tan(fov_y / 2) / spacing))
        view = erp_to_perspective(erp, fov_x, (h, w), yaw=lon, pitch=lat, roll=roll)
        logits.append(model(view))
    return torch.cat(logits)


@dataclass
class BackboneTransferResult:
    """What :func:`evaluate_backbone` measured (see its docstring)."""

    model: str
    erp_hw: tuple[int, int]
    bands: list[tuple[float, float]]
    strategies: list[str]
    patch: dict[str, tuple[int, float]]  # stage -> (patch side, its fov in degrees)
    rmse: dict[str, dict[str, list[float]]]  # strategy -> stage -> per band
    rmse_images: int
    top1: dict[str, list[float]]  # strategy -> per band, percent
    top5: dict[str, list[float]]
    objects: list[int]  # per band
    seconds: dict[str, float]  # strategy (and "exact") -> median seconds per image
    timing_images: dict[str, int] = field(default_factory=dict)

    def _band_names(self) -> list[str]:
        return [f"{math.degrees(lo):.0f}-{math.degrees(hi):.0f}" for lo, hi in self.bands]

    def ratios(self) -> dict[str, float]:
        """exact / spherical and spherical / direct seconds per image, where measured."""
        s, out = self.seconds, {}
        if "exact" in s and "spherical" in s:
            out["exact / spherical"] = s["exact"] / s["spherical"]
        if "spherical" in s and "direct" in s:
            out["spherical / direct"] = s["spherical"] / s["direct"]
        return out

    def rmse_markdown(self) -> str:
        bands = self._band_names()
        lines = [
            "| stage | patch (fov) | strategy | " + " | ".join(bands) + " |",
            "|---|---|---" + "|---:" * len(bands) + "|",
        ]
        for stage, (p, fov) in self.patch.items():
            for name in (n for n in self.rmse if stage in self.rmse[n]):
                cells = " | ".join(f"{v:.3f}" for v in self.rmse[name][stage])
                lines.append(f"| {stage} | {p} px ({fov:.0f}°) | {name} | {cells} |")
        return "\n".join(lines)

    def classification_markdown(self) -> str:
        bands = self._band_names()
        head = " | ".join(f"top-1 {b} | top-5 {b}" for b in bands)
        lines = [f"| strategy | {head} |", "|---|" + "---:|" * (2 * len(bands))]
        for name in self.strategies:
            cells = " | ".join(
                f"{a:.1f} | {b:.1f}" for a, b in zip(self.top1[name], self.top5[name], strict=True)
            )
            lines.append(f"| {name} | {cells} |")
        counts = ", ".join(f"{b}: {n}" for b, n in zip(bands, self.objects, strict=True))
        return "\n".join(lines) + f"\n\nObjects per band: {counts}."

    def speed_markdown(self) -> str:
        lines = ["| strategy | seconds per image | images timed |", "|---|---:|---:|"]
        for name, sec in self.seconds.items():
            lines.append(f"| {name} | {sec:.3f} | {self.timing_images.get(name, 0)} |")
        lines += ["", "| ratio of seconds per image | measured |", "|---|---:|"]
        lines += [f"| {k} | {v:.1f}x |" for k, v in self.ratios().items()]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        return "\n\n".join(
            [self.rmse_markdown(), self.classification_markdown(), self.speed_markdown()]
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "erp_size": [self.erp_hw[1], self.erp_hw[0]],
            "bands_deg": [[math.degrees(lo), math.degrees(hi)] for lo, hi in self.bands],
            "patch": {k: {"size": p, "fov_deg": fov} for k, (p, fov) in self.patch.items()},
            "rmse_over_exact_std": self.rmse,
            "rmse_images": self.rmse_images,
            "top1_agreement_pct": self.top1,
            "top5_overlap_pct": self.top5,
            "objects_per_band": self.objects,
            "seconds_per_image": self.seconds,
            "timing_images": self.timing_images,
            "ratios": self.ratios(),
        }


def evaluate_backbone(
    model: Backbone,
    erps: torch.Tensor,
    boxes: Sequence[torch.Tensor],
    stages: Sequence[str] | None = None,
    *,
    runners: Mapping[str, Mapping[str, Runner]] | None = None,
    rmse_images: int | None = None,
    timing_images: int = 1,
    max_patch: int | None = None,
    bands: Sequence[tuple[float, float]] = LAT_BANDS,
    cache_dir=None,
    name: str | None = None,
    progress: bool = False,
) -> BackboneTransferResult:
    """Compare transfer strategies of a backbone with its exact outputs (module docstring).

    Args:
        model: the backbone (with its classifier).
        erps: (N, 3, H, W) RGB in [0, 1], W == 2H, H a multiple of 32.
        boxes: N tensors (K_i, 4) BFoV or (K_i, 5) RBFoV: the objects of each image (radians).
        stages: the stages for the RMSE table (default all); the classification uses the last
            stage of ``model.stages``.
        runners: ``{stage: {strategy: f}}`` (:func:`backbone_runners`); default every
            strategy of :data:`BACKBONE_STRATEGIES` at every stage needed. Add a student here.
        rmse_images: the first this many images go into the RMSE table (default all; 0: no
            table): exact costs most at the middle stages.
        timing_images: images exact's last stage is timed on, computed afresh (never from the
            cache); 0: exact is not timed. The other strategies are timed on every image, after
            one warm-up call.
        max_patch: cap on the exact patch side (:func:`stage_patch_size`); None: the whole
            receptive field.
        bands: ``(low, high)`` bounds on |lat| in radians.
        cache_dir: cache of :func:`exact_features`.
        name: the model's name in the result (default its class name).
        progress: progress bars.

    Returns:
        A :class:`BackboneTransferResult`.

    Raises:
        ShapeError: ``erps`` not (N, 3, H, 2H), or ``boxes`` not one (K, 4) or (K, 5) tensor
            per image.
        ValueError: an unknown stage.
        ValueRangeError: bad ``rmse_images`` or ``timing_images``.
    """
    check_erp(erps)
    n, _, h, w = erps.shape
    if len(boxes) != n or any(b.ndim != 2 or b.shape[-1] not in (4, 5) for b in boxes):
        raise ShapeError(f"boxes must be {n} tensors (K, 4) or (K, 5) of BFoV, one per image")
    final = list(model.stages)[-1]
    stages = list(model.stages) if stages is None else list(stages)
    for stage in stages:
        check_choice(stage, "stages", tuple(model.stages))
    n_rmse = n if rmse_images is None else check_int(rmse_images, "rmse_images", lo=0, hi=n)
    n_time = check_int(timing_images, "timing_images", lo=0, hi=n)
    if runners is None:
        runners = {s: backbone_runners(model, s) for s in dict.fromkeys([*stages, final])}
    names = list(runners[final])
    spacing = min(2 * math.pi / w, math.pi / 4)
    patch = {}
    for stage in dict.fromkeys([*stages, final]):
        p = stage_patch_size(model, stage, max_patch)
        patch[stage] = (p, math.degrees(2 * math.atan(p / 2 * math.tan(spacing))))
    bands = [tuple(float(v) for v in b) for b in bands]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            result = _measure(
                model, erps, boxes, stages, final, runners, names, n_rmse, n_time, patch,
                bands, cache_dir, progress,
            )  # fmt: skip
    finally:
        model.train(was_training)
    return BackboneTransferResult(
        model=name or type(model).__name__, erp_hw=(h, w), bands=bands, strategies=names,
        patch={s: patch[s] for s in stages} if n_rmse else {}, rmse_images=n_rmse, **result,
    )  # fmt: skip


def _exact(model, erps, stage, patch, cache_dir, progress):
    return exact_features(
        model, erps, stage, patch_size=patch[stage][0], cache_dir=cache_dir, progress=progress
    )


def _measure(
    model, erps, boxes, stages, final, runners, names, n_rmse, n_time, patch, bands, cache_dir,
    progress,
):  # fmt: skip
    n, erp_hw = erps.shape[0], tuple(erps.shape[-2:])
    seconds, timed = {}, {}
    # Exact's last stage, timed on the first n_time images (computed afresh, never from the
    # cache); the others of the RMSE table through the cache.
    times = []
    for i in range(n_time):
        start = time.perf_counter()
        _exact(model, erps[i : i + 1], final, patch, None, progress)
        times.append(time.perf_counter() - start)
    if times:
        seconds["exact"], timed["exact"] = statistics.median(times), n_time
    # Per-stage RMSE against exact, on the first n_rmse images.
    rmse: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    for stage in stages if n_rmse else []:
        target = _exact(model, erps[:n_rmse], stage, patch, cache_dir, progress)
        for name in names:
            out = torch.cat([runners[stage][name](erps[i : i + 1]) for i in range(n_rmse)])
            rmse[name][stage] = list(band_rmse(out, target, bands, relative=True).values())
    # Every strategy's last stage on every image: its seconds, and its classification of each
    # object's region against the network on the object's own view.
    grid = stage_grid(model, final)
    hits1 = {name: [[] for _ in bands] for name in names}
    hits5 = {name: [[] for _ in bands] for name in names}
    objects = [0] * len(bands)
    references = [
        _object_view_logits(model, erps[i : i + 1], boxes[i]).topk(5, dim=1).indices
        if len(boxes[i])
        else None
        for i in range(n)
    ]
    for i in range(n):
        for lat in boxes[i][:, 1].tolist():
            k = _band_of(lat, bands)
            objects[k] += k >= 0
    for name in names:
        runners[final][name](erps[:1])  # warm-up: spherical copies, view plans, kernels
    run_times = {name: [] for name in names}
    for i in range(n):
        # Every strategy on this image in turn, so that the machine's slow moments fall on all
        # of them alike.
        for name in names:
            start = time.perf_counter()
            features = runners[final][name](erps[i : i + 1])
            run_times[name].append(time.perf_counter() - start)
            if references[i] is None:
                continue
            top = _region_logits(model, features, boxes[i], erp_hw, grid).topk(5, dim=1).indices
            for j, lat in enumerate(boxes[i][:, 1].tolist()):
                k = _band_of(lat, bands)
                if k < 0:
                    continue
                reference = references[i][j]
                hits1[name][k].append(float(top[j, 0] == reference[0]))
                hits5[name][k].append(len(set(top[j].tolist()) & set(reference.tolist())) / 5)
    for name in names:
        seconds[name], timed[name] = statistics.median(run_times[name]), n

    def pct(values):
        return 100 * statistics.fmean(values) if values else math.nan

    return {
        "rmse": rmse,
        "top1": {name: [pct(v) for v in hits1[name]] for name in names},
        "top5": {name: [pct(v) for v in hits5[name]] for name in names},
        "objects": objects,
        "seconds": seconds,
        "timing_images": timed,
    }
