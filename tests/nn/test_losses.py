"""Area-weighted losses: errors, shapes, loop oracles, sphere conventions, edge cases, gradients."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

from pano360.errors import ShapeError, ValueRangeError
from pano360.geometry import erp_lonlat_grid, pixel_solid_angle, rotate_erp, rotation_matrix
from pano360.nn import (
    SphericalCCLoss,
    SphericalKLDLoss,
    SphericalMSELoss,
    spherical_cc,
    spherical_cc_loss,
    spherical_kld,
    spherical_mse,
)
from pano360.testing import smooth_erp

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
D = torch.float64
SIZES = [1, 2, 3, 4, 8, 31]
LOSSES = [spherical_mse, spherical_kld, spherical_cc, spherical_cc_loss]


def rand(*shape, seed=0, dtype=D):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=gen, dtype=dtype)


# Loop oracles, written from the formulas with the pixel solid angles a (sum 4 pi).


def areas(h, w):
    return pixel_solid_angle((h, w), dtype=D)[:, 0].tolist()


def mse_oracle(p, t):
    h, w = p.shape
    a = areas(h, w)
    return sum(a[i] * (p[i, j] - t[i, j]) ** 2 for i in range(h) for j in range(w)) / (4 * math.pi)


def kld_oracle(p, t, eps=1e-7):
    h, w = p.shape
    a = areas(h, w)
    pixels = [(i, j) for i in range(h) for j in range(w)]
    # Densities: value / (mean over the sphere), so that sum(a * density) / 4 pi = 1.
    mean_p = sum(a[i] * p[i, j] for i, j in pixels) / (4 * math.pi)
    mean_t = sum(a[i] * t[i, j] for i, j in pixels) / (4 * math.pi)
    total = 0.0
    for i, j in pixels:
        P, Q = p[i, j] / mean_p, t[i, j] / mean_t
        total += a[i] / (4 * math.pi) * Q * math.log(eps + Q / (P + eps))
    return total


def cc_oracle(p, t):
    h, w = p.shape
    a = areas(h, w)
    pixels = [(i, j) for i in range(h) for j in range(w)]
    m = {(i, j): a[i] / (4 * math.pi) for i, j in pixels}
    mu_p = sum(m[k] * p[k] for k in pixels)
    mu_t = sum(m[k] * t[k] for k in pixels)
    cov = sum(m[k] * (p[k] - mu_p) * (t[k] - mu_t) for k in pixels)
    var_p = sum(m[k] * (p[k] - mu_p) ** 2 for k in pixels)
    var_t = sum(m[k] * (t[k] - mu_t) ** 2 for k in pixels)
    return cov / math.sqrt(var_p * var_t)


# Smoke, modules and repr.


def test_smoke_modules_agree_with_functions():
    p, t = rand(2, 1, 4, 8, seed=1), rand(2, 1, 4, 8, seed=2)
    for module, fn in [
        (SphericalMSELoss(), spherical_mse),
        (SphericalKLDLoss(), spherical_kld),
        (SphericalCCLoss(), spherical_cc_loss),
    ]:
        torch.testing.assert_close(module(p, t), fn(p, t), rtol=0, atol=0)
    torch.testing.assert_close(
        SphericalKLDLoss(eps=1e-3, reduction="none")(p, t), spherical_kld(p, t, 1e-3, "none")
    )
    assert repr(SphericalMSELoss("sum")) == "SphericalMSELoss(reduction='sum')"
    assert repr(SphericalKLDLoss(1e-6)) == "SphericalKLDLoss(eps=1e-06, reduction='mean')"
    assert repr(SphericalCCLoss()) == "SphericalCCLoss(reduction='mean')"


# Every documented error.


@pytest.mark.parametrize("fn", LOSSES)
def test_errors(fn):
    x = torch.rand(1, 1, 4, 8)
    with pytest.raises(ShapeError, match=r"pred and target must have the same shape"):
        fn(x, torch.rand(1, 1, 4, 6))
    with pytest.raises(ShapeError, match=r"pred must be \(B, C, H, W\), got \(4, 8\)"):
        fn(x[0, 0], x[0, 0])
    with pytest.raises(ShapeError, match=r"target must be \(B, C, H, W\)"):
        fn(x, torch.rand(1, 1, 0, 8))
    with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum', 'none'"):
        fn(x, x, reduction="max")


def test_errors_kld_eps_and_negative_values():
    x = torch.rand(1, 1, 4, 8)
    for bad in (0.0, -1e-7, float("nan"), float("inf"), True):
        with pytest.raises(ValueRangeError, match=r"eps must be a finite number"):
            spherical_kld(x, x, eps=bad)
        with pytest.raises(ValueRangeError, match=r"eps must be a finite number"):
            SphericalKLDLoss(eps=bad)
    with pytest.raises(ValueRangeError, match=r"pred must be non-negative \(a saliency map\)"):
        spherical_kld(x - 0.5, x)
    with pytest.raises(ValueRangeError, match="target must be non-negative"):
        spherical_kld(x, x - 0.5)
    with pytest.raises(ValueError, match="reduction must be one of"):
        SphericalMSELoss("avg")


# Shapes, reductions, dtypes, devices.


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("fn", LOSSES)
def test_reductions_dtypes_devices(device, dtype, fn):
    p = rand(3, 2, 4, 8, seed=1, dtype=dtype).to(device)
    t = rand(3, 2, 4, 8, seed=2, dtype=dtype).to(device)
    per_map = fn(p, t, reduction="none")
    assert per_map.shape == (3, 2) and per_map.dtype == dtype and per_map.device.type == device
    torch.testing.assert_close(fn(p, t), per_map.mean())
    torch.testing.assert_close(fn(p, t, reduction="sum"), per_map.sum())
    for b in range(3):
        for c in range(2):
            one = fn(p[b : b + 1, c : c + 1], t[b : b + 1, c : c + 1], reduction="none")
            torch.testing.assert_close(one[0, 0], per_map[b, c])


# Against the loop oracles.


@pytest.mark.parametrize("hw", [(1, 2), (3, 6), (4, 8), (5, 4)])
def test_losses_match_loop_oracles(hw):
    p, t = rand(1, 1, *hw, seed=3), rand(1, 1, *hw, seed=4)
    p2, t2 = p[0, 0], t[0, 0]
    assert abs(spherical_mse(p, t).item() - mse_oracle(p2, t2)) < 1e-12
    assert abs(spherical_kld(p, t).item() - kld_oracle(p2, t2)) < 1e-12
    assert abs(spherical_kld(p, t, eps=0.1).item() - kld_oracle(p2, t2, eps=0.1)) < 1e-12
    if hw != (1, 2):  # two pixels of one row: correlations are +-1
        assert abs(spherical_cc(p, t).item() - cc_oracle(p2, t2)) < 1e-12
        assert abs(spherical_cc_loss(p, t).item() - (1 - cc_oracle(p2, t2))) < 1e-12


# Conventions: measures on the sphere, not on the pixel grid.


def test_convention_mse_is_the_mean_over_the_sphere():
    # An error of sin(lat): its mean square over the sphere is 1/3; over the pixel grid 1/2.
    for h, tol in [(8, 6e-3), (64, 1e-4)]:
        lat = erp_lonlat_grid((h, 2 * h), dtype=D)[..., 1]
        err = torch.sin(lat)[None, None]
        zero = torch.zeros_like(err)
        assert abs(spherical_mse(err, zero).item() - 1 / 3) < tol
        assert abs(F.mse_loss(err, zero).item() - 1 / 2) < 1e-12
    # A constant error counts as in mse_loss.
    x = rand(2, 3, 4, 8)
    torch.testing.assert_close(spherical_mse(x + 0.25, x), torch.tensor(0.0625, dtype=D))


@pytest.mark.parametrize("fn", LOSSES)
def test_comparable_across_resolutions(fn):
    # A map and its nearest-upsampled copy cover the sphere alike: same value.
    p, t = rand(2, 1, 4, 8, seed=5), rand(2, 1, 4, 8, seed=6)
    up = lambda x: F.interpolate(x, scale_factor=2, mode="nearest")  # noqa: E731
    torch.testing.assert_close(fn(up(p), up(t)), fn(p, t), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fn", [spherical_mse, spherical_kld, spherical_cc])
def test_rotation_invariance_unlike_plain_mse(fn):
    # Turning the sphere changes a sphere mean only by resampling error; a pixel mean changes.
    p, t = smooth_erp((64, 128), 1, seed=1, dtype=D), smooth_erp((64, 128), 1, seed=2, dtype=D)
    R = rotation_matrix(0.3, 1.2, 0.4, dtype=D)
    before, after = fn(p, t).item(), fn(rotate_erp(p, R), rotate_erp(t, R)).item()
    assert abs(after - before) < 0.01 * abs(before)
    plain_before, plain_after = (
        F.mse_loss(p, t).item(),
        F.mse_loss(rotate_erp(p, R), rotate_erp(t, R)).item(),
    )
    assert abs(plain_after - plain_before) > 0.1 * plain_before


@pytest.mark.parametrize("fn", LOSSES)
def test_yaw_invariance(fn):
    p, t = rand(2, 1, 4, 8, seed=7), rand(2, 1, 4, 8, seed=8)
    rolled = fn(p.roll(3, -1), t.roll(3, -1), reduction="none")
    torch.testing.assert_close(rolled, fn(p, t, reduction="none"))


def test_convention_kld_direction_is_target_given_pred():
    # KL(target || pred): a peaked target against a uniform pred costs log(1 / peak share); a
    # peaked pred against a uniform target misses mass everywhere and costs about log(1 / eps).
    h, w = 4, 8
    peak = torch.zeros(1, 1, h, w, dtype=D)
    peak[0, 0, 1, 3] = 1.0
    flat = torch.ones_like(peak)
    share = pixel_solid_angle((h, w), dtype=D)[1, 0].item() / (4 * math.pi)
    assert abs(spherical_kld(flat, peak).item() - math.log(1 / share)) < 1e-6
    assert spherical_kld(peak, flat).item() > 0.9 * math.log(1e7)


def test_kld_and_cc_properties():
    p, t = rand(2, 1, 6, 12, seed=9), rand(2, 1, 6, 12, seed=10)
    assert (spherical_kld(p, t, reduction="none") > 0).all()
    assert abs(spherical_kld(t, t).item()) < 1e-6
    # Scale invariance (tiny and huge scales included: maps are rescaled first).
    torch.testing.assert_close(spherical_kld(p * 1e-30, t * 1e20), spherical_kld(p, t))
    torch.testing.assert_close(spherical_cc(p * 1e-30, 7 * t - 3), spherical_cc(p, t))
    torch.testing.assert_close(
        spherical_cc(p.float() * 1e-30, t.float() * 1e30), spherical_cc(p, t).float()
    )
    torch.testing.assert_close(spherical_cc(p, p), torch.tensor(1.0, dtype=D))
    torch.testing.assert_close(spherical_cc(p, -p), torch.tensor(-1.0, dtype=D))
    c = spherical_cc(p, t, reduction="none")
    assert (c.abs() <= 1).all()
    torch.testing.assert_close(spherical_cc_loss(p, t, reduction="none"), 1 - c)


# Edge cases: constant and all-zero maps never give NaN or inf, values or gradients.


@pytest.mark.parametrize("h", SIZES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_no_nan_or_inf(h, dtype):
    w = 2 * h
    maps = {
        "random": rand(1, 1, h, w, seed=h, dtype=dtype),
        "zero": torch.zeros(1, 1, h, w, dtype=dtype),
        "constant": torch.full((1, 1, h, w), 0.3, dtype=dtype),
        "one pixel": torch.zeros(1, 1, h, w, dtype=dtype).index_put_(
            (torch.tensor([0]), torch.tensor([0]), torch.tensor([0]), torch.tensor([0])),
            torch.tensor(1.0, dtype=dtype),
        ),
    }
    for pn, p in maps.items():
        for tn, t in maps.items():
            for fn in LOSSES:
                pg, tg = p.clone().requires_grad_(), t.clone().requires_grad_()
                value = fn(pg, tg)
                value.backward()
                label = f"{fn.__name__}({pn}, {tn})"
                assert torch.isfinite(value), label
                assert torch.isfinite(pg.grad).all() and torch.isfinite(tg.grad).all(), label


def test_documented_edge_values():
    x = rand(1, 1, 4, 8)
    zero, const = torch.zeros_like(x), torch.full_like(x, 0.3)
    assert spherical_kld(x, zero).item() == 0  # no mass to explain
    assert spherical_kld(zero, zero).item() == 0
    expected = math.log(1e-7 + 1 / 1e-7)  # uniform target, zero pred: log(eps + 1 / eps)
    assert abs(spherical_kld(zero, const).item() - expected) < 1e-9
    for a, b in [(x, const), (const, x), (zero, x), (zero, zero), (const, const)]:
        assert spherical_cc(a, b).item() == 0
        assert spherical_cc_loss(a, b).item() == 1
    # A constant pred gets a zero gradient from the correlation, not NaN.
    pred = const.clone().requires_grad_()
    spherical_cc(pred, x).backward()
    assert (pred.grad == 0).all()


# Gradients.


def test_gradcheck():
    p = (rand(2, 1, 3, 6, seed=11) + 0.1).requires_grad_()
    t = (rand(2, 1, 3, 6, seed=12) + 0.1).requires_grad_()
    for fn in LOSSES:
        assert gradcheck(lambda a, b, fn=fn: fn(a, b, reduction="none"), (p, t), eps=1e-6)
    assert gradcheck(lambda a, b: spherical_kld(a, b, eps=0.5), (p, t), eps=1e-6)
    # With zeros in the maps (saliency maps often have them).
    # With zeros in the target (saliency maps often have them; kept fixed: a step below zero
    # would be an error).
    q = torch.where(t > 0.6, t, torch.zeros_like(t)).detach()
    assert gradcheck(lambda a: spherical_kld(a, q, reduction="none"), (p,), eps=1e-6)
