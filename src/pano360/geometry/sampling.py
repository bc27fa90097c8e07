"""Sampling an ERP image at arbitrary directions, obeying the seam and pole rules.

Convention: see :mod:`pano360.geometry.conventions`. Columns wrap at the seam; a row past a pole
continues on the mirrored row shifted by W/2 columns. Nothing is ever zero-padded or clamped.

How: directions become ``grid_sample`` coordinates on the image itself (gx = lon / pi,
gy = -2 lat / pi, folded by :func:`~pano360.geometry.coords.fold_rows`), and
``torch.nn.functional.grid_sample`` reads every sample whose taps lie on the image. The few
samples whose taps cross the seam or a pole (a band one or two pixels wide) are read again from
their taps folded onto the sphere (:class:`FoldedGrid`), so no padded copy of the image is made.
Both reads are differentiable with respect to the image and the sampling positions.

Precision (:func:`grid_dtype`): grids are computed in the image's dtype up to 4096 pixels wide:
in float32 a coordinate is then within 3e-7 grid units of exact (longitudes scaled by cos(lat),
as a longitude near a pole is ill-conditioned), 6e-4 pixel at W = 4096 and 3e-4 at 2048
(tested against float64 in tests/geometry/test_fast_paths.py). Wider float32 images compute
their grids in float64 and round them (5e-4 pixel at W = 16384). ``grid_sample`` itself works
in the image's dtype. Float64 images get float64 grids.

Caches: sampling geometry of fixed parameters (constant rotations, cube maps, views with float
angles) is kept in :class:`~pano360.geometry._cache.GridCache` caches of at most
:data:`~pano360.geometry._cache.GRID_CACHE_BYTES` each (256 MiB); differentiable parameters
always take the uncached path, and a miss costs what an uncached call costs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .._core import ShapeError, as_image, check_choice, check_erp
from ._cache import GridCache
from .coords import (
    erp_lonlat_grid,
    fold_rows,
    lonlat_to_pixel,
    lonlat_to_xyz,
    xyz_components_to_lonlat,
)
from .padding import spherical_pad
from .rotation import rotation_matrix

__all__ = [
    "MODES",
    "FoldedGrid",
    "bilinear_corners",
    "direction_grid",
    "erp_directions",
    "erp_sampling_grid",
    "grid_dtype",
    "grid_sample_parallel",
    "plan_folded",
    "rotate_erp",
    "sample_erp",
    "sample_erp_grid",
    "sample_folded",
    "shared_erp_directions",
]

#: Interpolation modes every sampler accepts.
MODES: tuple[str, ...] = ("nearest", "bilinear", "bicubic")

# Pixels of padding each mode reads beyond the image: bicubic uses 4x4 neighbourhoods.
_PAD = {"nearest": 1, "bilinear": 1, "bicubic": 2}


def _erp_pixel_coords(lonlat: torch.Tensor, hw) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates (x, y) of directions, wrapped to x in [-0.5, W - 0.5) and folded over
    the poles to y in [-0.5, H - 0.5]."""
    x, y = lonlat_to_pixel(lonlat, hw).unbind(-1)
    y, x = fold_rows(y, x, hw)
    return x, y


def bilinear_corners(
    x: torch.Tensor, y: torch.Tensor, hw: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The four ERP pixels a bilinear read at continuous pixel coordinates (x, y) touches.

    Args:
        x, y: (...) continuous pixel coordinates (pixel centres at integers), y in
            [-0.5, H - 0.5] (as :func:`~pano360.geometry.coords.fold_rows` leaves them).
        hw: (H, W) of the ERP image.

    Returns:
        ``(rows, cols, weights)``, each (..., 4), corners in the order upper-left, upper-right,
        lower-left, lower-right: long rows and columns on the image (a corner past a pole or
        the seam folded by :func:`~pano360.geometry.coords.fold_rows`) and the bilinear
        weights in ``x``'s dtype. A read is ``sum(weights * image[rows, cols])``.
    """
    x0, y0 = x.floor(), y.floor()
    fx, fy = x - x0, y - y0
    rows = torch.stack((y0, y0, y0 + 1, y0 + 1), -1).long()
    cols = torch.stack((x0, x0 + 1, x0, x0 + 1), -1).long()
    weights = torch.stack(((1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx), -1)
    rows, cols = fold_rows(rows, cols, hw)
    return rows, cols, weights


def _normalise(x: torch.Tensor, y: torch.Tensor, hw) -> torch.Tensor:
    """Pixel coordinates to grid_sample's (align_corners=False) coordinates on an (h, w) image."""
    h, w = hw
    return torch.stack(((2 * x + 1) / w - 1, (2 * y + 1) / h - 1), dim=-1)


def erp_sampling_grid(lonlat: torch.Tensor, hw: tuple[int, int], mode: str) -> torch.Tensor:
    """grid_sample coordinates, on the image padded by :func:`spherical_pad`, of directions.

    Args:
        lonlat: (..., 2) directions (lon, lat); lon wraps, lat past a pole continues over it.
        hw: (H, W) of the ERP image.
        mode: the interpolation mode (it sets the padding).

    Returns:
        (..., 2) normalised coordinates for ``grid_sample(..., align_corners=False)`` on the
        padded image.
    """
    h, w = hw
    pad = _PAD[mode]
    x, y = _erp_pixel_coords(lonlat, hw)
    return _normalise(x + pad, y + pad, (h + 2 * pad, w + 2 * pad))


def grid_sample_parallel(image: torch.Tensor, grid: torch.Tensor, mode: str) -> torch.Tensor:
    """``grid_sample`` (align_corners=False, border) that also uses every CPU thread at batch 1.

    On the CPU, grid_sample spreads work over the batch only. A single image is therefore split
    into a pseudo-batch: by channels when there are at least as many channels as threads (the
    result is then a view, no copy), otherwise by blocks of sampling points. Same result.

    Args:
        image: (B or 1, C, Hi, Wi).
        grid: (B or 1, h, w, 2).
    """
    batch = max(image.shape[0], grid.shape[0])
    threads = torch.get_num_threads()
    _, c, hi, wi = image.shape
    _, h, w, _ = grid.shape
    points = h * w

    def sample(img, g):
        return F.grid_sample(img, g, mode=mode, padding_mode="border", align_corners=False)

    if image.shape[0] == 1 and batch > 1:
        if not (image.requires_grad and torch.is_grad_enabled()):
            # One image, many grids (the six cube faces): grid_sample reads the expanded image
            # in place (stride 0) and spreads the grids over the threads; no copy.
            return sample(image.expand(batch, c, hi, wi), grid)
        # With a gradient for the image, an expanded image would get one gradient per grid:
        # stack the grids into one tall grid instead.
        tall = grid_sample_parallel(image, grid.reshape(1, batch * h, w, 2), mode)
        return tall.view(c, batch, h, w).transpose(0, 1).contiguous()

    if batch > 1 or threads < 2 or image.device.type != "cpu" or points < 4096:
        return sample(image.expand(batch, c, hi, wi), grid.expand(batch, h, w, 2))
    if c >= threads:
        return sample(image.reshape(c, 1, hi, wi), grid.expand(c, h, w, 2)).view(1, c, h, w)
    chunk = -(-points // threads)
    flat = grid.reshape(points, 2)
    if chunk * threads != points:
        flat = torch.cat((flat, flat.new_zeros(chunk * threads - points, 2)))
    out = sample(image.expand(threads, c, hi, wi), flat.reshape(threads, 1, chunk, 2))
    return out.permute(2, 1, 0, 3).reshape(1, c, threads * chunk)[..., :points].reshape(1, c, h, w)


def sample_erp_grid(erp: torch.Tensor, grid: torch.Tensor, mode: str) -> torch.Tensor:
    """Sample ``erp`` at coordinates made by :func:`erp_sampling_grid` (with the same mode)."""
    return grid_sample_parallel(spherical_pad(erp, _PAD[mode]), grid.to(erp.dtype), mode)


#: The widest image (or stack of cube faces, in rows) whose sampling grids are computed in float32
#: for a float32 image; wider ones compute theirs in float64 and round the result.
FLOAT32_GRID_EXTENT = 4096


def grid_dtype(dtype: torch.dtype, extent: int) -> torch.dtype:
    """The dtype to compute a sampling grid in, for an image of ``dtype`` and ``extent`` pixels
    along its longer side.

    Float32 images up to :data:`FLOAT32_GRID_EXTENT` pixels: float32, whose grids are within
    3e-7 of exact (grid units, longitudes scaled by cos(lat); 6e-4 pixel at 4096 pixels).
    Wider float32 images: float64, rounded to float32 afterwards (within half a unit in the
    last place, 5e-4 pixel at 16384). Float64 images: float64.
    """
    if dtype == torch.float64 or extent > FLOAT32_GRID_EXTENT:
        return torch.float64
    return torch.float32


def direction_grid(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """grid_sample coordinates, on the ERP image itself, of directions given by components.

    Args:
        x, y, z: direction components (any length) that broadcast together to shape (...).

    Returns:
        (..., 2) coordinates (gx, gy) = (lon / pi, -2 lat / pi) in [-1, 1], for
        ``grid_sample(erp, grid, align_corners=False)`` and :func:`plan_folded`; computed in
        the components' dtype (see the module docstring for the float32 error bound).

    Convention:
        lon and lat as :func:`~pano360.geometry.coords.xyz_to_lonlat` (its pole rule), except
        that lon = pi stays pi: gx = 1 and gx = -1 are the same seam.
    """
    lon, lat = xyz_components_to_lonlat(x, y, z)
    if lon.requires_grad or lat.requires_grad:
        lon, lat = lon / math.pi, lat * (-2 / math.pi)
    else:  # fresh tensors: scaled in place
        lon, lat = lon.mul_(1 / math.pi), lat.mul_(-2 / math.pi)
    return torch.stack(torch.broadcast_tensors(lon, lat), dim=-1)


@dataclass(frozen=True)
class FoldedGrid:
    """Sampling coordinates on an ERP image, and how to read the samples that cross its edges.

    Attributes:
        grid: (B or 1, h, w, 2) grid_sample coordinates (align_corners=False) on the image
            itself, in [-1, 1] (folded onto the sphere).
        points: (N,) flat indices into ``grid``'s (B * h * w) samples whose taps leave the
            image (within one tap of the seam or a pole).
        taps: (N, k * k) flat pixel indices (row * W + column) of those samples' k x k taps
            (k = 2 for bilinear, 4 for bicubic), folded onto the image by
            :func:`~pano360.geometry.coords.fold_rows`. For nearest: (B or 1, h * w), the
            pixel of every sample (``points`` and ``local`` are then empty).
        local: (N, 1, 1, 2) grid_sample coordinates of those samples inside their k x k taps.
    """

    grid: torch.Tensor
    points: torch.Tensor
    taps: torch.Tensor
    local: torch.Tensor


def plan_folded(grid: torch.Tensor, hw: tuple[int, int], mode: str) -> FoldedGrid:
    """Plan sampling of ERP images of size ``hw`` at ``grid`` without a padded copy.

    Args:
        grid: (B, h, w, 2) coordinates on the image (:func:`direction_grid`), in [-1, 1].
        hw: (H, W) of the ERP image.
        mode: the interpolation mode (it sets how many taps a sample reads).

    Returns:
        A :class:`FoldedGrid` for :func:`sample_folded`, differentiable with respect to
        ``grid``. Samples are marked when a tap may leave the image (with half a pixel to
        spare); reading a marked sample from its folded taps is exact wherever it lies.
    """
    h, w = hw
    if mode == "nearest":
        # The pixel each sample rounds to, as grid_sample rounds on the image padded by one
        # pixel (ties to even there), folded onto the sphere: read by indexing.
        with torch.no_grad():
            x = ((grid[..., 0] + 1) * w - 1) / 2
            y = ((grid[..., 1] + 1) * h - 1) / 2
            rows, cols = fold_rows(torch.round(y + 1).long() - 1, torch.round(x + 1).long() - 1, hw)
            index = (rows * w + cols).reshape(grid.shape[0], -1)
        empty = index.new_empty(0)
        return FoldedGrid(grid, empty, index, grid.new_empty(0, 1, 1, 2))
    pad = _PAD[mode]
    k = 2 * pad
    with torch.no_grad():
        limit = grid.new_tensor([1 - 2 * pad / w, 1 - 2 * pad / h])
        g = grid.detach().reshape(grid.shape[0], -1, 2)
        # Which grids may come near the seam or a pole (one read-only pass, both coordinates
        # against the smaller limit), then which of their samples: either coordinate past its
        # limit, the two bools of a sample read as one int16.
        near_grid = torch.zeros(g.shape[0], dtype=torch.bool, device=g.device)
        if g.numel():
            low, high = torch.aminmax(g.view(g.shape[0], -1), dim=1)
            near_grid = torch.maximum(high, -low) > limit.min()
        points = []
        for b in near_grid.nonzero().flatten().tolist():
            near = (g[b].abs() > limit).view(torch.int16).flatten()
            points.append(near.nonzero().flatten() + b * g.shape[1])
        points = torch.cat(points) if points else g.new_empty(0, dtype=torch.long)
    g = grid.reshape(-1, 2)[points]
    # Pixel coordinates as grid_sample computes them (align_corners=False).
    x = ((g[:, 0] + 1) * w - 1) / 2
    y = ((g[:, 1] + 1) * h - 1) / 2
    col0 = x.detach().floor() - (pad - 1)
    row0 = y.detach().floor() - (pad - 1)
    offsets = torch.arange(k, device=grid.device)
    rows, cols = fold_rows(
        row0.long()[:, None, None] + offsets[:, None], col0.long()[:, None, None] + offsets, hw
    )
    taps = (rows * w + cols).reshape(-1, k * k)
    local = torch.stack(((2 * (x - col0) + 1) / k - 1, (2 * (y - row0) + 1) / k - 1), dim=-1)
    return FoldedGrid(grid, points, taps, local.view(-1, 1, 1, 2))


def sample_folded(erp: torch.Tensor, plan: FoldedGrid, mode: str) -> torch.Tensor:
    """Sample ``erp`` (B or 1, C, H, W) with a plan from :func:`plan_folded` (same mode and
    size): (B, C, h, w). A batch of 1 on either side broadcasts; an image expanded along the
    batch (stride 0) is read once."""
    if erp.shape[0] > 1 and erp.stride(0) == 0:
        erp = erp[:1]
    if mode == "nearest":
        return _gather_nearest(erp, plan)
    grid = plan.grid.to(erp.dtype)
    out = grid_sample_parallel(erp, grid, mode)
    n = len(plan.points)
    if n == 0:
        return out
    batch, c, h, w = out.shape
    image, points = erp.reshape(erp.shape[0], c, -1), plan.points
    grid_batch, taps, local = plan.grid.shape[0], plan.taps, plan.local.to(erp.dtype)
    if grid_batch == 1 and batch > 1:  # one grid for every image: its samples in each
        out_b = torch.arange(batch, device=erp.device).repeat_interleave(n)
        points, taps, local = (
            points.repeat(batch),
            taps.repeat(batch, 1),
            local.repeat(batch, 1, 1, 1),
        )
    else:
        out_b = torch.div(points, h * w, rounding_mode="floor")
    if image.shape[0] == 1:
        patches = image[0][:, taps].permute(1, 0, 2)  # (N, C, k * k)
    else:
        patches = image[out_b[:, None], :, taps].transpose(1, 2)
    k = 2 * _PAD[mode]
    values = F.grid_sample(
        patches.reshape(-1, c, k, k), local, mode=mode, padding_mode="border", align_corners=False
    )
    out.view(batch, c, h * w)[out_b, :, points % (h * w)] = values.view(-1, c)
    return out


def _gather_nearest(erp: torch.Tensor, plan: FoldedGrid) -> torch.Tensor:
    """Nearest samples: the pixels of ``plan.taps`` (B or 1, h * w), batches broadcast."""
    _, h, w, _ = plan.grid.shape
    image, index = erp.reshape(erp.shape[0], erp.shape[1], -1), plan.taps
    if index.shape[0] == 1:
        out = image[:, :, index[0]]
    elif image.shape[0] == 1:
        out = image[0][:, index].transpose(0, 1)
    else:
        out = torch.gather(image, 2, index[:, None].expand(-1, image.shape[1], -1))
    return out.reshape(out.shape[0], out.shape[1], h, w)


def sample_erp(erp: torch.Tensor, lonlat: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Sample an ERP image at given directions.

    Args:
        erp: (B, C, H, W) with W == 2H: floating-point or uint8 tensors, or a numpy array
            (H, W, C) or (H, W) (:mod:`pano360.geometry.conventions`, Images).
        lonlat: (B, h, w, 2) or (1, h, w, 2) directions (lon, lat) in radians. Longitudes may lie
            outside [-pi, pi) (they wrap); latitudes outside [-pi/2, pi/2] continue over the pole.
            A batch of 1 on either side broadcasts against the other.
        mode: "nearest", "bilinear" or "bicubic".

    Returns:
        (B, C, h, w) samples in ``erp``'s form (dtype; numpy (h, w, C) or (h, w)),
        differentiable with respect to a floating-point ``erp`` and ``lonlat`` (except
        ``nearest``, whose gradient with respect to positions is zero).

    Raises:
        TypeError: ``erp`` is not an image (a path names itself), or of another dtype.
        ShapeError: ``erp`` is not (B, C, H, W) with W == 2H, ``lonlat`` not (B, h, w, 2), or
            their batches do not broadcast.
        ValueError: unknown ``mode``.

    Precision:
        Sampling coordinates are computed in the image's dtype (float32 images up to 4096
        pixels wide: within 6e-4 pixel of exact) and in float64 for wider float32 images
        (:func:`~pano360.geometry.sampling.grid_dtype`); no padded copy of the image is made.

    Convention:
        Pixel centres as in :mod:`pano360.geometry.conventions`; the seam wraps and the poles
        continue on the mirrored row shifted by W/2.
    """
    erp, spec = as_image(erp, "erp")
    check_erp(erp)
    check_choice(mode, "mode", MODES)
    if not isinstance(lonlat, torch.Tensor) or lonlat.ndim != 4 or lonlat.shape[-1] != 2:
        got = tuple(lonlat.shape) if isinstance(lonlat, torch.Tensor) else type(lonlat).__name__
        raise ShapeError(f"lonlat must be a (B, h, w, 2) tensor, got {got}")
    batch = max(erp.shape[0], lonlat.shape[0])
    if {erp.shape[0], lonlat.shape[0]} - {1, batch}:
        raise ShapeError(
            f"erp batch {erp.shape[0]} and lonlat batch {lonlat.shape[0]} do not broadcast"
        )
    hw = tuple(erp.shape[-2:])
    x, y = _erp_pixel_coords(lonlat.to(grid_dtype(erp.dtype, hw[1])), hw)
    plan = plan_folded(_normalise(x, y, hw).to(erp.dtype), hw, mode)
    return spec.restore(sample_folded(erp, plan, mode))


_ERP_DIRECTIONS = GridCache("ERP pixel directions")


def shared_erp_directions(hw, dtype: torch.dtype, device=None) -> torch.Tensor:
    """:func:`erp_directions` without the copy: the cached tensor itself, for pano360's own
    geometry, which only reads it. Never modify it."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    h, w = int(hw[0]), int(hw[1])

    def build():
        grid = erp_lonlat_grid((h, w), dtype=torch.float64, device=device)
        return lonlat_to_xyz(grid).to(dtype)

    return _ERP_DIRECTIONS.get((h, w, dtype, device), build)


def _erp_axes(hw, dtype, device) -> tuple[torch.Tensor, ...]:
    """sin and cos of the longitudes (1, 1, W) and latitudes (1, H, 1) of ERP pixel centres,
    computed in float64 and given in ``dtype``: (sin lon, cos lon, sin lat, cos lat)."""
    h, w = hw
    lon = (torch.arange(w, dtype=torch.float64, device=device) + 0.5) / w * (2 * math.pi) - math.pi
    lat = math.pi / 2 - (torch.arange(h, dtype=torch.float64, device=device) + 0.5) / h * math.pi
    lon, lat = lon.view(1, 1, w), lat.view(1, h, 1)
    return tuple(t.to(dtype) for t in (lon.sin(), lon.cos(), lat.sin(), lat.cos()))


def rotation_grid(R: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """grid_sample coordinates on an ERP image of the source directions R^T d of its pixels.

    Args:
        R: (B, 3, 3) rotations moving the content (as :func:`rotate_erp` takes them).
        hw: (H, W) of the ERP image.

    Returns:
        (B, H, W, 2) coordinates (:func:`direction_grid`) in R's dtype, differentiable with
        respect to R. One fused pass: pixel directions are never stored, each component of
        R^T d is cos(lat) (sin(lon) R[0, k] + cos(lon) R[2, k]) + sin(lat) R[1, k].
    """
    slon, clon, slat, clat = _erp_axes(hw, R.dtype, R.device)
    r = R[:, :, :, None, None]  # (B, 3, 3, 1, 1)
    src = [
        torch.addcmul(slat * r[:, 1, k], clat, slon * r[:, 0, k] + clon * r[:, 2, k])
        for k in range(3)
    ]
    return direction_grid(*src)


def erp_directions(
    hw: tuple[int, int], *, dtype: torch.dtype = torch.float32, device=None
) -> torch.Tensor:
    """Unit direction of every ERP pixel centre.

    Args:
        hw: (H, W) of the ERP image.
        dtype, device: of the result.

    Returns:
        (H, W, 3) unit vectors (x right, y up, z forward), computed in float64: a new tensor
        each call (from a cache), so the caller may change it.

    Example:
        >>> erp_directions((2, 4))[1, 2].tolist()  # lon pi/4, lat -pi/4
        [0.5, -0.7071067690849304, 0.5]
    """
    return shared_erp_directions(hw, dtype, device).clone()


def rotate_erp(
    erp: torch.Tensor,
    R: torch.Tensor | None = None,
    mode: str = "bilinear",
    *,
    yaw: float | torch.Tensor | None = None,
    pitch: float | torch.Tensor | None = None,
    roll: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """Turn the sphere an ERP image shows: to where a camera looks (yaw, pitch, roll), or by a
    rotation matrix that moves the content (R).

    Two forms, one of them per call:

    - ``rotate_erp(erp, yaw=, pitch=, roll=)`` turns the camera as :func:`erp_to_perspective`
      does: the output looks where a view with those angles looks, so its centre shows what
      ``erp_to_perspective(erp, fov, hw, yaw=, pitch=, roll=)`` shows in the middle
      (``yaw=math.radians(90)``: what was 90 degrees to the right is now in front).
    - ``rotate_erp(erp, R)`` moves the content by the active rotation R: what ``erp`` shows in
      direction d the output shows in direction R d (``R = rotation_matrix(yaw)``: content moves
      right by yaw, the opposite of the camera form). The camera form is
      ``rotate_erp(erp, rotation_matrix(yaw, pitch, roll).T)``.

    Args:
        erp: (B, C, H, W) with W == 2H: floating-point or uint8 tensors, or a numpy array
            (H, W, C) or (H, W) (:mod:`pano360.geometry.conventions`, Images).
        R: (3, 3) or (B, 3, 3) rotation matrices moving the content (e.g. from
            :func:`rotation_matrix`); leave out for the camera form.
        mode: "nearest", "bilinear" or "bicubic".
        yaw, pitch, roll: the camera form's angles in radians, floats or (B,) tensors; those
            left out are 0.

    Returns:
        (B, C, H, W) in ``erp``'s form (dtype; numpy (H, W, C) or (H, W)). Differentiable with
        respect to a floating-point ``erp``, ``R`` and tensor angles.

    Raises:
        TypeError: both R and angles given, or neither; ``R`` not a tensor; ``erp`` is not an
            image (a path names itself), or of another dtype.
        ShapeError: ``erp`` is not (B, C, H, W) with W == 2H; ``R`` not (3, 3) or (B, 3, 3),
            or batches that do not match.
        ValueError: unknown ``mode``.

    Warns:
        AngleUnitWarning: an angle larger than 2 pi in magnitude (degrees by mistake).

    Precision:
        Sampling coordinates are computed in the image's dtype (float32 images up to 4096
        pixels wide: within 6e-4 pixel of exact) and in float64 for wider float32 images
        (:func:`~pano360.geometry.sampling.grid_dtype`); no padded copy of the image is made.

    Convention:
        Matrix form: active rotation, ``out(d) = erp(R^T d)``; ``rotate_erp(rotate_erp(x, R),
        R.T)`` returns ``x`` (up to resampling). Camera form: R = R_cam^T with R_cam =
        :func:`rotation_matrix` (yaw, pitch, roll), the camera-to-world rotation of
        :mod:`pano360.geometry.conventions`, so ``erp_to_perspective(rotate_erp(x, yaw=a,
        pitch=b, roll=c), fov, hw)`` equals ``erp_to_perspective(x, fov, hw, a, b, c)`` (up to
        resampling), and yaw > 0 rolls the columns left by yaw W / 2pi.

    Example:
        >>> import math
        >>> erp = torch.zeros(1, 1, 4, 8)
        >>> erp[..., 6] = 1.0  # a column 90 degrees right of the centre (lon pi / 2 + pi / 8)
        >>> front = rotate_erp(erp, yaw=math.pi / 2)  # look right: it comes to the front
        >>> front[0, 0, 0].tolist()
        [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
        >>> torch.equal(front, rotate_erp(erp, rotation_matrix(math.pi / 2).T))
        True
    """
    erp, spec = as_image(erp, "erp")
    check_erp(erp)
    check_choice(mode, "mode", MODES)
    angles = (yaw, pitch, roll)
    if R is None:
        if all(a is None for a in angles):
            raise TypeError("rotate_erp needs a rotation: R, or the camera's yaw, pitch, roll")
        yaw, pitch, roll = (0.0 if a is None else a for a in angles)
        opts = {"dtype": torch.float64 if not any(map(torch.is_tensor, angles)) else None}
        R = rotation_matrix(yaw, pitch, roll, device=erp.device, **opts).mT
    elif any(a is not None for a in angles):
        raise TypeError("rotate_erp takes R or yaw/pitch/roll, not both")
    if not isinstance(R, torch.Tensor):
        raise TypeError(f"R must be a (3, 3) or (B, 3, 3) torch.Tensor, got {type(R).__name__}")
    if R.shape[-2:] != (3, 3) or R.ndim not in (2, 3):
        raise ShapeError(f"R must be (3, 3) or (B, 3, 3), got {tuple(R.shape)}")
    if R.ndim == 3 and R.shape[0] not in (1, erp.shape[0]) and erp.shape[0] != 1:
        raise ShapeError(f"R batch {R.shape[0]} does not match erp batch {erp.shape[0]}")
    hw = tuple(erp.shape[-2:])
    R = R.to(grid_dtype(erp.dtype, hw[1])).reshape(-1, 3, 3)

    def build():
        return plan_folded(rotation_grid(R, hw).to(erp.dtype), hw, mode)

    if R.requires_grad:
        plan = build()
    else:
        key = (tuple(R.detach().to("cpu", torch.float64).flatten().tolist()), hw, mode)
        plan = _ROTATION_PLANS.get((*key, erp.dtype, erp.device), build)
    return spec.restore(sample_folded(erp, plan, mode))


_ROTATION_PLANS = GridCache("rotate_erp sampling plans")
