"""transfer.apply runs the pretrained MobileNetV2's features (depthwise and strided 3 x 3 convs,
1 x 1 convs, BatchNorm, ReLU6, residual additions) with every strategy."""

import warnings

import pytest
import torch

from pano360.models import create_model
from pano360.models.backbones import imagenet_normalize
from pano360.testing import smooth_erp
from pano360.transfer import STRATEGIES, apply


@pytest.fixture(scope="module")
def features():
    return create_model("mobilenet_v2", pretrained=True).features


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_runs_mobilenet_v2_features_on_a_small_erp(strategy, features):
    erp = imagenet_normalize(smooth_erp((32, 64), 3, seed=0).expand(1, -1, -1, -1))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("error")  # "spherical" warns about any layer left planar
        out = apply(features, erp, strategy, patch_size=96 if strategy == "exact" else None)
        direct = features(erp)
    assert out.shape == direct.shape == (1, 1280, 1, 2)
    assert torch.isfinite(out).all()
    if strategy == "direct":
        torch.testing.assert_close(out, direct)
    else:  # every other strategy resamples the sphere: not the planar result
        assert not torch.allclose(out, direct, atol=1e-3)
