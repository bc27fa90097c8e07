"""Property tests over random angles and sizes: poles, seam, tiny images, fov near its limits."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from pano360.errors import ShapeError
from pano360.geometry import (
    angle_between,
    cubemap_to_erp,
    erp_to_cubemap,
    erp_to_perspective,
    lonlat_to_xyz,
    perspective_to_erp,
    pixel_to_lonlat,
    rotate_erp,
    rotation_matrix,
    sample_erp,
    xyz_to_lonlat,
)

D = torch.float64
# Angles that include the poles, the seam and exact multiples of pi/2.
special = st.sampled_from([0.0, math.pi / 2, -math.pi / 2, math.pi, -math.pi, 2 * math.pi])
angle = st.one_of(special, st.floats(-2 * math.pi, 2 * math.pi, allow_nan=False))
pitch = st.one_of(
    st.sampled_from([math.pi / 2, -math.pi / 2, 0.0]), st.floats(-math.pi / 2, math.pi / 2)
)
fov = st.one_of(
    st.sampled_from([1e-3, math.pi - 1e-3, math.pi / 2]), st.floats(1e-3, math.pi - 1e-3)
)
erp_h = st.sampled_from([2, 3, 4, 7, 16])
mode = st.sampled_from(["nearest", "bilinear", "bicubic"])
dtype = st.sampled_from([torch.float32, torch.float64])


@given(angle, angle, angle, dtype)
def test_rotation_matrices_are_orthonormal(yaw, p, roll, dt):
    R = rotation_matrix(yaw, p, roll, dtype=dt)
    eye = torch.eye(3, dtype=dt)
    tol = 1e-6 if dt == torch.float32 else 1e-12
    torch.testing.assert_close(R @ R.T, eye, atol=tol, rtol=0)
    assert abs(torch.linalg.det(R).item() - 1) < tol


@given(st.floats(-10, 10), st.floats(-math.pi / 2, math.pi / 2))
def test_lonlat_xyz_finite_and_unit(lon, lat):
    xyz = lonlat_to_xyz(torch.tensor([lon, lat], dtype=D))
    assert abs(xyz.norm().item() - 1) < 1e-12
    back = xyz_to_lonlat(xyz)
    assert torch.isfinite(back).all()
    assert -math.pi <= back[0] < math.pi and -math.pi / 2 <= back[1] <= math.pi / 2


@given(erp_h, fov, angle, pitch, angle, mode, dtype)
def test_erp_to_perspective_never_nan(h, f, yaw, p, roll, m, dt):
    erp = torch.rand(1, 2, h, 2 * h, dtype=dt)
    view = erp_to_perspective(erp, f, (5, 7), yaw, p, roll, mode=m)
    assert torch.isfinite(view).all()
    # Interpolation never leaves the range of the input, except bicubic overshoot.
    if m != "bicubic":
        assert view.min() >= erp.min() - 1e-6 and view.max() <= erp.max() + 1e-6


@given(erp_h, fov, angle, pitch, angle, mode)
def test_perspective_to_erp_never_nan(h, f, yaw, p, roll, m):
    img = torch.rand(1, 3, 4, 6)
    erp, mask = perspective_to_erp(img, f, (h, 2 * h), yaw, p, roll, mode=m)
    assert torch.isfinite(erp).all() and torch.isfinite(mask).all()
    assert set(mask.unique().tolist()) <= {0.0, 1.0}


@given(erp_h, angle, pitch, angle, mode)
def test_rotate_erp_never_nan_and_constant_stays_constant(h, yaw, p, roll, m):
    erp = torch.full((1, 1, h, 2 * h), 0.25, dtype=D)
    out = rotate_erp(erp, rotation_matrix(yaw, p, roll, dtype=D), mode=m)
    torch.testing.assert_close(out, erp)  # no black seam, no smear: a constant stays constant


@given(erp_h, st.integers(1, 9), mode)
def test_cubemap_never_nan_and_constant_stays_constant(h, face_w, m):
    erp = torch.full((1, 2, h, 2 * h), 0.75, dtype=D)
    cube = erp_to_cubemap(erp, face_w, layout="horizon", mode=m)
    torch.testing.assert_close(cube, torch.full_like(cube, 0.75))
    back = cubemap_to_erp(cube, (h, 2 * h), layout="horizon", mode=m)
    torch.testing.assert_close(back, erp)


@given(st.integers(1, 64), st.floats(-1, 64), st.floats(-0.5, 32))
def test_pixel_to_lonlat_finite(h, x, y):
    ll = pixel_to_lonlat(torch.tensor([x, y], dtype=D), (h, 2 * h))
    assert torch.isfinite(ll).all()


@given(
    st.floats(-math.pi, math.pi - 1e-9),
    st.floats(-math.pi / 2, math.pi / 2),
    st.integers(-3, 3),
    st.sampled_from(["bilinear", "bicubic"]),  # nearest may round exact ties either way
)
def test_sample_erp_wraps_longitude_and_folds_latitude(lon, lat, turns, m):
    erp = torch.rand(1, 2, 6, 12, dtype=D, generator=torch.Generator().manual_seed(3))
    ref = sample_erp(erp, torch.tensor([[[[lon, lat]]]], dtype=D), mode=m)
    wrapped = sample_erp(erp, torch.tensor([[[[lon + 2 * math.pi * turns, lat]]]], dtype=D), mode=m)
    # The same point reached over the pole: lat' = pi - lat on the opposite meridian.
    over = sample_erp(erp, torch.tensor([[[[lon + math.pi, math.pi - lat]]]], dtype=D), mode=m)
    torch.testing.assert_close(wrapped, ref, atol=1e-9, rtol=0)
    torch.testing.assert_close(over, ref, atol=1e-9, rtol=0)


@given(angle, pitch, st.floats(1e-6, math.pi - 1e-6), angle, st.floats(0.1, 10.0))
def test_angle_between_is_the_great_circle_angle_at_every_scale(lon, lat, delta, heading, scale):
    # b is a exactly ``delta`` away (rotated about an axis perpendicular to a), even for angles
    # too small or too near pi for acos of the float32 dot product.
    a = lonlat_to_xyz(torch.tensor([lon, lat], dtype=D))
    helper = torch.tensor([math.cos(heading), math.sin(heading), 0.5], dtype=D)
    axis = torch.linalg.cross(a, helper)
    axis = axis / axis.norm()
    b = a * math.cos(delta) + torch.linalg.cross(axis, a) * math.sin(delta)
    assert math.isclose(angle_between(a, b).item(), delta, rel_tol=1e-9, abs_tol=1e-12)
    got32 = angle_between(a.float(), (b * scale).float()).item()
    assert math.isclose(got32, delta, rel_tol=1e-5, abs_tol=1e-6)
    assert math.isclose(angle_between(b, a).item(), angle_between(a, b).item(), rel_tol=1e-9)


def test_angle_between_broadcasts_and_checks_shapes():
    dirs = lonlat_to_xyz(torch.tensor([[0.0, 0.0], [math.pi / 2, 0.0], [0.0, math.pi / 2]]))
    table = angle_between(dirs[:, None], dirs[None])
    assert table.shape == (3, 3)
    torch.testing.assert_close(table, (1 - torch.eye(3)) * math.pi / 2)
    with pytest.raises(ShapeError, match=r"a must have shape \(\.\.\., 3\)"):
        angle_between(torch.zeros(4, 2), dirs)
    with pytest.raises(ShapeError, match=r"b must have shape \(\.\.\., 3\)"):
        angle_between(dirs, torch.zeros(3, 4))
