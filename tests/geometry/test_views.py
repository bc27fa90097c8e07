"""View rigs, render_views and merge_views: coverage, equality with the single-view functions,
blending, errors."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pano360.errors import ChoiceError, ShapeError, ValueRangeError
from pano360.geometry import (
    ViewRig,
    erp_directions,
    erp_to_perspective,
    merge_views,
    perspective_to_erp,
    render_views,
    view_coverage,
)
from pano360.testing import smooth_erp

D = torch.float64


def largest_gap(rig: ViewRig, hw=(90, 180)) -> float:
    """Largest angle from an ERP pixel centre to its nearest view axis (degrees)."""
    axes = rig.rotations()[..., 2]  # forward axes
    dirs = erp_directions(hw, dtype=D).reshape(-1, 3)
    return math.degrees(float(torch.acos((dirs @ axes.T).clamp(-1, 1)).amin(1).max()))


def test_named_rigs():
    cube = ViewRig.cube()
    assert len(cube) == 6 and set(cube.fov) == {math.pi / 2}
    assert cube.view_hw(2048) == (512, 512)
    ring = ViewRig.ring()
    assert len(ring) == 16 and set(ring.fov) == {math.radians(45)}
    assert sorted(round(math.degrees(y), 6) for y in ring.yaw)[:3] == [-157.5, -135.0, -112.5]
    assert cube.view_hw(1024) == (256, 256)  # a cube face of W / 4 pixels
    assert len(ViewRig.ring(math.radians(90), 0.0, (0.0, math.radians(45)))) == 8
    assert largest_gap(ViewRig.sphere14()) < 36.1
    assert ViewRig.cube(hw=(40, 60)).view_hw(2048) == (40, 60)


@settings(max_examples=10, deadline=None)
@given(gap_deg=st.floats(8, 85))
def test_sphere_cover_keeps_its_stated_largest_gap(gap_deg):
    rig = ViewRig.sphere_cover(math.radians(gap_deg))
    assert largest_gap(rig) <= gap_deg + 1e-9
    assert bool(view_coverage(rig, (24, 48)).all())


def test_coverage_of_rigs():
    assert bool(view_coverage(ViewRig.cube(), (32, 64)).all())
    assert bool(view_coverage(ViewRig.sphere14(), (32, 64)).all())
    ring = view_coverage(ViewRig.ring(), (32, 64))  # 45-degree views see +-22.5 degrees
    assert not bool(ring[0].any()) and bool(ring[16].all())


def test_render_views_equals_erp_to_perspective_per_view_and_image():
    erp = torch.stack([smooth_erp((32, 64), dtype=D)[0], torch.rand(3, 32, 64, dtype=D)])
    rig = ViewRig.from_views(
        [0.3, -2.0, 3.0], [0.1, 1.2, -0.7], [1.0, 1.5, 0.6], roll=[0.0, 0.4, -1.0], hw=(9, 13)
    )
    views = render_views(erp, rig)
    assert views.shape == (6, 3, 9, 13)
    for b in range(2):
        for v in range(3):
            expected = erp_to_perspective(
                erp[b : b + 1], rig.fov[v], (9, 13), rig.yaw[v], rig.pitch[v], rig.roll[v]
            )
            torch.testing.assert_close(views[3 * b + v : 3 * b + v + 1], expected)


def test_merging_one_view_is_perspective_to_erp():
    rig = ViewRig.from_views([0.5], [0.3], [1.4], roll=[0.2], hw=(10, 14))
    maps = torch.rand(1, 2, 10, 14, dtype=D)
    merged = merge_views(maps, rig, (24, 48))
    pasted, mask = perspective_to_erp(maps, 1.4, (24, 48), 0.5, 0.3, 0.2)
    torch.testing.assert_close(merged, pasted)
    assert torch.equal(view_coverage(rig, (24, 48)), mask[0, 0].bool())


@pytest.mark.parametrize("blend", ["cos2", "nearest"])
def test_a_constant_merges_into_the_constant_where_covered(blend):
    rig = ViewRig.cube()
    maps = torch.full((12, 1, 8, 8), 0.25, dtype=D)
    merged = merge_views(maps, rig, (16, 32), blend=blend)
    torch.testing.assert_close(merged, torch.full((2, 1, 16, 32), 0.25, dtype=D))


def test_render_then_merge_gives_back_a_smooth_panorama():
    erp = smooth_erp((32, 64), dtype=D)
    for rig in (ViewRig.sphere14(), ViewRig.cube(hw=(48, 48))):
        back = merge_views(render_views(erp, rig), rig, (32, 64))
        assert float((back - erp).abs().max()) < 0.05


def test_smaller_maps_cover_the_same_field_of_view():
    """A model of stride 2 gives maps of half the view's size; they land on the same places."""
    erp = smooth_erp((32, 64), dtype=D)
    rig = ViewRig.sphere14(hw=(24, 24))
    views = render_views(erp, rig)
    half = torch.nn.functional.avg_pool2d(views, 2)
    full = merge_views(views, rig, (16, 32))
    torch.testing.assert_close(merge_views(half, rig, (16, 32)), full, atol=0.02, rtol=0)


def test_planar_maps_merge_onto_the_planar_grid():
    """Maps whose pixel m sits on view pixel s m (a view subsampled as a padded strided conv
    does) merge with grid="planar" into the panorama subsampled the same way; read as centred
    maps they land half a view pixel off."""
    erp = smooth_erp((64, 128), dtype=D, degree=2, seed=3)
    rig = ViewRig.sphere14(hw=(48, 48))
    planar_maps = render_views(erp, rig)[..., ::4, ::4]
    expected = erp[..., ::4, ::4]  # input pixel (4 i, 4 j)
    merged = merge_views(planar_maps, rig, (16, 32), stride=4, grid="planar")
    naive = merge_views(planar_maps, rig, (16, 32))
    error, naive_error = (float((m - expected).abs().mean()) for m in (merged, naive))
    assert error < naive_error / 4, (error, naive_error)
    with pytest.raises(ChoiceError, match="grid must be one of 'sphere', 'planar'"):
        merge_views(planar_maps, rig, (16, 32), grid="torch")
    with pytest.raises(ValueRangeError, match="stride"):
        merge_views(planar_maps, rig, (16, 32), stride=0, grid="planar")


def test_nearest_blend_takes_the_closest_axis():
    rig = ViewRig.cube()
    maps = torch.arange(6, dtype=D).reshape(6, 1, 1, 1).expand(6, 1, 4, 4)
    merged = merge_views(maps, rig, (16, 32), blend="nearest", mode="nearest")
    assert merged[0, 0, 8, 16] == 0  # straight ahead: F
    assert merged[0, 0, 0, 5] == 4 and merged[0, 0, 15, 5] == 5  # the poles: U and D
    assert merged[0, 0, 8, 24] == 1  # lon +90: R


def test_errors():
    with pytest.raises(ValueRangeError, match="one yaw, pitch, roll and fov per view"):
        ViewRig((0.0,), (0.0, 1.0), (0.0,), (1.0,))
    with pytest.raises(ValueRangeError, match="fov must be a finite number in"):
        ViewRig.from_views([0.0], [0.0], math.pi)
    with pytest.raises(ValueRangeError, match="overlap must be"):
        ViewRig.ring(overlap=1.0)
    with pytest.raises(ValueRangeError, match="pitches must"):
        ViewRig.ring(pitches=(2.0,))
    with pytest.raises(ValueRangeError, match="fov must be a finite number in"):
        ViewRig.sphere_cover(math.radians(30), fov=math.radians(50))
    with pytest.raises(ValueRangeError, match="max_gap"):
        ViewRig.sphere_cover(0.0)
    with pytest.raises(ShapeError, match="hw must be a pair"):
        ViewRig.cube(hw=(0, 4))
    rig = ViewRig.cube()
    with pytest.raises(ShapeError, match="len\\(rig\\) = 6 views per image"):
        merge_views(torch.zeros(5, 1, 4, 4), rig, (8, 16))
    with pytest.raises(ShapeError, match="outputs must be"):
        merge_views(torch.zeros(6, 4, 4), rig, (8, 16))
    with pytest.raises(ChoiceError, match="blend must be one of"):
        merge_views(torch.zeros(6, 1, 4, 4), rig, (8, 16), blend="max")
    with pytest.raises(ShapeError, match="W == 2H"):
        render_views(torch.zeros(1, 3, 8, 8), rig)


def test_plans_cached_under_inference_mode_still_work_with_autograd():
    from pano360.geometry import views as views_module

    views_module._render_plan.cache_clear()
    views_module._merge_plan.cache_clear()
    rig = ViewRig.sphere14(hw=(8, 8))
    with torch.inference_mode():
        merge_views(render_views(torch.rand(1, 1, 16, 32), rig), rig, (16, 32))
    x = torch.rand(1, 1, 16, 32, requires_grad=True)
    merge_views(render_views(x, rig), rig, (16, 32))[0, 0, 3, 5].backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())
