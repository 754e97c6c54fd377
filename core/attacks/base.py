"""The attack base class (as in torchattacks): it owns device, eval mode, frozen weights and clamping.

A subclass writes only :meth:`Attack.perturb`; ``attack(images, labels, target=None)`` returns
adversarial images in [0, 1] on the input's device. During the call the model is in eval mode
(a BN model attacked in train mode would use and update batch statistics) and its parameters do
not require grad, so nothing accumulates in ``.grad``; both are restored afterwards. Subclasses run
:attr:`Attack.network`: the model's inference form (:mod:`core.models.inference`: BatchNorm folded into
the convolutions, bf16 autocast at ``precision="bf16"``), whose gradients are the model's own.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from core.attacks.losses import LOSSES
from core.device import model_device, to_device
from core.errors import ParameterError
from core.models.inference import InferenceForm


@contextmanager
def attack_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode and frozen parameters for the duration of an attack; the caller's state is restored."""
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


class Attack:
    """Base of every attack.

    Args:
        model: a classifier taking images in [0, 1].
        eps: the perturbation budget, measured in the attack's threat model (``threat``: l2 or linf).
        loss: ``"ce"`` (cross-entropy) or ``"cw"`` (Carlini-Wagner margin).
        seed: seeds random starts and random transforms, so results are deterministic.
        precision: ``"fp32"`` or ``"bf16"`` (autocast forward and backward; the iterate stays fp32).

    Shape:
        images ``[N, C, H, W]`` in [0, 1], labels ``[N]``, optional target ``[N]``; returns ``[N, C, H, W]``.
    """

    threat: str  # "l2" or "linf": the set the adversarial images are kept in (set by each subclass)

    def __init__(self, model: nn.Module, eps: float, loss: str = "ce", seed: int = 0,
                 precision: str = "fp32") -> None:
        self.model, self.eps, self.seed = model, eps, seed
        self.inference = InferenceForm(precision)
        if loss not in LOSSES:
            raise ParameterError(f"unknown loss {loss!r}; choose from {sorted(LOSSES)}")
        self.loss = LOSSES[loss]

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        device = model_device(self.model)
        x, y = to_device(images, device), labels.to(device)
        t = target.to(device) if target is not None else None
        with attack_mode(self.model):
            return self.perturb(x, y, t).detach().clamp(0, 1).to(images.device)

    def perturb(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    @property
    def network(self) -> nn.Module:
        """What the attack runs: the model's inference form, remade only when its weights or mode change."""
        return self.inference(self.model)

    def generator(self) -> torch.Generator:
        """The attack's random stream, on the CPU: every device draws the same starts and transforms under a
        seed, and a scalar draw never waits for the device."""
        return torch.Generator().manual_seed(self.seed)

    def ascent_grad(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None,
                    forward=None) -> torch.Tensor:
        """Gradient w.r.t. ``x`` of the loss to increase: the loss at ``y``, or minus the loss at ``target``."""
        x = x.detach().requires_grad_(True)
        logits = (forward or self.network)(x)
        loss = self.loss(logits, y).sum() if target is None else -self.loss(logits, target).sum()
        return torch.autograd.grad(loss, x)[0]
