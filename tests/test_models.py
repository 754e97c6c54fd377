"""Models: parametrized over the registry; input normalization inside; inits that let deep nets train."""
from __future__ import annotations

import pytest
import torch

from core.models import ModelSpec, build, list_models, model_entry
from core.models.infer import infer_model_spec
from core.models.norms import group_count

CIFAR = [(a, n) for a in list_models(family="cifar") for n in model_entry(a).norms]


@pytest.mark.parametrize("arch,norm", CIFAR)
def test_every_cifar_model_builds_runs_and_is_inferable(arch, norm):
    model = build(arch, norm=norm, width=0.25).eval()
    x = torch.rand(2, 3, 32, 32)
    logits, feats = model(x), model.features(x)
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
    assert feats.ndim == 2 and model.backbone.head.in_features == feats.shape[1]
    if norm in ("in", "ln", "gn"):
        with pytest.raises(ValueError, match="choose the norm"):
            infer_model_spec(model.state_dict())
    else:
        assert infer_model_spec(model.state_dict()) == ModelSpec(arch, norm, 10, 0.25)


@pytest.mark.parametrize("arch", list_models(family="imagenet"))
def test_torchvision_architectures_build(arch):
    model = build(arch, norm=model_entry(arch).norms[0], num_classes=7).eval()
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 7)


def test_input_normalization_is_the_first_layer():
    model = build("vgg11", norm="bn", width=0.125).eval()
    x = torch.rand(2, 3, 32, 32)
    mean, std = torch.tensor(model.spec.mean).view(1, 3, 1, 1), torch.tensor(model.spec.std).view(1, 3, 1, 1)
    expected = model.backbone((x - mean) / std)
    assert torch.allclose(model(x), expected, atol=1e-6)


def test_width_scales_channels_and_shortcut_can_be_dropped():
    small, large = build("resnet18", width=0.25), build("resnet18", width=0.5)
    assert small.backbone.head.in_features * 2 == large.backbone.head.in_features
    plain = build("resnet18", norm="bn", width=0.25, shortcut=False)
    assert all(b.shortcut is None for b in plain.backbone.modules() if hasattr(b, "branch"))


def test_norm_free_vgg16_keeps_signal_through_depth():
    """Kaiming fan-out init keeps a norm-free VGG16's features about 10x stronger than PyTorch's default init,
    under which such a net stays at chance on CIFAR-10 (measured 0.069 vs 0.0056)."""
    torch.manual_seed(0)
    model, x = build("vgg16", norm="none"), torch.rand(16, 3, 32, 32)
    kaiming = model.features(x).std().item()
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.reset_parameters()
    assert kaiming > 5 * model.features(x).std().item()


def test_fixup_starts_as_identity_residuals_and_zero_head():
    model = build("resnet20", norm="fixup")
    assert torch.count_nonzero(model(torch.rand(2, 3, 32, 32))) == 0
    with pytest.raises(ValueError, match="supports norm"):
        build("vgg11", norm="fixup")


def test_group_count_keeps_groups_of_at_least_two_channels():
    assert group_count(64) == 32 and group_count(16) == 8 and group_count(6) == 3


def test_unknown_architecture_lists_known_ones():
    with pytest.raises(ValueError, match="vgg11"):
        build("alexnet")
