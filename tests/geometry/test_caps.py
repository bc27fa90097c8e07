"""Spherical caps: window caps hold their windows, footprints hold their caps, apart is apart."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pano360.errors import ShapeError, ValueRangeError
from pano360.geometry import (
    cap_footprint,
    caps_apart,
    erp_lonlat_grid,
    lonlat_to_xyz,
    perspective_to_erp,
    rotation_matrix,
    window_cap,
    wrap_lon,
)

D = torch.float64
special_lon = st.sampled_from([-math.pi, math.pi, 0.0, math.pi - 1e-9, -math.pi + 1e-9])
lon = st.one_of(special_lon, st.floats(-2 * math.pi, 2 * math.pi))
special_lat = st.sampled_from([math.pi / 2, -math.pi / 2, 0.0, math.pi / 2 - 1e-6, -1.5])
lat = st.one_of(special_lat, st.floats(-math.pi / 2, math.pi / 2))
roll = st.floats(-math.pi, math.pi)
erp_h = st.sampled_from([2, 3, 4, 7, 16, 33])


def angle_between(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angles between unit vectors (..., 3), accurate at every size (atan2 of sin and cos)."""
    a, b = torch.broadcast_tensors(a, b)
    return torch.atan2(torch.linalg.cross(a, b).norm(dim=-1), (a * b).sum(-1))


def window_points(window: torch.Tensor, n: int = 41) -> torch.Tensor:
    """(n * n, 2) image-plane points on a grid over the window, its edges and corners included."""
    x0, y0, x1, y1 = window.tolist()
    xs, ys = torch.linspace(x0, x1, n, dtype=D), torch.linspace(y0, y1, n, dtype=D)
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)


def window_boundary(window: torch.Tensor, n: int = 2001) -> torch.Tensor:
    """(4 n, 2) image-plane points along the window's four edges, corners included."""
    x0, y0, x1, y1 = window.tolist()
    t = torch.linspace(0, 1, n, dtype=D)
    xs, ys = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
    edges = [
        torch.stack((xs, torch.full_like(t, y0)), -1),
        torch.stack((xs, torch.full_like(t, y1)), -1),
        torch.stack((torch.full_like(t, x0), ys), -1),
        torch.stack((torch.full_like(t, x1), ys), -1),
    ]
    return torch.cat(edges)


def world_dirs(points: torch.Tensor, yaw, pitch, r) -> torch.Tensor:
    rays = torch.cat((points, torch.ones_like(points[:, :1])), -1)
    rays = rays / rays.norm(dim=-1, keepdim=True)
    return rays @ rotation_matrix(yaw, pitch, r, dtype=D).T


# --- window_cap ---------------------------------------------------------------------------------

plane = st.floats(-6.0, 6.0)


@st.composite
def windows(draw):
    """Windows anywhere on the plane, and wide ones far off axis (whose farthest points from
    their centre's ray lie more than 90 degrees away, inside an edge)."""
    if draw(st.booleans()):
        x0, x1 = -draw(st.floats(5, 40)), draw(st.floats(5, 40))
        y0, y1 = -draw(st.floats(0.5, 4)), draw(st.floats(6, 40))
        return torch.tensor([x0, y0, x1, y1], dtype=D)
    xa, xb, ya, yb = draw(plane), draw(plane), draw(plane), draw(plane)
    return torch.tensor([min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)], dtype=D)


@given(windows(), lon, lat, roll)
def test_window_cap_holds_the_whole_window_and_is_tight(window, yaw, pitch, r):
    """Every point of the window (a dense grid, edges included) is inside the cap, and the
    farthest one reaches its rim: also for windows that reach more than a hemisphere from their
    centre, whose farthest points may lie inside an edge."""
    centre, radius = window_cap(window, yaw, pitch, r)
    assert torch.isfinite(centre).all() and 0 <= float(radius) < math.pi
    c = lonlat_to_xyz(centre)
    inner = angle_between(world_dirs(window_points(window), yaw, pitch, r), c)
    rim = angle_between(world_dirs(window_boundary(window), yaw, pitch, r), c)
    assert float(inner.max()) <= float(radius) + 1e-9
    assert float(rim.max()) <= float(radius) + 1e-9
    assert float(rim.max()) >= float(radius) - 1e-4  # the edges' sampling


def test_window_cap_beyond_a_hemisphere_reaches_inside_an_edge():
    """A wide window far off axis: its corners are within 90 degrees of its centre's ray, but
    the middle of its far edge is not; the corners alone would give a cap that misses it."""
    window = torch.tensor([-20.0, -2.0, 20.0, 10.0], dtype=D)
    centre, radius = window_cap(window)
    dirs = world_dirs(window_boundary(window), 0.0, 0.0, 0.0)
    corners = world_dirs(window[[0, 1, 2, 3, 0, 3, 2, 1]].reshape(4, 2), 0.0, 0.0, 0.0)
    c = lonlat_to_xyz(centre)
    corner_radius = float(angle_between(corners, c).max())
    farthest = float(angle_between(dirs, c).max())
    assert corner_radius > math.pi / 2 and farthest > corner_radius + 0.05
    assert abs(float(radius) - farthest) < 1e-4


def test_convention_window_cap_centre_follows_yaw_pitch_and_clockwise_roll():
    t = math.tan(math.radians(30))
    centre, radius = window_cap(torch.tensor([-t, -t, t, t], dtype=D), 0.4, -0.3, 1.0)
    torch.testing.assert_close(centre, torch.tensor([0.4, -0.3], dtype=D))
    assert math.isclose(float(radius), math.atan(math.sqrt(2) * t), rel_tol=1e-12)
    # A window above the axis of a camera rolled clockwise lands to the right (east).
    above = torch.tensor([-0.01, 0.4, 0.01, 0.5], dtype=D)
    assert window_cap(above)[0][0] == 0 and window_cap(above)[0][1] > 0.3
    assert window_cap(above, roll=0.5)[0][0] > 0.1
    assert window_cap(above, roll=-0.5)[0][0] < -0.1


@pytest.mark.parametrize(
    ("yaw", "pitch", "r"), [(3.1, 0.2, 0.4), (-1.0, 1.3, -0.7), (0.5, -1.5, 2)]
)
def test_window_cap_holds_what_perspective_to_erp_pastes(yaw, pitch, r):
    """The window (-t, -t * h / w, t, t * h / w) is the view of fov 2 atan(t) and size (h, w):
    every ERP pixel that perspective_to_erp covers with it lies in the cap."""
    hw, fov = (18, 30), 1.4
    t = math.tan(fov / 2)
    window = torch.tensor([-t, -t * 18 / 30, t, t * 18 / 30], dtype=D)
    centre, radius = window_cap(window, yaw, pitch, r)
    _, mask = perspective_to_erp(torch.ones(1, 1, *hw, dtype=D), fov, (64, 128), yaw, pitch, r)
    dirs = lonlat_to_xyz(erp_lonlat_grid((64, 128), dtype=D))
    angles = angle_between(dirs, lonlat_to_xyz(centre))
    covered = mask[0, 0] > 0
    assert covered.sum() > 100
    assert float(angles[covered].max()) <= float(radius)
    # Tight: the cap is hardly larger than what is covered (half a pixel diagonal at most).
    assert float(angles[covered].max()) > float(radius) - math.pi / 64


def test_window_cap_batches_and_keeps_dtype():
    windows = torch.tensor([[-1.0, -0.5, 0.2, 0.5], [0.0, 0.0, 3.0, 0.1]], dtype=D)
    yaw = torch.tensor([0.1, -2.0], dtype=D)
    centres, radii = window_cap(windows, yaw, 0.3, torch.tensor([0.2, 0.0], dtype=D))
    assert centres.shape == (2, 2) and radii.shape == (2,)
    for i in range(2):
        c, r = window_cap(windows[i], float(yaw[i]), 0.3, [0.2, 0.0][i])
        torch.testing.assert_close(centres[i], c, rtol=0, atol=1e-15)
        torch.testing.assert_close(radii[i], r, rtol=0, atol=1e-15)
    c32, r32 = window_cap(windows.float(), yaw.float())
    assert c32.dtype == r32.dtype == torch.float32
    torch.testing.assert_close(r32.double(), window_cap(windows, yaw)[1], atol=1e-6, rtol=0)


def test_window_cap_errors():
    with pytest.raises(ShapeError, match=r"window must be a \(\.\.\., 4\) tensor"):
        window_cap(torch.zeros(3, dtype=D))
    with pytest.raises(ShapeError, match="window must be a floating tensor"):
        window_cap(torch.tensor([0, 0, 1, 1]))
    with pytest.raises(ShapeError, match="window must be"):
        window_cap([0.0, 0.0, 1.0, 1.0])
    with pytest.raises(ValueRangeError, match="x0 <= x1 and y0 <= y1"):
        window_cap(torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=D))
    with pytest.raises(ValueRangeError, match="finite"):
        window_cap(torch.tensor([0.0, float("nan"), 1.0, 1.0], dtype=D))


# --- cap_footprint ------------------------------------------------------------------------------


@given(
    lon,
    lat,
    st.one_of(st.sampled_from([0.0, 1e-3, math.pi / 2, math.pi]), st.floats(0, 3.2)),
    erp_h,
)
def test_footprint_holds_every_pixel_whose_centre_is_in_the_cap(c_lon, c_lat, radius, h):
    """Seam, both poles, caps round a pole, tiny and whole-sphere caps: no pixel centre inside
    the cap is left out, and a cap clear of the poles gets only a few rows more than it spans."""
    hw = (h, 2 * h)
    rows, cols = cap_footprint((c_lon, c_lat), radius, hw)
    dirs = lonlat_to_xyz(erp_lonlat_grid(hw, dtype=D))
    centre = lonlat_to_xyz(torch.tensor([c_lon, c_lat], dtype=D))
    inside = angle_between(dirs, centre) <= radius
    footprint = torch.zeros(hw, dtype=torch.bool)
    footprint[rows, cols] = True
    assert not (inside & ~footprint).any()
    assert rows.stop - rows.start <= 2 * radius / (math.pi / h) + 4
    if isinstance(cols, torch.Tensor):
        assert cols.min() >= 0 and cols.max() < 2 * h and len(set(cols.tolist())) == len(cols)


def test_footprint_of_a_small_cap_on_the_seam_wraps_and_is_small():
    rows, cols = cap_footprint((math.pi, 0.1), math.radians(4), (90, 180))
    assert isinstance(cols, torch.Tensor) and 0 in cols.tolist() and 179 in cols.tolist()
    assert len(cols) <= 8 + 3 and rows.stop - rows.start <= 8 + 3
    assert cols.tolist() == sorted(cols.tolist(), key=lambda c: (c < 90, c))  # west to east


def test_footprint_of_a_polar_cap_takes_every_column():
    for lat in (math.radians(85), math.radians(-85)):
        rows, cols = cap_footprint((1.0, lat), math.radians(6), (90, 180))
        assert cols == slice(None)
        assert rows.start == 0 if lat > 0 else rows.stop == 90


def test_cap_footprint_errors():
    with pytest.raises(ShapeError, match="erp_hw"):
        cap_footprint((0.0, 0.0), 0.1, (10, 10))
    with pytest.raises(ValueRangeError, match="centre must be a pair"):
        cap_footprint(0.0, 0.1, (8, 16))
    with pytest.raises(ValueRangeError, match="centre lat"):
        cap_footprint((0.0, 2.0), 0.1, (8, 16))
    with pytest.raises(ValueRangeError, match="centre lon"):
        cap_footprint(torch.tensor([float("inf"), 0.0]), 0.1, (8, 16))
    with pytest.raises(ValueRangeError, match="radius"):
        cap_footprint((0.0, 0.0), -0.1, (8, 16))


# --- caps_apart ---------------------------------------------------------------------------------


def points_in_cap(centre: torch.Tensor, radius: float, n: int = 256) -> torch.Tensor:
    """(n * 3 + 1, 3) directions inside a cap: its centre, and rings at 1/3, 2/3 and all of its
    radius (the rim is where two caps come closest)."""
    R = rotation_matrix(float(centre[0]), float(centre[1]), dtype=D)
    az = torch.arange(n, dtype=D) * (2 * math.pi / n)
    rings = [torch.tensor([[0.0, 0.0, 1.0]], dtype=D)]
    for share in (1 / 3, 2 / 3, 1.0):
        a = share * radius
        rings.append(
            torch.stack(
                (math.sin(a) * az.cos(), math.sin(a) * az.sin(), torch.full_like(az, math.cos(a))),
                -1,
            )
        )
    return torch.cat(rings) @ R.T


radius = st.floats(0.0, 1.5)


@given(lon, lat, radius, lon, lat, radius, st.floats(-0.05, 0.2))
def test_caps_reported_apart_never_overlap_and_others_come_close(l1, b1, r1, l2, b2, r2, gap):
    c1 = torch.tensor([[l1, b1]], dtype=D)
    c2 = torch.tensor([[l2, b2]], dtype=D)
    apart = bool(caps_apart(c1, torch.tensor([r1], dtype=D), c2, torch.tensor([r2], dtype=D), gap))
    p1, p2 = points_in_cap(c1[0], r1), points_in_cap(c2[0], r2)
    closest = float(angle_between(p1[:, None], p2[None]).min())
    distance = float(angle_between(lonlat_to_xyz(c1[0]), lonlat_to_xyz(c2[0])))
    if apart:
        assert closest > gap - 1e-7
    elif distance >= r1 + r2:
        # Not apart, rims apart: along the great circle between the centres the rims come
        # within the gap (up to the rim's sampling).
        assert closest <= gap + 0.05


def test_convention_caps_apart_across_the_seam_and_over_a_pole():
    r = torch.tensor([math.radians(1)], dtype=D)
    seam = torch.tensor([[math.radians(179), 0.0]], dtype=D)
    other = torch.tensor([[math.radians(-179.5), 0.0]], dtype=D)
    assert not caps_apart(seam, r, other, r)  # 1.5 degrees apart across the seam
    north = torch.tensor([[0.0, math.radians(89)]], dtype=D)
    behind = torch.tensor([[math.pi, math.radians(89.5)]], dtype=D)
    assert not caps_apart(north, r, behind, r)  # 1.5 degrees apart over the pole
    far = torch.tensor([[math.pi, math.radians(87)]], dtype=D)
    assert caps_apart(north, r, far, r) and not caps_apart(north, r, far, r, gap=0.1)


def test_caps_apart_is_pairwise():
    c1 = torch.tensor([[0.0, 0.0], [1.0, 0.5], [3.0, -1.2]], dtype=D)
    c2 = torch.tensor([[0.05, 0.0], [-2.0, 0.0]], dtype=D)
    r1, r2 = torch.full((3,), 0.1, dtype=D), torch.full((2,), 0.1, dtype=D)
    out = caps_apart(c1, r1, c2, r2)
    assert out.shape == (3, 2) and out.dtype == torch.bool
    for i in range(3):
        for j in range(2):
            assert out[i, j] == caps_apart(
                c1[i : i + 1], r1[i : i + 1], c2[j : j + 1], r2[j : j + 1]
            )
    assert not out[0, 0] and out[1:].all() and out[:, 1].all()
    # Longitudes that differ by whole turns are the same centre.
    same = c1.clone()
    same[:, 0] = wrap_lon(same[:, 0] + 4 * math.pi)
    assert torch.equal(caps_apart(same, r1, c2, r2), out)


def test_caps_apart_errors():
    r = torch.zeros(1, dtype=D)
    with pytest.raises(ShapeError, match=r"centres1 must be an \(N, 2\) tensor"):
        caps_apart(torch.zeros(2, dtype=D), r, torch.zeros(1, 2, dtype=D), r)
    with pytest.raises(ShapeError, match="centres2 must be"):
        caps_apart(torch.zeros(1, 2, dtype=D), r, torch.zeros(1, 3, dtype=D), r)
    with pytest.raises(ShapeError, match=r"radii2 must be a \(1,\) tensor"):
        caps_apart(torch.zeros(1, 2, dtype=D), r, torch.zeros(1, 2, dtype=D), torch.zeros(2))
    with pytest.raises(ShapeError, match="radii1 must be"):
        caps_apart(torch.zeros(1, 2, dtype=D), 0.1, torch.zeros(1, 2, dtype=D), r)
    with pytest.raises(ValueRangeError, match="gap"):
        caps_apart(torch.zeros(1, 2, dtype=D), r, torch.zeros(1, 2, dtype=D), r, float("nan"))
