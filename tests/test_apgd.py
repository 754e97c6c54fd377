"""APGD (Croce & Hein 2020) and the AutoAttack-style evaluation against independent truths: the paper's checkpoint
schedule, step halving on a model where no step can help, closed-form optima and decision boundaries of linear
models, the eps-ball at every iterate, and the worst case over attacks per image."""
from __future__ import annotations

import json
import math

import pytest
import torch

from conftest import Linear
from core.attacks import ATTACKS, AttackSpec, build_attack, paper_spec
from core.attacks.apgd import APGD, APGDT, checkpoint_lengths, halve_step
from core.attacks.losses import dlr, dlr_targeted
from core.cache import MISSING, ResultCache
from core.experiments import EvalData, RunContext
from core.robustness import (AUTOATTACK_EPS, AutoAttackConfig, RobustnessConfig, RobustnessResult, autoattack,
                             robustness, worst_case)


def paper_checkpoints(steps: int) -> list[int]:
    """Croce & Hein's w_j = ceil(p_j N): p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)."""
    p, w = [0.0, 0.22], []
    while p[-1] <= 1:
        w.append(math.ceil(round(p[-1] * steps, 9)))
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    return w


def cumulative(lengths, until: int) -> list[int]:
    ends, total = [], 0
    for length in lengths:
        total += length
        if total > until:
            return ends
        ends.append(total)


class Constant(torch.nn.Module):
    """Logits that ignore the input: its gradient is 0, so no step ever raises the loss."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.linspace(1, 0, classes, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(len(x), -1) + 0 * x.flatten(1).sum(1, keepdim=True)


def images(n: int = 200, low: float = 0.0, high: float = 1.0, seed: int = 1) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, 3, 2, 2, generator=torch.Generator().manual_seed(seed),
                                           dtype=torch.float64)


def predicted(model, x):
    with torch.no_grad():
        return model(x).argmax(1)


def closed_form_margin(model: Linear, x: torch.Tensor, y: torch.Tensor, threat: str, eps: float) -> torch.Tensor:
    """max_{j != y} max_{x' in S} (w_j - w_y) x' + b_j - b_y, per image, for a linear model (positive: breakable).
    linf: coordinate-wise, x' = clip(x + eps sign(w_j - w_y)) to the box; l2 (ball inside the box):
    + eps ||w_j - w_y||."""
    w, b, flat = model.weight.detach(), model.bias.detach(), x.flatten(1)
    d = w[None] - w[y][:, None]  # [N, K, d]
    if threat == "linf":
        low, high = (flat - eps).clamp(min=0)[:, None], (flat + eps).clamp(max=1)[:, None]
        best = (flat[:, None] + eps * d.sign()).clamp(low, high)
        margin = (d * best).sum(2) + b[None] - b[y][:, None]
    else:
        margin = (d * flat[:, None]).sum(2) + eps * d.norm(dim=2) + b[None] - b[y][:, None]
    margin[torch.arange(len(y)), y] = -math.inf
    return margin.amax(1)


def test_checkpoints_are_the_papers():
    """At 100 and 1000 steps the reference code's integer schedule is exactly the paper's (elsewhere it rounds
    0.22 N, 0.03 N and 0.06 N down first, as the code does, e.g. 50 steps: 11, 21, 30, 38, 45)."""
    for steps in (100, 1000):
        assert cumulative(checkpoint_lengths(steps), steps) == paper_checkpoints(steps)
    assert cumulative(checkpoint_lengths(100), 100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert cumulative(checkpoint_lengths(50), 50) == [11, 21, 30, 38, 45]


def test_halving_rule_conditions_one_and_two():
    rises_3_of_4 = torch.tensor([[0.0], [1.0], [2.0], [3.0], [2.5]])
    rises_4_of_4 = torch.tensor([[0.0], [1.0], [2.0], [3.0], [4.0]])
    best, same, lower, no, yes = torch.tensor([4.0]), torch.tensor([4.0]), torch.tensor([3.0]), *(
        torch.tensor([v]) for v in (False, True))
    # condition 1: at most rho * k = 3 of 4 steps raised the loss (the reference code's <=)
    assert halve_step(rises_3_of_4, best, lower, yes, 0.75).item()
    assert not halve_step(rises_4_of_4, best, lower, yes, 0.75).item()
    # condition 2: not halved last time and no new best since -> halve; halved last time or improved -> not
    assert halve_step(rises_4_of_4, best, same, no, 0.75).item()
    assert not halve_step(rises_4_of_4, best, same, yes, 0.75).item()
    assert not halve_step(rises_4_of_4, best, lower, no, 0.75).item()


@pytest.mark.parametrize("threat", ["linf", "l2"])
def test_step_size_starts_at_2eps_and_halves_at_every_checkpoint_when_no_step_helps(threat):
    attack, x = APGD(Constant(), threat, eps=0.1, steps=100), images(4)
    seen = {}
    attack.run(x, torch.zeros(4, dtype=torch.long), (None, False), torch.Generator().manual_seed(0),
               observe=lambda i, eta, _: seen.setdefault(i, eta.flatten()))
    halvings_before = [sum(w <= i for w in paper_checkpoints(100)) for i in range(100)]
    expected = torch.tensor([2 * 0.1 * 0.5 ** h for h in halvings_before], dtype=torch.float64)
    assert torch.allclose(torch.stack([seen[i] for i in range(100)]), expected[:, None].expand(100, 4))


@pytest.mark.parametrize("name", ["apgd_ce_linf", "apgd_t_l2"])
def test_every_iterate_stays_in_the_ball_and_the_box(name):
    model, x, y = Linear(classes=10), images(32), torch.arange(32) % 10
    attack = build_attack(model, AttackSpec(name, 0.05 if name.endswith("linf") else 0.3, 30))
    goal = attack.goals(model(x), y, None)[0]
    sizes = []
    attack.run(x, y, goal, torch.Generator().manual_seed(0),
               observe=lambda i, eta, it: sizes.append((it - x, it.min().item(), it.max().item())))
    for d, low, high in sizes:
        norm = d.abs().flatten(1).amax(1) if attack.threat == "linf" else d.flatten(1).norm(dim=1)
        assert norm.max() <= attack.eps + 1e-9 and low >= 0 and high <= 1


@pytest.mark.parametrize("threat, eps", [("linf", 0.01), ("l2", 0.05)])
def test_apgd_ce_reaches_the_closed_form_optimum_of_a_two_class_linear_model(threat, eps):
    """Two classes: CE rises with the one margin (w_o - w_y) x, maximized at x + eps sign(w) (linf) or
    x + eps w / ||w|| (l2; the ball lies inside the box here). Unbroken images come back at that point."""
    model, x = Linear(classes=2, seed=5), images(200, 0.3, 0.7)
    y = predicted(model, x)
    w = (model.weight[1] - model.weight[0]).detach() * torch.where(y == 0, 1.0, -1.0).double()[:, None]
    direction = w.sign() if threat == "linf" else w / w.norm(dim=1, keepdim=True)
    optimum = x + eps * direction.view_as(x)
    adv = APGD(model, threat, eps, steps=30)(x, y)
    robust = predicted(model, optimum) == y
    assert robust.sum() > 150
    assert (adv - optimum)[robust].abs().max() < 1e-6
    assert torch.equal(predicted(model, adv) == y, robust)


@pytest.mark.parametrize("threat, eps", [("linf", 0.05), ("l2", 0.3)])
def test_apgd_t_breaks_exactly_the_images_a_linear_models_closed_form_can(threat, eps):
    model = Linear(classes=10, seed=3)
    x = images(200, 0.3, 0.7) if threat == "l2" else images(200)
    y = predicted(model, x)
    breakable = closed_form_margin(model, x, y, threat, eps) > 0
    assert 5 <= breakable.sum() <= 195  # both kinds of image present
    adv = build_attack(model, AttackSpec(f"apgd_t_{threat}", eps, 20))(x, y)
    assert torch.equal(predicted(model, adv) != y, breakable)


def test_dlr_losses_hand_computed():
    z = torch.tensor([[4.0, 1.0, 3.0, 0.0], [1.0, 5.0, 2.0, -1.0]])
    y, t = torch.tensor([0, 0]), torch.tensor([2, 1])
    # sorted: [4, 3, 1, 0] and [5, 2, 1, -1]
    assert torch.allclose(dlr(z, y), torch.tensor([(3 - 4) / (4 - 1), (5 - 1) / (5 - 1)]))
    assert torch.allclose(dlr_targeted(z, y, t), torch.tensor([(3 - 4) / (4 - 0.5), (5 - 1) / (5 - 0)]))
    assert torch.allclose(dlr(1e3 * z, y), dlr(z, y))  # scale-invariant: a saturated softmax cannot hide it
    with pytest.raises(ValueError, match="at least 4 classes"):
        dlr_targeted(z[:, :3], y, t)


def test_apgd_t_targets_the_runner_up_classes_in_order():
    logits = torch.tensor([[5.0, 1.0, 4.0, 3.0, 2.0]])
    goals = APGDT(Constant(5), "linf", 0.1, targets=3).goals(logits, torch.tensor([0]), None)
    assert [g[0].item() for g in goals] == [2, 3, 4] and not any(g[1] for g in goals)


def test_already_misclassified_images_come_back_unchanged_and_zero_steps_or_eps_is_clean(linear):
    x = images(30)
    y = (predicted(linear, x) + 1) % 3  # every label wrong
    assert torch.equal(build_attack(linear, AttackSpec("apgd_ce_linf", 0.1, 10))(x, y), x)
    assert torch.equal(build_attack(linear, AttackSpec("apgd_dlr_l2", 0.5, 0))(x, predicted(linear, x)), x)
    assert torch.equal(build_attack(linear, AttackSpec("apgd_ce_l2", 0.0, 10))(x, predicted(linear, x)), x)


def test_registry_entries_are_autoattacks_defaults():
    assert paper_spec("apgd_ce_linf").steps == 100 and paper_spec("apgd_t_linf").eps == pytest.approx(8 / 255)
    assert paper_spec("apgd_ce_l2").eps == 0.5 and ATTACKS["apgd_dlr_l2"].kwargs["loss"] == "dlr"
    attack = build_attack(torch.nn.Linear(1, 1), paper_spec("apgd_t_l2"))
    assert (attack.threat, attack.targets, attack.restarts, attack.rho) == ("l2", 9, 1, 0.75)


def test_same_seed_same_result(trained_pair, eval_batch):
    x, y = eval_batch[0][:20], eval_batch[1][:20]
    spec = AttackSpec("apgd_ce_linf", 1 / 255, 5, seed=3)
    a, b = (build_attack(trained_pair["bn"].model, spec)(x, y) for _ in range(2))
    assert torch.equal(a, b)


def test_worst_case_is_per_image_and_never_above_any_attack():
    common = dict(attack="pgd", eps=0.5, steps=1, n=4, clean_accuracy=1.0, robust_accuracy=0.75)
    results = {"a": RobustnessResult(**common, robust_correct=[True, True, False, True]),
               "b": RobustnessResult(**common, robust_correct=[True, False, True, True], zero_gradient=0.25)}
    out = worst_case(AutoAttackConfig("l2"), results)
    assert out.robust_correct == [True, False, False, True] and out.robust_accuracy == 0.5
    assert out.per_attack == {"a": 0.75, "b": 0.75} and out.zero_gradient == {"a": None, "b": 0.25}
    assert (out.threat, out.eps, out.n) == ("l2", 0.5, 4)


def test_autoattack_experiment_is_the_per_image_worst_case_of_cached_attacks(trained_pair, tmp_path):
    ckpt, run = trained_pair["none"], RunContext(ResultCache(tmp_path))
    config = AutoAttackConfig("l2", 0.1, steps=10, data=EvalData(per_class=2))
    result = autoattack(ckpt, config, run)
    parts = [robustness(ckpt, RobustnessConfig(s, config.data), RunContext(ResultCache(tmp_path), cached_only=True))
             for s in config.specs]
    assert MISSING not in parts and [s.name for s in config.specs] == ["apgd_ce_l2", "apgd_t_l2"]
    for part in parts:
        assert all(not aa or one for aa, one in zip(result.robust_correct, part.robust_correct))
        assert result.robust_accuracy <= part.robust_accuracy
    assert result.n == 20 and set(result.zero_gradient) == {"apgd_ce_l2", "apgd_t_l2"}


def test_autoattack_config_defaults_and_refusals():
    assert AutoAttackConfig().eps == AUTOATTACK_EPS["linf"] == 8 / 255 and AutoAttackConfig("l2").eps == 0.5
    assert AutoAttackConfig("linf", 1 / 255).specs[1].eps == 1 / 255
    for bad, message in [(dict(threat="l1"), "unknown threat"), (dict(eps=-1.0), "eps must be"),
                         (dict(steps=0), "at least 1 step")]:
        with pytest.raises(ValueError, match=message):
            AutoAttackConfig(**bad)


def test_cli_runs_the_autoattack_style_evaluation_and_refuses_settings_it_sets_itself(trained_pair, tmp_path,
                                                                                    monkeypatch, capsys):
    from core.cli import main

    monkeypatch.setenv("NORMSCOPE_CACHE", str(tmp_path))
    path = str(trained_pair["none"].path)
    args = ["eval", path, "--attack", "autoattack", "--threat", "l2", "--eps", "0.1", "--steps", "3",
            "--per-class", "1", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    (result,) = out["results"]
    assert out["attack"]["attacks"] == ["apgd_ce_l2", "apgd_t_l2"]
    assert out["attack"]["not_included"] == ["fab-t", "square"]
    assert result["eps"] == 0.1 and result["n"] == 10 and set(result["zero_gradient"]) == set(result["per_attack"])
    assert result["robust_accuracy"] <= min(result["per_attack"].values())
    assert main([*args, "--target", "next"]) == 2
    assert "sets its own step size" in json.loads(capsys.readouterr().out)["error"]
