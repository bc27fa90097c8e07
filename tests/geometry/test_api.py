"""Shapes, dtypes, devices, batching and every documented error of the geometry API."""

import math

import pytest
import torch

from pano360.errors import ShapeError, ValueRangeError
from pano360.geometry import (
    PastedView,
    cubemap_from_faces,
    cubemap_to_erp,
    cubemap_to_faces,
    erp_lonlat_grid,
    erp_to_cubemap,
    erp_to_perspective,
    lonlat_to_pixel,
    perspective_to_erp,
    pixel_solid_angle,
    pixel_to_lonlat,
    rotate_erp,
    rotation_matrix,
    sample_erp,
    strided_lonlat_grid,
    xyz_to_lonlat,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shapes_dtypes_devices(device, dtype):
    erp = torch.rand(2, 3, 16, 32, dtype=dtype, device=device)
    view = erp_to_perspective(erp, 1.0, (5, 7), yaw=torch.tensor([0.1, 0.2], dtype=dtype))
    assert view.shape == (2, 3, 5, 7) and view.dtype == dtype and view.device.type == device
    back, mask = perspective_to_erp(view, 1.0, (8, 16))
    assert back.shape == (2, 3, 8, 16) and mask.shape == (2, 1, 8, 16) and mask.dtype == dtype
    cube = erp_to_cubemap(erp, 4, layout="dict")
    assert set(cube) == set("FRBLUD") and cube["U"].shape == (2, 3, 4, 4)
    assert erp_to_cubemap(erp, 4, layout="horizon").shape == (2, 3, 4, 24)
    assert len(erp_to_cubemap(erp, 4, layout="list")) == 6
    out = cubemap_to_erp(cube, (16, 32), layout="dict")
    assert out.shape == erp.shape and out.dtype == dtype and out.device.type == device
    assert rotate_erp(erp, rotation_matrix(0.1, dtype=dtype, device=device)).shape == erp.shape


def test_batch_of_one_image_broadcasts_against_many_views():
    erp = torch.rand(1, 3, 16, 32)
    yaws = torch.linspace(-3, 3, 5)
    views = erp_to_perspective(erp, 1.0, (6, 6), yaw=yaws)
    assert views.shape == (5, 3, 6, 6)
    torch.testing.assert_close(views[2], erp_to_perspective(erp, 1.0, (6, 6), yaw=yaws[2])[0])


def test_batched_rotation_matches_one_by_one():
    erp = torch.rand(3, 2, 8, 16, dtype=torch.float64)
    R = rotation_matrix(torch.tensor([0.1, 1.0, -2.0], dtype=torch.float64), 0.4)
    out = rotate_erp(erp, R)
    for i in range(3):
        torch.testing.assert_close(out[i : i + 1], rotate_erp(erp[i : i + 1], R[i]))


def test_rotation_matrix_broadcasts():
    assert rotation_matrix(torch.zeros(4, 1), torch.zeros(5)).shape == (4, 5, 3, 3)
    assert rotation_matrix().shape == (3, 3)


def test_pixel_solid_angle_sums_to_4pi_and_matches_integration():
    for hw in [(1, 2), (7, 14), (64, 128)]:
        area = pixel_solid_angle(hw, dtype=torch.float64)
        assert area.shape == (hw[0], 1)
        assert abs(area.sum().item() * hw[1] - 4 * math.pi) < 1e-12
    # Midpoint-rule integration of cos(lat) over a row's pixel agrees.
    h, w, n = 8, 16, 4000
    lat_top = math.pi / 2 - math.pi * 2 / h
    lats = lat_top - (torch.arange(n, dtype=torch.float64) + 0.5) * (math.pi / h / n)
    numeric = torch.cos(lats).sum() * (math.pi / h / n) * (2 * math.pi / w)
    assert abs(pixel_solid_angle((h, w), dtype=torch.float64)[2, 0] - numeric) < 1e-9


def test_erp_lonlat_grid_matches_pixel_to_lonlat():
    h, w = 5, 10
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    xy = torch.stack((xs, ys), -1).double()
    grid = erp_lonlat_grid((h, w), dtype=torch.float64)
    torch.testing.assert_close(grid, pixel_to_lonlat(xy, (h, w)))


@pytest.mark.parametrize("stride", [2, 3, 4])
def test_strided_lonlat_grid_places_maps_by_their_grid(stride):
    h, w = 12, 24
    full = erp_lonlat_grid((h, w), dtype=torch.float64)
    planar = strided_lonlat_grid((h, w), stride, "planar", dtype=torch.float64)
    sphere = strided_lonlat_grid((h, w), stride, "sphere", dtype=torch.float64)
    rows, cols = -(-h // stride), -(-w // stride)
    assert planar.shape == sphere.shape == (rows, cols, 2)
    # planar: on input pixel (s i, s j); sphere: the ERP pixel centres at the map's own size.
    torch.testing.assert_close(planar[2, 1], full[2 * stride, stride])
    torch.testing.assert_close(sphere, erp_lonlat_grid((rows, cols), dtype=torch.float64))
    # The sphere grid is symmetric about the equator; the planar grid lies north of it.
    torch.testing.assert_close(sphere[..., 1], -sphere.flip(0)[..., 1])
    assert planar[..., 1].sum() > 0
    # Two planar layers of stride 2 put their outputs where one of stride 4 does.
    if stride == 4:
        twice = strided_lonlat_grid((h, w), 2, "planar", dtype=torch.float64)[::2, ::2]
        torch.testing.assert_close(planar, twice)
    for grid in ("sphere", "planar"):
        torch.testing.assert_close(strided_lonlat_grid((h, w), 1, grid), erp_lonlat_grid((h, w)))


def test_strided_lonlat_grid_errors():
    with pytest.raises(ValueError, match="grid must be one of 'sphere', 'planar', got 'centre'"):
        strided_lonlat_grid((4, 8), 2, "centre")
    with pytest.raises(ValueRangeError, match="stride"):
        strided_lonlat_grid((4, 8), 0)


# Every documented error, with the message naming the parameter.


def test_error_erp_not_two_to_one():
    with pytest.raises(ShapeError, match=r"erp must be \(B, C, H, W\) with W == 2H, got"):
        erp_to_perspective(torch.rand(1, 3, 10, 30), 1.0, (4, 4))
    with pytest.raises(ShapeError, match="erp must be"):
        erp_to_cubemap(torch.rand(3, 10, 20), 4)
    with pytest.raises(ShapeError, match="erp must be"):
        rotate_erp(torch.rand(1, 1, 4, 4), torch.eye(3))


def test_error_fov_out_of_range():
    erp = torch.rand(1, 1, 4, 8)
    for bad in (0.0, -1.0, math.pi, 4.0):
        with pytest.raises(ValueRangeError, match=r"fov must be in \(0, pi\)"):
            erp_to_perspective(erp, bad, (4, 4))
        with pytest.raises(ValueRangeError, match="fov must be in"):
            perspective_to_erp(torch.rand(1, 1, 4, 4), bad, (4, 8))


def test_error_non_finite_angle():
    with pytest.raises(ValueRangeError, match="yaw must be finite"):
        erp_to_perspective(torch.rand(1, 1, 4, 8), 1.0, (4, 4), yaw=float("nan"))


def test_error_batch_mismatch():
    with pytest.raises(ShapeError, match="batch sizes"):
        erp_to_perspective(torch.rand(2, 1, 4, 8), 1.0, (4, 4), yaw=torch.zeros(3))
    with pytest.raises(ShapeError, match="R batch 3 does not match erp batch 2"):
        rotate_erp(torch.rand(2, 1, 4, 8), torch.eye(3).expand(3, 3, 3))
    with pytest.raises(ShapeError, match="do not broadcast"):
        sample_erp(torch.rand(2, 1, 4, 8), torch.zeros(3, 1, 1, 2))


def test_error_bad_sizes_and_choices():
    erp = torch.rand(1, 1, 4, 8)
    with pytest.raises(ShapeError, match="out_hw must be a pair"):
        erp_to_perspective(erp, 1.0, (4, 0))
    with pytest.raises(ShapeError, match="erp_hw must satisfy W == 2H"):
        perspective_to_erp(torch.rand(1, 1, 4, 4), 1.0, (4, 9))
    with pytest.raises(ValueError, match="mode must be one of 'nearest', 'bilinear', 'bicubic'"):
        erp_to_perspective(erp, 1.0, (4, 4), mode="lanczos")
    with pytest.raises(ValueError, match="layout must be one of"):
        erp_to_cubemap(erp, 4, layout="cross")
    with pytest.raises(ValueError, match="mode must be one of"):
        perspective_to_erp(torch.rand(1, 1, 4, 4), 1.0, (4, 8), mode="lanczos")
    with pytest.raises(ValueError, match="mode must be one of"):
        sample_erp(erp, torch.zeros(1, 1, 1, 2), mode="lanczos")
    with pytest.raises(ShapeError, match=r"lonlat must be a \(B, h, w, 2\) tensor, got \(1, 2\)"):
        sample_erp(erp, torch.zeros(1, 2))
    with pytest.raises(ShapeError, match=r"lonlat must be a \(B, h, w, 2\) tensor, got list"):
        sample_erp(erp, [[0.0, 0.0]])
    with pytest.raises(ShapeError, match=r"img must be a \(B, C, h, w\) tensor, got \(1, 4, 4\)"):
        perspective_to_erp(torch.rand(1, 4, 4), 1.0, (4, 8))
    with pytest.raises(ValueRangeError, match="face_w must be a positive integer"):
        erp_to_cubemap(erp, 0)
    with pytest.raises(ShapeError, match=r"R must be \(3, 3\) or \(B, 3, 3\)"):
        rotate_erp(erp, torch.eye(4))
    with pytest.raises(ShapeError, match=r"xy must have shape \(\.\.\., 2\)"):
        pixel_to_lonlat(torch.zeros(3), (4, 8))
    with pytest.raises(ShapeError, match=r"xyz must have shape \(\.\.\., 3\)"):
        xyz_to_lonlat(torch.zeros(2, 2))
    with pytest.raises(ShapeError, match="hw must be a pair"):
        lonlat_to_pixel(torch.zeros(2), (4,))


def test_error_bad_cubes():
    with pytest.raises(ShapeError, match="dict with keys"):
        cubemap_to_erp({"F": torch.rand(1, 1, 4, 4)}, (8, 16), layout="dict")
    with pytest.raises(ShapeError, match=r"for layout 'dice', got dict \(pass layout='dict'\)"):
        cubemap_to_erp({"F": torch.rand(1, 1, 4, 4)}, (8, 16))
    with pytest.raises(ShapeError, match="list of 6"):
        cubemap_to_erp([torch.rand(1, 1, 4, 4)] * 5, (8, 16), layout="list")
    with pytest.raises(ShapeError, match=r"horizon cube must be \(B, C, w, 6w\)"):
        cubemap_to_erp(torch.rand(1, 1, 4, 20), (8, 16), layout="horizon")
    with pytest.raises(ShapeError, match=r"dice cube must be \(B, C, 3w, 4w\)"):
        cubemap_to_erp(torch.rand(1, 1, 12, 12), (8, 16), layout="dice")
    with pytest.raises(ShapeError, match="must be square"):
        cubemap_to_erp([torch.rand(1, 1, 4, 5)] * 6, (8, 16), layout="list")
    faces = [torch.rand(1, 1, 4, 4)] * 5 + [torch.rand(1, 1, 3, 3)]
    with pytest.raises(ShapeError, match="one shape"):
        cubemap_to_erp(faces, (8, 16), layout="list")


def test_cached_fixed_geometry_equals_differentiable_path():
    """Float parameters take a cached float64 grid; tensor parameters the autograd path."""
    erp = torch.rand(1, 3, 32, 64, dtype=torch.float64)
    angles = (1.1, 2.9, -0.4, 0.7)  # fov, yaw (near the seam), pitch, roll
    cached = erp_to_perspective(erp, angles[0], (9, 13), *angles[1:])
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in angles]
    direct = erp_to_perspective(erp, tensors[0], (9, 13), *tensors[1:])
    torch.testing.assert_close(cached, direct)
    R = rotation_matrix(*angles[1:], dtype=torch.float64)
    torch.testing.assert_close(rotate_erp(erp, R), rotate_erp(erp, R.requires_grad_()))


def test_grid_sample_parallel_matches_plain_grid_sample():
    from pano360.geometry.sampling import grid_sample_parallel

    img = torch.rand(1, 2, 20, 30)
    grid = torch.rand(1, 71, 67, 2) * 2 - 1  # a point count that does not split evenly
    expected = torch.nn.functional.grid_sample(
        img, grid, padding_mode="border", align_corners=False
    )
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        torch.testing.assert_close(grid_sample_parallel(img, grid, "bilinear"), expected)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("h", [1, 2, 3, 8])
@pytest.mark.parametrize("pad", [1, 2])
def test_spherical_pad_matches_the_index_oracle(h, pad):
    """The fast slice-copy padding equals the general reflect-and-shift index map."""
    from pano360.geometry import spherical_pad
    from pano360.geometry.padding import spherical_pad_index

    erp = torch.rand(2, 3, h, 2 * h)
    index = spherical_pad_index(h, 2 * h, pad, erp.device)
    expected = erp.reshape(2, 3, -1)[:, :, index.flatten()].reshape(2, 3, *index.shape)
    assert torch.equal(spherical_pad(erp, pad), expected)


def test_many_views_of_one_panorama_equal_views_of_a_repeated_panorama():
    # One image sampled by a batch of cameras takes a path that never copies the image.
    import math

    from pano360.geometry import erp_to_perspective

    erp = torch.rand(1, 3, 32, 64, generator=torch.Generator().manual_seed(3))
    yaw = torch.tensor([0.0, 1.0, -2.5, math.pi])
    pitch = torch.tensor([0.0, 0.4, -1.2, 1.5])
    fov = torch.full((4,), 1.2)
    views = erp_to_perspective(erp, fov, (20, 24), yaw=yaw, pitch=pitch)
    repeated = erp_to_perspective(erp.expand(4, -1, -1, -1).clone(), fov, (20, 24), yaw, pitch)
    assert views.is_contiguous()
    torch.testing.assert_close(views, repeated, atol=1e-6, rtol=0)


def test_view_pixel_rays_at_pixel_centres_equal_camera_rays():
    from pano360.geometry import camera_rays, view_pixel_rays

    t = torch.tensor([0.5, 1.5], dtype=torch.float64)
    grid = camera_rays((5, 7), t)
    points = torch.tensor([[[3.0, 2.0], [0.0, 4.0]], [[6.0, 0.0], [2.0, 1.0]]], dtype=torch.float64)
    rays = view_pixel_rays(points, (5, 7), t)
    for b in range(2):
        for k, (x, y) in enumerate(points[b].long().tolist()):
            torch.testing.assert_close(rays[b, k], grid[b, y, x])
    # The principal point (between the middle pixels) looks straight ahead.
    centre = view_pixel_rays(torch.tensor([[[3.0, 2.0]]]), (5, 7), torch.tensor([1.0]))
    torch.testing.assert_close(centre[0, 0], torch.tensor([0.0, 0.0, 1.0]))


def test_view_pixel_coords_inverts_view_pixel_rays():
    from pano360.geometry import view_pixel_coords, view_pixel_rays

    t = torch.tensor([0.4, 1.7], dtype=torch.float64)
    gen = torch.Generator().manual_seed(3)
    points = torch.rand(2, 50, 2, generator=gen, dtype=torch.float64) * 12 - 1.5  # some outside
    rays = view_pixel_rays(points, (8, 10), t) * 2.5  # any length
    back, inside = view_pixel_coords(rays, (8, 10), t)
    torch.testing.assert_close(back, points, atol=1e-12, rtol=0)
    u, v = points.unbind(-1)
    expected = (u >= -0.5) & (u <= 9.5) & (v >= -0.5) & (v <= 7.5)
    assert torch.equal(inside, expected) and expected.any() and not expected.all()
    # Rays behind the camera (or sideways) are never inside, and get (0, 0).
    behind = torch.tensor([[[0.0, 0.0, -1.0], [1.0, 0.0, 0.0]]], dtype=torch.float64)
    pts, ins = view_pixel_coords(behind, (8, 10), t[:1])
    assert not ins.any() and (pts == 0).all()


def test_erp_directions_hands_out_a_copy_the_caller_may_change():
    from pano360.geometry import erp_directions

    first = erp_directions((4, 8))
    first.zero_()
    second = erp_directions((4, 8))
    torch.testing.assert_close(second.norm(dim=-1), torch.ones(4, 8))


def test_perspective_to_erp_returns_a_named_pasted_view():
    view = torch.rand(2, 3, 8, 8)
    pasted = perspective_to_erp(view, 1.0, (16, 32), yaw=0.5)
    assert isinstance(pasted, PastedView) and isinstance(pasted, tuple)
    erp, mask = pasted
    assert erp is pasted.erp and mask is pasted.mask
    assert erp.shape == (2, 3, 16, 32) and mask.shape == (2, 1, 16, 32)
    assert pasted._fields == ("erp", "mask")


def test_cube_layout_defaults_to_dice_in_python_and_in_the_cli():
    """One default: "dice" in every cube-map function and in ``pano360 project e2c/c2e``."""
    import inspect

    import typer

    from pano360.cli import app

    erp = torch.rand(1, 3, 16, 32)
    dice = erp_to_cubemap(erp, 4)
    assert isinstance(dice, torch.Tensor) and dice.shape == (1, 3, 12, 16)
    torch.testing.assert_close(dice, erp_to_cubemap(erp, 4, layout="dice"))
    torch.testing.assert_close(
        cubemap_to_erp(dice, (16, 32)), cubemap_to_erp(dice, (16, 32), "dice")
    )
    for fn in (erp_to_cubemap, cubemap_to_erp, cubemap_to_faces, cubemap_from_faces):
        assert inspect.signature(fn).parameters["layout"].default == "dice", fn.__name__
    root = typer.main.get_command(app)
    project = root.get_command(None, "project")
    for name in ("e2c", "c2e"):
        (layout,) = [p for p in project.commands[name].params if p.name == "layout"]
        assert layout.default == "dice", name
