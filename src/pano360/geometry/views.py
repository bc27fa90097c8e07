"""View rigs: sets of pinhole cameras on the sphere, rendering them, and merging their outputs.

A :class:`ViewRig` is where a planar model looks when it runs on a panorama view by view: the
six faces of a cube map, a ring of overlapping views around the horizon, 14 views aimed at the
cube's faces and corners, or a cover of the whole sphere with a stated largest gap.
:func:`render_views` renders a rig's views of ERP images (a batch a planar model can take) and
:func:`merge_views` puts per-view results back on the ERP grid, blending overlaps on the sphere.

Convention:
    :mod:`pano360.geometry.conventions`: views aimed by (yaw, pitch, roll) in radians, yaw > 0
    right, pitch > 0 up, roll > 0 clockwise; fov is the horizontal field of view, edge to edge;
    square pixels, so a view of h x w pixels sees tan(fov_y / 2) = tan(fov / 2) h / w.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .._core import (
    ShapeError,
    ValueRangeError,
    check_angle,
    check_choice,
    check_erp,
    check_hw,
    check_int,
    check_number,
)
from ._cache import grid_cache
from .coords import MAP_GRIDS, lonlat_to_xyz, strided_lonlat_grid
from .perspective import view_grid, view_pixel_coords
from .rotation import rotation_matrix
from .sampling import MODES, grid_dtype, plan_folded, sample_folded, shared_erp_directions

__all__ = ["BLENDS", "ViewRig", "merge_views", "render_views", "view_coverage"]

#: How :func:`merge_views` weighs views that overlap.
BLENDS: tuple[str, ...] = ("cos2", "nearest")


@dataclass(frozen=True)
class ViewRig:
    """Pinhole cameras on the sphere: one (yaw, pitch, roll, fov) per view, one size for all.

    Attributes:
        yaw, pitch, roll: radians, one per view (yaw > 0 right, pitch > 0 up, roll > 0
            clockwise).
        fov: horizontal field of view of each view, radians in (0, pi), edge to edge.
        hw: (h, w) pixels of every view (views are rendered as one batch), or None: square
            views with as many pixels per radian as the ERP has along its equator, so a view
            neither invents nor loses detail (:meth:`view_hw`).

    Raises:
        ValueRangeError: the per-view tuples differ in length, are empty, or hold an angle that
            is not finite or a fov outside (0, pi).
        ShapeError: ``hw`` is not a pair of positive integers.

    Warns:
        AngleUnitWarning: an angle larger than 2 pi in magnitude (degrees by mistake).

    Example:
        >>> rig = ViewRig.cube()
        >>> len(rig), rig.view_hw(2048)
        (6, (512, 512))
    """

    yaw: tuple[float, ...]
    pitch: tuple[float, ...]
    roll: tuple[float, ...]
    fov: tuple[float, ...]
    hw: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        n = len(self.yaw)
        fields = {"yaw": self.yaw, "pitch": self.pitch, "roll": self.roll, "fov": self.fov}
        if n == 0 or any(len(v) != n for v in fields.values()):
            sizes = {k: len(v) for k, v in fields.items()}
            raise ValueRangeError(
                f"a ViewRig needs one yaw, pitch, roll and fov per view, got {sizes}"
            )
        for name, values in fields.items():
            for v in values:
                check_angle(check_number(v, name), name)
        for v in self.fov:
            check_number(v, "fov", lo=0, hi=math.pi, lo_open=True, hi_open=True)
        if self.hw is not None:
            object.__setattr__(self, "hw", check_hw(self.hw, "hw"))
        for name, values in fields.items():
            object.__setattr__(self, name, tuple(float(v) for v in values))

    def __len__(self) -> int:
        return len(self.yaw)

    @classmethod
    def from_views(
        cls,
        yaw: Sequence[float],
        pitch: Sequence[float],
        fov: float | Sequence[float],
        roll: float | Sequence[float] = 0.0,
        hw: tuple[int, int] | None = None,
    ) -> ViewRig:
        """A rig from per-view angles; ``fov`` and ``roll`` may be one value for every view."""
        n = len(yaw)
        fov = (fov,) * n if isinstance(fov, (int, float)) else tuple(fov)
        roll = (roll,) * n if isinstance(roll, (int, float)) else tuple(roll)
        return cls(tuple(yaw), tuple(pitch), roll, fov, hw)

    @classmethod
    def cube(cls, hw: tuple[int, int] | None = None) -> ViewRig:
        """The six cube faces F R B L U D as 90-degree views.

        Convention:
            The faces of :mod:`pano360.geometry.conventions`, each an upright view with roll 0:
            the side faces at yaw 0, 90, 180, -90 degrees; U looking up and D looking down,
            both with yaw 0, so the front face is below U and above D, as in py360convert.
        """
        half = math.pi / 2
        return cls.from_views(
            (0.0, half, math.pi, -half, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0, half, -half), half, hw=hw
        )

    @classmethod
    def ring(
        cls,
        fov: float = math.radians(45),
        overlap: float = 0.5,
        pitches: Sequence[float] = (0.0,),
        hw: tuple[int, int] | None = None,
    ) -> ViewRig:
        """Rings of square views around the vertical axis, one ring per pitch.

        Args:
            fov: field of view of each view, radians in (0, pi).
            overlap: fraction of a view shared with its neighbour in the ring, in [0, 1).
            pitches: one ring per pitch (radians, in [-pi/2, pi/2]); each ring has
                ceil(2 pi / (fov (1 - overlap))) views starting at yaw 0.
            hw: view size (default: matched to the ERP, :meth:`view_hw`).

        Raises:
            ValueRangeError: ``fov``, ``overlap`` or a pitch out of range.

        Example:
            >>> len(ViewRig.ring())  # 16 views of 45 degrees, half overlapping, on the horizon
            16
        """
        check_number(fov, "fov", lo=0, hi=math.pi, lo_open=True, hi_open=True)
        check_number(overlap, "overlap", lo=0, hi=1, hi_open=True)
        if not pitches:
            raise ValueRangeError("pitches must hold at least one pitch, got none")
        for p in pitches:
            check_number(p, "pitches", lo=-math.pi / 2, hi=math.pi / 2)
        n = math.ceil(2 * math.pi / (fov * (1 - overlap)) - 1e-9)
        yaw = [math.remainder(2 * math.pi * k / n, 2 * math.pi) for k in range(n)] * len(pitches)
        pitch = [float(p) for p in pitches for _ in range(n)]
        return cls.from_views(yaw, pitch, fov, hw=hw)

    @classmethod
    def sphere14(cls, fov: float = math.radians(100), hw: tuple[int, int] | None = None) -> ViewRig:
        """14 views aimed at the six cube-face centres and the eight cube corners.

        Every direction is within 36.0 degrees of a view's axis, so with ``fov`` above 72
        degrees the views cover the sphere.
        """
        corner = math.degrees(math.atan(1 / math.sqrt(2)))  # 35.26: a cube corner's latitude
        yaw = [0.0, 90.0, 180.0, -90.0, 0.0, 0.0] + [45.0, 135.0, -135.0, -45.0] * 2
        pitch = [0.0, 0.0, 0.0, 0.0, 90.0, -90.0] + [corner] * 4 + [-corner] * 4
        return cls.from_views([math.radians(v) for v in yaw], [math.radians(v) for v in pitch],
                              fov, hw=hw)  # fmt: skip

    @classmethod
    def sphere_cover(
        cls, max_gap: float = math.radians(30), fov: float | None = None, hw=None
    ) -> ViewRig:
        """Views covering the whole sphere: every direction within ``max_gap`` of a view axis.

        Rings of views at latitudes at most ``max_gap`` apart, both poles included; each ring
        holds ceil(2 pi cos(lat) / max_gap) views. A direction is at most max_gap / 2 in
        latitude from its nearest ring and, along that ring, at most max_gap / 2 of arc from a
        view axis: max_gap in all.

        Args:
            max_gap: the largest angle from any direction to its nearest view axis, radians in
                (0, pi / 2).
            fov: field of view of each view, in [2 max_gap, pi) so that the views see the
                whole sphere (default 2.5 max_gap, or max_gap + pi / 2 when that is smaller:
                every direction lies inside a view, away from its edges).
            hw: view size (default: matched to the ERP).

        Raises:
            ValueRangeError: ``max_gap`` out of range, ``fov`` below 2 max_gap or not below pi.

        Example:
            >>> len(ViewRig.sphere_cover(math.radians(30)))
            48
        """
        check_number(max_gap, "max_gap", lo=0, hi=math.pi / 2, lo_open=True, hi_open=True)
        fov = min(2.5 * max_gap, max_gap + math.pi / 2) if fov is None else fov
        check_number(fov, "fov", lo=2 * max_gap, hi=math.pi, hi_open=True)
        rings = math.ceil(math.pi / max_gap - 1e-9)
        yaw, pitch = [], []
        for i in range(rings + 1):
            lat = -math.pi / 2 + i * math.pi / rings
            n = max(1, math.ceil(2 * math.pi * math.cos(lat) / max_gap - 1e-9))  # 1 at a pole
            yaw += [math.remainder(2 * math.pi * k / n, 2 * math.pi) for k in range(n)]
            pitch += [lat] * n
        return cls.from_views(yaw, pitch, fov, hw=hw)

    def view_hw(self, erp_width: int) -> tuple[int, int]:
        """Pixel size of every view: ``hw``, or square views of round(fov W / 2 pi) pixels (at
        least 12) with the ERP's equatorial pixel density (the widest view's fov)."""
        if self.hw is not None:
            return self.hw
        side = max(12, round(max(self.fov) / (2 * math.pi) * erp_width))
        return side, side

    def rotations(self, dtype=torch.float64, device=None) -> torch.Tensor:
        """(V, 3, 3) camera-to-world rotations of the views."""
        opts = {"dtype": dtype, "device": device}
        return rotation_matrix(
            torch.tensor(self.yaw, **opts), torch.tensor(self.pitch, **opts),
            torch.tensor(self.roll, **opts),
        )  # fmt: skip


def render_views(erp: torch.Tensor, rig: ViewRig, mode: str = "bilinear") -> torch.Tensor:
    """Render every view of a rig from every ERP image.

    Args:
        erp: (B, C, H, W), W == 2H.
        rig: the cameras.
        mode: "nearest", "bilinear" or "bicubic".

    Returns:
        (B V, C, h, w): the V views of image 0, then those of image 1, ... (h, w) =
        ``rig.view_hw(W)``. Differentiable with respect to ``erp``.

    Raises:
        ShapeError: ``erp`` is not (B, C, H, W) with W == 2H.

    Example:
        >>> render_views(torch.rand(2, 3, 64, 128), ViewRig.cube()).shape
        torch.Size([12, 3, 32, 32])
    """
    check_erp(erp)
    check_choice(mode, "mode", MODES)
    hw = rig.view_hw(erp.shape[-1])
    plan = _render_plan(rig, hw, tuple(erp.shape[-2:]), mode, erp.dtype, erp.device)
    # One image at a time against the V cameras: the image is never copied per view.
    return torch.cat([sample_folded(erp[i : i + 1], plan, mode) for i in range(len(erp))])


@grid_cache("render_views sampling plans")
@torch.inference_mode(False)  # cached: must stay usable outside inference mode
def _render_plan(rig: ViewRig, view_hw, erp_hw, mode: str, dtype, device):
    """The sampling plan of every view pixel: :func:`erp_to_perspective`'s (its grid, in its
    precision, and the seam and pole taps read folded; no padded copy of the image)."""
    opts = {"dtype": grid_dtype(dtype, erp_hw[1]), "device": device}
    tan_half = torch.tan(torch.tensor(rig.fov, dtype=torch.float64, device=device) / 2)
    grid = view_grid(tan_half.to(**opts), rig.rotations(**opts), view_hw)
    return plan_folded(grid.to(dtype), erp_hw, mode)


@grid_cache("merge_views sampling grids and weights")
@torch.inference_mode(False)  # cached: must stay usable outside inference mode
def _merge_plan(
    rig: ViewRig, view_hw, erp_hw, blend: str, dtype, device, stride: int = 1, grid="sphere"
):
    """Where each ERP pixel of (H, W) lands in each view of ``view_hw`` pixels, and its weight
    (``stride`` and ``grid``: see :func:`merge_views`).

    Returns ``(grid, weight)``: (V, H, W, 2) grid_sample coordinates into the views and
    (V, 1, H, W) blend weights summing to 1 over the views that see a pixel (0 elsewhere).
    """
    if grid == "planar":
        full = (erp_hw[0] * stride, erp_hw[1] * stride)
        lonlat = strided_lonlat_grid(full, stride, "planar", dtype=torch.float64, device=device)
        dirs = lonlat_to_xyz(lonlat)
    else:
        dirs = shared_erp_directions(erp_hw, torch.float64, device)
    R = rig.rotations(device=device)
    cam = torch.einsum("hwi,vij->vhwj", dirs, R)  # world to camera: d^T R
    tan_half = torch.tan(torch.tensor(rig.fov, dtype=torch.float64, device=device) / 2)
    h, w = view_hw
    points, inside = view_pixel_coords(cam, view_hw, tan_half)
    if grid == "planar":
        # Map pixel m sits on view pixel s m, half a view pixel short of a stride-s map's
        # pixel centre.
        points = points + (0.5 - 0.5 / stride)
    grid = (2 * points + 1) / points.new_tensor([w, h]) - 1
    axes = R[..., 2]  # each camera's forward axis
    angle = torch.acos(torch.einsum("hwi,vi->vhw", dirs, axes).clamp(-1, 1))
    # nearest: the view whose axis is closest, among those that see the pixel.
    nearest = torch.where(inside, angle, torch.full_like(angle, math.inf)).argmin(0)
    weight = F.one_hot(nearest, len(rig)).permute(2, 0, 1).to(angle) * inside
    if blend == "cos2":
        # Falls from 1 on a view's axis to 0 at half its fov from it, so view borders fade
        # out; pixels beyond every view's half fov (a square view's corners) keep "nearest".
        half = tan_half.atan()[:, None, None]
        cos2 = torch.cos(0.5 * math.pi * (angle / half).clamp(max=1)).square() * inside
        weight = torch.where(cos2.sum(0, keepdim=True) > 0, cos2, weight)
    total = weight.sum(0, keepdim=True)
    weight = torch.where(total > 0, weight / total.clamp_min(1e-300), 0.0)
    return grid.to(dtype), weight[:, None].to(dtype)


def view_coverage(rig: ViewRig, erp_hw: Sequence[int]) -> torch.Tensor:
    """(H, W) bool: the ERP pixels :func:`merge_views` fills, those whose centre some view
    sees (its image rectangle, edges included)."""
    erp_hw = check_hw(erp_hw, "erp_hw")
    _, weight = _merge_plan(rig, rig.view_hw(erp_hw[1]), erp_hw, "nearest", torch.float64, None)
    return weight.sum(0)[0] > 0


def merge_views(
    outputs: torch.Tensor,
    rig: ViewRig,
    erp_hw: Sequence[int],
    blend: str = "cos2",
    mode: str = "bilinear",
    *,
    stride: int = 1,
    grid: str = "sphere",
) -> torch.Tensor:
    """Put per-view maps back on the ERP grid, blending overlapping views on the sphere.

    Args:
        outputs: (B V, K, h', w') maps, one per view in :func:`render_views`' order. They
            may be smaller than the views (a model of stride s gives h / s, w / s): each map
            covers its view's whole field of view, pixel centres spread as the view's.
        rig: the rig the views came from.
        erp_hw: (H, W) of the ERP grid to fill (e.g. the input's size divided by the stride).
        blend: ``"cos2"``: weights fall as cos^2 from 1 on a view's axis to 0 at half its fov
            from it (no visible borders), normalised over the views; a pixel that no view sees
            within half its fov (a square view's corners) is taken from the nearest view.
            ``"nearest"``: each pixel takes the view whose axis is closest among those that
            see it.
        mode: how maps are read, "bilinear" or "nearest".
        stride, grid: where the maps' and the result's pixels sit
            (:func:`~pano360.geometry.strided_lonlat_grid`). ``"sphere"`` (the default): a map
            is read as an image of its own size, and ERP pixel (i, j) is the pixel centre of the
            (H, W) grid (``stride`` is not used). ``"planar"``: the maps come from a model of
            stride s whose output (i, j) sits on input pixel (s i, s j) of its view (padded
            strided convs: ResNet, MobileNetV2), and ERP pixel (i, j) is input pixel
            (s i, s j) of the (s H, s W) panorama the views were rendered from.

    Returns:
        (B, K, H, W); 0 where no view sees a pixel (:func:`view_coverage`).

    Raises:
        ShapeError: the batch is not a multiple of len(rig), or ``erp_hw`` is not a pair of
            positive integers.
        ValueError: unknown ``blend``, ``mode`` or ``grid``.
        ValueRangeError: ``stride`` not a positive integer.

    Convention:
        ERP pixel (i, j) reads each view at the pixel its direction projects to (the inverse of
        :func:`render_views`); a map of h' x w' pixels is read as a view of that size with the
        view's fov. Seam and poles need nothing special: every ERP pixel has its direction.

    Example:
        >>> rig = ViewRig.cube()
        >>> erp = torch.rand(1, 2, 32, 64)
        >>> back = merge_views(render_views(erp, rig), rig, (32, 64))
        >>> back.shape
        torch.Size([1, 2, 32, 64])
    """
    if not isinstance(outputs, torch.Tensor) or outputs.ndim != 4:
        raise ShapeError(
            f"outputs must be (B V, K, h, w), got {getattr(outputs, 'shape', outputs)!r}"
        )
    check_choice(blend, "blend", BLENDS)
    check_choice(mode, "mode", ("bilinear", "nearest"))
    check_choice(grid, "grid", MAP_GRIDS)
    check_int(stride, "stride", lo=1)
    erp_hw = check_hw(erp_hw, "erp_hw")
    v = len(rig)
    if outputs.shape[0] % v:
        raise ShapeError(
            f"outputs must hold len(rig) = {v} views per image, got a batch of {outputs.shape[0]}"
        )
    b = outputs.shape[0] // v
    coords, weight = _merge_plan(
        rig, tuple(outputs.shape[-2:]), erp_hw, blend, outputs.dtype, outputs.device, stride, grid
    )
    merged = []
    for i in range(b):
        per_view = F.grid_sample(
            outputs[i * v : (i + 1) * v], coords, mode=mode, padding_mode="border",
            align_corners=False,
        )  # fmt: skip
        merged.append((per_view * weight).sum(0))
    return torch.stack(merged)
