"""Fixation maps: gaze fixations on the sphere to saliency maps, for images and videos.

A fixation is a direction (lon, lat) in radians. Its saliency is a Gaussian of the *geodesic*
(great-circle) distance on the sphere, so a blob keeps its angular size at every latitude (it
stretches horizontally on the ERP grid near the poles) and wraps across the seam.

Convention: see :mod:`pano360.geometry.conventions` (lon right in [-pi, pi), lat up; pixel
centres at lon = ((x + 0.5) / W - 0.5) 2pi, lat = (0.5 - (y + 0.5) / H) pi).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .._core import ShapeError, ValueRangeError, check_choice, check_hw, check_positive_int
from ..geometry import erp_directions, lonlat_to_pixel_index, lonlat_to_xyz, pixel_solid_angle

__all__ = [
    "FIXATION_PLACEMENTS",
    "NORMALIZATIONS",
    "SIGMA_HEAD_DEG",
    "SIGMA_HEAD_EYE_DEG",
    "binary_fixation_map",
    "fixation_map",
    "frame_fixation_indices",
    "normalize_saliency",
    "video_fixation_maps",
]

#: Gaussian width (degrees) of the Salient360! head+eye maps: about the fovea.
SIGMA_HEAD_EYE_DEG: float = 2.0
#: Gaussian width (degrees) of the Salient360! head-only maps (viewport centre).
SIGMA_HEAD_DEG: float = 3.34

#: Normalisations of :func:`normalize_saliency` and the map builders.
NORMALIZATIONS: tuple[str, ...] = ("sum", "max", "density", "none")
#: Which pixel a fixation falls in (see :func:`binary_fixation_map`): ``"cell"``, the pixel
#: whose cell contains it, or ``"salient360"``, where the Salient360! tools put it.
FIXATION_PLACEMENTS: tuple[str, ...] = ("cell", "salient360")

# Fixations evaluated at once: bounds the (K, rows, W) temporary.
_CHUNK = 32


def normalize_saliency(maps: torch.Tensor, normalize: str = "sum") -> torch.Tensor:
    """Normalise each map of a batch.

    Args:
        maps: (B, 1, H, W) non-negative maps, W == 2H for ``"density"``.
        normalize: ``"sum"``: pixel values sum to 1 (a probability per pixel, the form of
            Salient360! maps); ``"max"``: the largest value is 1 (for display);
            ``"density"``: a probability density per steradian, so that
            ``(maps * pixel_solid_angle(hw)).sum() == 1``; ``"none"``: unchanged.

    Returns:
        (B, 1, H, W). A map that is zero everywhere stays zero (nothing to normalise).

    Raises:
        ValueError: unknown ``normalize``.
    """
    check_choice(normalize, "normalize", NORMALIZATIONS)
    if normalize == "none":
        return maps
    if normalize == "max":
        total = maps.amax(dim=(-2, -1), keepdim=True)
    elif normalize == "sum":
        total = maps.sum(dim=(-2, -1), keepdim=True)
    else:
        area = pixel_solid_angle(maps.shape[-2:], dtype=maps.dtype, device=maps.device)
        total = (maps * area).sum(dim=(-2, -1), keepdim=True)
    return maps / torch.where(total > 0, total, torch.ones_like(total))


def _as_list(value, name: str, last: int | None) -> list[torch.Tensor]:
    """A batch given as one tensor or a sequence of tensors, as a list of per-map tensors."""
    if isinstance(value, torch.Tensor):
        dims = 2 if last else 1
        if value.ndim == dims:
            return [value]
        if value.ndim == dims + 1:
            return list(value.unbind(0))
        shape = "(N, 2) or (B, N, 2)" if last else "(N,) or (B, N)"
        raise ShapeError(f"{name} must be {shape}, got {tuple(value.shape)}")
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        items = [torch.as_tensor(v) for v in value]
        for i, t in enumerate(items):
            ok = t.ndim == 2 and t.shape[-1] == last if last else t.ndim == 1
            if not ok:
                want = f"(N, {last})" if last else "(N,)"
                raise ShapeError(f"{name}[{i}] must be {want}, got {tuple(t.shape)}")
        return items
    raise TypeError(f"{name} must be a tensor or a sequence of tensors, got {type(value).__name__}")


def _check_lonlat(lonlat: torch.Tensor, name: str) -> None:
    if not lonlat.is_floating_point():
        raise TypeError(f"{name} must hold floating-point (lon, lat) radians, got {lonlat.dtype}")
    if lonlat.shape[-1] != 2:
        raise ShapeError(f"{name} must be (N, 2) (lon, lat), got {tuple(lonlat.shape)}")
    values = lonlat.detach()
    if not torch.isfinite(values).all():
        raise ValueRangeError(f"{name} must be finite, got a NaN or infinite coordinate")
    lat = values[..., 1]
    bad = (lat < -math.pi / 2 - 1e-6) | (lat > math.pi / 2 + 1e-6)
    if bad.any():
        i = int(bad.nonzero()[0, 0])
        raise ValueRangeError(
            f"{name} latitudes must be in [-pi/2, pi/2] radians, got {float(lat[i]):.6g} at "
            f"index {i}"
        )


def _geodesic_sq(chord_sq: torch.Tensor) -> torch.Tensor:
    """Squared great-circle angle from the squared chord c^2 between unit vectors.

    d = 2 asin(c / 2), with the series d^2 = c^2 + c^4 / 12 near 0 so that it stays accurate
    and differentiable when a fixation sits on a pixel centre.
    """
    chord_sq = chord_sq.clamp(0.0, 4.0)
    small = chord_sq < 1e-6
    safe = torch.where(small, torch.ones_like(chord_sq), chord_sq)
    exact = (2 * torch.asin((safe.sqrt() / 2).clamp(max=1.0))).square()
    return torch.where(small, chord_sq + chord_sq.square() / 12, exact)


def _row_band(lat_lo: float, lat_hi: float, radius: float, h: int) -> tuple[int, int]:
    """Rows [r0, r1) whose centre latitude lies within ``radius`` of [lat_lo, lat_hi]."""
    step = math.pi / h
    # Row i's centre is at lat = pi/2 - (i + 0.5) step; a point at geodesic distance <= radius
    # from a fixation is within radius in latitude.
    r0 = math.floor((math.pi / 2 - lat_hi - radius) / step - 0.5)
    r1 = math.ceil((math.pi / 2 - lat_lo + radius) / step - 0.5) + 1
    return max(r0, 0), min(r1, h)


def _splat(
    lonlat: torch.Tensor,
    weights: torch.Tensor,
    hw: tuple[int, int],
    sigma: float,
    truncate: float | None,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """Sum of weighted geodesic Gaussians of N fixations: an (H, W) map."""
    h, w = hw
    out = torch.zeros(h, w, dtype=dtype, device=device)
    if lonlat.shape[0] == 0:
        return out
    dirs = erp_directions(hw, dtype=dtype, device=device)
    lonlat = lonlat.to(dtype=dtype, device=device)
    weights = weights.to(dtype=dtype, device=device)
    flat = out.view(-1)
    # Sorting by latitude keeps each chunk's band of rows narrow.
    order = torch.argsort(lonlat[:, 1].detach())
    radius = math.inf if truncate is None else truncate * sigma
    for start in range(0, lonlat.shape[0], _CHUNK):
        idx = order[start : start + _CHUNK]
        chunk = lonlat[idx]
        fix = lonlat_to_xyz(chunk)  # (K, 3)
        if radius >= math.pi:
            dot = dirs.reshape(-1, 3) @ fix.T  # (H W, K)
            g = torch.exp(_geodesic_sq(2 - 2 * dot) / (-2 * sigma * sigma))
            flat += g @ weights[idx]
            continue
        lats = chunk[:, 1].detach()
        r0, r1 = _row_band(float(lats.min()), float(lats.max()), radius, h)
        if r0 >= r1:
            continue
        dot = dirs[r0:r1].reshape(-1, 3) @ fix.T  # (P, K)
        # Only pixels within the cut-off radius: a few percent of the band.
        pix, k = (dot.detach() >= math.cos(radius)).nonzero().unbind(-1)
        d2 = _geodesic_sq(2 - 2 * dot[pix, k])
        g = torch.exp(d2 / (-2 * sigma * sigma)) * weights[idx][k]
        flat = flat.index_add(0, pix + r0 * w, g)
    return flat.view(h, w)


def fixation_map(
    fixations: torch.Tensor | Sequence[torch.Tensor],
    hw: Sequence[int],
    sigma_deg: float = SIGMA_HEAD_EYE_DEG,
    *,
    weights: torch.Tensor | Sequence[torch.Tensor] | None = None,
    normalize: str = "sum",
    truncate: float | None = 5.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Saliency map of fixations: a Gaussian of geodesic distance around each, summed.

    Args:
        fixations: (N, 2) or (B, N, 2) tensor of (lon, lat) in radians, or a sequence of B
            tensors (N_i, 2) (a different number of fixations per map).
        hw: (H, W) of the ERP map, W == 2H.
        sigma_deg: standard deviation of the Gaussian in degrees of arc (geodesic).
            Defaults to :data:`SIGMA_HEAD_EYE_DEG` (2, head+eye data); use
            :data:`SIGMA_HEAD_DEG` (3.34) for head-only data.
        weights: optional weight of each fixation (e.g. its duration), shaped like
            ``fixations`` without the last dimension; non-negative.
        normalize: see :func:`normalize_saliency` (``"sum"``, ``"max"``, ``"density"``,
            ``"none"``).
        truncate: the Gaussian is cut to zero beyond ``truncate`` sigmas (5 sigmas drop values
            below 4e-6 of the peak and make maps fast); None evaluates it everywhere.
        dtype, device: of the returned map.

    Returns:
        (B, 1, H, W) non-negative maps. A map without fixations is zero. Differentiable with
        respect to ``fixations`` and ``weights``.

    Raises:
        ShapeError: ``fixations`` or ``weights`` have the wrong shape, or ``hw`` is not 2:1.
        ValueRangeError: a latitude outside [-pi/2, pi/2], a non-finite coordinate, a negative
            weight, or ``sigma_deg`` / ``truncate`` not positive.
        ValueError: unknown ``normalize``.

    Convention:
        Pixel (i, j) holds ``sum_k w_k exp(-d_k^2 / (2 sigma^2))`` with d_k the great-circle
        angle between the pixel centre's direction and fixation k (radians), before
        normalisation. Longitudes wrap (any finite lon is accepted); the seam and the poles
        need no special case since the distance is measured on the sphere.

    Example:
        >>> m = fixation_map(torch.tensor([[0.0, 0.0]]), (32, 64), sigma_deg=10.0)
        >>> m.shape, round(float(m.sum()), 4)
        (torch.Size([1, 1, 32, 64]), 1.0)
        >>> divmod(int(m.argmax()), 64) in [(15, 31), (15, 32), (16, 31), (16, 32)]
        True
    """
    h, w = check_hw(hw, "hw", erp=True)
    if not (math.isfinite(sigma_deg) and sigma_deg > 0):
        raise ValueRangeError(f"sigma_deg must be a positive number of degrees, got {sigma_deg}")
    if truncate is not None and not (math.isfinite(truncate) and truncate > 0):
        raise ValueRangeError(
            f"truncate must be a positive number of sigmas or None, got {truncate}"
        )
    check_choice(normalize, "normalize", NORMALIZATIONS)
    device = torch.device(device) if device is not None else None
    fix_list = _as_list(fixations, "fixations", 2)
    if not fix_list:
        raise ShapeError("fixations must hold at least one map (B >= 1), got an empty sequence")
    if weights is None:
        w_list = [torch.ones(f.shape[0], dtype=dtype) for f in fix_list]
    else:
        w_list = _as_list(weights, "weights", None)
        if len(w_list) != len(fix_list):
            raise ShapeError(
                f"weights must hold one entry per map ({len(fix_list)}), got {len(w_list)}"
            )
    sigma = math.radians(sigma_deg)
    maps = []
    for b, (fix, wt) in enumerate(zip(fix_list, w_list, strict=True)):
        _check_lonlat(fix, f"fixations[{b}]" if len(fix_list) > 1 else "fixations")
        if wt.shape[0] != fix.shape[0]:
            raise ShapeError(
                f"weights[{b}] must have one weight per fixation ({fix.shape[0]}), got "
                f"{wt.shape[0]}"
            )
        if bool((wt.detach() < 0).any()) or not bool(torch.isfinite(wt.detach()).all()):
            raise ValueRangeError(f"weights[{b}] must be finite and non-negative")
        dev = device if device is not None else fix.device
        maps.append(_splat(fix, wt, (h, w), sigma, truncate, dtype, dev))
    return normalize_saliency(torch.stack(maps)[:, None], normalize)


def binary_fixation_map(
    fixations: torch.Tensor | Sequence[torch.Tensor],
    hw: Sequence[int],
    *,
    counts: bool = False,
    placement: str = "cell",
    normalized: bool = False,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Pixels hit by fixations: the discrete fixation map used by NSS and AUC metrics.

    Args:
        fixations: (N, 2) or (B, N, 2) tensor of (lon, lat) radians, or a sequence of B
            (N_i, 2) tensors. With ``normalized=True``: Salient360! normalised (u, v) in
            [0, 1], u from the left edge and v from the top edge (as stored in the dataset's
            scanpath files).
        hw: (H, W) of the ERP map, W == 2H.
        counts: count the fixations per pixel instead of marking hit pixels with 1.
        placement: ``"cell"`` (the pixel whose cell contains the fixation) or
            ``"salient360"`` (the pixel the Salient360! tools put it in, see Convention).
        normalized: the fixations are normalised (u, v) rather than (lon, lat).

    Returns:
        (B, 1, H, W) with 1 (or the count) on pixels containing a fixation and 0 elsewhere.

    Raises:
        ShapeError: wrong ``fixations`` shape or ``hw`` not 2:1.
        ValueRangeError: a latitude outside [-pi/2, pi/2] (or u, v outside [0, 1]) or a
            non-finite coordinate.
        ValueError: unknown ``placement``.

    Convention:
        ``"cell"``: a fixation falls in the pixel whose cell contains it: column
        floor((lon / 2pi + 0.5) W) mod W (lon wraps; lon = -pi is column 0), row
        floor((0.5 - lat / pi) H), with lat = -pi/2 in the last row; for (u, v) column
        floor(u W) mod W and row min(floor(v H), H - 1). Mind float32 inputs on the seam:
        float32(-pi) is slightly below -pi, so it falls in the last column.

        ``"salient360"``: both Salient360! tools (the 2018 Python tool and the toolbox's
        ``toFixationMap``) put (u, v) at column ``int(u W - 1)`` and row ``int(v H - 1)``
        (float64, truncated towards zero): one pixel left of and above the cell for u W >= 1
        and v H >= 1, the cell itself below that, and u = 0 (v = 0) gives -1, which NumPy
        indexing reads as the last column (the last row: the south pole). From (lon, lat),
        u = ((lon + pi) mod 2pi) / 2pi and v = 0.5 - lat / pi (the inverse of
        :func:`pano360.data.salient360_to_lonlat`); that round trip can move a u W that is an
        exact integer by one ulp, and so the pixel, so give the files' own (u, v) with
        ``normalized=True`` to match the tools exactly.

    Example:
        >>> m = binary_fixation_map(torch.tensor([[-math.pi, math.pi / 2]], dtype=torch.float64),
        ...                         (4, 8))
        >>> m[0, 0, 0, 0].item(), m.sum().item()
        (1.0, 1.0)
        >>> uv = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
        >>> [divmod(int(binary_fixation_map(uv, (4, 8), placement=p, normalized=True).argmax()),
        ...         8) for p in FIXATION_PLACEMENTS]
        [(2, 4), (1, 3)]
    """
    h, w = check_hw(hw, "hw", erp=True)
    check_choice(placement, "placement", FIXATION_PLACEMENTS)
    fix_list = _as_list(fixations, "fixations", 2)
    if not fix_list:
        raise ShapeError("fixations must hold at least one map (B >= 1), got an empty sequence")
    maps = []
    for b, fix in enumerate(fix_list):
        name = f"fixations[{b}]" if len(fix_list) > 1 else "fixations"
        if normalized:
            _check_uv(fix, name)
        else:
            _check_lonlat(fix, name)
        dev = torch.device(device) if device is not None else fix.device
        fix = fix.detach().to(device=dev, dtype=torch.float64)
        row, col = _pixels(fix, h, w, placement, normalized)
        flat = torch.zeros(h * w, dtype=dtype, device=dev)
        flat.index_add_(0, row * w + col, torch.ones(fix.shape[0], dtype=dtype, device=dev))
        maps.append(flat.view(h, w) if counts else (flat > 0).to(dtype).view(h, w))
    return torch.stack(maps)[:, None]


def _check_uv(uv: torch.Tensor, name: str) -> None:
    if not uv.is_floating_point():
        raise TypeError(f"{name} must hold floating-point normalised (u, v), got {uv.dtype}")
    values = uv.detach()
    bad = ~torch.isfinite(values) | (values < 0) | (values > 1)
    if bool(bad.any()):
        i = int(bad.any(dim=-1).nonzero()[0, 0])
        raise ValueRangeError(
            f"{name} must be normalised (u, v) in [0, 1], got {values[i].tolist()} at index {i}"
        )


def _pixels(
    fix: torch.Tensor, h: int, w: int, placement: str, normalized: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column of each float64 fixation (lon, lat) or (u, v) under a placement."""
    if not normalized and placement == "cell":
        return lonlat_to_pixel_index(fix, (h, w))
    if normalized:
        u, v = fix[:, 0], fix[:, 1]
    else:
        u = torch.remainder(fix[:, 0] + math.pi, 2 * math.pi) / (2 * math.pi)
        v = 0.5 - fix[:, 1] / math.pi
    if placement == "cell":
        col = torch.remainder(torch.floor(u * w), w).long()
        row = torch.floor(v * h).long().clamp(0, h - 1)
        return row, col
    # The tools: (u W - 1, v H - 1) in float64, truncated towards zero; -1 indexes the end.
    col = torch.trunc(u * w - 1).long()
    row = torch.trunc(v * h - 1).long()
    return torch.where(row < 0, row + h, row), torch.where(col < 0, col + w, col)


def frame_fixation_indices(
    start_s: torch.Tensor,
    num_frames: int,
    fps: float,
    *,
    end_s: torch.Tensor | None = None,
    window_s: float = 0.2,
) -> list[torch.Tensor]:
    """Which fixations each video frame pools: those overlapping the frame's time window.

    Args:
        start_s: (N,) fixation start times in seconds from the start of the video.
        num_frames: number of frames T.
        fps: frames per second of the video.
        end_s: (N,) fixation end times (start + duration), or None for instantaneous samples.
        window_s: length of the window in seconds (default 0.2 s = 200 ms), centred on the
            frame's display interval.

    Returns:
        T long tensors of fixation indices.

    Raises:
        ShapeError: ``start_s`` and ``end_s`` are not matching 1-D tensors.
        ValueRangeError: ``fps`` or ``window_s`` not positive, ``num_frames`` not a positive
            integer, an end before its start, or a non-finite time.

    Convention:
        Frame k is shown during [k / fps, (k + 1) / fps); its window is
        [c - window_s / 2, c + window_s / 2) with c = (k + 0.5) / fps. A fixation [s, e]
        belongs to frame k if it overlaps the window: s < window end and (s >= window start
        or e > window start).

    Example:
        >>> frame_fixation_indices(torch.tensor([0.0, 0.5]), 3, 2.0, window_s=0.5)
        [tensor([0]), tensor([1]), tensor([], dtype=torch.int64)]
    """
    num_frames = check_positive_int(num_frames, "num_frames")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueRangeError(f"fps must be a positive number of frames per second, got {fps}")
    if not (math.isfinite(window_s) and window_s > 0):
        raise ValueRangeError(f"window_s must be a positive number of seconds, got {window_s}")
    start = torch.as_tensor(start_s, dtype=torch.float64)
    end = start if end_s is None else torch.as_tensor(end_s, dtype=torch.float64)
    if start.ndim != 1 or end.shape != start.shape:
        raise ShapeError(
            f"start_s and end_s must be matching (N,) tensors, got {tuple(start.shape)} and "
            f"{tuple(end.shape)}"
        )
    if not (torch.isfinite(start).all() and torch.isfinite(end).all()):
        raise ValueRangeError("fixation times must be finite")
    if bool((end < start).any()):
        i = int((end < start).nonzero()[0, 0])
        raise ValueRangeError(
            f"end_s must not be before start_s, got start {float(start[i])} and end "
            f"{float(end[i])} s at index {i}"
        )
    centre = (torch.arange(num_frames, dtype=torch.float64) + 0.5) / fps
    lo, hi = (centre - window_s / 2)[:, None], (centre + window_s / 2)[:, None]
    inside = (start[None] < hi) & ((start[None] >= lo) | (end[None] > lo))
    return [row.nonzero()[:, 0] for row in inside]


def video_fixation_maps(
    fixations: torch.Tensor,
    start_s: torch.Tensor,
    num_frames: int,
    fps: float,
    hw: Sequence[int],
    sigma_deg: float = SIGMA_HEAD_EYE_DEG,
    *,
    end_s: torch.Tensor | None = None,
    window_s: float = 0.2,
    weights: torch.Tensor | None = None,
    frames: Sequence[int] | None = None,
    normalize: str = "sum",
    truncate: float | None = 5.0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Per-frame saliency maps of a video: each frame pools the fixations of its time window.

    Args:
        fixations: (N, 2) (lon, lat) radians of every fixation of every observer.
        start_s: (N,) start times in seconds; ``end_s`` optional (N,) end times.
        num_frames, fps: frame count and rate of the video.
        hw: (H, W) of the maps, W == 2H.
        sigma_deg: Gaussian width in degrees (2 for head+eye, 3.34 for head-only data).
        window_s: pooling window in seconds (default 200 ms); see
            :func:`frame_fixation_indices` for which fixations a frame pools.
        weights: optional (N,) weight per fixation.
        frames: compute only these frame indices (in this order); default all T frames.
        normalize, truncate, dtype: as in :func:`fixation_map`.

    Returns:
        (T', 1, H, W) maps, T' = len(frames) or ``num_frames``. Frames without fixations are 0.

    Raises:
        The errors of :func:`fixation_map` and :func:`frame_fixation_indices`;
        ValueRangeError: a frame index outside [0, num_frames).

    Convention:
        As :func:`fixation_map`; frame k of the video is entry k of the result.
    """
    per_frame = frame_fixation_indices(start_s, num_frames, fps, end_s=end_s, window_s=window_s)
    fix = _as_list(fixations, "fixations", 2)
    if len(fix) != 1:
        raise ShapeError(f"fixations must be (N, 2), got {tuple(torch.as_tensor(fixations).shape)}")
    fix = fix[0]
    n = torch.as_tensor(start_s).shape[0]
    if fix.shape[0] != n:
        raise ShapeError(
            f"fixations and start_s must have the same length, got {fix.shape[0]} and {n}"
        )
    wts = torch.ones(fix.shape[0], dtype=dtype) if weights is None else torch.as_tensor(weights)
    if wts.shape != (fix.shape[0],):
        raise ShapeError(f"weights must be ({fix.shape[0]},), got {tuple(wts.shape)}")
    order = list(range(num_frames)) if frames is None else [int(k) for k in frames]
    if not order:
        raise ValueRangeError("frames must name at least one frame, got an empty sequence")
    for k in order:
        if not 0 <= k < num_frames:
            raise ValueRangeError(f"frames must be in [0, {num_frames}), got {k}")
    return fixation_map(
        [fix[per_frame[k]] for k in order],
        hw,
        sigma_deg,
        weights=[wts[per_frame[k]] for k in order],
        normalize=normalize,
        truncate=truncate,
        dtype=dtype,
        device=fix.device,
    )
