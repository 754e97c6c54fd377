"""The loss surface around an input: the plane's directions, the grid, and the experiment's centre and slope
against the model's own loss and gradient."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core.config import config_dict, config_from_dict
from core.experiments import EvalData, RunContext, get_experiment
from core.surface import (DEFAULT_RADIUS, LossSurfaceConfig, grid_coordinates, gradient_profile, loss_surface,
                          plane_directions, plane_losses, threat_norm)


@pytest.mark.parametrize("plane", ["gradient-random", "random-random"])
@pytest.mark.parametrize("threat", ["l2", "linf"])
def test_plane_directions_are_orthogonal_and_unit_in_the_threat_norm(plane, threat):
    gradient = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    d1, d2 = plane_directions(gradient, plane, threat, torch.Generator().manual_seed(0))
    assert (d1 * d2).sum().item() == pytest.approx(0.0, abs=1e-5)
    assert threat_norm(d1, threat).item() == pytest.approx(1.0) and threat_norm(d2, threat).item() == pytest.approx(1.0)
    if plane == "gradient-random":  # the ascent direction: the gradient itself (l2) or its sign (linf)
        expected = gradient / gradient.norm() if threat == "l2" else gradient.sign()
        assert torch.allclose(d1, expected, atol=1e-6)


def test_a_zero_gradient_has_no_gradient_direction():
    with pytest.raises(ValueError, match="random-random"):
        plane_directions(torch.zeros(1, 3, 2, 2), "gradient-random", "l2", torch.Generator())


@pytest.mark.parametrize("threat", ["l2", "linf"])
def test_the_grid_spans_the_radius_and_its_points_lie_on_the_plane(threat, linear):
    coords = grid_coordinates(0.5, 5)
    assert coords.tolist() == [-0.5, -0.25, 0.0, 0.25, 0.5]
    x = torch.rand(1, 3, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([1])
    d1, d2 = plane_directions(linear.ce_grad(x, y), "gradient-random", threat, torch.Generator().manual_seed(0))
    loss, pred = plane_losses(linear, x, y, d1, d2, coords)
    corner = x + 0.5 * d1 + 0.5 * d2  # [i=4 (d2 = +0.5), j=4 (d1 = +0.5)]
    assert threat_norm(0.5 * d1, threat).item() == pytest.approx(0.5)
    assert loss[4, 4].item() == pytest.approx(F.cross_entropy(linear(corner), y).item(), rel=1e-12)
    along = x - 0.25 * d1  # [i=2 (d2 = 0), j=1]: on the gradient axis
    assert loss[2, 1].item() == pytest.approx(F.cross_entropy(linear(along), y).item(), rel=1e-12)
    assert pred[4, 4].item() == linear(corner).argmax().item()
    # Cross-entropy is convex along a line for a linear model and rises at the image along its gradient.
    assert loss[2, 4] > loss[2, 3] > loss[2, 2]


@pytest.fixture
def vgg_bn(trained_pair):
    return trained_pair["bn"]


def test_the_surface_experiment_centre_is_the_models_loss_at_the_image(vgg_bn, builtin, tmp_path):
    from core.cache import ResultCache
    from core.data import to_float

    config = LossSurfaceConfig(image=7, resolution=5, data=EvalData("builtin"))
    run = RunContext(ResultCache(tmp_path), device="cpu")
    result = loss_surface(vgg_bn, config, run)
    x, y = builtin.split("test")
    image, label = to_float(x[7:8]), y[7:8]
    model = vgg_bn.model.eval()
    with torch.no_grad():
        expected = F.cross_entropy(model(image), label).item()
    # Two fp32 code paths (the experiment's batched, folded-BN forward and a plain one): their convolutions sum in
    # another order, which moves the loss by ~1e-6 relative on some kernels (AVX-512's oneDNN: 2.7e-6), so 1e-5
    assert result.label == label.item() and result.centre_loss == pytest.approx(expected, rel=1e-5)
    assert result.loss[2][2] == pytest.approx(expected, rel=1e-5)
    assert result.coords == pytest.approx([-1.0, -0.5, 0.0, 0.5, 1.0])  # l2 default radius 1.0
    assert result.centre_pred == result.pred[2][2] == model(image).argmax().item()
    assert -1 <= result.ligs <= 1 and result.axes == ["gradient", "random"]
    coords, profile = gradient_profile(result)
    assert coords == result.coords and profile == result.loss[2]
    assert loss_surface(vgg_bn, config, RunContext(ResultCache(tmp_path), cached_only=True)) == result


def test_the_loss_rises_along_the_gradient_axis_at_the_rate_of_the_gradient_norm(trained_pair, tmp_path):
    """Central difference along the unit l2 gradient direction = the directional derivative = ||grad||_2,
    and ~0 along the orthogonal one. On the no-BN model at an image with a clear gradient (loss ~0.26): float32
    cross-entropy resolves ~1e-6, too coarse for a confidently classified image's difference."""
    from core.cache import ResultCache

    h = 1e-3
    config = LossSurfaceConfig(image=7, radius=h, resolution=3, data=EvalData("builtin"))
    result = loss_surface(trained_pair["none"], config, RunContext(ResultCache(tmp_path), device="cpu"))
    assert result.gradient_norm > 0.1
    slope = (result.loss[1][2] - result.loss[1][0]) / (2 * h)
    assert slope == pytest.approx(result.gradient_norm, rel=0.02)
    assert abs(result.loss[2][1] - result.loss[0][1]) / (2 * h) < 0.05 * result.gradient_norm


def test_surface_config_defaults_validation_and_round_trip():
    assert LossSurfaceConfig(threat="linf").radius == DEFAULT_RADIUS["linf"] == 8 / 255
    assert LossSurfaceConfig(threat="linf") == LossSurfaceConfig(threat="linf", radius=8 / 255)
    config = LossSurfaceConfig(image=3, plane="random-random", threat="linf", resolution=7)
    assert config_from_dict(LossSurfaceConfig, config_dict(config)) == config
    assert get_experiment("loss_surface").config_type is LossSurfaceConfig
    for bad in (dict(resolution=4), dict(resolution=1), dict(radius=0.0), dict(plane="hessian"),
                dict(threat="l1"), dict(image=-1)):
        with pytest.raises(ValueError):
            LossSurfaceConfig(**bad)


def test_an_image_index_beyond_the_split_is_refused_clearly(vgg_bn, builtin, tmp_path):
    from core.cache import ResultCache

    n = len(builtin.split("test")[1])
    with pytest.raises(ValueError, match=f"0 to {n - 1}"):
        loss_surface(vgg_bn, LossSurfaceConfig(image=n, data=EvalData("builtin")), RunContext(ResultCache(tmp_path)))
