"""Metrics on any device: labels and models on CUDA give the CPU results (the CUDA cases skip without a GPU)."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from core.attacks import paper_spec
from core.metrics import LIGSSpec, accuracy, ligs, run_attack, target_labels

DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU")])]


pytestmark = pytest.mark.usefixtures("full_fp32")  # conftest: TF32 off, so the GPU can match the CPU


@pytest.fixture
def cpu_model(trained_pair):
    return trained_pair["bn"].model.cpu()


@pytest.mark.parametrize("model_device", DEVICES)
@pytest.mark.parametrize("label_device", DEVICES)
def test_accuracy_takes_labels_and_model_on_any_device(cpu_model, eval_batch, model_device, label_device):
    x, y = eval_batch
    expected = accuracy(cpu_model, x, y)
    model = cpu_model.to(model_device)
    try:
        assert accuracy(model, x.to(label_device), y.to(label_device)) == expected
    finally:
        cpu_model.cpu()


@pytest.mark.parametrize("target", ["untargeted", "random"])
@pytest.mark.parametrize("model_device", DEVICES)
@pytest.mark.parametrize("label_device", DEVICES)
def test_run_attack_takes_labels_and_model_on_any_device(cpu_model, eval_batch, model_device, label_device, target):
    x, y = eval_batch
    spec = replace(paper_spec("pgd_l2", steps=3), target=target)
    expected = run_attack(cpu_model, x, y, spec)
    model = cpu_model.to(model_device)
    try:
        result = run_attack(model, x.to(label_device), y.to(label_device), spec)
    finally:
        cpu_model.cpu()
    assert result.clean_correct.device.type == "cpu" and torch.equal(result.clean_correct, expected.clean_correct)
    # float rounding differs between devices, so a sample on the decision boundary may flip
    assert (result.robust_correct != expected.robust_correct).float().mean() <= 0.05


@pytest.mark.parametrize("label_device", DEVICES)
def test_random_targets_do_not_depend_on_the_label_device(label_device):
    y = torch.arange(10).repeat(3)
    targets = target_labels(y.to(label_device), "random", 10, seed=2)
    assert targets.device.type == label_device and torch.equal(targets.cpu(), target_labels(y, "random", 10, seed=2))


@pytest.mark.parametrize("model_device", DEVICES)
@pytest.mark.parametrize("label_device", DEVICES)
def test_ligs_takes_labels_and_model_on_any_device(cpu_model, eval_batch, model_device, label_device):
    x, y = eval_batch
    expected = ligs(cpu_model, x, y, LIGSSpec(seed=1))
    model = cpu_model.to(model_device)
    try:
        result = ligs(model, x.to(label_device), y.to(label_device), LIGSSpec(seed=1))
    finally:
        cpu_model.cpu()
    assert result.per_sample.device.type == "cpu"
    assert torch.allclose(result.per_sample, expected.per_sample, atol=1e-3)


@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda", 1)])
def test_asking_for_a_missing_gpu_is_an_error_not_the_cpu(monkeypatch, device):
    from core.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA was asked for but is not available"):
        resolve_device(device)


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "", "mps:zero", "xla"])
def test_unknown_devices_are_named(device):
    from core.device import resolve_device

    with pytest.raises(ValueError, match="device"):
        resolve_device(device)


def test_cpu_and_default_devices_resolve():
    from core.device import default_device, resolve_device

    assert resolve_device("cpu") == torch.device("cpu") and resolve_device(None) == default_device()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_beyond_the_last_is_named():
    from core.device import resolve_device

    assert resolve_device("cuda").type == "cuda"
    with pytest.raises(ValueError, match="CUDA device"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")
