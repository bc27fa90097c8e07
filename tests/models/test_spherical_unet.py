"""The Spherical U-Net (the seed's ``Final1``) and its baselines: shapes, the saliency task's
contract, the crown taps against the seed's tap directions, parameter counts, gradients and yaw
equivariance. Small sizes (16 x 32, 32 x 64) and narrow models keep it fast."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pano360.errors import ChoiceError, ShapeError, ValueRangeError
from pano360.geometry import rotation_matrix
from pano360.models import (
    LAYER_KINDS,
    MAP_SCALE,
    SPHERICAL_UNET_LAYERS,
    SaliencyUNet,
    check_task_output,
    create_model,
    crown_layout,
    list_models,
    model_info,
    raw_to_saliency,
    seed_parameter_count,
)
from pano360.models._saliency_task import check_saliency_output
from pano360.nn import SphereConv2d, crown_tap_directions

NAMES = {"crown": "spherical_unet", "tangent": "spherical_unet_tangent", "planar": "planar_unet"}

# The seed's Final1, read off its spherical_unet.py: (C_in, C_out, kernel_rad, (kθ, kφ)).
SEED_CONVS = [
    (4, 64, math.pi / 32, (8, 16)),
    (64, 128, math.pi / 16, (4, 8)),
    (128, 256, math.pi / 4, (4, 8)),
    (256, 256, math.pi, (8, 16)),
    (512, 128, math.pi / 4, (4, 8)),
    (256, 64, math.pi / 16, (4, 8)),
    (128, 1, math.pi / 32, (4, 8)),
]
SEED_BATCH_NORMS = [64, 128, 256, 256, 128, 64]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def frames(b=2, h=16, seed=0, dtype=torch.float32):
    return torch.rand(b, 3, h, 2 * h, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# The seed's tap geometry, from the formulas of its sconv/functional/common.py
# (gen_kernel_grid) and of grid_sample with aligned corners (torch <= 0.4's only mode).


def seed_tap_directions(kernel: tuple[int, int], radius: float, colatitude: float) -> np.ndarray:
    """(kθ kφ, 3) unit directions, in our xyz frame, of the seed's kernel weights for an output
    pixel at ``colatitude`` (the seed's θ) on the meridian lon = 0.

    The seed maps a target direction t (its frame: θ from +z, φ = atan2(y, x)) to kernel
    coordinates by k = Y Z t, Z the rotation by its fixed ker_loc_phi = π about z and Y by the
    output's θ about y; k's (arccos k_z, atan2(k_y, k_x) mod 2π) scaled to grid coordinates
    θk / ρ * 2 - 1 and φk / π - 1. With aligned corners, weight (i, j) is at grid
    (-1 + 2 j / (kφ - 1), -1 + 2 i / (kθ - 1)). Its image rows grow with θ and columns with φ,
    as ours grow with -lat and lon: lat = π/2 - θ, lon = φ - π.
    """
    k_theta, k_phi = kernel
    i, j = np.meshgrid(np.arange(k_theta), np.arange(k_phi), indexing="ij")
    theta_k = radius * i / (k_theta - 1)  # from grid y = θk / ρ * 2 - 1
    phi_k = math.pi * (2 * j / (k_phi - 1))  # from grid x = φk / π - 1
    k = np.stack(
        (np.sin(theta_k) * np.cos(phi_k), np.sin(theta_k) * np.sin(phi_k), np.cos(theta_k)), -1
    ).reshape(-1, 3)
    c, s = math.cos(colatitude), math.sin(colatitude)
    y_rot = np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]])
    cp, sp = math.cos(math.pi), math.sin(math.pi)
    z_rot = np.array([[cp, sp, 0], [-sp, cp, 0], [0, 0, 1]])
    t = k @ y_rot @ z_rot  # rows: t = Z^T Y^T k
    theta = np.arccos(np.clip(t[:, 2], -1, 1))
    phi = np.arctan2(t[:, 1], t[:, 0])
    lat, lon = math.pi / 2 - theta, phi - math.pi
    return np.stack((np.cos(lat) * np.sin(lon), np.sin(lat), np.cos(lat) * np.cos(lon)), -1)


def our_tap_directions(rings, azimuths, radius, lat) -> np.ndarray:
    """Our crown taps around the output pixel at (lon, lat) = (0, lat), world xyz."""
    local = crown_tap_directions(rings, azimuths, radius)
    world = local @ rotation_matrix(0.0, lat, dtype=torch.float64).T
    return world.numpy()


def angle_to_nearest(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For every direction of ``a``, the angle to the nearest of ``b`` (atan2, exact near 0)."""
    cross = np.linalg.norm(np.cross(a[:, None], b[None]), axis=-1)
    dot = np.einsum("ik,jk->ij", a, b)
    return np.arctan2(cross, dot).min(axis=1)


# Colatitudes of the pixel centres of a 32-row map (both hemispheres, next to both poles).
COLATITUDES = [(r + 0.5) * math.pi / 32 for r in (0, 1, 7, 15, 16, 24, 30, 31)]


def test_convention_seed_taps_start_down_and_turn_towards_east():
    """The oracle's reading of the seed: azimuth 0 points south, the next ones turn east."""
    lat = 0.3
    taps = seed_tap_directions((2, 5), 0.1, math.pi / 2 - lat)
    centre = taps[0]
    east = np.array([1.0, 0.0, 0.0])  # at lon = 0
    down = np.array([0.0, -math.cos(lat), math.sin(lat)])  # towards the south along lon = 0
    np.testing.assert_allclose(centre, our_tap_directions(1, 4, 0.1, lat)[0], atol=1e-15)
    ring = taps[5:] - centre  # row i = 1: azimuths 0, π/2, π, 3π/2, 2π
    assert ring[0] @ down > 0.09 and abs(ring[0] @ east) < 1e-12
    assert ring[1] @ east > 0.09 and abs(ring[1] @ down) < 1e-3


@pytest.mark.parametrize("layer", SPHERICAL_UNET_LAYERS, ids=lambda spec: spec.name)
def test_every_seed_tap_has_a_counterpart_among_ours(layer):
    rings, azimuths = crown_layout(layer.seed_kernel)
    for colatitude in COLATITUDES:
        lat = math.pi / 2 - colatitude
        seed = seed_tap_directions(layer.seed_kernel, layer.radius, colatitude)
        ours = our_tap_directions(rings, azimuths, layer.radius, lat)
        assert angle_to_nearest(seed, ours).max() < 1e-12
        # Doubling is needed: kφ - 1 azimuths from "up" miss the seed's taps by half a step.
        half = our_tap_directions(rings, azimuths // 2, layer.radius, lat)
        assert angle_to_nearest(seed, half).max() > layer.radius / rings * 0.1


def test_crown_layers_use_the_seed_layout():
    model = SaliencyUNet("crown", channels=64)
    for spec in SPHERICAL_UNET_LAYERS:
        conv = getattr(model, spec.name)
        assert isinstance(conv, SphereConv2d) and conv.taps == "crown" and conv.bias is None
        k_theta, k_phi = spec.seed_kernel
        assert (conv.crown_rings, conv.crown_azimuths) == (k_theta - 1, 2 * (k_phi - 1))
        assert conv.crown_radius == spec.radius
    # conv7 follows the seed's code (4 x 8, no batch norm or ReLU after it), not its header.
    assert SPHERICAL_UNET_LAYERS[-1].seed_kernel == (4, 8)
    assert not hasattr(model, "bn7")


# Parameter counts.


def test_seed_parameter_count_from_its_layer_shapes():
    convs = sum(c_in * c_out * kt * kp for c_in, c_out, _, (kt, kp) in SEED_CONVS)
    assert seed_parameter_count() == convs + 2 * sum(SEED_BATCH_NORMS)
    first = SEED_CONVS[0]
    assert seed_parameter_count(prior=False) == seed_parameter_count() - first[1] * 8 * 16


def test_parameter_counts_crown_against_seed_and_baselines():
    crown, tangent, planar = (n_params(SaliencyUNet(kind)) for kind in LAYER_KINDS)
    taps = sum(
        c_in * c_out * (1 + 2 * (kt - 1) * (kp - 1)) for c_in, c_out, _, (kt, kp) in SEED_CONVS
    )
    assert crown == taps + 2 * sum(SEED_BATCH_NORMS)
    assert tangent == planar  # the same kernels, only where the taps sit differs
    # 43 and 211 taps are prime: the planar kernels (5 x 9, 11 x 19) differ by 2 per in-out pair.
    assert abs(planar - crown) / crown < 0.01
    assert crown > seed_parameter_count()  # more taps than the seed's distinct directions


@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_prior_none_drops_the_fourth_channel(kind):
    with_prior, without = SaliencyUNet(kind, "gt", 4), SaliencyUNet(kind, "none", 4)
    first = next(iter(with_prior.conv1.parameters()))
    assert first.shape[1] == 4 and next(without.conv1.parameters()).shape[1] == 3
    assert n_params(with_prior) - n_params(without) == first[:, :1].numel()


# Interface and shapes.


@pytest.mark.parametrize("kind", LAYER_KINDS)
@pytest.mark.parametrize("prior", ["gt", "prediction", "none"])
def test_shapes_and_prior_attribute(kind, prior):
    model = SaliencyUNet(kind, prior, channels=4)
    assert model.prior == prior and model.layer == kind
    x = frames(2, 32)
    out = model(x) if prior == "none" else model(x, torch.rand(2, 1, 32, 64))
    assert out.shape == (2, 1, 32, 64) and torch.isfinite(out).all()
    assert (out < 0).any()  # raw maps: no activation after conv7


def test_prior_is_scaled_by_ten_and_none_means_zeros():
    model = SaliencyUNet("planar", "gt", channels=4).eval()
    seen = []
    model.conv1.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    x, prior = frames(1, 16), torch.rand(1, 1, 16, 32)
    model(x, prior)
    model(x)
    assert MAP_SCALE == 10.0
    torch.testing.assert_close(seen[0][:, 3:], prior * MAP_SCALE)
    torch.testing.assert_close(seen[0][:, :3], x)
    assert (seen[1][:, 3:] == 0).all()


def test_raw_to_saliency():
    raw = torch.tensor([[[[-2.0, 0.0], [3.0, 1.0]]], [[[-1.0, -1.0], [0.0, -5.0]]]])
    torch.testing.assert_close(raw_to_saliency(raw), raw.clamp(min=0) / 10)
    maps = raw_to_saliency(raw, normalize=True)
    torch.testing.assert_close(maps[0], torch.tensor([[[0.0, 0.0], [0.75, 0.25]]]))
    torch.testing.assert_close(maps[1], torch.full((1, 2, 2), 0.25))  # nothing positive
    mixed = raw_to_saliency(raw, normalize=True, uniform_share=0.2)
    torch.testing.assert_close(mixed, 0.8 * maps + 0.2 * 0.25)
    assert (mixed > 0).all() and torch.allclose(mixed.sum(dim=(-2, -1)), torch.ones(2, 1))
    torch.testing.assert_close(raw_to_saliency(raw, uniform_share=0.2), raw.clamp(min=0) / 10)
    with pytest.raises(ValueRangeError, match="uniform_share must be"):
        raw_to_saliency(raw, normalize=True, uniform_share=1.5)


@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_softplus_head_is_the_linear_head_through_softplus_and_positive(kind):
    torch.manual_seed(0)
    soft = SaliencyUNet(kind, "gt", channels=4, output="softplus").eval()
    linear = SaliencyUNet(kind, "gt", channels=4).eval()
    assert soft.output == "softplus" and linear.output == "linear"  # the seed's, the default
    linear.load_state_dict(soft.state_dict())  # same parameters: the head adds none
    x, prior = frames(2, 16), torch.rand(2, 1, 16, 32)
    raw = linear(x, prior)
    assert (raw < 0).any()  # the seed's head undershoots: clamped, these become exact zeros
    out = soft(x, prior)
    torch.testing.assert_close(out, F.softplus(raw))
    assert (out > 0).all() and (raw_to_saliency(out) > 0).all()
    assert create_model(NAMES[kind], channels=4, output="softplus").output == "softplus"


def test_uniform_share_bounds_kld_where_the_clamped_map_has_zeros():
    # A gaze map whose mass partly lies where the raw map is negative: clamping puts exact zeros
    # under the viewers, and KL divergence charges log(1 / eps) there; a uniform share s bounds
    # the charge by log(1 / s) (as does a softplus head, positive everywhere).
    from pano360.saliency import kld

    gt = torch.zeros(1, 1, 16, 32, dtype=torch.float64)
    gt[..., 6:10, 10:14] = 1.0
    raw = torch.full_like(gt, -3.0)
    raw[..., 6:10, 8:12] = 5.0  # covers half of the gaze region
    clamped = kld(raw_to_saliency(raw, normalize=True), gt)
    mixed = kld(raw_to_saliency(raw, normalize=True, uniform_share=0.1), gt)
    assert clamped > 10 and mixed < 4 and kld(F.softplus(raw), gt) < 4, (clamped, mixed)
    # Half the mass sits where the mix gives s / (H W) of density: at most log(1 / s) each.
    assert mixed <= 0.5 * math.log((1 / 16) / (0.1 / 512)) + 0.5 * math.log(2) + 1e-9


@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_registered_with_the_saliency_task_contract(kind):
    name = NAMES[kind]
    info = model_info(name)
    assert name in list_models(task="saliency") and info.task == "saliency"
    assert "untrained" in info.description and name not in list_models(pretrained=True)
    model = create_model(name, channels=4)
    assert isinstance(model, SaliencyUNet) and model.layer == kind and model.prior == "gt"
    x = torch.rand(2, *info.input_size)
    raw = model(x)
    check_task_output(name, raw, x)  # through the registered postprocess
    with pytest.raises(ValueRangeError, match=r"non-negative|sum to 1"):
        check_saliency_output(raw, x)  # the raw maps themselves are not saliency maps
    torch.testing.assert_close(info.task_output(raw), raw_to_saliency(raw, normalize=True))


# Errors.


def test_errors():
    model = SaliencyUNet("crown", "gt", channels=4)
    with pytest.raises(ShapeError, match=r"frames must be \(B, C, H, W\) with W == 2H"):
        model(torch.rand(1, 3, 16, 16))
    with pytest.raises(ShapeError, match="H divisible by 8"):
        model(torch.rand(1, 3, 12, 24))
    with pytest.raises(ShapeError, match=r"frames must be \(B, 3, H, W\)"):
        model(torch.rand(1, 4, 16, 32))
    with pytest.raises(ShapeError, match=r"prior must be \(B, 1, H, W\) = \(1, 1, 16, 32\)"):
        model(torch.rand(1, 3, 16, 32), torch.rand(1, 1, 8, 16))
    with pytest.raises(ValueRangeError, match="prior must be None"):
        SaliencyUNet("crown", "none", 4)(torch.rand(1, 3, 16, 32), torch.rand(1, 1, 16, 32))
    with pytest.raises(ChoiceError, match="layer must be one of"):
        SaliencyUNet("hexagonal")
    with pytest.raises(ChoiceError, match="prior must be one of"):
        SaliencyUNet("crown", prior="teacher")
    with pytest.raises(ValueRangeError, match="channels must be"):
        SaliencyUNet("crown", channels=0)
    with pytest.raises(ChoiceError, match="output must be one of"):
        SaliencyUNet("crown", output="relu")


# Gradients and equivariance.


@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_gradients_reach_every_parameter_and_the_prior(kind):
    model = SaliencyUNet(kind, "prediction", channels=4)
    x = frames(2, 16).requires_grad_()
    prior = torch.rand(2, 1, 16, 32, requires_grad=True)
    model(x, prior).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0 and prior.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_yaw_roll_of_the_input_rolls_the_output(kind):
    """Rolling the columns by a multiple of 8 (three 2 x 2 poolings) rolls the output: crown and
    tangent taps are the same along a row, and the planar baseline pads spherically."""
    torch.manual_seed(0)
    model = SaliencyUNet(kind, "none", channels=4).double().eval()
    x = frames(1, 32, dtype=torch.float64)
    with torch.no_grad():
        out = model(x)
        for shift in (8, 24):
            rolled = model(x.roll(shift, dims=-1))
            torch.testing.assert_close(rolled, out.roll(shift, dims=-1), rtol=1e-9, atol=1e-9)
            assert not torch.allclose(rolled, out, atol=1e-6)  # the output is not constant
