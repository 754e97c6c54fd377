"""The attacks' inference form: BN folded into convolutions computes the model's function and gradients,
is remade when the weights change, and leaves alone what it cannot fold; bf16 autocast returns fp32."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from core.models import ModelSpec, build_from_spec
from core.models.inference import Autocast, InferenceForm, fold_batchnorm

FOLDABLE = ["vgg11", "resnet18", "resnet20", "densenet_bc", "resnext29", "wrn16_4", "alexnet"]


def eval_model(arch: str, norm: str = "bn", seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = build_from_spec(ModelSpec(arch, norm if arch != "alexnet" else "none", 10, 0.25))
    with torch.no_grad():  # running statistics away from (0, 1), so that folding has something to fold
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def input_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    return torch.autograd.grad(nn.functional.cross_entropy(model(x), y), x)[0]


@pytest.mark.parametrize("arch", FOLDABLE)
def test_folded_model_computes_the_same_logits_and_input_gradients(arch):
    model = eval_model(arch)
    x, y = torch.rand(8, 3, 32, 32, dtype=torch.float64), torch.arange(8) % 10
    model = model.double()
    folded = fold_batchnorm(model)
    assert torch.allclose(folded(x), model(x), rtol=1e-9, atol=1e-9)
    assert torch.allclose(input_grad(folded, x, y), input_grad(model, x, y), rtol=1e-7, atol=1e-12)


def test_batchnorm_after_a_convolution_is_folded_away():
    folded = fold_batchnorm(eval_model("vgg11"))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())


def test_nothing_to_fold_or_training_mode_returns_the_model_itself():
    plain = eval_model("vgg11", "none")
    assert fold_batchnorm(plain) is plain
    training = eval_model("vgg11").train()
    assert fold_batchnorm(training) is training  # its BN uses batch statistics: not an affine map


class DataDependent(nn.Module):
    """Control flow on a tensor's value: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn(self.conv(x))
        return h.flatten(1) if h.sum() > 0 else -h.flatten(1)


def test_a_model_fx_cannot_trace_runs_unfolded():
    model = DataDependent().eval()
    assert fold_batchnorm(model) is model


def test_inference_form_is_remade_only_after_the_weights_change():
    model = eval_model("vgg11")
    form = InferenceForm()
    first = form(model)
    assert form(model) is first
    with torch.no_grad():
        next(model.parameters()).mul_(2)  # an optimizer step is an in-place update like this
    second = form(model)
    x = torch.rand(4, 3, 32, 32)
    assert second is not first and torch.allclose(second(x), model(x), atol=1e-5)


def test_bf16_autocast_returns_fp32_logits_close_to_fp32():
    model = eval_model("vgg11")
    x = torch.rand(16, 3, 32, 32)
    logits = Autocast(model, torch.bfloat16)(x)
    assert logits.dtype == torch.float32
    reference = model(x)
    assert (logits - reference).abs().max() < 0.05 * reference.abs().max()


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision"):
        InferenceForm("fp8")
