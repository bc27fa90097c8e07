"""Images as users pass them to the geometry functions: float and uint8 tensors, numpy arrays
(H, W, C) or (H, W) as py360convert takes them, and clear errors for paths and other things."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pano360.errors import ShapeError
from pano360.geometry import (
    cubemap_to_erp,
    erp_to_cubemap,
    erp_to_perspective,
    perspective_to_erp,
    py360convert_fov,
    resize_erp,
    rotate_erp,
    sample_erp,
)
from pano360.testing import smooth_erp

FOV = math.radians(80)
LONLAT = torch.rand(1, 5, 6, 2, generator=torch.Generator().manual_seed(0)) * 3 - 1.5


@pytest.fixture(scope="module")
def erp() -> torch.Tensor:
    """(1, 3, 32, 64) float32 smooth panorama in (0, 1)."""
    return smooth_erp((32, 64), 3, seed=1)


def to_uint8(t: torch.Tensor) -> torch.Tensor:
    return (t * 255).round().clamp(0, 255).to(torch.uint8)


def hwc(t: torch.Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).numpy()


# One call per public image function, as a user writes it; each returns one image.
CALLS = {
    "erp_to_perspective": lambda x: erp_to_perspective(x, FOV, (12, 16), yaw=0.4, pitch=-0.2),
    "perspective_to_erp": lambda x: perspective_to_erp(x, FOV, (16, 32), yaw=0.3).erp,
    "rotate_erp": lambda x: rotate_erp(x, yaw=0.7, pitch=0.2),
    "sample_erp": lambda x: sample_erp(x, LONLAT),
    "resize_erp": lambda x: resize_erp(x, (12, 24)),
    "erp_to_cubemap": lambda x: erp_to_cubemap(x, 8),
    "erp_to_cubemap_dict": lambda x: erp_to_cubemap(x, 8, layout="dict")["U"],
    # A (24, 32) corner of the panorama read as a dice cube map of 8-pixel faces.
    "cubemap_to_erp": lambda x: cubemap_to_erp(
        x[..., :24, :32] if isinstance(x, torch.Tensor) else x[:24, :32], (16, 32)
    ),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_uint8_tensors_are_sampled_as_floats_and_given_back_as_uint8(erp, call):
    image = to_uint8(erp)
    out = CALLS[call](image)
    assert out.dtype == torch.uint8
    expected = to_uint8(CALLS[call](image.float() / 255))
    assert torch.equal(out, expected)


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float16, np.float32, np.float64])
def test_numpy_hwc_arrays_come_back_as_numpy_of_the_same_dtype_and_layout(erp, call, dtype):
    """As py360convert: (H, W, C) in, (h, w, C) of the same dtype out, the same values as the
    tensor path (integers scaled to [0, 1] and rounded back)."""
    scale = {np.uint8: 255, np.uint16: 65535}.get(dtype)
    array = hwc(erp).astype(np.float64)
    array = (array * scale).round().astype(dtype) if scale else array.astype(dtype)
    out = CALLS[call](array)
    assert isinstance(out, np.ndarray) and out.dtype == dtype and out.ndim == 3
    tensor = torch.from_numpy(array.astype(np.float64 if dtype == np.float64 else np.float32))
    tensor = tensor.permute(2, 0, 1)[None] / (scale or 1)
    ref = hwc(CALLS[call](tensor))
    if scale:
        ref = np.clip(np.round(ref * scale), 0, scale)
    assert out.shape == ref.shape
    np.testing.assert_allclose(
        out.astype(np.float64), ref, rtol=0, atol=1e-3 if scale is None else 0
    )


def test_numpy_grey_images_stay_2d(erp):
    grey = hwc(erp)[..., 0].copy()
    view = erp_to_perspective(grey, FOV, (12, 16))
    assert isinstance(view, np.ndarray) and view.shape == (12, 16) and view.dtype == np.float32
    np.testing.assert_array_equal(view, erp_to_perspective(erp[:, :1], FOV, (12, 16))[0, 0].numpy())
    faces = erp_to_cubemap(grey, 8, layout="list")
    assert [f.shape for f in faces] == [(8, 8)] * 6


def test_numpy_arrays_that_are_views_read_only_or_reversed_are_accepted(erp):
    array = hwc(erp).copy()
    array.setflags(write=False)
    flipped = array[:, ::-1]
    out = rotate_erp(flipped, yaw=0.0, pitch=0.0, roll=0.0)
    np.testing.assert_allclose(out, flipped, atol=1e-5)


def test_numpy_input_is_not_modified(erp):
    array = (hwc(erp) * 255).round().astype(np.uint8)
    before = array.copy()
    erp_to_perspective(array, FOV, (12, 16), yaw=1.0)
    np.testing.assert_array_equal(array, before)


def test_batched_angles_on_one_numpy_image_give_a_leading_batch_axis(erp):
    views = erp_to_perspective(hwc(erp), FOV, (12, 16), yaw=torch.tensor([0.0, 1.0, 2.0]))
    assert views.shape == (3, 12, 16, 3)


def test_float_tensors_pass_through_with_autograd(erp):
    x = erp.clone().requires_grad_(True)
    erp_to_perspective(x, FOV, (6, 8), yaw=0.3).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_perspective_to_erp_mask_follows_the_input_container(erp):
    view = hwc(erp_to_perspective(erp, FOV, (12, 16)))
    pasted = perspective_to_erp((view * 255).round().astype(np.uint8), FOV, (16, 32))
    assert pasted.erp.dtype == np.uint8 and pasted.erp.shape == (16, 32, 3)
    assert pasted.mask.dtype == np.float32 and pasted.mask.shape == (16, 32, 1)
    assert set(np.unique(pasted.mask)) == {0.0, 1.0}
    tensor = perspective_to_erp(to_uint8(erp[..., :12, :16]), FOV, (16, 32))
    assert tensor.erp.dtype == torch.uint8 and tensor.mask.dtype == torch.float32


def test_cubemap_to_erp_takes_numpy_faces_in_every_layout(erp):
    array = hwc(erp).astype(np.float64)
    back = {}
    for layout in ("dice", "horizon", "dict", "list"):
        cube = erp_to_cubemap(array, 8, layout=layout)
        back[layout] = cubemap_to_erp(cube, (32, 64), layout=layout)
        assert isinstance(back[layout], np.ndarray) and back[layout].shape == (32, 64, 3)
        assert back[layout].dtype == np.float64
    for layout in ("horizon", "dict", "list"):
        np.testing.assert_array_equal(back[layout], back["dice"])


# --- py360convert (dev extra): numpy in, numpy out, the same numbers -------------------------


def test_numpy_path_matches_py360convert_e2p_for_uint8_and_float():
    py360convert = pytest.importorskip("py360convert")
    erp = smooth_erp((64, 128), 3, seed=2, dtype=torch.float64)
    for array in (hwc(erp), (hwc(erp) * 255).round().astype(np.uint8)):
        hw = (24, 32)
        ours = erp_to_perspective(array, FOV, hw, yaw=math.radians(150), pitch=math.radians(-30))
        theirs = py360convert.e2p(
            array, fov_deg=py360convert_fov(FOV, hw), u_deg=150, v_deg=-30, out_hw=hw
        )
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        # uint8: both round the same bilinear value; they may differ by one step where it
        # falls on .5 after float rounding.
        atol = 1 if array.dtype == np.uint8 else 1e-4
        np.testing.assert_allclose(ours.astype(float), theirs.astype(float), rtol=0, atol=atol)


def test_numpy_path_matches_py360convert_cube_maps():
    """e2c and c2e with numpy arrays, dice (both libraries' default) and dict layouts: same
    dtype, layout and values up to interpolation (py360convert places face pixels differently:
    compared on a smooth panorama)."""
    py360convert = pytest.importorskip("py360convert")
    erp = smooth_erp((64, 128), 3, seed=3, dtype=torch.float64)
    array = hwc(erp)
    ours = erp_to_cubemap(array, 16)
    theirs = py360convert.e2c(array, face_w=16)
    assert ours.shape == theirs.shape == (48, 64, 3) and ours.dtype == theirs.dtype
    filled = np.zeros((3, 4), bool)
    filled[1, :], filled[0, 1], filled[2, 1] = True, True, True
    cells = np.kron(filled, np.ones((16, 16), bool))
    np.testing.assert_allclose(ours[cells], theirs[cells], rtol=0, atol=0.03)
    faces = erp_to_cubemap(array, 16, layout="dict")
    theirs_dict = py360convert.e2c(array, face_w=16, cube_format="dict")
    for key in "FRBLUD":
        np.testing.assert_allclose(faces[key], theirs_dict[key], rtol=0, atol=0.03)
    back = cubemap_to_erp(faces, (64, 128), layout="dict")
    theirs_back = py360convert.c2e(theirs_dict, 64, 128, cube_format="dict")
    assert back.shape == theirs_back.shape and back.dtype == theirs_back.dtype
    # Face pixels sit differently in the two libraries (tests/geometry/test_interop_py360convert
    # compares the geometry exactly), so both round trips are compared with the panorama.
    ours_err, theirs_err = np.abs(back - array).mean(), np.abs(theirs_back - array).mean()
    assert ours_err < 0.002 and ours_err < theirs_err


# --- what is refused, and how ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["pano.jpg", Path("pano.jpg")])
def test_a_path_is_a_type_error_that_says_to_read_the_image(path):
    with pytest.raises(TypeError, match=r"erp must be an image.*got the path 'pano.jpg': pass "
                       r"pano360\.io\.read_image\(path\)"):  # fmt: skip
        erp_to_perspective(path, FOV, (8, 8))
    with pytest.raises(TypeError, match=r"img must be an image.*read_image"):
        perspective_to_erp(path, FOV, (8, 16))
    with pytest.raises(TypeError, match=r"cube must be an image.*read_image"):
        cubemap_to_erp(path, (8, 16))


def test_other_inputs_are_type_errors_naming_the_parameter():
    with pytest.raises(TypeError, match=r"erp must be .*got a PIL image: pass numpy.asarray"):
        rotate_erp(Image.new("RGB", (8, 4)), yaw=1.0)
    with pytest.raises(TypeError, match=r"erp must be a torch.Tensor \(B, C, H, W\) or a numpy "
                       r"array \(H, W, C\) or \(H, W\), got list"):  # fmt: skip
        sample_erp([[0.0]], torch.zeros(1, 1, 1, 2))
    with pytest.raises(TypeError, match=r"erp must be a floating-point or uint8 tensor, got "
                       r"torch\.int64"):  # fmt: skip
        erp_to_cubemap(torch.zeros(1, 3, 8, 16, dtype=torch.long), 4)
    with pytest.raises(TypeError, match="erp must be a numpy array of dtype uint8, uint16"):
        resize_erp(np.zeros((8, 16, 3), bool), (4, 8))
    with pytest.raises(TypeError, match=r"cube\['F'\] must be a floating-point or uint8"):
        faces = {k: torch.zeros(1, 1, 4, 4) for k in "FRBLUD"}
        faces["F"] = faces["F"].long()
        cubemap_to_erp(faces, (8, 16), layout="dict")
    with pytest.raises(TypeError, match="cube faces must all be of one kind and dtype"):
        faces = [np.zeros((4, 4, 3), np.float32)] * 5 + [np.zeros((4, 4, 3), np.uint8)]
        cubemap_to_erp(faces, (8, 16), layout="list")


def test_numpy_arrays_of_other_ranks_are_shape_errors():
    with pytest.raises(ShapeError, match=r"erp must be a numpy array \(H, W, C\) or \(H, W\), "
                       r"got shape \(1, 8, 16, 3\)"):  # fmt: skip
        erp_to_perspective(np.zeros((1, 8, 16, 3), np.float32), FOV, (4, 4))
    with pytest.raises(ShapeError, match=r"erp must be \(B, C, H, W\) with W == 2H"):
        erp_to_perspective(np.zeros((8, 8, 3), np.float32), FOV, (4, 4))


def test_a_channels_first_numpy_array_is_named_as_such():
    with pytest.raises(ShapeError, match=r"got shape \(3, 16, 32\), which looks like \(C, H, W\): "
                       r"pass array\.transpose\(1, 2, 0\)"):  # fmt: skip
        erp_to_cubemap(np.zeros((3, 16, 32), np.float32), 4)
