"""PGD (Madry et al., ICLR 2018) in l2 or linf, with cross-entropy or CW-margin loss.

Iterates ``x <- Proj_S(x + a * step(grad))`` where S is the eps-ball of the threat model intersected
with [0, 1]^d. Paper defaults (Table 1, App. B.2): 20 steps, step size ``a = 2.5 * eps / steps``,
eps 0.25 (l2) or 1/255 (linf), no random start.
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
        norm: ``"l2"`` or ``"linf"``. eps: the radius (default 0.25, the paper's l2 setting).
        steps: iterations (20). step_size: None -> 2.5 * eps / steps. random_start: start uniformly
        inside the ball (False, as in the paper). loss: ``"ce"`` or ``"cw"``.

    Shape:
        images ``[N, C, H, W]`` in [0, 1] -> adversarial images, ``||x' - x|| <= eps``, in [0, 1].
    """

    def __init__(self, model: nn.Module, norm: str = "l2", eps: float = 0.25, steps: int = 20,
                 step_size: float | None = None, random_start: bool = False, loss: str = "ce", seed: int = 0) -> None:
        super().__init__(model, eps, loss, seed)
        self.threat, self.norm, self.steps = threat_model(norm, eps), norm, steps
        self.step_size = default_step_size(eps, steps) if step_size is None else step_size
        self.random_start = random_start

    def perturb(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        x_adv = self.threat.random_start(x, self.generator(x.device)) if self.random_start else x.clone()
        for _ in range(self.steps):
            grad = self.ascent_grad(x_adv, y, target)
            x_adv = self.threat.project(self.threat.step(x_adv, grad, self.step_size), x)
        return x_adv
