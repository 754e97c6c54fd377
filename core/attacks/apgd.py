"""APGD (Croce & Hein, ICML 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks"): PGD that sets its own step size, the white-box half of AutoAttack.

From a random point on the eps-sphere of the threat model, with ``P`` the projection onto
``S = {x' : ||x' - x|| <= eps, 0 <= x' <= 1}`` and momentum ``alpha = 0.75`` (1 on the first step)::

    z_{k+1} = P(x_k + eta_k * step(grad f(x_k)))
    x_{k+1} = P(x_k + alpha (z_{k+1} - x_k) + (1 - alpha)(x_k - x_{k-1}))

``eta_0 = 2 eps``, per image. At the checkpoints ``w_j = p_j * N`` (``p_0 = 0, p_1 = 0.22,
p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``; in integers as the reference code counts them, which for
N = 100 and 1000 is exactly the paper's) an image's step size halves, and its iterate restarts from its best
point so far, when

1. at most ``rho = 0.75`` of the steps since the last checkpoint raised its loss
   (``sum_i 1[f(x_{i+1}) > f(x_i)] <= rho (w_j - w_{j-1})``; the paper writes ``<``, the reference code ``<=``;
   the first step is compared with the start, as in the paper, where the reference code compares it with 0), or
2. its step size was not halved at the last checkpoint and its best loss has not risen since.

An image counts as broken as soon as one iterate is misclassified (or, for an explicitly targeted
attack, classified as the target); that iterate is returned, else the highest-loss point found.
Images the model already gets wrong are returned unchanged and not attacked, as in AutoAttack. The
random start is drawn on the CPU from ``seed``, as torchattacks 3.5.1 draws it, so both libraries start
at the same points and every device starts alike.
"""
from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import nn

from core.attacks.base import Attack
from core.attacks.losses import cross_entropy, dlr_targeted
from core.attacks.steps import per_sample_norm, threat_model
from core.errors import ParameterError

MOMENTUM = 0.75
Goal = tuple[torch.Tensor | None, bool]  # (target or None, whether success means hitting that target)
Observer = Callable[[int, torch.Tensor, torch.Tensor], None]  # (iteration i, step sizes [N, 1, ...], x_{i+1})


def checkpoint_lengths(steps: int) -> Iterator[int]:
    """The number of iterations between successive checkpoints: ``0.22 N`` first, then 0.03 N shorter each
    time, at least ``0.06 N`` (integer parts, at least 1), as the reference code schedules them."""
    length, shrink, least = max(int(0.22 * steps), 1), max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    while True:
        yield length
        length = max(length - shrink, least)


def halve_step(losses: torch.Tensor, best: torch.Tensor, best_at_check: torch.Tensor, halved_at_check: torch.Tensor,
               rho: float) -> torch.Tensor:
    """Which images' step size halves at a checkpoint. ``losses`` ``[k + 1, N]``: the loss before and after each
    of the k steps since the last checkpoint. Condition 1: at most ``rho * k`` of them raised the loss.
    Condition 2: not halved at the last checkpoint, and the best loss no higher than it was there."""
    raised = (losses[1:] > losses[:-1]).sum(0)
    return (raised <= rho * (len(losses) - 1)) | (~halved_at_check & (best <= best_at_check))


class APGD(Attack):
    """Auto-PGD, untargeted on cross-entropy (APGD-CE) or DLR (APGD-DLR); with a ``target`` passed to the
    call, targeted (minus the cross-entropy at the target, or the targeted DLR).

    Args:
        threat: ``"linf"`` or ``"l2"``. eps: the radius (AutoAttack's CIFAR-10 standard: linf 8/255, l2 0.5).
        steps: iterations N per restart (default 100, as AutoAttack; 0 returns the clean images).
        loss: ``"ce"`` or ``"dlr"``. restarts: random restarts (default 1). rho: condition 1's threshold
        (default 0.75). seed: seeds the random start.

    Shape:
        images ``[N, C, H, W]`` in [0, 1] -> adversarial images, ``||x' - x|| <= eps``, in [0, 1].
    """

    def __init__(self, model: nn.Module, threat: str, eps: float, steps: int = 100, loss: str = "ce",
                 restarts: int = 1, rho: float = 0.75, seed: int = 0, precision: str = "fp32") -> None:
        if loss not in ("ce", "dlr"):
            raise ParameterError(f"APGD ascends 'ce' or 'dlr', not {loss!r}")
        if restarts < 1 or not 0 < rho < 1:
            raise ParameterError(f"APGD needs restarts >= 1 and 0 < rho < 1, got {restarts} and {rho}")
        super().__init__(model, eps, loss, seed, precision)
        self.threat, self.constraint, self.steps = threat, threat_model(threat, eps), steps
        self.loss_name, self.restarts, self.rho = loss, restarts, rho

    # --- what is ascended, and what counts as success -------------------------------------------------
    def goals(self, logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> list[Goal]:
        """One goal per run: the given target (or none), once per restart."""
        return [(target, target is not None)] * self.restarts

    def objective(self, logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        """The per-image loss to ascend."""
        if target is None:
            return self.loss(logits, y)
        return -cross_entropy(logits, target) if self.loss_name == "ce" else dlr_targeted(logits, y, target)

    @staticmethod
    def success(logits: torch.Tensor, y: torch.Tensor, goal: Goal) -> torch.Tensor:
        target, hit_target = goal
        pred = logits.argmax(1)
        return pred == target if hit_target else pred != y

    def ascent_grad(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                    forward=None) -> torch.Tensor:
        """Gradient w.r.t. ``x`` of the first run's loss (what the attack starts to follow)."""
        with torch.no_grad():
            goal = self.goals(self.network(x), y, target)[0]
        return self.evaluate(x, y, goal)[1]

    # --- the attack ---------------------------------------------------------------------------------------
    def perturb(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        if self.steps == 0:
            return x.clone()
        generator = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            clean = self.network(x)
        goals = self.goals(clean, y, target)
        done = self.success(clean, y, goals[0]) if goals else torch.ones_like(y, dtype=torch.bool)
        out, best = x.clone(), torch.full((len(x),), -float("inf"), device=x.device, dtype=x.dtype)
        for goal in goals:
            idx = (~done).nonzero().squeeze(1)
            if not len(idx):
                break
            sub = (goal[0][idx] if goal[0] is not None else None, goal[1])
            adv, hit, loss, x_best = self.run(x[idx], y[idx], sub, generator)
            better = ~hit & (loss > best[idx])
            out[idx[hit]], out[idx[better]], best[idx[better]] = adv[hit], x_best[better], loss[better]
            done[idx[hit]] = True
        return out

    def run(self, x: torch.Tensor, y: torch.Tensor, goal: Goal, generator: torch.Generator,
            observe: Observer | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One APGD run from a random start: (a successful iterate per image, which images succeeded, the best
        loss, the highest-loss point). ``observe`` sees each step: its index, its step sizes, the new iterate."""
        eta = torch.full((len(x),) + (1,) * (x.ndim - 1), 2 * self.eps, device=x.device, dtype=x.dtype)
        x_adv = self.start(x, generator)
        loss, grad, hit = self.evaluate(x_adv, y, goal)
        adv, x_best, grad_best, loss_best = x_adv.clone(), x_adv.clone(), grad.clone(), loss.clone()
        history, previous = [loss], x_adv
        lengths, since = checkpoint_lengths(self.steps), 0
        length, halved, best_at_check = next(lengths), torch.ones_like(hit), loss_best.clone()
        for i in range(self.steps):
            x_adv, previous = self.momentum_step(x, x_adv, previous, grad, eta, 1.0 if i == 0 else MOMENTUM), x_adv
            if observe is not None:
                observe(i, eta.clone(), x_adv.clone())
            loss, grad, now = self.evaluate(x_adv, y, goal)
            adv[now], hit = x_adv[now], hit | now
            up = loss > loss_best
            x_best[up], grad_best[up], loss_best[up] = x_adv[up], grad[up], loss[up]
            history, since = history[-length:] + [loss], since + 1
            if since == length:
                halved = halve_step(torch.stack(history), loss_best, best_at_check, halved, self.rho)
                eta[halved] /= 2
                back = halved.view(-1, *([1] * (x.ndim - 1)))  # these restart from their best point
                x_adv, grad = torch.where(back, x_best, x_adv), torch.where(back, grad_best, grad)
                best_at_check, since, length = loss_best.clone(), 0, next(lengths)
        return adv, hit, loss_best, x_best

    def start(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """AutoAttack's random start: a random direction scaled onto the eps-sphere (linf: uniform noise
        divided by its largest entry; l2: Gaussian noise divided by its norm), clipped to [0, 1]."""
        if self.threat == "linf":
            t = torch.rand(x.shape, generator=generator) * 2 - 1
            t = t / t.abs().flatten(1).amax(1).view(-1, *([1] * (x.ndim - 1)))
        else:
            t = torch.randn(x.shape, generator=generator)
            t = t / (per_sample_norm(t) + 1e-12)
        return (x + self.eps * t.to(x)).clamp(0, 1)

    def momentum_step(self, x: torch.Tensor, x_adv: torch.Tensor, previous: torch.Tensor, grad: torch.Tensor,
                      eta: torch.Tensor, alpha: float) -> torch.Tensor:
        z = self.constraint.project(self.constraint.step(x_adv, grad, eta), x)
        return self.constraint.project(x_adv + alpha * (z - x_adv) + (1 - alpha) * (x_adv - previous), x)

    def evaluate(self, x_adv: torch.Tensor, y: torch.Tensor,
                 goal: Goal) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The loss per image at ``x_adv``, its input gradient, and where the goal is reached."""
        x_adv = x_adv.detach().requires_grad_(True)
        logits = self.network(x_adv)
        loss = self.objective(logits, y, goal[0])
        grad = torch.autograd.grad(loss.sum(), x_adv)[0]
        return loss.detach(), grad.detach(), self.success(logits.detach(), y, goal)


class APGDT(APGD):
    """APGD-T: APGD on the targeted DLR loss, run once for each of the ``targets`` classes the model ranks
    highest after the top one at the clean image (AutoAttack's standard: 9 on CIFAR-10, at most classes - 1),
    each on the images not yet broken; success is any misclassification. With a ``target`` passed to the
    call, only that target, and success means hitting it.

    Shape:
        images ``[N, C, H, W]`` in [0, 1] -> adversarial images, ``||x' - x|| <= eps``, in [0, 1].
    """

    def __init__(self, model: nn.Module, threat: str, eps: float, steps: int = 100, targets: int = 9,
                 restarts: int = 1, rho: float = 0.75, seed: int = 0, precision: str = "fp32") -> None:
        super().__init__(model, threat, eps, steps, "dlr", restarts, rho, seed, precision)
        if targets < 1:
            raise ParameterError(f"APGD-T needs at least one target class, got {targets}")
        self.targets = targets

    def goals(self, logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> list[Goal]:
        if target is not None:
            return [(target, True)] * self.restarts
        ranked = logits.argsort(dim=1, descending=True)
        count = min(self.targets, logits.shape[1] - 1)
        return [(ranked[:, k], False) for k in range(1, count + 1) for _ in range(self.restarts)]
