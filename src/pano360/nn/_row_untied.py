"""RowUntiedConv2d: an ERP convolution whose kernel changes with the output row (SphConv).

Su and Grauman (NIPS 2017, "Learning spherical convolution for fast features from 360° imagery")
give every ERP row its own kernel, wider towards the poles, learned to reproduce the outputs of a
perspective network applied on tangent planes. One kernel per row costs about 7.7 G parameters
for VGG16, so, as their follow-up (KTN) did, we tie consecutive output rows in groups and start
from the projected perspective kernel.

Why a per-row kernel can be exact: by yaw symmetry the tangent taps of SphereConv2d
(:mod:`pano360.nn._taps`) sit at the same offsets from every output pixel of a row. Bilinear
sampling at a fractional offset is a bilinear *splat* of the tap's weight onto the four pixels
around it, so a row's k x k tangent kernel equals a dense kernel on integer pixel offsets, and the
row's output is a plain cross-correlation of the spherically padded input with it.

Convention:
    Offsets are measured from the *base pixel* (s i, s j) of output pixel (i, j) of a stride-s
    layer; the output pixel itself sits where :mod:`pano360.nn._taps` puts it (on the sphere
    grid, input coordinate (s - 1) / 2 further on each axis when s divides H, the fraction going
    into the splat; on the planar grid, on the base pixel).
    Pixels past a pole are written "unfolded", on the padded rows of
    :func:`pano360.geometry.sampling.spherical_pad`: row -1 - k at column c is row k at column
    c + W/2 (likewise below row H - 1). Of the representations (r, c), (-1 - r, c + W/2) and
    (2H - 1 - r, c + W/2) of a pixel, a splat uses the one nearest the output pixel (rows plus
    wrapped columns, ties to the direct one), so the kernels stay compact around the poles.
    Columns wrap (offsets are taken modulo W into a half-turn around the output).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._core import ShapeError, ValueRangeError, check_choice, check_hw, check_positive_int
from ..geometry import MAP_GRIDS, fold_rows, lonlat_to_pixel, spherical_pad, strided_lonlat_grid
from ..geometry.sampling import bilinear_corners
from ._sphere_conv import SphereConv2d, _optional_repr, _pair, _square
from ._taps import (
    default_tap_spacing,
    output_hw,
    tangent_tap_directions,
    tap_lonlat,
)

__all__ = ["DEFAULT_MAX_PARAM_RATIO", "RowUntiedConv2d"]

#: The default row group size is the smallest one keeping the parameter count within this
#: factor of nn.Conv2d's of the same shape.
DEFAULT_MAX_PARAM_RATIO = 64

# Tap positions this close to a pixel centre are snapped onto it (rounding noise of the float64
# geometry), so that a splat does not grow the kernel by a column of 1e-16 weights.
_SNAP = 1e-9


@functools.lru_cache(maxsize=32)
def _row_splats(
    kernel_size: tuple[int, int],
    dilation: int,
    tap_spacing: float,
    erp_hw: tuple[int, int],
    stride: int,
    output_grid: str = "sphere",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bilinear splats of every tangent tap of every output row (float64, CPU, cached).

    Returns:
        ``(tap, dr, dc, weight)``, each (Ho, 4 K): the tap index (row-major over the kernel), the
        integer row and column offsets from the row's base pixel, and the splat weight (0 for
        corners that get nothing).
    """
    h, w = erp_hw
    ho, wo = output_hw(erp_hw, stride)
    dirs = tangent_tap_directions(kernel_size, dilation, tap_spacing)  # (K, 3)
    k = dirs.shape[0]
    # The taps around output column 0 of every row: the other columns are these, shifted.
    grid = strided_lonlat_grid(erp_hw, stride, output_grid, dtype=torch.float64)
    centres = grid[:, 0]  # (Ho, 2), output column 0
    lonlat = tap_lonlat(dirs, centres)  # (Ho, K, 2)
    x, y = lonlat_to_pixel(lonlat, erp_hw).unbind(-1)  # (Ho, K) each
    x = torch.where((x - x.round()).abs() < _SNAP, x.round(), x)
    y = torch.where((y - y.round()).abs() < _SNAP, y.round(), y)
    rows, cols, weight = bilinear_corners(x, y, erp_hw)  # (Ho, K, 4), folded onto the sphere
    # Where the output pixel sits in input coordinates (the output grid of _taps.py).
    base_row = (torch.arange(ho) * stride)[:, None, None]
    if output_grid == "planar":
        true_row, true_col = base_row.double(), 0.0
    else:
        true_row = ((torch.arange(ho, dtype=torch.float64) + 0.5) * h / ho - 0.5)[:, None, None]
        true_col = (w / wo - 1) / 2  # output column 0; base column 0
    # Candidate representations: direct, mirrored over the north pole, over the south pole.
    cand_rows = torch.stack((rows, -1 - rows, 2 * h - 1 - rows))
    cand_cols = torch.stack((cols, cols + w // 2, cols + w // 2))
    # Wrap columns into the half-turn around the output pixel.
    cand_cols = cand_cols - w * torch.floor((cand_cols - true_col + w / 2) / w).long()
    dist = (cand_rows - true_row).abs() + (cand_cols - true_col).abs()
    best = dist.argmin(0, keepdim=True)  # first minimum: the direct representation wins ties
    dr = cand_rows.gather(0, best)[0] - base_row
    dc = cand_cols.gather(0, best)[0]
    tap = torch.arange(k).view(1, k, 1).expand_as(dr)
    return tuple(t.reshape(ho, 4 * k) for t in (tap, dr, dc, weight))


def _row_boxes(splats) -> list[tuple[int, int, int, int]]:
    """(r_min, r_max, q_min, q_max) of the offsets each row's splat reaches."""
    _, dr, dc, weight = splats
    boxes = []
    for r, c, wt in zip(dr, dc, weight, strict=True):
        used = wt != 0
        rr, cc = r[used], c[used]
        boxes.append((int(rr.min()), int(rr.max()), int(cc.min()), int(cc.max())))
    return boxes


def _row_groups(ho: int, size: int) -> list[tuple[int, int, int]]:
    """(start, stop, middle) of each group of ``size`` consecutive output rows.

    The last group holds the remainder. The middle row of an even-sized group is the one of the
    two central rows nearer the equator, so that a layout symmetric about the equator gives
    mirrored kernels.
    """
    groups = []
    for start in range(0, ho, size):
        stop = min(start + size, ho)
        lo, hi = (start + stop - 1) // 2, (start + stop) // 2
        middle = lo if abs(lo - (ho - 1) / 2) <= abs(hi - (ho - 1) / 2) else hi
        groups.append((start, stop, middle))
    return groups


def _box_area(box) -> int:
    return (box[1] - box[0] + 1) * (box[3] - box[2] + 1)


class RowUntiedConv2d(nn.Module):
    """Convolution of ERP feature maps with a kernel per group of output rows (SphConv).

    A resolution-specific layer: every group of ``row_group_size`` consecutive output rows has
    its own dense kernel on integer pixel offsets, sized from the tangent-plane footprint of the
    group's middle row (wider towards the poles). The input is padded once with
    :func:`pano360.geometry.sampling.spherical_pad` (seam wraps; rows past a pole are the mirrored
    rows shifted by W/2) and each group is one ``conv2d`` over its band of rows.
    :meth:`forward_rows` computes chosen output rows only, reading only the input rows they
    need (:meth:`input_rows`), as training on sampled rows does.

    At initialisation every kernel is the projection (bilinear splat) of a perspective kernel
    onto its group's middle row: drawn like nn.Conv2d's weight by the constructor, or taken from
    a trained layer by :meth:`from_conv`. With ``row_group_size=1`` the layer then equals
    ``SphereConv2d(taps="tangent")`` with that weight on every row, up to float rounding; with
    larger groups, the other rows of a group reuse the middle row's kernel (shifted to their own
    base pixel), which training then adapts.

    Why the middle row's footprint and not the union over the group: next to a pole the
    tangent footprint spans many columns (at 128 x 256 a 3 x 3 kernel on output row 0 reaches
    +-46 columns, a 5 x 93 box, 52x nn.Conv2d's taps), so any group holding a pole row would
    cost over 100x nn.Conv2d for the two poles alone; with the middle row's box the default
    budget below is met.

    Args:
        in_channels, out_channels, kernel_size, stride, dilation, groups, bias: as nn.Conv2d
            (stride and dilation the same along rows and columns; kernel_size and dilation
            describe the perspective kernel the layer starts from). The bias is shared by all
            rows.
        erp_hw: (H, W) of the input, W == 2H; W must be a multiple of the stride.
        row_group_size: output rows per kernel; 1 unties every row. Default: the smallest size
            whose parameter count is at most :data:`DEFAULT_MAX_PARAM_RATIO` (64) times that of
            ``nn.Conv2d(in_channels, out_channels, kernel_size, groups=groups, bias=bias)``
            (3 x 3 kernels: 4 rows at 64 x 128 and 8 rows at 128 x 256, both about 58x;
            every row untied costs about 280x and 620x there).
        tap_spacing: radians between neighbouring taps (default: one input pixel at the
            equator, 2 pi / W), as :class:`pano360.nn.SphereConv2d`.
        output_grid: where a strided layer's outputs sit, "sphere" or "planar", as
            :class:`pano360.nn.SphereConv2d`.

    Kernel layout:
        ``weights[g]`` is (C_out, C_in / groups, rows_g, cols_g); its entry [..., a, b] weighs
        the input pixel at offset (offsets[g][0] + a, offsets[g][1] + b) from the base pixel
        (s i, s j) of output pixel (i, j), in the unfolded padded coordinates of the module
        docstring. Output rows ``row_groups[g] = (start, stop)`` use it.

    Shape:
        (B, C_in, H, W) -> (B, C_out, ceil(H / stride), W / stride).

    Raises:
        ShapeError: bad ``erp_hw``; at call time, an input whose shape differs from
            (B, in_channels, *erp_hw).
        ValueRangeError: bad channels, groups, kernel_size, stride, dilation, row_group_size or
            tap_spacing.

    Example:
        >>> conv = RowUntiedConv2d(3, 8, erp_hw=(16, 32), row_group_size=4)
        >>> conv(torch.rand(1, 3, 16, 32)).shape
        torch.Size([1, 8, 16, 32])
        >>> conv.num_row_groups, conv.row_groups[0]
        (4, (0, 4))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        erp_hw: tuple[int, int],
        kernel_size=3,
        stride=1,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        row_group_size: int | None = None,
        tap_spacing: float | None = None,
        output_grid: str = "sphere",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.output_grid = check_choice(output_grid, "output_grid", MAP_GRIDS)
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        groups = check_positive_int(groups, "groups")
        if in_channels % groups or out_channels % groups:
            raise ValueRangeError(
                f"groups must divide in_channels ({in_channels}) and out_channels "
                f"({out_channels}), got {groups}"
            )
        self.groups = groups
        self.erp_hw = h, w = check_hw(erp_hw, "erp_hw", erp=True)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _square(stride, "stride")
        self.dilation = _square(dilation, "dilation")
        if w % self.stride:
            raise ValueRangeError(
                f"stride must divide the ERP width W = {w} (columns must stay evenly spaced), "
                f"got {self.stride}"
            )
        spacing = default_tap_spacing(w) if tap_spacing is None else float(tap_spacing)
        if not 0 < spacing < math.pi / 2:
            raise ValueRangeError(f"tap_spacing must be in (0, pi/2) radians, got {spacing}")
        self.tap_spacing = tap_spacing
        self.out_hw = output_hw((h, w), self.stride)
        ho, wo = self.out_hw

        splats = _row_splats(
            self.kernel_size, self.dilation, spacing, (h, w), self.stride, output_grid
        )
        boxes = _row_boxes(splats)
        has_bias = bool(bias)
        if row_group_size is None:
            row_group_size = self._default_group_size(boxes, has_bias)
        else:
            row_group_size = check_positive_int(row_group_size, "row_group_size")
            if row_group_size > ho:
                raise ValueRangeError(
                    f"row_group_size must be at most the number of output rows ({ho}), "
                    f"got {row_group_size}"
                )
        self.row_group_size = row_group_size
        layout = _row_groups(ho, row_group_size)
        self.row_groups = tuple((start, stop) for start, stop, _ in layout)
        self.middle_rows = tuple(middle for _, _, middle in layout)
        self.offsets = tuple((boxes[m][0], boxes[m][2]) for m in self.middle_rows)

        factory = {"device": device, "dtype": dtype}
        c_group = in_channels // groups
        self.weights = nn.ParameterList()
        # Splat matrices (K, rows_g * cols_g), float64 on the CPU: the geometry, kept for
        # projecting perspective kernels; not state.
        self._splat_matrices = []
        tap, dr, dc, weight = splats
        k = self.kernel_size[0] * self.kernel_size[1]
        for middle in self.middle_rows:
            r_min, r_max, q_min, q_max = boxes[middle]
            rows, cols = r_max - r_min + 1, q_max - q_min + 1
            splat = torch.zeros(k, rows * cols, dtype=torch.float64)
            flat = (dr[middle] - r_min) * cols + (dc[middle] - q_min)
            used = weight[middle] != 0
            splat.index_put_((tap[middle][used], flat[used]), weight[middle][used], accumulate=True)
            self._splat_matrices.append(splat)
            kernel = torch.empty(out_channels, c_group, rows, cols, **factory)
            self.weights.append(nn.Parameter(kernel))
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if has_bias else None

        # The input rows and columns each group's conv2d reads (unpadded coordinates; columns
        # wrap), and the rows spherical_pad must add for them.
        s = self.stride
        self._bands = []
        for (start, stop), (r0, q0), kernel in zip(
            self.row_groups, self.offsets, self.weights, strict=True
        ):
            rows, cols = kernel.shape[-2:]
            top, left = s * start + r0, q0
            self._bands.append(
                (top, top + s * (stop - 1 - start) + rows, left, left + s * (wo - 1) + cols)
            )
        self._pad_rows = max(
            0, *(-top for top, *_ in self._bands), *(b - h for _, b, *_ in self._bands)
        )
        self.reset_parameters()

    def _default_group_size(self, boxes, has_bias: bool) -> int:
        """Smallest row group size with at most DEFAULT_MAX_PARAM_RATIO x nn.Conv2d's params."""
        ho = len(boxes)
        for size in range(1, ho + 1):
            area = sum(_box_area(boxes[m]) for _, _, m in _row_groups(ho, size))
            if self._ratio(area, has_bias) <= DEFAULT_MAX_PARAM_RATIO:
                return size
        return ho

    def _ratio(self, total_area: int, has_bias: bool) -> float:
        per_tap = self.out_channels * (self.in_channels // self.groups)
        extra = self.out_channels if has_bias else 0
        k = self.kernel_size[0] * self.kernel_size[1]
        return (total_area * per_tap + extra) / (k * per_tap + extra)

    @property
    def num_row_groups(self) -> int:
        """Number of row groups (kernels)."""
        return len(self.row_groups)

    @property
    def param_ratio(self) -> float:
        """Parameter count over that of nn.Conv2d of the same shape (same groups and bias)."""
        area = sum(wt.shape[2] * wt.shape[3] for wt in self.weights)
        return self._ratio(area, self.bias is not None)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Project a perspective kernel drawn as nn.Conv2d's (Kaiming uniform, a = sqrt(5))."""
        c_group = self.in_channels // self.groups
        ref = self.weights[0]
        weight = torch.empty(
            self.out_channels, c_group, *self.kernel_size, dtype=ref.dtype, device=ref.device
        )
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        bias = None
        if self.bias is not None:
            bound = 1 / math.sqrt(weight[0].numel())
            bias = nn.init.uniform_(torch.empty_like(self.bias), -bound, bound)
        self.set_perspective_weight(weight, bias)

    @torch.no_grad()
    def set_perspective_weight(
        self, weight: torch.Tensor, bias: torch.Tensor | None = None
    ) -> None:
        """Set every group's kernel to the projection of a perspective (nn.Conv2d) kernel.

        Args:
            weight: (C_out, C_in / groups, kh, kw), nn.Conv2d's layout, with this layer's
                kernel_size.
            bias: (C_out,) or None (keep the current bias).

        Raises:
            ShapeError: ``weight`` or ``bias`` of the wrong shape, or a bias for a layer built
                without one.
        """
        expected = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        if tuple(weight.shape) != expected:
            raise ShapeError(f"weight must be {expected}, got {tuple(weight.shape)}")
        flat = weight.detach().to("cpu", torch.float64).reshape(*expected[:2], -1)
        for kernel, splat in zip(self.weights, self._splat_matrices, strict=True):
            kernel.copy_((flat @ splat).reshape(kernel.shape))
        if bias is not None:
            if self.bias is None:
                raise ShapeError("bias given for a layer built with bias=False")
            if tuple(bias.shape) != (self.out_channels,):
                raise ShapeError(f"bias must be ({self.out_channels},), got {tuple(bias.shape)}")
            self.bias.copy_(bias.detach())

    @classmethod
    def from_conv(
        cls,
        conv: nn.Conv2d | SphereConv2d,
        erp_hw: tuple[int, int],
        row_group_size: int | None = 1,
        tap_spacing: float | None = None,
        output_grid: str | None = None,
    ) -> RowUntiedConv2d:
        """A RowUntiedConv2d equal, at ``row_group_size=1``, to ``conv`` laid on the sphere.

        Every kernel is the projection of ``conv``'s weight onto its group's middle row, so with
        one row per group the result equals ``SphereConv2d(taps="tangent")`` loaded with
        ``conv``'s state_dict. Kernel size, stride, dilation, groups and bias come from
        ``conv``; its padding is ignored (the sphere has no border, the output is
        (ceil(H / stride), W / stride)).

        Args:
            conv: an nn.Conv2d (square stride and dilation) or a tangent-tap SphereConv2d.
            erp_hw: (H, W) of the layer's input.
            row_group_size: output rows per kernel (default 1: every row untied; None: the
                parameter-budget default of the constructor).
            tap_spacing: default: ``conv.tap_spacing`` for a SphereConv2d, else 2 pi / W.
            output_grid: default: ``conv.output_grid`` for a SphereConv2d, else "sphere".

        Raises:
            TypeError: ``conv`` is neither an nn.Conv2d nor a SphereConv2d.
            ValueError: a SphereConv2d with crown taps.
        """
        if isinstance(conv, SphereConv2d):
            if conv.taps != "tangent":
                raise ValueError(f"from_conv needs tangent taps, got taps={conv.taps!r}")
            if tap_spacing is None:
                tap_spacing = conv.tap_spacing
            if output_grid is None:
                output_grid = conv.output_grid
        elif not isinstance(conv, nn.Conv2d):
            raise TypeError(
                f"conv must be an nn.Conv2d or a SphereConv2d, got {type(conv).__name__}"
            )
        layer = cls(
            conv.in_channels, conv.out_channels, erp_hw,
            kernel_size=conv.kernel_size, stride=_square(conv.stride, "conv.stride"),
            dilation=_square(conv.dilation, "conv.dilation"), groups=conv.groups,
            bias=conv.bias is not None, row_group_size=row_group_size, tap_spacing=tap_spacing,
            output_grid=output_grid or "sphere", device=conv.weight.device,
            dtype=conv.weight.dtype,
        )  # fmt: skip
        layer.set_perspective_weight(conv.weight, conv.bias)
        return layer

    def _columns(self, padded: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Columns start .. stop - 1 of the unpadded image, wrapped, from a row-padded band."""
        pad, w = self._pad_rows, self.erp_hw[1]
        if -pad <= start and stop <= w + pad:
            return padded[..., start + pad : stop + pad]
        core = padded[..., pad : pad + w]
        pieces, col = [], start
        while col < stop:
            first = col % w
            take = min(w - first, stop - col)
            pieces.append(core[..., first : first + take])
            col += take
        return torch.cat(pieces, dim=-1)

    def _check_input(self, x: torch.Tensor) -> None:
        expected = (self.in_channels, *self.erp_hw)
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != expected:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ShapeError(
                f"x must be (B, {expected[0]}, {expected[1]}, {expected[2]}) to match "
                f"in_channels={self.in_channels} and erp_hw={self.erp_hw}, got {shape}"
            )

    def _check_rows(self, rows: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """``rows`` as a 1-D int64 CPU tensor of output rows."""
        t = rows if isinstance(rows, torch.Tensor) else torch.as_tensor(rows)
        if not isinstance(rows, torch.Tensor) and t.numel() == 0:
            t = t.long()  # an empty list
        ho = self.out_hw[0]
        if t.ndim != 1 or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise ValueRangeError(
                f"rows must be a 1-D tensor (or sequence) of integer output rows, got "
                f"{t.dtype} of shape {tuple(t.shape)}"
            )
        t = t.to("cpu", torch.long)
        outside = t[(t < 0) | (t >= ho)]
        if outside.numel():
            raise ValueRangeError(
                f"rows must be output rows in [0, {ho}), got {outside[:5].tolist()}"
            )
        return t

    def _row_plan(self, rows: torch.Tensor) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
        """Per row group used: (group, positions in ``rows``, (n, rows_g) unfolded input rows).

        Output row i of group g reads input rows s i + offsets[g][0] + a, a < rows_g, written
        unfolded (past a pole) as in the kernel layout.
        """
        starts = torch.tensor([start for start, _ in self.row_groups])
        groups = torch.searchsorted(starts, rows, right=True) - 1
        plan = []
        for g in groups.unique().tolist():
            where = (groups == g).nonzero().flatten()
            span = torch.arange(self.weights[g].shape[2])
            plan.append((g, where, self.stride * rows[where][:, None] + self.offsets[g][0] + span))
        return plan

    def input_rows(self, rows: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """The input rows that output ``rows`` read (what :meth:`forward_rows` reads of x).

        Args:
            rows: (N,) output rows in [0, ceil(H / stride)), any order, repeats allowed.

        Returns:
            (M,) int64, the input rows in [0, H) (folded onto the image), sorted and unique.

        Raises:
            ValueRangeError: ``rows`` not a 1-D set of integers, or a row outside the output.

        Convention:
            Rows past a pole fold with :func:`pano360.geometry.fold_rows`: output rows next
            to a pole also read the rows next to it (on the opposite meridian).

        Example:
            >>> conv = RowUntiedConv2d(1, 1, erp_hw=(8, 16), row_group_size=1)
            >>> conv.offsets[0], tuple(conv.weights[0].shape[2:])  # rows -2 .. 2 of row 0
            ((-2, -3), (5, 7))
            >>> conv.input_rows([0]).tolist()  # rows -2, -1 are rows 1, 0, W / 2 columns on
            [0, 1, 2]
            >>> conv.input_rows(torch.tensor([4, 3])).tolist()
            [2, 3, 4, 5]
        """
        rows = self._check_rows(rows)
        h, w = self.erp_hw
        needed = [fold_rows(src, 0, (h, w))[0].flatten() for _, _, src in self._row_plan(rows)]
        return torch.cat(needed).unique() if needed else rows.new_empty(0)

    def forward_rows(self, x: torch.Tensor, rows: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """The layer's output at the given output rows only: ``forward(x)[:, :, rows]``.

        Reads only the input rows :meth:`input_rows` names (the others may hold anything, e.g.
        zeros where they were never computed), through the kernel layout of the class
        docstring: output (i, j) of group g is ``weights[g]`` cross-correlated with the input
        pixels at offsets (offsets[g][0] + a, offsets[g][1] + b) from its base pixel (s i, s j).
        Its work grows with ``len(rows)``, not with Ho (one gather and one ``conv2d`` per row
        group used), which is what training on a few sampled rows needs
        (:func:`pano360.training.distill`).

        Args:
            x: (B, C_in, H, W) input, (H, W) = ``erp_hw``.
            rows: (N,) output rows in [0, Ho), any order, repeats allowed (a tensor on any
                device, or a sequence of ints).

        Returns:
            (B, C_out, N, Wo): output row ``rows[n]`` at index n; differentiable in ``x`` and
            the parameters.

        Raises:
            ShapeError: ``x`` is not (B, in_channels, *erp_hw).
            ValueRangeError: ``rows`` not a 1-D set of integers, or a row outside the output.

        Convention:
            As :meth:`forward` (module docstring): columns wrap at the seam, rows past a pole
            read the mirrored row W / 2 columns on (:func:`pano360.geometry.fold_rows`).

        Example:
            >>> conv = RowUntiedConv2d(3, 8, erp_hw=(16, 32), stride=2)
            >>> x = torch.rand(1, 3, 16, 32)
            >>> conv.forward_rows(x, [7, 0]).shape
            torch.Size([1, 8, 2, 16])
            >>> torch.allclose(conv.forward_rows(x, [7, 0]), conv(x)[:, :, [7, 0]], atol=1e-6)
            True
        """
        self._check_input(x)
        rows = self._check_rows(rows)
        b, c, h, w = x.shape
        s, wo = self.stride, self.out_hw[1]
        if rows.numel() == 0:
            return x.new_zeros(b, self.out_channels, 0, wo)
        flat_x = x.reshape(b, c, h * w)
        pieces = []
        for g, where, src in self._row_plan(rows):
            kernel = self.weights[g]
            rh, rw = kernel.shape[2:]
            cols = self.offsets[g][1] + torch.arange(s * (wo - 1) + rw)
            src_rows, src_cols = fold_rows(src[..., None], cols, (h, w))  # (n, rh, n_cols)
            flat = (src_rows * w + src_cols).to(x.device)
            band = flat_x[:, :, flat].transpose(1, 2).reshape(b * len(where), c, rh, -1)
            y = F.conv2d(band, kernel, self.bias, stride=s, groups=self.groups)
            pieces.append((where, y.reshape(b, len(where), -1, wo).transpose(1, 2)))
        out = torch.cat([y for _, y in pieces], dim=2)
        order = torch.cat([where for where, _ in pieces])
        return out[:, :, torch.argsort(order).to(out.device)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        pad = self._pad_rows
        padded = spherical_pad(x, pad) if pad else x
        outs = []
        for (top, bottom, left, right), kernel in zip(self._bands, self.weights, strict=True):
            band = self._columns(padded[:, :, top + pad : bottom + pad], left, right)
            outs.append(F.conv2d(band, kernel, self.bias, stride=self.stride, groups=self.groups))
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)

    def extra_repr(self) -> str:
        largest = max(self.weights, key=lambda wt: wt.shape[2] * wt.shape[3]).shape[2:]
        s = (
            f"{self.in_channels}, {self.out_channels}, erp_hw={self.erp_hw}, "
            f"kernel_size={self.kernel_size}, stride={self.stride}"
        )
        s += _optional_repr(self)
        return (
            s + f", row_group_size={self.row_group_size}, row_groups={self.num_row_groups}, "
            f"largest_kernel={tuple(largest)}, params={self.param_ratio:.1f}x Conv2d"
        )

    def __repr__(self) -> str:
        # One line: the ParameterList would list every group's kernel.
        return f"{type(self).__name__}({self.extra_repr()})"
