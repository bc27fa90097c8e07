"""rotate_erp's two forms: the camera form (yaw, pitch, roll as erp_to_perspective takes them)
and the matrix form (R moves the content), as the README and the docs call them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pano360.errors import ShapeError
from pano360.geometry import (
    erp_to_perspective,
    rotate_erp,
    rotation_matrix,
    sample_erp,
)
from pano360.testing import smooth_erp

HW = (64, 128)


@pytest.fixture(scope="module")
def erp() -> torch.Tensor:
    return smooth_erp(HW, 3, seed=4, dtype=torch.float64)


def test_readme_example_what_was_90_degrees_right_is_now_in_front():
    erp = torch.zeros(1, 1, 32, 64)
    erp[..., 47:49] = 1.0  # a stripe centred on lon = +90 degrees (column 47.5)
    recentred = rotate_erp(erp, yaw=math.radians(90))
    centre = recentred[0, 0, 16, 31:33]  # the two columns either side of lon 0
    assert centre.tolist() == pytest.approx([1.0, 1.0], abs=1e-5)
    assert recentred[0, 0, 16, 47:49].abs().max() < 1e-5


def test_camera_form_is_the_matrix_form_with_the_transpose(erp):
    angles = {"yaw": 0.7, "pitch": -0.4, "roll": 1.1}
    R = rotation_matrix(**angles, dtype=torch.float64)
    torch.testing.assert_close(rotate_erp(erp, **angles), rotate_erp(erp, R.T), rtol=0, atol=0)
    # Angles left out are 0.
    torch.testing.assert_close(
        rotate_erp(erp, pitch=0.3), rotate_erp(erp, rotation_matrix(0.0, 0.3, 0.0).T)
    )


def test_matrix_form_moves_content_by_R(erp):
    """Matrix form, as documented: content seen in direction d is seen in direction R d; yaw
    moves content right (the opposite of the camera form)."""
    img = torch.zeros(1, 1, 32, 64)
    img[..., 31:33] = 1.0  # lon 0
    moved = rotate_erp(img, rotation_matrix(math.radians(90)))
    assert moved[0, 0, 16, 47:49].tolist() == pytest.approx([1.0, 1.0], abs=1e-5)


angle = st.floats(-math.pi, math.pi, allow_nan=False)
pitch = st.floats(-math.pi / 2, math.pi / 2, allow_nan=False)


@settings(max_examples=25, deadline=None)
@given(yaw=angle, pitch=pitch, roll=angle)
def test_convention_rotated_centre_is_what_erp_to_perspective_sees_in_the_middle(
    erp, yaw, pitch, roll
):
    """The rotated ERP's centre (lon = lat = 0) shows what a view with the same yaw, pitch and
    roll shows at its centre (a 1 x 1 view looks exactly along its axis), seam and poles
    included."""
    rotated = rotate_erp(erp, yaw=yaw, pitch=pitch, roll=roll)
    centre = sample_erp(rotated, torch.zeros(1, 1, 1, 2, dtype=torch.float64))
    view = erp_to_perspective(erp, 0.5, (1, 1), yaw=yaw, pitch=pitch, roll=roll)
    # Two bilinear resamplings of a smooth panorama against one.
    torch.testing.assert_close(centre, view, rtol=0, atol=2e-3)


def test_a_view_of_the_rotated_erp_is_the_view_with_those_angles(erp):
    angles = {"yaw": 2.5, "pitch": 0.6, "roll": -0.3}
    ahead = erp_to_perspective(rotate_erp(erp, **angles), 1.2, (24, 32))
    aimed = erp_to_perspective(erp, 1.2, (24, 32), **angles)
    torch.testing.assert_close(ahead, aimed, rtol=0, atol=3e-3)


def test_batched_tensor_angles_rotate_each_image_and_broadcast_one_image(erp):
    yaws = torch.tensor([0.0, 1.0, -2.0], dtype=torch.float64)
    out = rotate_erp(erp, yaw=yaws)
    assert out.shape == (3, 3, *HW)
    for i, y in enumerate(yaws.tolist()):
        torch.testing.assert_close(out[i : i + 1], rotate_erp(erp, yaw=y))


def test_gradcheck_through_the_camera_angles():
    x = smooth_erp((6, 12), 1, seed=5, dtype=torch.float64)
    angles = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64, requires_grad=True)

    def fn(a):
        return rotate_erp(x, yaw=a[:1], pitch=a[1:2], roll=a[2:])

    assert torch.autograd.gradcheck(fn, (angles,))


def test_numpy_and_uint8_come_back_in_their_form(erp):
    array = (erp[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    out = rotate_erp(array, yaw=1.0)
    assert out.dtype == np.uint8 and out.shape == array.shape


def test_errors():
    x = torch.rand(1, 3, 8, 16)
    with pytest.raises(TypeError, match="rotate_erp takes R or yaw/pitch/roll, not both"):
        rotate_erp(x, torch.eye(3), yaw=0.1)
    with pytest.raises(TypeError, match="rotate_erp needs a rotation: R, or the camera's yaw"):
        rotate_erp(x)
    with pytest.raises(
        TypeError, match=r"R must be a \(3, 3\) or \(B, 3, 3\) torch.Tensor, got list"
    ):
        rotate_erp(x, [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(ShapeError, match=r"R must be \(3, 3\) or \(B, 3, 3\), got \(3, 4\)"):
        rotate_erp(x, torch.zeros(3, 4))
    with pytest.raises(ShapeError, match="R batch 3 does not match erp batch 2"):
        rotate_erp(x.expand(2, -1, -1, -1), torch.eye(3).expand(3, 3, 3))
    with pytest.raises(ShapeError, match=r"erp must be \(B, C, H, W\) with W == 2H"):
        rotate_erp(torch.rand(1, 3, 8, 8), yaw=0.1)
    with pytest.raises(ValueError, match="mode must be one of"):
        rotate_erp(x, yaw=0.1, mode="cubic")
    with pytest.raises(TypeError, match=r"erp must be an image.*read_image"):
        rotate_erp("pano.jpg", yaw=0.1)
