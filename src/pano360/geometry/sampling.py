"""Sampling an ERP image at arbitrary directions, obeying the seam and pole rules.

Convention: see :mod:`pano360.geometry.conventions`. Columns wrap at the seam; a row past a pole
continues on the mirrored row shifted by W/2 columns. Nothing is ever zero-padded or clamped.

How: the image is padded by one or two pixels with exactly those rules
(:func:`~pano360.geometry.padding.spherical_pad`), then sampled with
``torch.nn.functional.grid_sample``, which gives bilinear and bicubic sampling that is
differentiable with respect to both the image and the sampling positions. Sampling grids of fixed
geometry (constant rotations, cube maps, views with float angles) are computed once and cached
(a few per function); differentiable parameters always take the uncached path.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .._core import ShapeError, as_image, check_choice, check_erp
from .coords import erp_lonlat_grid, fold_rows, lonlat_to_pixel, lonlat_to_xyz, xyz_to_lonlat
from .padding import spherical_pad
from .rotation import rotation_matrix

__all__ = [
    "MODES",
    "ErpWindow",
    "bilinear_corners",
    "erp_directions",
    "erp_sampling_grid",
    "grid_sample_parallel",
    "plan_erp_sampling",
    "rotate_erp",
    "sample_erp",
    "sample_erp_grid",
    "sample_erp_planned",
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


@dataclass(frozen=True)
class ErpWindow:
    """The part of an ERP image that a fixed set of samples reads.

    Rows ``top:bottom`` and columns ``left:right`` where ``right`` may exceed W: the window then
    continues across the seam from column 0.
    """

    top: int
    bottom: int
    left: int
    right: int

    def crop(self, erp: torch.Tensor) -> torch.Tensor:
        """The window of ``erp``: a view when it does not cross the seam, else a small copy."""
        w = erp.shape[-1]
        rows = erp[:, :, self.top : self.bottom]
        if self.right <= w:
            return rows[..., self.left : self.right]
        return torch.cat((rows[..., self.left :], rows[..., : self.right - w]), dim=-1)


def plan_erp_sampling(
    lonlat: torch.Tensor, hw: tuple[int, int], mode: str
) -> tuple[ErpWindow | None, torch.Tensor]:
    """Plan repeated sampling of ERP images at fixed directions.

    When the samples read neither pole's padding rows, only the columns they touch are kept (a
    window, seam-crossing allowed), so sampling needs no padded copy of the whole image.

    Returns:
        ``(window, grid)``: grid_sample coordinates on ``window.crop(erp)``, or, when
        ``window`` is None, on ``spherical_pad(erp, pad)`` (see :func:`sample_erp_planned`).
    """
    h, w = hw
    pad = _PAD[mode]
    x, y = _erp_pixel_coords(lonlat, hw)
    # Taps of each sample: pad columns/rows either side of floor(coordinate) (nearest: 0 or 1).
    first_col = torch.floor(x).long() - (pad - 1)
    first_row = torch.floor(y).long() - (pad - 1)
    top, bottom = int(first_row.min()), int(first_row.max()) + 2 * pad
    if top < 0 or bottom > h:
        return None, erp_sampling_grid(lonlat, hw, mode)
    # Columns read: histogram of first taps (in [-pad, W - 1], shifted by pad), then widened
    # by the taps that follow, on the short per-column array.
    hist = torch.bincount((first_col + pad).flatten(), minlength=w + pad) > 0
    used = torch.zeros(w, dtype=torch.bool, device=x.device)
    for k in range(2 * pad):
        cols = torch.remainder(torch.arange(-pad, w, device=x.device) + k, w)
        used[cols[hist]] = True
    cols = torch.nonzero(used).flatten()
    # Unused columns between each used column and the next one, going round the seam.
    gaps = torch.diff(cols, append=cols[:1] + w) - 1
    if int(gaps.max()) == 0:
        return None, erp_sampling_grid(lonlat, hw, mode)
    # The window starts right after the longest run of unused columns.
    k = int(gaps.argmax())
    left = int(cols[(k + 1) % len(cols)])
    right = left + w - int(gaps[k])
    # Unwrap: a sample whose first tap lies left of the window is read one turn further on.
    xw = torch.where(first_col < left, x + (w - left), x - left)
    window = ErpWindow(top, bottom, left, right)
    return window, _normalise(xw, y - top, (bottom - top, right - left))


def sample_erp_planned(
    erp: torch.Tensor, plan: tuple[ErpWindow | None, torch.Tensor], mode: str
) -> torch.Tensor:
    """Sample ``erp`` with a plan from :func:`plan_erp_sampling` (made with the same mode)."""
    window, grid = plan
    if window is None:
        return sample_erp_grid(erp, grid, mode)
    return grid_sample_parallel(window.crop(erp), grid.to(erp.dtype), mode)


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
    if image.shape[0] == 1 and batch > 1:
        # One image, many grids (crops of one panorama): stack the grids into one tall grid
        # rather than expanding the image, which grid_sample would copy once per grid.
        tall = grid_sample_parallel(image, grid.reshape(1, batch * h, w, 2), mode)
        return tall.view(c, batch, h, w).transpose(0, 1).contiguous()

    def sample(img, g):
        return F.grid_sample(img, g, mode=mode, padding_mode="border", align_corners=False)

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
    grid = erp_sampling_grid(lonlat.to(erp.dtype), erp.shape[-2:], mode)
    return spec.restore(sample_erp_grid(erp, grid, mode))


@functools.lru_cache(maxsize=16)
def _erp_directions_cached(h: int, w: int, dtype: torch.dtype, device: torch.device):
    grid = erp_lonlat_grid((h, w), dtype=torch.float64, device=device)
    return lonlat_to_xyz(grid).to(dtype)


def shared_erp_directions(hw, dtype: torch.dtype, device=None) -> torch.Tensor:
    """:func:`erp_directions` without the copy: the cached tensor itself, for pano360's own
    geometry, which only reads it. Never modify it."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    return _erp_directions_cached(int(hw[0]), int(hw[1]), dtype, device)


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
    _, _, h, w = erp.shape
    if R.ndim == 2 and not R.requires_grad:
        key = tuple(R.detach().to("cpu", torch.float64).flatten().tolist())
        grid = _rotation_grid(key, h, w, mode, erp.dtype, erp.device)
        return spec.restore(sample_erp_grid(erp, grid[None], mode))
    dirs = shared_erp_directions((h, w), erp.dtype, erp.device)
    # Row vectors: (R^T d)^T = d^T R.
    src = torch.einsum("hwi,...ij->...hwj", dirs, R.to(erp.dtype))
    if src.ndim == 3:
        src = src[None]
    return spec.restore(sample_erp(erp, xyz_to_lonlat(src), mode=mode))


@functools.lru_cache(maxsize=8)
def _rotation_grid(key: tuple[float, ...], h: int, w: int, mode: str, dtype, device):
    R = torch.tensor(key, dtype=torch.float64, device=device).reshape(3, 3)
    src = shared_erp_directions((h, w), torch.float64, device) @ R
    return erp_sampling_grid(xyz_to_lonlat(src), (h, w), mode).to(dtype)
