"""Attacks against independent truths: projections, closed forms on a linear model, and invariants."""
from __future__ import annotations

import pytest
import torch

from core.attacks import ATTACKS, AttackSpec, L2Step, LinfStep, build_attack, list_attacks, paper_spec
from core.attacks.losses import cw_margin
from core.metrics import run_attack


def x_batch(n=8, seed=0, dtype=torch.float64):
    return torch.rand(n, 3, 2, 2, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_linf_projection_is_box_and_pixel_clamp():
    x = x_batch()
    far = x + 5 * torch.randn_like(x)
    p = LinfStep(0.1).project(far, x)
    assert (p - x).abs().max() <= 0.1 + 1e-12
    assert p.min() >= 0 and p.max() <= 1


def test_l2_projection_stays_in_ball_and_keeps_inside_points():
    x = x_batch()
    far = x + torch.randn_like(x)
    p = L2Step(0.3).project(far, x)
    assert (p - x).flatten(1).norm(dim=1).max() <= 0.3 + 1e-9
    near = x + 1e-3 * torch.ones_like(x)
    near = near.clamp(0, 1)
    assert torch.equal(L2Step(0.3).project(near, x), near)


@pytest.mark.parametrize("step", [LinfStep(0.05), L2Step(0.2)])
def test_random_start_inside_ball(step):
    x = x_batch(64, dtype=torch.float32)
    r = step.random_start(x, torch.Generator().manual_seed(1))
    d = r - x
    bound = d.abs().amax(dim=(1, 2, 3)) if step.threat == "linf" else d.flatten(1).norm(dim=1)
    assert bound.max() <= step.eps + 1e-6 and r.min() >= 0 and r.max() <= 1


def test_fgsm_on_linear_model_equals_closed_form(linear):
    x, y = x_batch(), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    adv = build_attack(linear, paper_spec("fgsm", eps=0.03))(x, y)
    expected = (x + 0.03 * linear.ce_grad(x, y).sign()).clamp(0, 1)
    assert torch.allclose(adv, expected, atol=1e-12)


def test_pgd_l2_step_on_linear_model_equals_closed_form(linear):
    x, y = x_batch(), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    adv = build_attack(linear, AttackSpec("pgd_l2", eps=10.0, steps=1, step_size=0.05))(x, y)
    g = linear.ce_grad(x, y)
    expected = (x + 0.05 * g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)).clamp(0, 1)
    assert torch.allclose(adv, expected, atol=1e-12)


def test_pgd_linf_two_steps_on_linear_model_equal_closed_form(linear):
    x, y = x_batch(), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    adv = build_attack(linear, AttackSpec("pgd_linf", eps=0.04, steps=2, step_size=0.03))(x, y)
    step1 = (x + (0.03 * linear.ce_grad(x, y).sign()).clamp(-0.04, 0.04)).clamp(0, 1)
    step2 = (x + (step1 + 0.03 * linear.ce_grad(step1, y).sign() - x).clamp(-0.04, 0.04)).clamp(0, 1)
    assert torch.allclose(adv, step2, atol=1e-12)


def test_cw_margin_hand_computed():
    logits = torch.tensor([[1.0, 3.0, 2.0], [5.0, 1.0, -1.0]])
    assert torch.allclose(cw_margin(logits, torch.tensor([0, 0])), torch.tensor([2.0, -4.0]))


def test_default_step_size_is_paper_rule():
    attack = build_attack(torch.nn.Linear(1, 1), paper_spec("pgd_l2"))
    assert attack.step_size == pytest.approx(2.5 * 0.25 / 20)


@pytest.mark.parametrize("name", ["fgsm", "pgd_l2", "pgd_linf", "cw_l2", "cw_linf", "mifgsm"])
def test_eps_zero_gives_exactly_clean_accuracy(trained_pair, eval_batch, name):
    x, y = eval_batch
    result = run_attack(trained_pair["bn"].model, x, y, paper_spec(name, eps=0.0))
    assert result.robust_accuracy == result.clean_accuracy


@pytest.mark.parametrize("name", list_attacks())
def test_every_attack_stays_in_its_ball(trained_pair, eval_batch, name):
    x, y = eval_batch[0][:16], eval_batch[1][:16]
    spec = paper_spec(name, eps=0.5 if ATTACKS[name].threat == "l2" else 8 / 255, random_start=True)
    adv = build_attack(trained_pair["bn"].model, spec)(x, y)
    d = adv - x
    size = d.flatten(1).norm(dim=1) if ATTACKS[name].threat == "l2" else d.abs().flatten(1).amax(1)
    assert size.max() <= spec.eps + 1e-5 and adv.min() >= 0 and adv.max() <= 1


def test_pgd_is_at_least_as_strong_as_fgsm(trained_pair, eval_batch):
    x, y = eval_batch
    model = trained_pair["none"].model
    fgsm = run_attack(model, x, y, paper_spec("fgsm", eps=4 / 255)).robust_accuracy
    pgd = run_attack(model, x, y, AttackSpec("pgd_linf", eps=4 / 255, steps=10)).robust_accuracy
    assert pgd <= fgsm


@pytest.mark.parametrize("training", [True, False])
def test_mode_restored_and_no_gradient_or_statistics_leak(trained_pair, eval_batch, training):
    model = trained_pair["bn"].model
    model.train(training)
    stats = model.backbone.features[1].running_mean.clone()
    flags = [p.requires_grad for p in model.parameters()]
    build_attack(model, paper_spec("pgd_l2", steps=3))(*eval_batch)
    assert model.training is training
    assert torch.equal(model.backbone.features[1].running_mean, stats), "attack used train-mode BN"
    assert all(p.grad is None for p in model.parameters())
    assert [p.requires_grad for p in model.parameters()] == flags
    model.eval()


def test_targeted_attack_reaches_target_on_easy_model(trained_pair, eval_batch):
    x, y = eval_batch
    spec = AttackSpec("pgd_linf", eps=16 / 255, steps=20, target="next")
    result = run_attack(trained_pair["bn"].model, x, y, spec)
    assert result.target_success >= 0.9


def test_random_start_is_deterministic_under_seed(trained_pair, eval_batch):
    spec = paper_spec("pgd_linf", steps=3, random_start=True, seed=7)
    a = build_attack(trained_pair["bn"].model, spec)(*eval_batch)
    b = build_attack(trained_pair["bn"].model, spec)(*eval_batch)
    assert torch.equal(a, b)


@pytest.mark.parametrize("bad, message", [(dict(eps=float("nan")), "eps must be"), (dict(eps=-1.0), "eps must be"),
                                          (dict(steps=-1), "steps must be 0 or more"),
                                          (dict(step_size=0.0), "step size must be"),
                                          (dict(target="sideways"), "unknown target mode")])
def test_bad_parameters_are_refused_when_the_spec_is_made(bad, message):
    with pytest.raises(ValueError, match=message):
        paper_spec("pgd_l2", **bad)


@pytest.mark.parametrize("name", ["pgd_l2", "cw_linf", "ifgsm", "apgd_t_linf"])
def test_zero_steps_is_the_honest_clean_result(name, trained_pair, eval_batch):
    x, y = eval_batch
    assert torch.equal(build_attack(trained_pair["bn"].model, paper_spec(name, steps=0))(x, y), x)


def test_registry_entries_build_by_keyword_with_each_default_once():
    from core.attacks import PGD

    assert ATTACKS["cw_l2"].cls is PGD and dict(ATTACKS["cw_l2"].kwargs) == {"threat": "l2", "eps": 0.25, "loss": "cw"}
    assert paper_spec("cw_l2").steps == 20 and paper_spec("fgsm").steps == 1 and paper_spec("mifgsm").steps == 10
    assert {n: a.threat for n, a in ATTACKS.items() if n.startswith("pgd")} == {"pgd_l2": "l2", "pgd_linf": "linf"}
    with pytest.raises(TypeError, match="eps"):  # no silent budget: a PGD needs its radius named
        PGD(torch.nn.Linear(1, 1), threat="linf")
    attack = build_attack(torch.nn.Linear(1, 1), paper_spec("tifgsm", steps=3))
    assert (attack.threat, attack.kernel_size, attack.steps, attack.eps) == ("linf", 5, 3, 8 / 255)


def test_unknown_attack_names_the_known_ones():
    with pytest.raises(ValueError, match="pgd_l2"):
        paper_spec("deepfool")


def test_precision_is_part_of_the_spec_only_when_chosen():
    from core.config import config_dict, config_from_dict

    fp32, bf16 = paper_spec("pgd_l2"), paper_spec("pgd_l2", precision="bf16")
    assert "precision" not in config_dict(fp32)  # keys made before the option existed still match
    assert config_dict(bf16)["precision"] == "bf16" and config_from_dict(AttackSpec, config_dict(bf16)) == bf16
    assert "bf16" in bf16.label and "bf16" not in fp32.label
    with pytest.raises(ValueError, match="precision"):
        paper_spec("pgd_l2", precision="fp16")


@pytest.mark.parametrize("name", ["pgd_l2", "pgd_linf", "apgd_ce_linf"])
def test_bf16_attacks_stay_in_their_ball_and_near_fp32(trained_pair, eval_batch, name):
    x, y = eval_batch
    model = trained_pair["bn"].model
    spec = paper_spec(name, steps=5)
    adv = build_attack(model, AttackSpec(**{**spec.__dict__, "precision": "bf16"}))(x, y)
    assert adv.dtype == torch.float32
    distance = (adv - x).flatten(1).norm(dim=1) if spec.entry.threat == "l2" else (adv - x).flatten(1).abs().amax(1)
    assert (distance <= spec.eps * (1 + 1e-5)).all() and adv.min() >= 0 and adv.max() <= 1
    fp32, bf16 = (run_attack(model, x, y, AttackSpec(**{**spec.__dict__, "precision": p})) for p in ("fp32", "bf16"))
    assert abs(fp32.robust_accuracy - bf16.robust_accuracy) <= 0.05


def test_folding_batchnorm_leaves_the_attack_result_unchanged(trained_pair, eval_batch):
    """The attacks run BN folded into the convolutions; the same PGD through the unfolded model (a loop
    written out here) reaches the same adversarial images (in float64, where rounding cannot tell them apart)."""
    import copy

    x, y = eval_batch
    model, x = copy.deepcopy(trained_pair["bn"].model).double().eval(), x.double()
    spec = paper_spec("pgd_l2", steps=5)
    adv = build_attack(model, spec)(x, y)
    step, reference = L2Step(spec.eps), x.clone()
    for _ in range(spec.steps):
        z = reference.clone().requires_grad_(True)
        grad = torch.autograd.grad(torch.nn.functional.cross_entropy(model(z), y, reduction="sum"), z)[0]
        reference = step.project(step.step(reference, grad, 2.5 * spec.eps / spec.steps), x).detach()
    assert (adv - reference).abs().max() < 1e-9
