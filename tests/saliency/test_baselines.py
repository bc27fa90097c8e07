"""Saliency baselines: uniform, equator bias (default and fitted), spectral residual on views,
and the registry. The two "done when" comparisons run on generated data with known saliency."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pano360.data import SaliencySceneConfig, make_saliency_scene
from pano360.errors import ShapeError, ValueRangeError
from pano360.models import create_model, list_models, model_info
from pano360.saliency import (
    DEFAULT_EQUATOR_SIGMA_DEG,
    EquatorBias,
    SpectralResidualSaliency,
    cc,
    equator_bias,
    fit_latitude_profile,
    fixation_map,
    kld,
    nss,
    predict_saliency,
    spectral_residual,
    spectral_saliency,
    uniform_saliency,
)
from pano360.testing import assert_seam_continuous, smooth_erp

H, W = 16, 32


# --- uniform and equator bias -------------------------------------------------------------------


def test_uniform_is_constant_and_sums_to_one():
    m = uniform_saliency((H, W), batch=3, dtype=torch.float64)
    assert m.shape == (3, 1, H, W)
    torch.testing.assert_close(m.sum(dim=(-2, -1)), torch.ones(3, 1, dtype=torch.float64))
    assert float(m.max() - m.min()) == 0.0


def test_uniform_errors():
    with pytest.raises(ShapeError, match="W == 2H"):
        uniform_saliency((H, H))
    with pytest.raises(ValueRangeError, match="batch must be a positive integer"):
        uniform_saliency((H, W), batch=0)


def test_equator_bias_matches_loop_oracle():
    sigma = 25.0
    m = equator_bias((H, W), sigma, dtype=torch.float64)[0, 0]
    rows = []
    for i in range(H):
        lat = 90 - (i + 0.5) * 180 / H  # degrees, row centre
        rows.append(math.exp(-0.5 * (lat / sigma) ** 2))
    total = sum(rows) * W
    expected = torch.tensor([[r / total] * W for r in rows], dtype=torch.float64)
    torch.testing.assert_close(m, expected)


def test_convention_equator_bias_peaks_at_the_equator_and_is_north_south_symmetric():
    m = equator_bias((H, W))[0, 0, :, 0]
    assert int(m.argmax()) in (H // 2 - 1, H // 2)
    torch.testing.assert_close(m, m.flip(0))


def test_fitted_profile_reproduces_the_maps_it_was_fitted_on():
    target = equator_bias((H, W), 12.0, dtype=torch.float64)
    profile = fit_latitude_profile(target.expand(3, -1, -1, -1) * torch.tensor([1.0, 2.0, 5.0],
                                   dtype=torch.float64)[:, None, None, None])  # fmt: skip
    assert profile.shape == (H,) and float(profile.sum() * W) == pytest.approx(1.0)
    torch.testing.assert_close(equator_bias((H, W), profile=profile, dtype=torch.float64), target)


def test_fit_matches_oracle_on_arbitrary_maps():
    maps = torch.rand(4, 1, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    expected = torch.zeros(H, dtype=torch.float64)
    for b in range(4):
        total = float(maps[b].sum())
        for i in range(H):
            expected[i] += float(maps[b, 0, i].sum()) / total / W / 4
    torch.testing.assert_close(fit_latitude_profile(maps), expected)


def test_profile_resampling_to_another_height_follows_the_latitude():
    fine = equator_bias((64, 128), 15.0, dtype=torch.float64)
    profile = fit_latitude_profile(fine)
    coarse = equator_bias((H, W), profile=profile, dtype=torch.float64)
    reference = equator_bias((H, W), 15.0, dtype=torch.float64)
    torch.testing.assert_close(coarse, reference, rtol=0.05, atol=1e-5)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: equator_bias((H, W), 0.0), ValueRangeError, "sigma_deg must be a positive"),
        (lambda: equator_bias((H, W), profile=torch.ones(2, 2)), ShapeError, "profile must be"),
        (lambda: equator_bias((H, W), profile=-torch.ones(4)), ValueRangeError,
         "finite and non-negative"),
        (lambda: equator_bias((H, W), profile=torch.zeros(4)), ValueRangeError, "zero everywhere"),
        (lambda: fit_latitude_profile(torch.rand(2, 3, H, W)), ShapeError, r"\(B, 1, H, W\)"),
        (lambda: fit_latitude_profile(-torch.rand(2, 1, H, W)), ValueRangeError, "non-negative"),
        (lambda: fit_latitude_profile(torch.zeros(2, 1, H, W)), ValueRangeError, "all zero"),
        (lambda: fit_latitude_profile(torch.rand(1, 1, H, H)), ShapeError, "W == 2H"),
    ],
)  # fmt: skip
def test_equator_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_equator_module_agrees_with_function_and_keeps_its_profile_in_state_dict():
    default = EquatorBias()
    torch.testing.assert_close(default(torch.rand(2, 3, H, W)), equator_bias((H, W), batch=2))
    assert repr(default) == f"EquatorBias(sigma_deg={DEFAULT_EQUATOR_SIGMA_DEG})"
    fitted = EquatorBias.fit(equator_bias((32, 64), 9.0))
    assert repr(fitted) == "EquatorBias(profile=fitted(32 rows))"
    clone = EquatorBias()
    clone.load_state_dict(fitted.state_dict())
    x = torch.rand(1, 3, H, W)
    torch.testing.assert_close(clone(x), fitted(x))
    torch.testing.assert_close(
        fitted(x), equator_bias((H, W), profile=fitted.profile), rtol=1e-6, atol=1e-9
    )


def _equator_fixations(n: int, sigma_deg: float, gen: torch.Generator) -> torch.Tensor:
    lat = torch.randn(n, generator=gen, dtype=torch.float64) * math.radians(sigma_deg)
    lat = lat.clamp(-math.pi / 2, math.pi / 2)
    lon = torch.rand(n, generator=gen, dtype=torch.float64) * 2 * math.pi - math.pi
    return torch.stack((lon, lat), dim=-1)


def test_fitted_equator_bias_beats_uniform_on_maps_made_with_an_equator_prior():
    gen = torch.Generator().manual_seed(0)
    hw = (32, 64)
    train = fixation_map([_equator_fixations(40, 15.0, gen) for _ in range(8)], hw, 4.0)
    test_fix = [_equator_fixations(40, 15.0, gen).float() for _ in range(6)]
    test_maps = fixation_map(test_fix, hw, 4.0)
    fitted = EquatorBias.fit(train)(torch.zeros(6, 3, *hw))
    uniform = uniform_saliency(hw, 6)
    kl_fit, kl_uni = kld(fitted, test_maps), kld(uniform, test_maps)
    nss_fit, nss_uni = nss(fitted, test_fix), nss(uniform, test_fix)
    assert bool((kl_fit < kl_uni).all()), (kl_fit, kl_uni)
    assert bool((nss_fit > nss_uni + 0.5).all()), (nss_fit, nss_uni)
    # The default prior (no training) also beats uniform on such data.
    assert bool((kld(equator_bias(hw, batch=6), test_maps) < kl_uni).all())


# --- spectral residual --------------------------------------------------------------------------


def _numpy_spectral_residual(img: np.ndarray) -> np.ndarray:
    """Hou and Zhang's recipe, written out with numpy, no blur."""
    spec = np.fft.fft2(img)
    log_amp = np.log(np.abs(spec) + 1e-8)
    h, w = img.shape
    smooth = np.zeros_like(log_amp)
    for i in range(h):
        for j in range(w):
            smooth[i, j] = np.mean(
                [log_amp[(i + a) % h, (j + b) % w] for a in (-1, 0, 1) for b in (-1, 0, 1)]
            )
    recon = np.fft.ifft2(np.exp(log_amp - smooth + 1j * np.angle(spec)))
    return np.abs(recon) ** 2


def test_spectral_residual_matches_numpy_oracle():
    img = torch.rand(1, 2, 8, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    got = spectral_residual(img, blur_px=0)
    for c in range(2):
        expected = _numpy_spectral_residual(img[0, c].numpy())
        np.testing.assert_allclose(got[0, c].numpy(), expected, rtol=1e-9, atol=1e-12)


def test_spectral_residual_is_shift_equivariant_and_contrast_blind():
    img = torch.rand(1, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    sal = spectral_residual(img, blur_px=0)
    shifted = spectral_residual(torch.roll(img, (3, 5), dims=(-2, -1)), blur_px=0)
    torch.testing.assert_close(shifted, torch.roll(sal, (3, 5), dims=(-2, -1)))
    torch.testing.assert_close(spectral_residual(4 * img, blur_px=0), sal)


def test_spectral_residual_gradcheck():
    img = torch.rand(1, 1, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    assert torch.autograd.gradcheck(
        lambda x: spectral_residual(x, blur_px=1.0), (img.requires_grad_(),)
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"images": torch.rand(3, 8, 8)}, ShapeError, r"\(B, C, h, w\)"),
        ({"average": 2}, ValueRangeError, "average must be odd"),
        ({"average": 0}, ValueRangeError, "average must be a positive integer"),
        ({"blur_px": -1.0}, ValueRangeError, "blur_px must be >= 0"),
    ],
)
def test_spectral_residual_errors(kwargs, error, match):
    args = {"images": torch.rand(1, 1, 8, 8)} | kwargs
    with pytest.raises(error, match=match):
        spectral_residual(**args)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_spectral_saliency_shapes_and_normalisation(channels):
    erp = torch.rand(2, channels, 32, 64, generator=torch.Generator().manual_seed(6))
    sal = spectral_saliency(erp, work_height=16)
    assert sal.shape == (2, 1, 32, 64) and sal.dtype == torch.float32
    assert bool((sal >= 0).all())
    torch.testing.assert_close(sal.sum(dim=(-2, -1)), torch.ones(2, 1))
    assert spectral_saliency(erp.double()).dtype == torch.float64


def test_spectral_saliency_has_no_seam():
    assert_seam_continuous(
        lambda x: spectral_saliency(x, prior_sigma_deg=None), smooth_erp((32, 64)), factor=2.0
    )


def test_spectral_prior_multiplies_by_floor_plus_equator_prior():
    erp = smooth_erp((H, W), dtype=torch.float64)
    plain = spectral_saliency(erp, prior_sigma_deg=None)
    prior = equator_bias((H, W), 30.0, dtype=torch.float64)
    expected = plain * (0.2 + prior / prior.max())
    torch.testing.assert_close(
        spectral_saliency(erp, prior_sigma_deg=30.0, prior_floor=0.2),
        expected / expected.sum(),
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"erp": torch.rand(1, 2, H, W)}, ShapeError, "1 or at least 3 channels"),
        ({"erp": torch.rand(1, 3, H, H)}, ShapeError, "W == 2H"),
        ({"fov_deg": 60.0}, ValueRangeError, r"fov_deg must be in \(72, 180\)"),
        ({"view_size": 0}, ValueRangeError, "view_size"),
        ({"work_height": 0}, ValueRangeError, "work_height"),
        ({"blur_deg": -1.0}, ValueRangeError, "blur_deg"),
        ({"prior_floor": -0.1}, ValueRangeError, "prior_floor"),
    ],
)
def test_spectral_saliency_errors(kwargs, error, match):
    args = {"erp": torch.rand(1, 3, H, W)} | kwargs
    with pytest.raises(error, match=match):
        spectral_saliency(**args)


def test_spectral_module_agrees_with_function():
    module = SpectralResidualSaliency(view_size=32, blur_deg=4.0)
    x = torch.rand(1, 3, H, W)
    torch.testing.assert_close(module(x), spectral_saliency(x, view_size=32, blur_deg=4.0))
    assert "view_size=32" in repr(module) and "blur_deg=4.0" in repr(module)


@pytest.fixture(scope="module")
def scenes():
    """Synthetic scenes: photos pasted on a plain sphere, the only salient things, with
    fixations sampled on them and their ground-truth density."""
    cfg = SaliencySceneConfig(erp_hw=(64, 128), n_fixations=100, supersample=1)
    return [make_saliency_scene(seed, cfg) for seed in range(4)]


def test_spectral_beats_equator_bias_on_scenes_with_known_salient_objects(scenes):
    erp = torch.stack([s.erp for s in scenes])
    gt = torch.stack([s.saliency for s in scenes])
    fix = [s.fixations for s in scenes]
    spectral = predict_saliency(erp)
    equator = predict_saliency(erp, "equator")
    cc_s, cc_e = cc(spectral, gt), cc(equator, gt)
    nss_s, nss_e = nss(spectral, fix), nss(equator, fix)
    # Better on every scene, and clearly better on average.
    assert bool((cc_s > cc_e).all() and (nss_s > nss_e).all()), (cc_s, cc_e, nss_s, nss_e)
    assert bool((kld(spectral, gt) < kld(equator, gt)).all())
    assert float((cc_s - cc_e).mean()) > 0.15 and float((nss_s - nss_e).mean()) > 0.5


# --- registry -----------------------------------------------------------------------------------


def test_registry_lists_the_baselines():
    assert {"equator", "spectral", "uniform"} <= set(list_models(task="saliency"))
    assert isinstance(create_model("spectral"), SpectralResidualSaliency)
    assert all("Training-free" in model_info(n).description for n in ["equator", "spectral"])


@pytest.mark.parametrize("name", ["equator", "spectral", "uniform"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_registered_model_has_the_same_interface(name, dtype):
    erp = torch.rand(2, 3, H, W, dtype=dtype)
    sal = predict_saliency(erp, name)
    assert sal.shape == (2, 1, H, W) and sal.dtype == dtype
    assert bool((sal >= 0).all()) and bool(torch.isfinite(sal).all())
    torch.testing.assert_close(sal.sum(dim=(-2, -1)), torch.ones(2, 1, dtype=dtype))


def test_predict_passes_options_and_rejects_unknown_models():
    erp = torch.rand(1, 3, H, W)
    torch.testing.assert_close(
        predict_saliency(erp, "equator", sigma_deg=7.0), equator_bias((H, W), 7.0)
    )
    with pytest.raises(ValueError, match=r"model must be one of 'equator', .*'spectral'"):
        predict_saliency(erp, "deepnet")


def test_predict_equals_the_functions():
    erp = torch.rand(1, 3, H, W, dtype=torch.float64)
    torch.testing.assert_close(predict_saliency(erp, "spectral"), spectral_saliency(erp))
    torch.testing.assert_close(
        predict_saliency(erp, "uniform"), uniform_saliency((H, W), dtype=erp.dtype)
    )


def test_plans_cached_under_inference_mode_still_work_with_autograd():
    with torch.inference_mode():
        spectral_saliency(torch.rand(1, 3, H, W))
    x = torch.rand(1, 3, H, W, requires_grad=True)
    spectral_saliency(x)[0, 0, 3, 5].backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())


def test_predict_saliency_refuses_a_learned_model_without_weights():
    with pytest.raises(ValueError, match="'planar_unet' is learned and has no weights"):
        predict_saliency(torch.rand(1, 3, 16, 32), "planar_unet", channels=4)
