"""FGSM (Goodfellow, Shlens & Szegedy, ICLR 2015): one linf step of size eps along the gradient sign."""
from __future__ import annotations

import torch
from torch import nn

from core.attacks.base import Attack
from core.attacks.steps import LinfStep


class FGSM(Attack):
    """``x' = clip_[0,1](x + eps * sign(grad_x L(x, y)))``.

    Shape:
        images ``[N, C, H, W]`` in [0, 1] -> adversarial images of the same shape, in [0, 1].
    """

    threat = "linf"

    def __init__(self, model: nn.Module, eps: float, loss: str = "ce", seed: int = 0,
                 precision: str = "fp32") -> None:
        super().__init__(model, eps, loss, seed, precision)
        self.constraint = LinfStep(eps)

    def perturb(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        return self.constraint.project(self.constraint.step(x, self.ascent_grad(x, y, target), self.eps), x)
