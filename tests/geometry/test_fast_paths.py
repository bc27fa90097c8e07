"""The fast paths of the projections (fused grids in the working dtype, sampling without a padded
copy, cube faces by argmax, bounded caches) against the slow, obviously correct ways."""

from __future__ import annotations

import math

import pytest
import torch

from pano360.geometry import rotate_erp, rotation_matrix, spherical_pad
from pano360.geometry._cache import GridCache
from pano360.geometry.cubemap import (
    _FRAMES,
    _cube_grid,
    _face_coords,
    _face_ring_index,
    _locate_on_cube,
)
from pano360.geometry.perspective import view_grid
from pano360.geometry.sampling import (
    _PAD,
    erp_sampling_grid,
    grid_sample_parallel,
    plan_folded,
    rotation_grid,
    sample_folded,
)

D = torch.float64


def padded_sample(erp, lonlat, mode):
    """The old way: pad the whole image with the seam and pole rules, then grid_sample."""
    grid = erp_sampling_grid(lonlat, erp.shape[-2:], mode)
    return grid_sample_parallel(spherical_pad(erp, _PAD[mode]), grid, mode)


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
@pytest.mark.parametrize(("erp_batch", "grid_batch"), [(1, 1), (3, 3), (1, 3), (3, 1)])
def test_folded_sampling_equals_sampling_a_padded_copy(mode, erp_batch, grid_batch):
    gen = torch.Generator().manual_seed(0)
    erp = torch.rand(erp_batch, 2, 8, 16, dtype=D, generator=gen)
    # Directions everywhere, many of them within a pixel of the seam or a pole.
    lon = (torch.rand(grid_batch, 9, 11, generator=gen, dtype=D) * 2 - 1) * math.pi
    lat = (torch.rand(grid_batch, 9, 11, generator=gen, dtype=D) * 2 - 1) * math.pi / 2
    lon[:, :3] = math.pi - torch.rand(grid_batch, 3, 11, generator=gen, dtype=D) * 0.3
    lat[:, -2:] = math.pi / 2 - torch.rand(grid_batch, 2, 11, generator=gen, dtype=D) * 0.3
    lonlat = torch.stack((lon, lat), -1)
    grid = erp_sampling_grid(lonlat, (8, 16), mode)  # only for its shape and batch
    plan = plan_folded(torch.stack((lon / math.pi, -2 * lat / math.pi), -1), (8, 16), mode)
    assert mode == "nearest" or len(plan.points) > 0
    expected = padded_sample(erp, lonlat, mode)
    torch.testing.assert_close(sample_folded(erp, plan, mode), expected)
    assert expected.shape[0] == max(erp_batch, grid.shape[0])


def test_folded_sampling_reads_an_expanded_image_once_and_is_differentiable():
    erp = torch.rand(1, 2, 8, 16, dtype=D, requires_grad=True)
    lon = torch.tensor([[[3.1, -3.1], [0.2, 1.5]]], dtype=D).expand(4, 2, 2)
    lat = torch.tensor([[[0.1, 1.5], [-1.55, 0.0]]], dtype=D).expand(4, 2, 2)
    grid = torch.stack((lon / math.pi, -2 * lat / math.pi), -1)
    plan = plan_folded(grid, (8, 16), "bilinear")
    out = sample_folded(erp.expand(4, -1, -1, -1), plan, "bilinear")
    torch.testing.assert_close(out, padded_sample(erp, torch.stack((lon, lat), -1), "bilinear"))
    assert torch.autograd.gradcheck(
        lambda e: sample_folded(e, plan, "bilinear"), (erp,), fast_mode=True
    )


# Error of a float32 grid in grid units (longitudes scaled by cos(lat)): grid_sample unnormalises
# gx to ((gx + 1) W - 1) / 2, so an error e is e W / 2 pixels: 3e-7 is 6e-4 pixel at W = 4096,
# the widest image whose grids are computed in float32 (wider ones compute theirs in float64,
# see sampling.grid_dtype).
FLOAT32_GRID_ERROR = 3e-7


@pytest.mark.parametrize(
    "make",
    [
        lambda dt: rotation_grid(rotation_matrix(0.3, 1.2, -0.4, dtype=dt)[None], (64, 128)),
        lambda dt: view_grid(
            torch.tensor([1.0, 0.3], dtype=dt),
            rotation_matrix(torch.tensor([3.1, -0.5]), torch.tensor([1.4, 0.2]), 0.3, dtype=dt),
            (40, 60),
        ),
        lambda dt: _cube_grid(24, dt, None),
    ],
    ids=["rotation", "views", "cube"],
)
def test_float32_grids_are_within_their_documented_bound(make):
    g32, g64 = make(torch.float32), make(D)
    err = (g32.to(D) - g64).abs()
    err[..., 0] = torch.minimum(err[..., 0], 2 - err[..., 0])  # gx = 1 and -1: the same seam
    # Along a row the error on the sphere is the longitude's times cos(lat): near a pole the
    # longitude of a direction is ill-conditioned (and the ERP pixels there are tiny).
    err[..., 0] *= torch.cos(g64[..., 1] * math.pi / 2)
    assert err.max().item() < FLOAT32_GRID_ERROR


def frames_oracle(dirs):
    """The face whose centre axis has the largest component (first in F R B L U D order on
    ties, as argmax), and (a, b) from its frame: FRAMES[f]^T d over the centre component."""
    local = torch.einsum("fji,...j->...fi", _FRAMES.to(dirs.dtype), dirs)
    face = local[..., 2].argmax(dim=-1)
    q = torch.gather(local, -2, face[..., None, None].expand(*face.shape, 1, 3)).squeeze(-2)
    return face, q[..., 0] / q[..., 2], q[..., 1] / q[..., 2]


def test_locate_on_cube_matches_the_frames_oracle_including_ties():
    gen = torch.Generator().manual_seed(1)
    random = torch.randn(500, 3, dtype=D, generator=gen)
    values = torch.tensor([-1.0, 0.0, 1.0, 0.5], dtype=D)
    ties = torch.cartesian_prod(values, values, values)
    dirs = torch.cat((random, ties[ties.abs().amax(-1) > 0]))
    face, a, b = _locate_on_cube(dirs)
    expected = frames_oracle(dirs)
    assert torch.equal(face, expected[0])
    torch.testing.assert_close((a, b), expected[1:])


@pytest.mark.parametrize(("face_w", "pad"), [(1, 1), (5, 1), (6, 2)])
def test_face_ring_index_equals_locating_every_padded_pixel(face_w, pad):
    c = _face_coords(face_w, pad)
    b, a = torch.meshgrid(c, c, indexing="ij")
    dirs = torch.einsum("fij,hwj->fhwi", _FRAMES, torch.stack((a, b, torch.ones_like(a)), -1))
    face, fa, fb = frames_oracle(dirs)
    col = torch.round(((fa + 1) * face_w - 1) / 2).clamp(0, face_w - 1).long()
    row = torch.round(((fb + 1) * face_w - 1) / 2).clamp(0, face_w - 1).long()
    src = ((face * face_w + row) * face_w + col).flatten()
    sp = face_w + 2 * pad
    i = torch.arange(sp)
    edge = (i < pad) | (i >= face_w + pad)
    dst = torch.nonzero((edge[:, None] | edge[None, :]).expand(6, sp, sp).flatten())[:, 0]
    got_dst, got_src = _face_ring_index(face_w, pad, torch.device("cpu"))
    assert torch.equal(got_dst, dst) and torch.equal(got_src, src[dst])


def test_rotate_erp_takes_every_shape_of_R_to_the_same_result():
    erp = torch.rand(2, 3, 16, 32, dtype=D)
    R = rotation_matrix(0.4, -1.0, 0.3, dtype=D)
    expected = rotate_erp(erp, R)
    torch.testing.assert_close(rotate_erp(erp, R[None]), expected)
    torch.testing.assert_close(rotate_erp(erp, R[None].expand(2, 3, 3)), expected)
    torch.testing.assert_close(rotate_erp(erp, R.clone().requires_grad_()), expected)


def test_grid_cache_keeps_at_most_its_bytes():
    cache = GridCache("test", max_bytes=100)
    calls = []

    def build(n):
        def make():
            calls.append(n)
            return torch.zeros(n, dtype=torch.uint8)

        return make

    cache.get("a", build(60))
    cache.get("a", build(60))
    assert calls == [60] and cache.cache_info().hits == 1
    cache.get("b", build(60))  # does not fit next to "a": "a" goes
    assert cache.cache_info().currsize == 1 and cache.cache_info().nbytes == 60
    assert cache.get("big", build(500)).numel() == 500  # returned, never kept
    assert cache.cache_info().nbytes == 60
    cache.get("a", build(60))
    assert calls == [60, 60, 500, 60]
    cache.cache_clear()
    assert cache.cache_info() == (0, 0, None, 0, 0)


def test_empty_inputs_give_empty_results():
    from pano360.geometry import sample_erp, xyz_to_lonlat

    assert xyz_to_lonlat(torch.empty(0, 32, 3)).shape == (0, 32, 2)
    out = sample_erp(torch.rand(1, 2, 8, 16), torch.empty(1, 0, 5, 2))
    assert out.shape == (1, 2, 0, 5)


@pytest.mark.parametrize("dtype", [torch.float32, D])
def test_cube_grid_by_symmetry_equals_every_face_from_its_frame(dtype):
    from pano360.geometry.sampling import direction_grid

    c = _face_coords(6, dtype=dtype)
    a, b = c.view(1, 1, 6), c.view(1, 6, 1)
    frames = _FRAMES.to(dtype)[:, :, :, None, None]
    xyz = (frames[:, k, 0] * a + (frames[:, k, 1] * b + frames[:, k, 2]) for k in range(3))
    expected = direction_grid(*xyz)
    got = _cube_grid(6, dtype, None)
    err = (got - expected).abs()
    err[..., 0] = torch.minimum(err[..., 0], 2 - err[..., 0])  # gx = 1 and -1: the same seam
    assert err.max() < (1e-14 if dtype == D else 3e-7)
