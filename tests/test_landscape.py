"""The optimization landscape (App. I) against closed forms and invariants: a quadratic's and a linear loss's,
restoration of everything a measurement touches, and its records in training."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from core.landscape import (SUMMARY_MEASURES, comparison_members, landscape_phases, landscape_records, landscape_step,
                            landscape_summary)
from core.models import build
from core.train import TrainConfig, preset, read_history, train


class Quadratic(torch.nn.Module):
    """L(w) = 0.5 w^T A w with a known symmetric positive definite A (float64)."""

    def __init__(self, eigenvalues: list[float], seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(len(eigenvalues), len(eigenvalues), generator=g, dtype=torch.float64))
        self.q, self.eigenvalues = q, torch.tensor(eigenvalues, dtype=torch.float64)
        self.a = q @ torch.diag(self.eigenvalues) @ q.T
        self.w = torch.nn.Parameter(torch.randn(len(eigenvalues), generator=g, dtype=torch.float64))

    def loss(self) -> torch.Tensor:
        return 0.5 * self.w @ self.a @ self.w


EIGENVALUES = [0.5, 1.0, 3.0, 7.0]
ETAS = (0.01, 0.05, 0.1)


def test_beta_of_a_quadratic_is_its_curvature_along_the_gradient_at_most_lambda_max():
    """grad L = A w, so the gradient change is eta ||A g|| and beta = ||A g|| / ||g|| <= lambda_max."""
    quad = Quadratic(EIGENVALUES)
    g = quad.a @ quad.w.detach()
    step = landscape_step(quad, quad.loss, ETAS)
    assert step.beta == pytest.approx((torch.linalg.norm(quad.a @ g) / torch.linalg.norm(g)).item(), rel=1e-12)
    assert step.beta < max(EIGENVALUES)
    assert step.grad_changes == pytest.approx([eta * torch.linalg.norm(quad.a @ g).item() for eta in ETAS], rel=1e-12)
    w = quad.w.detach()
    assert step.losses == pytest.approx([0.5 * ((w - e * g) @ quad.a @ (w - e * g)).item() for e in ETAS], rel=1e-12)


def test_beta_of_a_quadratic_equals_lambda_max_along_the_top_eigenvector():
    quad = Quadratic(EIGENVALUES)
    with torch.no_grad():
        quad.w.copy_(2.0 * quad.q[:, -1])  # the eigenvector of lambda_max = 7
    assert landscape_step(quad, quad.loss, ETAS).beta == pytest.approx(max(EIGENVALUES), rel=1e-12)


def test_a_loss_linear_in_the_weights_has_no_gradient_change(linear):
    """L(w) = sum of the logits is linear in (W, b): its gradient is constant and L(w - eta g) = L(w) - eta ||g||^2."""
    x = torch.randn(6, 3, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    step = landscape_step(linear, lambda: linear(x).sum(), ETAS)
    assert step.grad_changes == (0.0,) * len(ETAS) and step.beta == 0.0
    assert step.losses == pytest.approx([step.loss - eta * step.grad_norm ** 2 for eta in ETAS], rel=1e-12)
    assert step.grad_norm == pytest.approx(math.sqrt(3 * (x.flatten(1).sum(0) ** 2).sum().item() + 3 * 6 ** 2))


def test_a_given_gradient_is_used_and_the_step_sizes_are_checked():
    quad = Quadratic(EIGENVALUES)
    w = quad.w.detach().clone()
    assert landscape_step(quad, quad.loss, ETAS, gradient=[quad.a @ w]) == landscape_step(quad, quad.loss, ETAS)
    # Taken as given, not recomputed: a stand-in d for grad L(w) gives ||d - A (w - eta d)||.
    d = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    step = landscape_step(quad, quad.loss, ETAS, gradient=[d])
    assert step.grad_changes == pytest.approx([torch.linalg.norm(d - quad.a @ (w - eta * d)).item() for eta in ETAS])
    with pytest.raises(ValueError, match="positive"):
        landscape_step(quad, quad.loss, (0.1, 0.0))


def snapshot(model, optimizer) -> list[torch.Tensor]:
    tensors = [*model.parameters(), *model.buffers(), *(p.grad for p in model.parameters())]
    tensors += [v for s in optimizer.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    return [t.detach().clone() for t in tensors]


@pytest.mark.parametrize("norm", ["bn", "none"])
def test_a_measurement_leaves_weights_buffers_grads_optimizer_and_rng_bit_identical(norm, eval_batch):
    torch.manual_seed(0)
    model = build("vgg11", norm=norm, width=0.125)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x, y = eval_batch[0][:32], eval_batch[1][:32]
    model.train()
    for _ in range(2):  # momentum buffers and BN statistics that differ from their initial values
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    before, rng = snapshot(model, optimizer), torch.get_rng_state()
    step = landscape_step(model, lambda: F.cross_entropy(model(x), y), (0.05, 0.2, 1.0),
                          [p.grad for p in model.parameters()])
    after = snapshot(model, optimizer)
    assert len(before) == len(after) and all(torch.equal(a, b) for a, b in zip(before, after))
    assert torch.equal(torch.get_rng_state(), rng) and model.training
    assert step.grad_norm > 0 and all(c > 0 for c in step.grad_changes)  # it measured a real, curved landscape


def test_training_records_the_landscape_and_ends_with_the_same_weights(tmp_path, builtin):
    base = preset("tiny", arch="vgg11", norm="bn", epochs=2, train_subset=350, batch_size=100, probe_per_class=2,
                  probe_steps=1)
    on = TrainConfig.from_dict({**base.to_dict(), "landscape_every": 3})
    plain, measured = train(base, tmp_path / "plain", dataset=builtin), train(on, tmp_path / "on", dataset=builtin)
    assert "landscape" not in plain["history"][0] and "landscape_every" not in plain["train_config"]
    steps = [r["step"] for h in measured["history"] for r in h["landscape"]]
    assert steps == [0, 6]  # 4 steps an epoch (100, 100, 100, 50 images): every 3rd, but not step 3's short batch
    for h in measured["history"]:
        assert h["landscape_seconds"] >= 0 and h["landscape_etas"] == pytest.approx([on.lr * f for f in
                                                                                    (0.25, 0.5, 1, 2, 4)])
        for r in h["landscape"]:
            assert r["loss_min"] <= r["loss_max"] and 0 <= r["grad_change_min"] <= r["grad_change_max"]
            assert r["beta"] >= r["grad_change_max"] / (max(h["landscape_etas"]) * r["grad_norm"])
    assert read_history(tmp_path / "on") == measured["history"]
    from core.checkpoints import load_checkpoint
    a, b = (load_checkpoint(tmp_path / f"{n}.safetensors").model.state_dict() for n in ("plain", "on"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # measuring changed nothing of the run


def test_train_config_without_the_option_round_trips_and_old_configs_load():
    old = {k: v for k, v in preset("cpu").to_dict().items()}
    assert "landscape_every" not in old  # configs written before the option: unchanged dicts and resume states
    assert TrainConfig.from_dict(old) == preset("cpu") and TrainConfig.from_dict(old).landscape_every == 0
    on = preset("cpu", landscape_every=10)
    assert TrainConfig.from_dict(on.to_dict()) == on and on.to_dict()["landscape_every"] == 10
    with pytest.raises(ValueError, match="landscape_every"):
        preset("tiny", landscape_every=-1)


def record(step: int, loss_min: float, loss_max: float, change: float, grad_norm: float, beta: float) -> dict:
    return {"step": step, "loss": loss_max, "loss_min": loss_min, "loss_max": loss_max, "grad_change_min": 0.0,
            "grad_change_max": change, "beta": beta, "grad_norm": grad_norm}


def test_the_summary_is_the_median_over_measured_steps_of_each_measure():
    history = [{"epoch": 1, "landscape": [record(0, 2.0, 2.5, 4.0, 2.0, 9.0), record(10, 1.0, 1.1, 1.0, 4.0, 3.0)]},
               {"epoch": 2, "landscape": [record(20, 1.0, 1.3, 2.0, 0.0, 5.0)]}, {"epoch": 3}]
    summary = landscape_summary(landscape_records(history))
    assert summary == pytest.approx({"steps": 3, "loss_range": 0.3, "grad_change": 2.0, "beta": 5.0,
                                     "relative_grad_change": 0.25})  # medians of (2, 0.25, 0 for a zero gradient)
    assert set(summary) == {"steps", *SUMMARY_MEASURES}
    phases = landscape_phases(landscape_records(history))
    assert [r["step"] for r in phases["all steps"]] == [0, 10, 20]
    assert [r["step"] for r in phases["last epoch"]] == [20]  # the last epoch with records (epoch 3 has none)
    assert landscape_phases([]) == {"all steps": [], "last epoch": []}
    with pytest.raises(ValueError, match="landscape_every"):
        landscape_summary(landscape_records([{"epoch": 1, "train_loss": 2.0}]))


def test_every_zoo_landscape_comparison_names_landscape_runs_of_its_plan():
    from core.zoo import LANDSCAPE_COMPARISONS, LANDSCAPE_GROUP, plan_entry

    for names in LANDSCAPE_COMPARISONS.values():
        entries = [plan_entry(n) for n in names]
        assert len(entries) >= 2 and all(e.group == LANDSCAPE_GROUP and e.config.landscape_every > 0 for e in entries)
        assert len({(e.config.arch, e.config.norm, e.config.shortcut) for e in entries}) == len(entries)
    shortcut = [plan_entry(n).config.shortcut for n in LANDSCAPE_COMPARISONS["Shortcut on / off on ResNet18 (Fig. A9)"]]
    assert sorted(shortcut) == [False, False, True, True]
    assert comparison_members(("a", "b", "c"), ["c", "x", "a"]) == ["a", "c"]  # the comparison's order, present only
