"""Transfer attacks (Sec. 7, App. H): I-FGSM and its momentum (MI), input-diversity (DI) and
translation-invariant (TI) variants, all linf.

* I-FGSM (Kurakin et al. 2017): ``steps`` sign steps of ``eps / steps``.
* MI-FGSM (Dong et al. 2018): accumulate ``g <- mu * g + grad / ||grad||_1``, step along sign(g).
* DI-FGSM (Xie et al. 2019): the gradient of a randomly resized-and-padded input, with probability p.
* TI-FGSM (Dong et al. 2019): the gradient smoothed by a Gaussian kernel before the sign.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.attacks.base import Attack
from core.attacks.steps import LinfStep


def gaussian_kernel(size: int, sigma: float, channels: int = 3) -> torch.Tensor:
    """A normalized depthwise Gaussian kernel ``[channels, 1, size, size]``."""
    r = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(r ** 2) / (2 * sigma ** 2))
    k = torch.outer(g, g)
    return (k / k.sum()).expand(channels, 1, size, size).contiguous()


class IFGSM(Attack):
    """Iterative FGSM with optional momentum (``decay``), input diversity (``diversity_prob``) and a
    translation-invariant kernel (``kernel_size``; 0 = off). Step size eps / steps unless given.

    Shape:
        images ``[N, C, H, W]`` in [0, 1] -> adversarial images, ``||x' - x||_inf <= eps``.
    """

    threat = "linf"

    def __init__(self, model: nn.Module, eps: float, steps: int = 10, step_size: float | None = None,
                 decay: float = 0.0, diversity_prob: float = 0.0, kernel_size: int = 0, loss: str = "ce",
                 seed: int = 0, precision: str = "fp32") -> None:
        super().__init__(model, eps, loss, seed, precision)
        self.constraint, self.steps = LinfStep(eps), steps
        self.step_size = eps / max(steps, 1) if step_size is None else step_size
        self.decay, self.diversity_prob, self.kernel_size = decay, diversity_prob, kernel_size

    def perturb(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        g, x_adv, momentum = self.generator(), x.clone(), torch.zeros_like(x)
        kernel = gaussian_kernel(self.kernel_size, self.kernel_size / 3 ** 0.5 / 2).to(x) if self.kernel_size else None
        for _ in range(self.steps):
            grad = self.ascent_grad(x_adv, y, target, forward=lambda z: self.network(self.diverse(z, g)))
            if kernel is not None:
                grad = F.conv2d(grad, kernel, padding=self.kernel_size // 2, groups=grad.shape[1])
            if self.decay:
                grad = momentum = self.decay * momentum + grad / grad.abs().flatten(1).mean(1).view(-1, 1, 1, 1).clamp_min(1e-12)
            x_adv = self.constraint.project(self.constraint.step(x_adv, grad, self.step_size), x)
        return x_adv

    def diverse(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Input diversity: resize to a random size in [H, 1.1H), pad randomly back to 1.1H, resize to H."""
        if not self.diversity_prob or torch.rand((), generator=g) >= self.diversity_prob:
            return x
        h = x.shape[-1]
        top = max(h + 1, int(h * 1.1))
        size = int(torch.randint(h, top, (), generator=g))
        left, up = (int(torch.randint(0, top - size + 1, (), generator=g)) for _ in range(2))
        z = F.interpolate(x, size=(size, size), mode="nearest")
        z = F.pad(z, (left, top - size - left, up, top - size - up))
        return F.interpolate(z, size=(h, h), mode="bilinear", align_corners=False)
