"""Coordinate conversions between ERP pixels, (lon, lat) and unit vectors.

Convention: see :mod:`pano360.geometry.conventions` (pixel centres at integers, lon right,
lat up, x right / y up / z forward). All functions are batched over leading dimensions,
differentiable and device/dtype agnostic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .._core import ShapeError, check_choice, check_hw, check_int

__all__ = [
    "MAP_GRIDS",
    "angle_between",
    "erp_lonlat_grid",
    "fold_rows",
    "lonlat_to_pixel",
    "lonlat_to_pixel_index",
    "lonlat_to_xyz",
    "pixel_to_lonlat",
    "strided_lonlat_grid",
    "wrap_lon",
    "xyz_components_to_lonlat",
    "xyz_to_lonlat",
]


def _check_last(t: torch.Tensor, n: int, name: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.ndim < 1 or t.shape[-1] != n:
        raise ShapeError(f"{name} must have shape (..., {n}), got {tuple(t.shape)}")


def wrap_lon(lon: torch.Tensor) -> torch.Tensor:
    """Wrap longitudes into [-pi, pi).

    Example:
        >>> wrap_lon(torch.tensor([math.pi, -3 * math.pi / 2], dtype=torch.float64)).tolist()
        [-3.141592653589793, 1.5707963267948966]
    """
    return torch.remainder(lon + math.pi, 2 * math.pi) - math.pi


def pixel_to_lonlat(xy: torch.Tensor, hw: Sequence[int]) -> torch.Tensor:
    """Continuous ERP pixel coordinates to (lon, lat) in radians.

    Args:
        xy: (..., 2) pixel coordinates (x, y) = (column, row), pixel centres at integers.
        hw: (H, W) of the ERP image.

    Returns:
        (..., 2) tensor (lon, lat). No wrapping is applied: x outside [-0.5, W - 0.5) gives lon
        outside [-pi, pi) (use :func:`wrap_lon`).

    Convention:
        lon = ((x + 0.5) / W - 0.5) 2pi, lat = (0.5 - (y + 0.5) / H) pi; inverse of
        :func:`lonlat_to_pixel`.

    Example:
        >>> pixel_to_lonlat(torch.tensor([1.5, 0.5]), (2, 4)).tolist()  # the image centre
        [0.0, 0.0]
    """
    _check_last(xy, 2, "xy")
    h, w = check_hw(hw, "hw")
    x, y = xy.unbind(-1)
    lon = ((x + 0.5) / w - 0.5) * (2 * math.pi)
    lat = (0.5 - (y + 0.5) / h) * math.pi
    return torch.stack((lon, lat), dim=-1)


def lonlat_to_pixel(lonlat: torch.Tensor, hw: Sequence[int]) -> torch.Tensor:
    """(lon, lat) in radians to continuous ERP pixel coordinates (x, y).

    Args:
        lonlat: (..., 2) tensor (lon, lat).
        hw: (H, W) of the ERP image.

    Returns:
        (..., 2) tensor (x, y) = (column, row), pixel centres at integers. No wrapping is applied.

    Convention:
        x = (lon / 2pi + 0.5) W - 0.5, y = (-lat / pi + 0.5) H - 0.5; inverse of
        :func:`pixel_to_lonlat`.

    Example:
        >>> lonlat_to_pixel(torch.tensor([[-math.pi, math.pi / 2]]), (2, 4))
        tensor([[-0.5000, -0.5000]])
    """
    _check_last(lonlat, 2, "lonlat")
    h, w = check_hw(hw, "hw")
    lon, lat = lonlat.unbind(-1)
    x = (lon / (2 * math.pi) + 0.5) * w - 0.5
    y = (-lat / math.pi + 0.5) * h - 0.5
    return torch.stack((x, y), dim=-1)


def fold_rows(
    rows: torch.Tensor, cols: torch.Tensor | float, hw: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions off an ERP image (past a pole or the seam, by any amount) -> the same point on it.

    The one home of the seam and pole rule for pixel positions: every padding, sampling plan
    and splat in pano360 folds its rows and columns here.

    Args:
        rows: row positions, any shape. Integer tensors are pixel indices; floating-point
            tensors are continuous pixel coordinates (pixel centres at integers).
        cols: column positions (a tensor broadcasting with ``rows``, or a number), same kind.
        hw: (H, W) of the ERP image, W even.

    Returns:
        ``(rows, cols)`` broadcast together. Integers: rows in [0, H), columns in [0, W).
        Floats: rows in [-0.5, H - 0.5], columns in [-0.5, W - 0.5).

    Raises:
        ShapeError: W is odd (the pole rule shifts by W/2).

    Convention:
        :mod:`pano360.geometry.conventions`: columns wrap (x mod W); a row past the top (bottom)
        continues on the mirrored row shifted by W/2 columns: row -1 - k at column c is row k at
        column c + W/2, row H + k is row H - 1 - k likewise. Rows have period 2H (crossing both
        poles turns the column by a whole turn), so any overshoot folds.

    Example:
        >>> r, c = fold_rows(torch.tensor([-1, 2, 4]), torch.tensor([0, 1, 7]), (2, 8))
        >>> r.tolist(), c.tolist()
        ([0, 1, 0], [4, 5, 7])
    """
    h, w = check_hw(hw, "hw")
    if w % 2:
        raise ShapeError(f"ERP width must be even for the pole rule, got W = {w}")
    cols = torch.as_tensor(cols, device=rows.device)
    if not rows.is_floating_point():
        t = torch.remainder(rows, 2 * h)
        past = t >= h
        rows = torch.where(past, 2 * h - 1 - t, t)
        return torch.broadcast_tensors(rows, torch.remainder(cols + past * (w // 2), w))
    cols = cols.to(rows.dtype)
    # Continuous rows: period 2H in y + 0.5, the mirrored half shifted by W/2. Skipped (a
    # synchronising check, but far cheaper than the arithmetic) when every row is on the image.
    if bool(((rows < -0.5) | (rows > h - 0.5)).any()):
        t = torch.remainder(rows + 0.5, 2 * h)
        past = t > h
        rows = torch.where(past, 2 * h - t, t) - 0.5
        cols = cols + past * (w / 2)
    if bool(((cols < -0.5) | (cols >= w - 0.5)).any()):
        cols = torch.remainder(cols + 0.5, w) - 0.5
    return torch.broadcast_tensors(rows, cols)


def lonlat_to_pixel_index(
    lonlat: torch.Tensor, hw: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ERP pixel that contains each direction: integer (row, column).

    Args:
        lonlat: (..., 2) directions (lon, lat) in radians; lon wraps.
        hw: (H, W) of the ERP image.

    Returns:
        ``(rows, cols)``, two (...) long tensors with rows in [0, H) and columns in [0, W).

    Convention:
        column floor((lon / 2pi + 0.5) W) mod W (lon = -pi is column 0, the seam's left edge),
        row floor((0.5 - lat / pi) H), with lat = -pi/2 in the last row: the pixel whose area
        (edges at the half-integers of :func:`lonlat_to_pixel`) holds the direction. Compute in
        float64 near the seam: float32(-pi) is slightly below -pi and lands in the last column.

    Example:
        >>> rows, cols = lonlat_to_pixel_index(
        ...     torch.tensor([[-math.pi, math.pi / 2], [0.0, -math.pi / 2]], dtype=torch.float64),
        ...     (4, 8))
        >>> rows.tolist(), cols.tolist()
        ([0, 3], [0, 4])
    """
    _check_last(lonlat, 2, "lonlat")
    h, w = check_hw(hw, "hw")
    lon, lat = lonlat.unbind(-1)
    cols = torch.remainder(torch.floor((lon / (2 * math.pi) + 0.5) * w), w).long()
    rows = torch.floor((0.5 - lat / math.pi) * h).long().clamp(0, h - 1)
    return rows, cols


def lonlat_to_xyz(lonlat: torch.Tensor) -> torch.Tensor:
    """(lon, lat) to unit vectors.

    Args:
        lonlat: (..., 2) tensor (lon, lat) in radians.

    Returns:
        (..., 3) unit vectors (x, y, z).

    Convention:
        xyz = (cos lat sin lon, sin lat, cos lat cos lon): lon = lat = 0 is +z (forward),
        lon = pi/2 is +x (right), lat = pi/2 is +y (up).

    Example:
        >>> [round(v, 6) + 0.0 for v in lonlat_to_xyz(torch.tensor([math.pi / 2, 0.0])).tolist()]
        [1.0, 0.0, 0.0]
    """
    _check_last(lonlat, 2, "lonlat")
    lon, lat = lonlat.unbind(-1)
    c = torch.cos(lat)
    return torch.stack((c * torch.sin(lon), torch.sin(lat), c * torch.cos(lon)), dim=-1)


def angle_between(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Great-circle angle between directions, accurate for tiny and for near-opposite angles.

    Computed as ``atan2(|a x b|, a . b)``: ``acos`` of the dot product loses half the digits for
    small angles (1e-4 rad comes out with a relative error near 1e-5 in float32, or as 0) and
    near pi. The vectors need not be unit length.

    Args:
        a: (..., 3) directions (x, y, z).
        b: (..., 3) directions, broadcastable with ``a``.

    Returns:
        (...) angles in radians, in [0, pi].

    Raises:
        ShapeError: the last dimension of ``a`` or ``b`` is not 3.

    Example:
        >>> right, up = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
        >>> round(angle_between(right, up).item(), 6) == round(math.pi / 2, 6)
        True
    """
    _check_last(a, 3, "a")
    _check_last(b, 3, "b")
    a, b = torch.broadcast_tensors(a, b)
    return torch.atan2(torch.linalg.cross(a, b).norm(dim=-1), (a * b).sum(-1))


def xyz_to_lonlat(xyz: torch.Tensor) -> torch.Tensor:
    """Direction vectors (any non-zero length) to (lon, lat) in radians.

    Args:
        xyz: (..., 3) tensor.

    Returns:
        (..., 2) tensor (lon, lat) with lon in [-pi, pi) and lat in [-pi/2, pi/2].

    Convention:
        lon = atan2(x, z), lat = atan2(y, hypot(x, z)). At the poles (hypot(x, z) <= 1e-12 |y|)
        lon is 0.
        lon = pi (straight behind) is reported as -pi, the left edge of column 0.

    Example:
        >>> xyz_to_lonlat(torch.tensor([[0.0, 0.0, -1.0], [0.0, 2.0, 0.0]]))
        tensor([[-3.1416,  0.0000],
                [ 0.0000,  1.5708]])
    """
    _check_last(xyz, 3, "xyz")
    lon, lat = xyz_components_to_lonlat(*xyz.unbind(-1))
    # atan2 returns (-pi, pi]; map +pi onto -pi so lon lies in [-pi, pi) as the convention says.
    lon = torch.where(lon >= math.pi, lon - 2 * math.pi, lon)
    return torch.stack((lon, lat), dim=-1)


def xyz_components_to_lonlat(
    x: torch.Tensor, y: torch.Tensor, z: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`xyz_to_lonlat` on separate components that broadcast together, with lon in
    [-pi, pi] (+pi is not mapped onto -pi: both are the seam), for samplers that fold anyway.

    The one home of the pole rule: at a pole (hypot(x, z) <= 1e-12 |y|) lon is 0.
    """
    rho = torch.hypot(x, z)
    # At a pole lon is undefined; rounding noise there would pick an arbitrary meridian (and
    # bilinear ERP samples at the pole depend on it), so directions within 1e-12 of the axis get
    # lon = 0. Safe arguments keep atan2's gradient finite there. Three reductions tell whether
    # any direction can be at a pole; only then is the rule applied element by element.
    if rho.numel():
        y_min, y_max = torch.aminmax(y.detach())
        if bool(rho.min() <= 1e-12 * torch.maximum(y_max, -y_min)):
            pole = rho <= 1e-12 * y.abs()
            x, z = torch.where(pole, 0.0, x), torch.where(pole, 1.0, z)
    return torch.atan2(x, z), torch.atan2(y, rho)


def erp_lonlat_grid(
    hw: Sequence[int],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """(lon, lat) of every ERP pixel centre.

    Args:
        hw: (H, W) of the ERP image.

    Returns:
        (H, W, 2) tensor; entry [i, j] is (lon, lat) of the centre of row i, column j.

    Example:
        >>> erp_lonlat_grid((1, 2))[0, :, 0].tolist()
        [-1.5707963705062866, 1.5707963705062866]
    """
    h, w = check_hw(hw, "hw")
    lon = (torch.arange(w, dtype=torch.float64, device=device) + 0.5) / w * (2 * math.pi) - math.pi
    lat = math.pi / 2 - (torch.arange(h, dtype=torch.float64, device=device) + 0.5) / h * math.pi
    grid = torch.stack(torch.meshgrid(lon, lat, indexing="xy"), dim=-1)
    return grid.to(dtype)


#: Where the pixels of a map at a stride of an ERP image sit (:func:`strided_lonlat_grid`).
MAP_GRIDS: tuple[str, ...] = ("sphere", "planar")


def strided_lonlat_grid(
    erp_hw: Sequence[int],
    stride: int,
    grid: str = "sphere",
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """(lon, lat) of the pixels of a map at stride s of an ERP image (a strided layer's output,
    a CNN's feature map): ceil(H / s) x ceil(W / s) pixels, placed by ``grid``:

    - ``"sphere"``: the ERP pixel centres at the map's own size, pixel (i, j) at the centre of
      the s x s block of input pixels it covers (input coordinate s i + (s - 1) / 2 when s
      divides H and W). The map is an ERP image itself: symmetric about the equator.
    - ``"planar"``: on input pixel (s i, s j), where nn.Conv2d with "same" padding and stride s
      centres output (i, j), and where a stack of such layers of total stride s does (the
      feature maps of ResNet, VGG or MobileNetV2 run on the ERP).

    Args:
        erp_hw: (H, W) of the ERP image the map was computed from.
        stride: s >= 1; both grids are the ERP's own pixel centres at s = 1.
        grid: one of :data:`MAP_GRIDS`.

    Returns:
        (ceil(H / s), ceil(W / s), 2) tensor (lon, lat).

    Raises:
        ValueError: unknown ``grid``.
        ValueRangeError: ``stride`` not a positive integer.

    Convention:
        :mod:`pano360.geometry.conventions`: (lon, lat) radians, pixel centres at integers.

    Example:
        >>> [round(v, 4) for v in strided_lonlat_grid((4, 8), 2, "sphere")[0, 0].tolist()]
        [-2.3562, 0.7854]
        >>> [round(v, 4) for v in strided_lonlat_grid((4, 8), 2, "planar")[0, 0].tolist()]
        [-2.7489, 1.1781]
    """
    check_choice(grid, "grid", MAP_GRIDS)
    s = check_int(stride, "stride", lo=1)
    h, w = check_hw(erp_hw, "erp_hw")
    if grid == "planar":
        return erp_lonlat_grid((h, w), dtype=dtype, device=device)[::s, ::s]
    return erp_lonlat_grid((-(-h // s), -(-w // s)), dtype=dtype, device=device)
