"""PGD (Madry et al., ICLR 2018) in l2 or linf, with cross-entropy or CW-margin loss.

Iterates ``x <- Proj_S(x + a * step(grad))`` where S is the eps-ball of the threat model intersected
with [0, 1]^d. Step size ``a = 2.5 * eps / steps`` unless given (the paper's and Madry et al.'s rule).
"""
from __future__ import annotations

import torch
from torch import nn

from core.attacks.base import Attack
from core.attacks.steps import threat_model


def default_step_size(eps: float, steps: int) -> float:
    """The paper's (and Madry et al.'s) rule: 2.5 * eps / steps."""
    return 2.5 * eps / max(steps, 1)


class PGD(Attack):
    """Projected gradient descent.

    Args:
        threat: ``"l2"`` or ``"linf"``. eps: the radius in that threat model. steps: iterations
        (0 returns the clean images). step_size: None -> 2.5 * eps / steps. random_start: start
        uniformly inside the ball. loss: ``"ce"`` (cross-entropy) or ``"cw"`` (CW margin, the paper's CW attack).

    Shape:
        images ``[N, C, H, W]`` in [0, 1] -> adversarial images, ``||x' - x|| <= eps``, in [0, 1].
    """

    def __init__(self, model: nn.Module, threat: str, eps: float, steps: int = 20, step_size: float | None = None,
                 random_start: bool = False, loss: str = "ce", seed: int = 0, precision: str = "fp32") -> None:
        super().__init__(model, eps, loss, seed, precision)
        self.threat, self.constraint, self.steps = threat, threat_model(threat, eps), steps
        self.step_size = default_step_size(eps, steps) if step_size is None else step_size
        self.random_start = random_start

    def perturb(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        x_adv = self.constraint.random_start(x, self.generator()) if self.random_start else x.clone()
        for _ in range(self.steps):
            grad = self.ascent_grad(x_adv, y, target)
            x_adv = self.constraint.project(self.constraint.step(x_adv, grad, self.step_size), x)
        return x_adv
