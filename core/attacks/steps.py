"""Threat models, apart from the attack loop (as in MadryLab ``robustness``).

A threat model is the set an adversarial image may live in; each knows how to take a step along a
gradient, project back onto its set, and start at random inside it. Pixels always stay in [0, 1].

* :class:`LinfStep` (``"linf"``): ``{x' : ||x' - x||_inf <= eps, 0 <= x' <= 1}``, steps ``x + a*sign(g)``.
* :class:`L2Step` (``"l2"``): ``{x' : ||x' - x||_2 <= eps, 0 <= x' <= 1}``, steps ``x + a*g/||g||_2``.
"""
from __future__ import annotations

import math

import torch

from core.errors import ParameterError

TINY = 1e-12


def per_sample_norm(t: torch.Tensor) -> torch.Tensor:
    """l2 norm of every sample, shaped to broadcast against ``t``."""
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.ndim - 1)))


class LinfStep:
    threat = "linf"

    def __init__(self, eps: float) -> None:
        self.eps = eps

    def project(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return (x + (x_adv - x).clamp(-self.eps, self.eps)).clamp(0, 1)

    def step(self, x_adv: torch.Tensor, grad: torch.Tensor, step_size: float) -> torch.Tensor:
        return x_adv + step_size * grad.sign()

    def random_start(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise = (torch.rand(x.shape, generator=generator, dtype=x.dtype) * 2 - 1).to(x.device)  # drawn on the CPU
        return (x + self.eps * noise).clamp(0, 1)


class L2Step:
    threat = "l2"

    def __init__(self, eps: float) -> None:
        self.eps = eps

    def project(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        delta = x_adv - x
        factor = (self.eps / per_sample_norm(delta).clamp_min(TINY)).clamp(max=1.0)
        return (x + delta * factor).clamp(0, 1)

    def step(self, x_adv: torch.Tensor, grad: torch.Tensor, step_size: float) -> torch.Tensor:
        return x_adv + step_size * grad / per_sample_norm(grad).clamp_min(TINY)

    def random_start(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Uniform in the l2 ball: a uniform direction times eps * U^(1/d)."""
        direction = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)  # drawn on the CPU
        direction = direction / per_sample_norm(direction).clamp_min(TINY)
        u = torch.rand((len(x),) + (1,) * (x.ndim - 1), generator=generator, dtype=x.dtype).to(x.device)
        return (x + direction * self.eps * u ** (1.0 / x[0].numel())).clamp(0, 1)


THREATS = {"linf": LinfStep, "l2": L2Step}


def threat_model(threat: str, eps: float) -> LinfStep | L2Step:
    """The constraint set of ``threat`` (``"l2"`` or ``"linf"``) with radius ``eps``."""
    if threat not in THREATS:
        raise ParameterError(f"unknown threat model {threat!r}; choose from {sorted(THREATS)}")
    if not (eps >= 0 and math.isfinite(eps)):  # also rejects NaN
        raise ParameterError(f"eps must be a non-negative finite number, got {eps}")
    return THREATS[threat](eps)
