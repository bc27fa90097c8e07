r"""Run any planar dense model on ERP panoramas with a transfer strategy of the user's choice.

A *planar dense model* maps images (B, C, h, w) to maps (B, K, h / s, w / s): a segmenter, a
depth or saliency network, a feature extractor, a detector's backbone. On a panorama it can run
in several ways (:data:`STRATEGIES`), which differ in what the model sees:

- ``direct``: the ERP as it is: fast, but objects away from the equator are stretched sideways
  and the seam is a border;
- ``cubemap``: the six 90-degree faces of the cube map, results merged back on the sphere;
- ``multiview``: the views of a :class:`~pano360.geometry.ViewRig` (default: a cover of the
  whole sphere, every direction within 30 degrees of a view axis), merged back with cos^2
  feathering;
- ``exact``: every output location gets the model run on its own tangent-plane patch and takes
  the patch's centre output (SphConv's "Exact"): the reference, slow by nature;
- ``spherical``: a copy of the model whose convolutions, padding and pooling work on the sphere
  (:func:`pano360.nn.sphericalize`; for an ``nn.Sequential`` conv stack,
  :func:`~pano360.transfer.build_spherical`): one pass over the ERP (on the CPU without
  gradients, a sphericalized copy runs channels-last; the output keeps the input's layout).

Convention:
    :mod:`pano360.geometry.conventions`. The output has (H / s, W / s) pixels, s the model's
    stride, placed by ``output_grid`` (:func:`pano360.geometry.strided_lonlat_grid`), which
    should be where the model itself puts them: ``"sphere"`` (the default), output (i, j) looks
    at the pixel centre (i, j) of the (H / s, W / s) ERP grid, the centre of the s x s block
    of input pixels it covers (2 x 2 pools, conv stacks); ``"planar"``, at input pixel
    (s i, s j) (padded strided convs: ResNet, MobileNetV2; the spherical copy's strided convs
    then place their outputs there too). For ``exact`` the patch is P x P tangent-plane pixels
    centred on that direction, one input pixel (2 pi / W at the equator) apart, and the model's
    output pixel at the patch centre is taken: the centre of output pixel m of a P-pixel input
    is at input coordinate (m + 0.5) s - 0.5 on the sphere grid and m s on the planar grid,
    which is the patch centre (P - 1) / 2 when P / s is odd (sphere) or P = 2 s m + 1
    (planar).
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import torch
from torch import nn

from .._core import (
    ShapeError,
    ValueRangeError,
    check_choice,
    check_erp,
    check_int,
    memory_format_of,
)
from ..geometry import MAP_GRIDS, ViewRig, merge_views, render_views
from ..nn import sphericalize
from ._builders import build_spherical
from ._exact import exact_dense, exact_outputs, plan_stack

__all__ = ["STRATEGIES", "TransferredModel", "apply", "default_rig"]

#: The strategies of :func:`apply`, cheapest first except the reference.
STRATEGIES: tuple[str, ...] = ("direct", "cubemap", "multiview", "exact", "spherical")


def default_rig() -> ViewRig:
    """The ``multiview`` strategy's default rig: :meth:`ViewRig.sphere_cover` with a largest
    gap of 30 degrees (48 views of 75 degrees)."""
    return ViewRig.sphere_cover(math.radians(30))


def _stack_plan(model: nn.Module):
    """The conv-stack plan of ``model`` when it is a supported ``nn.Sequential``, else None."""
    if not isinstance(model, nn.Sequential):
        return None
    try:
        return plan_stack(model)
    except (TypeError, ValueRangeError):
        return None


class _EvalMode:
    """Runs a model in eval mode, restoring every submodule's mode afterwards."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> nn.Module:
        self.modes = {m: m.training for m in self.model.modules()}
        self.model.eval()
        return self.model

    def __exit__(self, *exc) -> None:
        for m, mode in self.modes.items():
            m.training = mode


def run_channels_last(model: nn.Module, erp: torch.Tensor) -> torch.Tensor:
    """``model(erp)``, channels-last for CPU inference (no grad), the output in ``erp``'s
    layout: SphereConv2d's compiled inference kernels for depthwise and few-channel layers read
    and write that layout, and oneDNN's convolutions and BatchNorm keep it, so no layer of a
    sphericalized network converts its input."""
    if erp.device.type != "cpu" or torch.is_grad_enabled() or erp.dim() != 4:
        return model(erp)
    out = model(erp.contiguous(memory_format=torch.channels_last))
    return out.contiguous(memory_format=memory_format_of(erp)) if out.dim() == 4 else out


class TransferredModel(nn.Module):
    """A planar dense model run on ERP batches with a transfer strategy (module form of
    :func:`apply`, which builds what it needs once: the spherical copy per input size, the
    view rig's sampling and merging plans).

    Args:
        model: maps (B, C, h, w) to (B, K, h / s, w / s). It is not changed; ``spherical``
            copies it (rebuild the TransferredModel after changing the model's weights).
        strategy: one of :data:`STRATEGIES`.
        rig: the views of ``multiview`` (default :func:`default_rig`); ``cubemap`` uses
            :meth:`ViewRig.cube`. Views are sized to the ERP's resolution unless the rig fixes
            ``hw``.
        blend: how overlapping views merge (:func:`pano360.geometry.merge_views`).
        patch_size: ``exact``: the side P of the tangent patch, in input pixels, with P / s
            odd (default: the receptive field of an ``nn.Sequential`` conv stack; required for
            any other model).
        stride: the model's stride s (default: read off the model: from an ``nn.Sequential``
            conv stack's layers, otherwise from one forward pass on a blank probe image).
        tap_spacing: ``exact``: radians between neighbouring patch pixels at the patch centre
            (default one input pixel at the equator, 2 pi / W).
        chunk: ``exact``: patches per forward pass (default: about 2**23 input elements).
        progress: ``exact``: show a progress bar.
        output_grid: where output pixels sit, ``"sphere"`` or ``"planar"`` (module
            docstring). With ``"planar"`` an ``nn.Sequential`` conv stack is run as any other
            model (:func:`pano360.nn.sphericalize`; ``exact`` needs ``patch_size``), not
            through :func:`~pano360.transfer.build_spherical`, which keeps the sphere grid.

    Shapes:
        forward: erp (B, C, H, W), W == 2H -> (B, K, H / s, W / s).

    Raises:
        ValueError: unknown ``strategy``, ``blend`` or ``output_grid``.
        ValueRangeError: bad ``patch_size``, ``stride`` or ``chunk`` (checked on construction
            where possible, else on the first call).

    Example:
        >>> model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        >>> TransferredModel(model, "spherical")(torch.rand(1, 3, 16, 32)).shape
        torch.Size([1, 4, 16, 32])
    """

    def __init__(
        self,
        model: nn.Module,
        strategy: str = "spherical",
        *,
        rig: ViewRig | None = None,
        blend: str = "cos2",
        patch_size: int | None = None,
        stride: int | None = None,
        tap_spacing: float | None = None,
        chunk: int | None = None,
        progress: bool = False,
        output_grid: str = "sphere",
    ) -> None:
        super().__init__()
        check_choice(strategy, "strategy", STRATEGIES)
        check_choice(blend, "blend", ("cos2", "nearest"))
        self.output_grid = check_choice(output_grid, "output_grid", MAP_GRIDS)
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if rig is not None and not isinstance(rig, ViewRig):
            raise TypeError(f"rig must be a pano360.geometry.ViewRig, got {type(rig).__name__}")
        self.model = model
        self.strategy = strategy
        self.rig = ViewRig.cube() if strategy == "cubemap" else (rig or default_rig())
        self.blend = blend
        self.patch_size = check_int(patch_size, "patch_size", lo=1, optional=True)
        self.stride = check_int(stride, "stride", lo=1, optional=True)
        self.tap_spacing = tap_spacing
        self.chunk = check_int(chunk, "chunk", lo=1, optional=True)
        self.progress = progress
        # A conv stack's own path (build_spherical, exact_outputs) is on the sphere grid.
        self._plan = _stack_plan(model) if output_grid == "sphere" else None
        self._spherical: dict[tuple[int, int], nn.Module] = {}

    def extra_repr(self) -> str:
        grid = "" if self.output_grid == "sphere" else f", output_grid={self.output_grid!r}"
        return f"strategy={self.strategy!r}{grid}"

    def forward(self, erp: torch.Tensor) -> torch.Tensor:
        check_erp(erp)
        if self.strategy == "direct":
            return self.model(erp)
        if self.strategy in ("cubemap", "multiview"):
            return self._views(erp)
        if self.strategy == "spherical":
            return self._run_spherical(erp)
        return self._exact(erp)

    def _run_spherical(self, erp: torch.Tensor) -> torch.Tensor:
        model = self._spherical_model(tuple(erp.shape[-2:]))
        if self._plan is not None:
            return model(erp)
        return run_channels_last(model, erp)

    def _views(self, erp: torch.Tensor) -> torch.Tensor:
        h = erp.shape[-2]
        s = self._model_stride(erp)
        rig = self.rig
        if rig.hw is None:  # views at the ERP's resolution, a whole number of output pixels
            side = -(-rig.view_hw(erp.shape[-1])[0] // s) * s
            rig = dataclasses.replace(rig, hw=(side, side))
        outputs = self.model(render_views(erp, rig))
        return merge_views(
            outputs, rig, (h // s, 2 * (h // s)), blend=self.blend, stride=s,
            grid=self.output_grid,
        )  # fmt: skip

    def _spherical_model(self, hw: tuple[int, int]) -> nn.Module:
        if hw not in self._spherical:
            if self._plan is not None:
                self._spherical[hw] = build_spherical(self.model, hw)
            else:
                model, report = sphericalize(self.model, output_grid=self.output_grid)
                if report.unsupported:
                    names = ", ".join(f"{n} ({t})" for n, t, _ in report.unsupported)
                    warnings.warn(
                        f"strategy 'spherical': these layers stay planar (no spherical "
                        f"version): {names}; see pano360.nn.sphericalize",
                        RuntimeWarning,
                        stacklevel=4,
                    )
                self._spherical[hw] = model
        return self._spherical[hw]

    def _model_stride(self, erp: torch.Tensor) -> int:
        if self.stride is not None:
            return self.stride
        if self._plan is not None:
            return self._plan[-1].total_stride
        probe = erp.new_zeros(1, erp.shape[1], 64, 64)
        with _EvalMode(self.model) as model, torch.no_grad():
            out = model(probe)
        if out.ndim != 4 or out.shape[-2] < 1 or 64 % out.shape[-2]:
            raise ValueRangeError(
                f"cannot read the model's stride from its output {tuple(out.shape)} for a 64 x 64 "
                "input; pass stride="
            )
        return 64 // out.shape[-2]

    def _exact(self, erp: torch.Tensor) -> torch.Tensor:
        h, w = erp.shape[-2:]
        spacing = (
            min(2 * math.pi / w, math.pi / 4) if self.tap_spacing is None else self.tap_spacing
        )
        if self._plan is not None and self.patch_size is None:
            return exact_outputs(
                self.model, erp, -1, tap_spacing=spacing, chunk=self.chunk, progress=self.progress
            )[0]
        if self.patch_size is None:
            raise ValueRangeError(
                "strategy 'exact' needs patch_size= (the tangent patch side in input pixels) "
                "for a model that is not an nn.Sequential conv stack"
            )
        s = self._model_stride(erp)
        p = self.patch_size
        centre = None  # exact_dense's default: the sphere grid's centre output
        if self.output_grid == "planar":
            if p % 2 == 0 or (p - 1) % (2 * s):
                raise ValueRangeError(
                    f"patch_size must be 2 s m + 1 for the planar grid (s = {s}, the model's "
                    f"stride: output m then sits at the patch centre), got {p}"
                )
            centre = (p - 1) // (2 * s)
        elif p % s or (p // s) % 2 == 0:
            raise ValueRangeError(
                f"patch_size must be an odd multiple of the model's stride {s} (so that an "
                f"output pixel sits at the patch centre), got {p}"
            )
        if h % s:
            raise ShapeError(f"erp height must be a multiple of the model's stride {s}, got {h}")
        with _EvalMode(self.model) as model, torch.no_grad():
            return exact_dense(
                model, erp, p, s, spacing, self.chunk, progress=self.progress, desc="exact",
                grid=self.output_grid, centre=centre,
            )  # fmt: skip


def apply(
    model: nn.Module,
    erp: torch.Tensor,
    strategy: str = "spherical",
    *,
    rig: ViewRig | None = None,
    blend: str = "cos2",
    patch_size: int | None = None,
    stride: int | None = None,
    tap_spacing: float | None = None,
    chunk: int | None = None,
    progress: bool = False,
    output_grid: str = "sphere",
) -> torch.Tensor:
    """Run a planar dense model on ERP images with a transfer strategy.

    Args:
        model: maps (B, C, h, w) to (B, K, h / s, w / s); any ``nn.Module`` (not changed).
        erp: (B, C, H, W), W == 2H, in the model's input range.
        strategy: one of :data:`STRATEGIES` (module docstring).
        rig, blend, patch_size, stride, tap_spacing, chunk, progress, output_grid: see
            :class:`TransferredModel`.

    Returns:
        (B, K, H / s, W / s) on ``output_grid`` at the model's stride (``direct`` returns what
        the model gives on the ERP). ``exact`` runs without autograd; the others are differentiable
        like the model.

    Raises:
        ValueError: unknown ``strategy``, ``blend`` or ``output_grid``.
        ShapeError: ``erp`` is not (B, C, H, W) with W == 2H.
        ValueRangeError: ``exact`` without ``patch_size`` for a model that is not a conv stack,
            or a ``patch_size`` that puts no output pixel at the patch centre (an odd multiple
            of the stride on the sphere grid, 2 s m + 1 on the planar grid).

    Build a :class:`TransferredModel` to run the same model on many panoramas: the spherical
    copy and the view plans are then built once.

    Example:
        >>> model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1))
        >>> erp = torch.rand(1, 3, 32, 64)
        >>> [tuple(apply(model, erp, s).shape) for s in ("direct", "cubemap", "spherical")]
        [(1, 2, 32, 64), (1, 2, 32, 64), (1, 2, 32, 64)]
    """
    runner = TransferredModel(
        model, strategy, rig=rig, blend=blend, patch_size=patch_size, stride=stride,
        tap_spacing=tap_spacing, chunk=chunk, progress=progress, output_grid=output_grid,
    )  # fmt: skip
    return runner(erp)
