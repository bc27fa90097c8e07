"""Drawing spherical boxes on ERP images, and blurring what is inside them.

Convention: see :mod:`pano360.geometry.conventions` and :mod:`pano360.geometry.boxes` (box
formats). Outlines are the boxes' true curves on the sphere, so they bend on the ERP, continue
across the seam and go around a pole; blurring is done on the sphere, in each box's own view.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from .._core import ShapeError, ValueRangeError, check_choice, check_erp
from ..geometry import (
    BOX_FORMATS,
    box_convert,
    box_corners,
    box_outline_pixels,
    cap_footprint,
    erp_to_perspective,
    fold_rows,
    lonlat_to_pixel,
    rotation_matrix,
    view_pixel_coords,
    window_cap,
)

__all__ = ["blur_regions_on_sphere", "draw_box_outlines"]

# Spacing of the points splatted along an outline, in pixels: dense enough for gap-free lines.
_STEP_PX = 0.5
# Samples per pixel and axis of the view a box is blurred in, averaged before blurring: the
# Gaussian spans a few such pixels, so more would only cost time.
_BLUR_SUPERSAMPLE = 4


def _boxes_per_image(boxes, batch: int, name: str = "boxes") -> list[torch.Tensor]:
    """A tensor (shared by every image) or a sequence of one tensor per image."""
    if isinstance(boxes, torch.Tensor):
        if boxes.ndim != 2:
            raise ShapeError(f"{name} must be (N, 4) or (N, 5), got {tuple(boxes.shape)}")
        return [boxes] * batch
    if isinstance(boxes, Sequence) and all(isinstance(b, torch.Tensor) for b in boxes):
        if len(boxes) != batch:
            raise ShapeError(
                f"{name} must hold one tensor per image: expected {batch}, got {len(boxes)}"
            )
        for b in boxes:
            if b.ndim != 2:
                raise ShapeError(f"{name} entries must be (N, 4) or (N, 5), got {tuple(b.shape)}")
        return list(boxes)
    raise TypeError(f"{name} must be a tensor or a sequence of tensors, got {type(boxes).__name__}")


def _densify(poly: torch.Tensor, step: float) -> torch.Tensor:
    """Points along a pixel polyline (K, 2), at most ``step`` apart, ends included."""
    if len(poly) < 2:
        return poly
    a, b = poly[:-1], poly[1:]
    steps = torch.ceil((b - a).norm(dim=-1) / step).clamp_min(1).long()
    seg = torch.repeat_interleave(torch.arange(len(a)), steps)
    first = torch.cumsum(steps, 0) - steps
    t = (torch.arange(int(steps.sum())) - first[seg]).to(poly.dtype) / steps[seg].to(poly.dtype)
    pts = a[seg] + t[:, None] * (b - a)[seg]
    return torch.cat((pts, poly[-1:]))


def _splat(points: torch.Tensor, hw: tuple[int, int], radius: float) -> torch.Tensor:
    """(H, W) bool: pixels whose centre is within ``radius`` of a point, plus each point's
    nearest pixel (so thin lines have no gaps)."""
    h, w = hw
    mask = torch.zeros(h * w, dtype=torch.bool)
    if len(points) == 0:
        return mask.view(h, w)
    r = math.ceil(radius)
    off = torch.arange(-r, r + 1)
    dy, dx = (o.flatten() for o in torch.meshgrid(off, off, indexing="ij"))
    x, y = points[:, :1].double(), points[:, 1:].double()
    cols = torch.round(x).long() + dx
    rows = torch.round(y).long() + dy
    near = ((cols - x) ** 2 + (rows - y) ** 2 <= radius**2) | ((dx == 0) & (dy == 0))
    rows, cols = fold_rows(rows[near], cols[near], (h, w))
    mask[rows * w + cols] = True
    return mask.view(h, w)


def _colors(color, n: int, c: int, dtype, device) -> torch.Tensor:
    """(n, C) colours from one colour (length C or 1) or one per box ((n, C))."""
    col = torch.as_tensor(color, dtype=dtype, device=device)
    if col.ndim == 1 and col.shape[0] in (1, c):
        return col.expand(c)[None].expand(n, c)
    if col.ndim == 2 and col.shape[0] == n and col.shape[1] in (1, c):
        return col.expand(n, c)
    raise ShapeError(
        f"color must be {c} values (or 1), or ({n}, {c}) for one colour per box, got "
        f"{tuple(col.shape)}"
    )


def _text_mask(text: str, size: int) -> torch.Tensor:
    """(h, w) bool mask of ``text`` in Pillow's default font."""
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(img).text((-left, -top), text, fill=255, font=font)
    return torch.from_numpy(np.asarray(img) > 127)


def draw_box_outlines(
    erp: torch.Tensor,
    boxes: torch.Tensor | Sequence[torch.Tensor],
    fmt: str = "bfov",
    color: Sequence[float] | torch.Tensor = (1.0, 0.0, 0.0),
    width_px: float = 2.0,
    labels: Sequence[str] | None = None,
    font_size: int | None = None,
) -> torch.Tensor:
    """Draw the outlines of spherical boxes on ERP images, as their true curves.

    Args:
        erp: (B, C, H, W) images with W == 2H, values in [0, 1]. Not modified.
        boxes: (N, 4) / (N, 5) boxes drawn on every image, or a sequence of B such tensors
            (one set per image).
        fmt: "bfov", "rbfov" or "erp_xyxy" (:data:`pano360.geometry.BOX_FORMATS`); an
            "erp_xyxy" box is drawn as its pixel rectangle.
        color: one colour (C values, or 1 for all channels) or, with a tensor of boxes, one
            colour per box as (N, C).
        width_px: line width in pixels (> 0).
        labels: optional text per box (with a tensor of boxes), in Pillow's default font and the
            box colour, starting at the column of the box's first corner (top-left as its
            camera sees it) just above the box's highest point.
        font_size: label height in pixels; default max(10, H / 40).

    Returns:
        (B, C, H, W) new tensor: ``erp`` with the outlines (and labels) painted over.

    Raises:
        ShapeError: ``erp`` not (B, C, H, W) with W == 2H; boxes, colours or labels not
            matching (wrong shapes or counts).
        ValueRangeError: ``width_px`` <= 0, or invalid box values.
        ValueError: unknown ``fmt``.

    Convention:
        Outlines are sampled along the boxes' great-circle edges
        (:func:`pano360.geometry.box_outline_pixels`) and splatted with discs of diameter
        ``width_px``; columns wrap, so a box across the seam is drawn at both ends of the image,
        and a splat past a pole continues on the mirrored row half a turn away. A box around a
        pole is drawn as the wavy curve it is on the ERP.

    Example:
        >>> erp = torch.zeros(1, 3, 32, 64)
        >>> out = draw_box_outlines(erp, torch.tensor([[math.pi, 0.0, 1.0, 0.8]]))
        >>> [bool(out[0, 0, :, col].any()) for col in (0, 63, 32)]  # both ends, not the middle
        [True, True, False]
    """
    check_erp(erp)
    check_choice(fmt, "fmt", BOX_FORMATS)
    if not width_px > 0:
        raise ValueRangeError(f"width_px must be > 0, got {width_px!r}")
    bsz, c, h, w = erp.shape
    per_image = _boxes_per_image(boxes, bsz)
    shared = isinstance(boxes, torch.Tensor)
    if labels is not None:
        if not shared:
            raise ShapeError("labels need a single (N, k) tensor of boxes, not one per image")
        if len(labels) != len(boxes):
            raise ShapeError(f"labels must hold one text per box: {len(boxes)}, got {len(labels)}")
    if not shared:
        _colors(color, 1, c, erp.dtype, erp.device)  # one colour only when boxes vary by image
    size = font_size or max(10, round(h / 40))
    out = erp.clone()
    for i, b in enumerate(per_image):
        cols = _colors(color, len(b), c, erp.dtype, erp.device)
        b = b.detach().cpu()  # rasterised on the CPU: a few thousand points per box
        pieces = box_outline_pixels(b, (h, w), fmt=fmt)
        if labels is not None:
            # Labels start above the first corner (top-left as the box's camera sees it).
            if fmt == "erp_xyxy":
                anchors = b[:, 0].double()
            else:
                corner = box_corners(b.double())[:, 0]
                anchors = lonlat_to_pixel(corner, (h, w))[:, 0]
        for k, polylines in enumerate(pieces):
            pts = torch.cat([_densify(p.double(), _STEP_PX) for p in polylines])
            mask = _splat(pts, (h, w), width_px / 2).to(erp.device)
            out[i, :, mask] = cols[k][:, None]
            if labels is not None and labels[k]:
                text = _text_mask(str(labels[k]), size).to(erp.device)
                x0 = float(anchors[k])
                y0 = min(float(p[:, 1].min()) for p in polylines)
                top = min(max(0, round(y0 - width_px) - text.shape[0]), max(0, h - text.shape[0]))
                rows = torch.arange(text.shape[0], device=erp.device)[:, None] + top
                cols_t = torch.arange(text.shape[1], device=erp.device)[None] + round(x0)
                rr, cc = rows.expand_as(text)[text], cols_t.expand_as(text)[text]
                keep = rr < h
                out[i, :, rr[keep], torch.remainder(cc[keep], w)] = cols[k][:, None]
    return out


def _gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (1, C, h, w), edges replicated."""
    r = max(1, math.ceil(3 * sigma))
    x = torch.arange(-r, r + 1, dtype=img.dtype, device=img.device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    ch = img.shape[1]
    img = F.pad(img, (r, r, r, r), mode="replicate")
    img = F.conv2d(img, k.view(1, 1, 1, -1).expand(ch, 1, 1, -1), groups=ch)
    return F.conv2d(img, k.view(1, 1, -1, 1).expand(ch, 1, -1, 1), groups=ch)


def blur_regions_on_sphere(
    erp: torch.Tensor,
    boxes: torch.Tensor | Sequence[torch.Tensor],
    fmt: str = "bfov",
    strength: float = 0.15,
    *,
    max_view_px: int = 1024,
) -> torch.Tensor:
    """Blur ERP images inside spherical boxes (privacy: faces, licence plates), on the sphere.

    Args:
        erp: (B, C, H, W) images with W == 2H. Not modified.
        boxes: (N, 4) / (N, 5) boxes applied to every image, or a sequence of B such tensors.
        fmt: "bfov", "rbfov" or "erp_xyxy"; an "erp_xyxy" box blurs the BFoV it converts to
            (:func:`pano360.geometry.box_convert`: the box whose tight ERP rectangle it is).
        strength: the blur's standard deviation as a fraction of the box's smaller fov (its
            geodesic width at the box centre), > 0. The default, 0.15, leaves a face a smooth
            blob.
        max_view_px: largest side of the tangent view each box is blurred in.

    Returns:
        (B, C, H, W) new tensor; pixels whose centre lies outside every box
        (:func:`pano360.geometry.sph_box_mask`) are exactly those of ``erp``.

    Raises:
        ShapeError: ``erp`` not (B, C, H, W) with W == 2H, or boxes not matching.
        ValueRangeError: ``strength`` <= 0, ``max_view_px`` < 8, or invalid box values.
        ValueError: unknown ``fmt``.

    Convention:
        Each box is rendered in its own pinhole view (aimed at its centre with its roll, with a
        margin of 3 standard deviations so the blur reads real surroundings) at up to 4 x 4
        samples per pixel of a few pixels per standard deviation, averaged, blurred with a
        Gaussian there and pasted back
        (:func:`pano360.geometry.perspective_to_erp`'s mapping) onto the pixels inside the box.
        Nothing is done on the ERP grid, so there is no seam at lon +-pi and no smear at the
        poles. Each box reads and writes only the ERP rows and columns its bounding cap reaches
        (:func:`pano360.geometry.window_cap`, :func:`pano360.geometry.cap_footprint`: a window
        that wraps the seam, or whole rows round a pole), so a box costs what its
        neighbourhood costs at any resolution, never a pass over the panorama. The
        Gaussian is isotropic in the view's plane, so towards the corners of very wide boxes
        (fov >~ 120 degrees) its angular width shrinks (by cos^2 of the angle off-centre).

    Example:
        >>> erp = torch.rand(1, 3, 32, 64)
        >>> out = blur_regions_on_sphere(erp, torch.tensor([[math.pi, 0.0, 1.0, 1.0]]))
        >>> out.shape, bool((out[..., 20:40] == erp[..., 20:40]).all())  # far from the box
        (torch.Size([1, 3, 32, 64]), True)
    """
    check_erp(erp)
    check_choice(fmt, "fmt", BOX_FORMATS)
    if not strength > 0 or not math.isfinite(strength):
        raise ValueRangeError(f"strength must be a finite number > 0, got {strength!r}")
    if int(max_view_px) != max_view_px or max_view_px < 8:
        raise ValueRangeError(f"max_view_px must be an integer >= 8, got {max_view_px!r}")
    bsz, _, h, w = erp.shape
    per_image = _boxes_per_image(boxes, bsz)
    out = erp.clone()
    for i, b in enumerate(per_image):
        if len(b) == 0:
            continue
        b5 = box_convert(b.detach(), fmt, "rbfov", erp_hw=(h, w)).double().cpu()
        for lon, lat, fx, fy, roll in b5.tolist():
            _blur_box(out[i], erp[i : i + 1], (lon, lat, fx, fy, roll), strength, max_view_px)
    return out


def _footprint_camera(rows: slice, cols: slice | torch.Tensor, hw, R: torch.Tensor):
    """Camera-frame components (x, y, z), each (r, c) float64, of the unit directions of the ERP
    pixel centres in ``[rows, cols]``: c = R^T d, i.e. d^T R.

    One fused pass per component from the rows' and columns' sines and cosines (d = (cos lat
    sin lon, sin lat, cos lat cos lon), so c_k = cos lat (sin lon R[0, k] + cos lon R[2, k]) +
    sin lat R[1, k]): no (r, c, 3) direction tensor and no per-pixel trigonometry.
    """
    h, w = hw
    r = torch.arange(h, dtype=torch.float64)[rows]
    c = torch.arange(w, dtype=torch.float64)[cols]
    lat = math.pi / 2 - (r + 0.5) * (math.pi / h)
    lon = (c + 0.5) * (2 * math.pi / w) - math.pi
    slat, clat = lat.sin()[:, None], lat.cos()[:, None]
    slon, clon = lon.sin(), lon.cos()
    return tuple(
        torch.addcmul(slat * R[1, k], clat, (slon * R[0, k] + clon * R[2, k])[None])
        for k in range(3)
    )


def _blurred_view(erp: torch.Tensor, box, strength: float, max_view_px: int):
    """The blurred pinhole view of one RBFoV box and its horizontal fov (radians).

    Aimed at the box with its roll, with a margin of 3 standard deviations; rendered at up to
    _BLUR_SUPERSAMPLE samples per pixel and axis, area-averaged to a few pixels per standard
    deviation, then blurred there.
    """
    lon, lat, fx, fy, roll = box
    w = erp.shape[-1]
    sigma = strength * min(fx, fy)  # in the view's plane: d tan(t) = dt at its centre
    half_x, half_y = math.tan(fx / 2) + 3 * sigma, math.tan(fy / 2) + 3 * sigma
    pixel = max(2 * math.pi / w, 2 * max(half_x, half_y) / max_view_px)
    pool = max(1, math.floor(sigma / pixel / 2))
    nx, ny = math.ceil(2 * half_x / (pixel * pool)), math.ceil(2 * half_y / (pixel * pool))
    # Square pixels of `pixel * pool` tangent units: tan(fov / 2) = nx pixel pool / 2. Plain
    # floats: the view reads only the ERP window it needs (no padded copy of the panorama).
    fov = 2 * math.atan(nx * pixel * pool / 2)
    ss = min(pool, _BLUR_SUPERSAMPLE)
    view = erp_to_perspective(erp, fov, (ny * ss, nx * ss), yaw=lon, pitch=lat, roll=roll)
    if ss > 1:
        view = F.avg_pool2d(view, ss)
    return _gaussian_blur(view, sigma / (pixel * pool)), fov


def _blur_box(out: torch.Tensor, erp: torch.Tensor, box, strength: float, max_view_px: int):
    """Blur one RBFoV box of ``erp`` (1, C, H, W) into ``out`` (C, H, W), in place.

    Only the ERP rows and columns the box's bounding cap reaches are read and written, so a
    box costs what its neighbourhood costs, not what the panorama does.
    """
    lon, lat, fx, fy, roll = box
    h, w = erp.shape[-2:]
    tx, ty = math.tan(fx / 2), math.tan(fy / 2)
    window = torch.tensor([-tx, -ty, tx, ty], dtype=torch.float64)
    centre, radius = window_cap(window, lon, lat, roll)
    rows, cols = cap_footprint(centre, float(radius), (h, w))
    R = rotation_matrix(lon, lat, roll, dtype=torch.float64)
    x, y, z = _footprint_camera(rows, cols, (h, w), R)
    # The box: |x| <= tan(fov_x / 2) z and |y| <= tan(fov_y / 2) z (sph_box_mask's half-spaces).
    inside = (x.abs() <= tx * z) & (y.abs() <= ty * z)
    at = inside.nonzero()
    if at.numel() == 0:
        return
    view, fov = _blurred_view(erp, box, strength, max_view_px)
    opts = {"dtype": erp.dtype, "device": erp.device}
    # Paste back onto the pixels inside the box only (perspective_to_erp's mapping).
    i, j = at.unbind(1)
    cam = torch.stack((x[i, j], y[i, j], z[i, j]), -1)
    tan_half = torch.tensor([math.tan(fov / 2)], dtype=torch.float64)
    points, _ = view_pixel_coords(cam[None], view.shape[-2:], tan_half)
    grid = (2 * points + 1) / points.new_tensor([view.shape[-1], view.shape[-2]]) - 1
    pasted = F.grid_sample(
        view, grid.to(**opts)[:, None], padding_mode="border", align_corners=False
    )[0, :, 0]
    rows_at = torch.arange(h)[rows][i]
    cols_at = (torch.arange(w)[cols] if isinstance(cols, slice) else cols)[j]
    out.view(out.shape[0], -1)[:, (rows_at * w + cols_at).to(erp.device)] = pasted
