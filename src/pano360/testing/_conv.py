"""The slow, obviously-correct tangent-plane convolution that SphereConv2d is checked against."""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["exact_conv2d"]


def _bilinear_on_sphere(img: np.ndarray, x: float, y: float) -> np.ndarray:
    """Bilinear sample of img (..., H, W) at pixel (x, y) with explicit seam and pole rules."""
    h, w = img.shape[-2:]
    x0, y0 = math.floor(x), math.floor(y)
    out = np.zeros(img.shape[:-2])
    for r, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for c, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            rr, cc = r, c
            while not 0 <= rr < h:  # past a pole: mirrored row, opposite meridian
                rr = -1 - rr if rr < 0 else 2 * h - 1 - rr
                cc += w // 2
            out = out + wy * wx * img[..., rr, cc % w]
    return out


def exact_conv2d(
    erp: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int = 1,
    dilation: int = 1,
    tap_spacing: float | None = None,
    groups: int = 1,
    output_grid: str = "sphere",
) -> torch.Tensor:
    """The slow, obviously-correct tangent-plane convolution (the "exact" output of SphConv).

    For every output pixel, the k x k taps of the kernel are put on the plane tangent to the
    sphere at that pixel's direction, projected onto the ERP, sampled bilinearly with explicit
    seam and pole rules, weighted and summed. Plain Python loops: meant for inputs of about
    16 x 32 in tests, to check fast layers against.

    Args:
        erp: (B, C_in, H, W), W even.
        weight: (C_out, C_in / groups, kh, kw), nn.Conv2d's layout (cross-correlation).
        bias: (C_out,) or None.
        stride: output is (ceil(H / s), ceil(W / s)) with ERP pixel centres at that resolution.
        dilation: tap pitch multiplier.
        tap_spacing: angle from the centre tap to its horizontal neighbour (default 2 pi / W,
            at most pi / 4).
        groups: as nn.Conv2d.
        output_grid: "sphere" or "planar" (see below).

    Returns:
        (B, C_out, Ho, Wo) float64.

    Convention:
        Output pixel (i, j) looks at lon = -pi + 2 pi (j + 0.5) / Wo, lat = pi/2 - pi (i + 0.5)
        / Ho on the sphere grid, and at input pixel (s i, s j), lon = -pi + 2 pi (s j + 0.5) /
        W, lat = pi/2 - pi (s i + 0.5) / H, on the planar grid. Tap (a, b) sits at
        tangent-plane point (u, v) = ((b - (kw-1)/2) d t,
        -(a - (kh-1)/2) d t) with t = tan(tap_spacing): u to the right, v up, in the frame of a
        camera aimed at the output pixel with roll 0. A tap exactly on a pole takes the output
        pixel's longitude.
    """
    x = erp.detach().double().cpu().numpy()
    wt = weight.detach().double().cpu().numpy()
    b, _, h, w = x.shape
    c_out, c_group, kh, kw = wt.shape
    ho, wo = -(-h // stride), -(-w // stride)
    # Default: one pixel at the equator, capped at pi/4 for tiny maps (as SphereConv2d).
    spacing = min(2 * math.pi / w, math.pi / 4) if tap_spacing is None else tap_spacing
    t = math.tan(spacing) * dilation
    out = np.zeros((b, c_out, ho, wo))
    per_group = c_out // groups
    planar = output_grid == "planar"
    for i in range(ho):
        lat0 = math.pi / 2 - math.pi * ((stride * i + 0.5) / h if planar else (i + 0.5) / ho)
        for j in range(wo):
            lon0 = -math.pi + 2 * math.pi * ((stride * j + 0.5) / w if planar else (j + 0.5) / wo)
            # Camera aimed at (lon0, lat0), roll 0: right, up and forward axes in world xyz.
            right = np.array([math.cos(lon0), 0.0, -math.sin(lon0)])
            up = np.array(
                [-math.sin(lat0) * math.sin(lon0), math.cos(lat0), -math.sin(lat0) * math.cos(lon0)]
            )
            fwd = np.array(
                [math.cos(lat0) * math.sin(lon0), math.sin(lat0), math.cos(lat0) * math.cos(lon0)]
            )
            acc = np.zeros((b, c_out))
            for a in range(kh):
                for bb in range(kw):
                    u = (bb - (kw - 1) / 2) * t
                    v = -(a - (kh - 1) / 2) * t
                    d = u * right + v * up + fwd
                    rho = math.hypot(d[0], d[2])
                    # On a pole: the output pixel's meridian (keeps yaw equivariance).
                    lon = lon0 if rho <= 1e-12 * abs(d[1]) else math.atan2(d[0], d[2])
                    lat = math.atan2(d[1], rho)
                    px = (lon / (2 * math.pi) + 0.5) * w - 0.5
                    py = (-lat / math.pi + 0.5) * h - 0.5
                    sample = _bilinear_on_sphere(x, px, py)  # (B, C_in)
                    for g in range(groups):
                        ins = sample[:, g * c_group : (g + 1) * c_group]
                        ws = wt[g * per_group : (g + 1) * per_group, :, a, bb]
                        acc[:, g * per_group : (g + 1) * per_group] += ins @ ws.T
            out[:, :, i, j] = acc
    if bias is not None:
        out += bias.detach().double().cpu().numpy()[None, :, None, None]
    return torch.from_numpy(out)
