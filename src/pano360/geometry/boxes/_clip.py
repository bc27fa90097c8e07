"""Clipping of convex spherical polygons by half-spaces, and their areas: the core of the exact
spherical IoU.

Polygons are batches of unit vertices (P, K, 3) with the inward unit normals of their outgoing
edges' planes (P, K, 3) and a vertex count (P,): vertex i's edge runs to vertex i + 1 (mod
count) in the direction v x e_i, and the region is where n . d >= 0 for every edge normal n.
"""

from __future__ import annotations

import torch

__all__: list[str] = []


def _clip_polygons(
    verts: torch.Tensor, edges: torch.Tensor, planes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clip convex spherical polygons by half-spaces n . d >= 0 (Sutherland-Hodgman).

    Args:
        verts: (P, 4, 3) unit vertices of convex quadrilaterals, in the order of
            :func:`_corners_xyz` (edge i runs from vertex i to vertex i + 1 in direction v x e_i).
        edges: (P, 4, 3) inward unit normals of the planes of those edges.
        planes: (P, J, 3) inward unit normals of the clipping planes.

    Returns:
        ``(verts, edges, count)``: (P, K, 3) vertices and the inward normals of their outgoing
        edges (the first ``count`` valid, K <= 12), and (P,) counts.

    A new vertex is the intersection of the edge's plane with the clipping plane,
    +-(e x n) / |e x n|, on the side of the edge's middle: unlike interpolating between the
    edge's ends this stays accurate for edges of nearly 180 degrees (boxes with fov near pi).
    """
    n_pairs = verts.shape[0]
    poly, edge = verts, edges
    count = torch.full((n_pairs,), 4, dtype=torch.long, device=verts.device)
    for j in range(planes.shape[1]):
        k = poly.shape[1]
        idx = torch.arange(k, device=verts.device)
        n = planes[:, j : j + 1].expand(-1, k, -1)
        d = (poly * n).sum(-1)  # (P, K)
        valid = idx[None] < count[:, None]
        nxt = torch.remainder(idx[None] + 1, count.clamp_min(1)[:, None])
        v_next = torch.gather(poly, 1, nxt[..., None].expand(-1, -1, 3))
        # Towards the edge's middle: a + b, or, where a and b are nearly antipodal and a + b
        # is too short to trust, the midpoint found from the edge's plane (rare: fov near pi).
        mid = poly + v_next
        short = (mid.norm(dim=-1) <= 1e-6).detach()
        if short.any():
            rows = torch.nonzero(short.any(1)).flatten()
            _, _, exact_mid = _arcs(poly[rows], edge[rows], nxt[rows])
            mid = mid.index_put((rows,), torch.where(short[rows, :, None], exact_mid, mid[rows]))
        d_next = torch.gather(d, 1, nxt)
        inside = (d >= 0).detach()
        crosses = inside != (d_next >= 0).detach()
        line = torch.linalg.cross(edge, n)
        norm = line.norm(dim=-1)
        parallel = (norm < 1e-12).detach()
        line = line / torch.where(parallel, torch.ones_like(norm), norm)[..., None]
        sign = torch.where((line * mid).sum(-1) >= 0, 1.0, -1.0).to(poly.dtype)
        hit = line * sign[..., None]
        # The edge lies in the clipping plane (up to rounding): either end is on both planes.
        end = torch.where((d.abs() <= d_next.abs())[..., None], poly, v_next)
        hit = torch.where(parallel[..., None], end, hit)
        # Outgoing edges: a kept vertex keeps its edge; an exit point starts an edge along the
        # clipping plane, an entry point continues along the crossed edge.
        hit_edge = torch.where(inside[..., None], n, edge)
        cand = torch.stack((poly, hit), dim=2).flatten(1, 2)  # (P, 2K, 3)
        cand_edge = torch.stack((edge, hit_edge), dim=2).flatten(1, 2)
        keep = torch.stack((inside & valid, crosses & valid), dim=2).flatten(1, 2)
        # Stable compaction: kept entries first, in order. A convex quadrilateral clipped by
        # four planes has at most 8 vertices; 12 leaves room for repeats from rounding.
        count = keep.sum(1).clamp(max=12)
        width = max(1, int(count.max()))
        order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices[:, :width, None]
        poly = torch.gather(cand, 1, order.expand(-1, -1, 3))
        edge = torch.gather(cand_edge, 1, order.expand(-1, -1, 3))
    return poly, edge, count


def _arcs(poly: torch.Tensor, edge: torch.Tensor, nxt: torch.Tensor):
    """Next vertex, angle and midpoint of each polygon edge (travel direction v x e)."""
    v_next = torch.gather(poly, 1, nxt[..., None].expand(-1, -1, 3))
    travel = torch.linalg.cross(poly, edge)
    phi = torch.atan2((v_next * travel).sum(-1), (v_next * poly).sum(-1))
    mid = poly * torch.cos(phi / 2)[..., None] + travel * torch.sin(phi / 2)[..., None]
    return v_next, phi, mid


def _polygon_area(poly: torch.Tensor, edge: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Solid angle of convex spherical polygons: a fan of signed triangles from an inner point.

    Each triangle (r, a, b) has tan(omega / 2) = r . (a x b) / (1 + r.a + a.b + b.r)
    (Van Oosterom and Strackee). Every edge is split at its midpoint (found from the edge's
    plane), so no triangle side comes near 180 degrees: a side between nearly antipodal
    vertices would be defined by them only to rounding over their distance from antipodal.
    The point r is the direction of the boundary's integral of the position vector (sum over
    edges of 2 sin(phi / 2) times the arc midpoint), which ignores repeated vertices and stays
    central in lune-like polygons. Triple products are taken of differences for precision on
    tiny triangles.
    """
    k = poly.shape[1]
    idx = torch.arange(k, device=poly.device)
    valid = (idx[None] < count[:, None]) & (count[:, None] >= 3)
    nxt = torch.remainder(idx[None] + 1, count.clamp_min(1)[:, None])
    b, phi, mid = _arcs(poly, edge, nxt)
    weight = torch.where(valid, 2 * torch.sin(phi / 2), torch.zeros_like(phi))
    r = (mid * weight[..., None]).sum(1, keepdim=True)
    r = r / r.norm(dim=-1, keepdim=True).clamp_min(1e-300)

    def triangle(a, c):
        triple = (r * torch.linalg.cross(a - r, c - r)).sum(-1)
        denom = 1 + (r * a).sum(-1) + (a * c).sum(-1) + (c * r).sum(-1)
        return 2 * torch.atan2(triple, denom)

    tri = triangle(poly, mid) + triangle(mid, b)
    return torch.where(valid, tri, torch.zeros_like(tri)).sum(-1).abs()
