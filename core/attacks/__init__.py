"""Attacks: a registry of named attacks, each described by a frozen :class:`AttackSpec`.

The spec is at once the UI's form, the cache key and the record of how a result was made.

    >>> spec = paper_spec("pgd_l2")       # eps 0.25, 20 steps, step 2.5*eps/20 (Table 1)
    >>> attack = build_attack(model, spec)  # doctest: +SKIP
    >>> x_adv = attack(images, labels)      # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from torch import nn

from core.attacks.base import Attack, attack_mode
from core.attacks.cw import CW
from core.attacks.fgsm import FGSM
from core.attacks.ifgsm import IFGSM
from core.attacks.pgd import PGD, default_step_size
from core.attacks.steps import L2Step, LinfStep, threat_model

TARGET_MODES = ("untargeted", "next", "random")  # "next": t = (y + 1) mod K, as D_det


@dataclass(frozen=True)
class AttackSpec:
    """One attack's full configuration.

    ``step_size=None`` means the attack's rule (2.5*eps/steps for PGD and CW, eps/steps for I-FGSM).
    ``target`` is ``"untargeted"``, ``"next"`` or ``"random"`` (drawn with ``seed``).
    """

    name: str
    eps: float
    steps: int = 20
    step_size: float | None = None
    random_start: bool = False
    target: str = "untargeted"
    seed: int = 0

    def with_eps(self, eps: float) -> "AttackSpec":
        return replace(self, eps=eps)

    @property
    def label(self) -> str:
        steps = "" if self.name == "fgsm" else f", {self.steps} steps"
        return f"{ATTACKS[self.name].title} (eps={self.eps:.4g}{steps})"


@dataclass(frozen=True)
class AttackInfo:
    title: str
    norm: str
    paper_eps: float
    paper_steps: int
    make: Callable[[nn.Module, AttackSpec], Attack]
    description: str


def _pgd(norm: str, loss: str) -> Callable[[nn.Module, AttackSpec], Attack]:
    return lambda m, s: PGD(m, norm, s.eps, s.steps, s.step_size, s.random_start, loss, s.seed)


def _ifgsm(**kw) -> Callable[[nn.Module, AttackSpec], Attack]:
    return lambda m, s: IFGSM(m, s.eps, s.steps, s.step_size, seed=s.seed, **kw)


ATTACKS: dict[str, AttackInfo] = {
    "fgsm": AttackInfo("FGSM", "linf", 4 / 255, 1, lambda m, s: FGSM(m, s.eps, seed=s.seed),
                       "one linf gradient-sign step (Table A6)"),
    "pgd_l2": AttackInfo("PGD-l2", "l2", 0.25, 20, _pgd("l2", "ce"), "l2 PGD, cross-entropy (Table 1)"),
    "pgd_linf": AttackInfo("PGD-linf", "linf", 1 / 255, 20, _pgd("linf", "ce"), "linf PGD, cross-entropy (Table 1)"),
    "cw_l2": AttackInfo("CW-l2", "l2", 0.25, 20, _pgd("l2", "cw"), "l2 PGD on the CW margin loss (Table 1)"),
    "cw_linf": AttackInfo("CW-linf", "linf", 1 / 255, 20, _pgd("linf", "cw"), "linf PGD on the CW margin loss"),
    "ifgsm": AttackInfo("I-FGSM", "linf", 8 / 255, 10, _ifgsm(), "iterative FGSM (transfer, Sec. 7)"),
    "mifgsm": AttackInfo("MI-FGSM", "linf", 8 / 255, 10, _ifgsm(decay=1.0), "momentum I-FGSM"),
    "difgsm": AttackInfo("DI-FGSM", "linf", 8 / 255, 10, _ifgsm(diversity_prob=0.5), "input-diversity I-FGSM"),
    "tifgsm": AttackInfo("TI-FGSM", "linf", 8 / 255, 10, _ifgsm(kernel_size=5), "translation-invariant I-FGSM"),
}


def list_attacks() -> list[str]:
    return list(ATTACKS)


def paper_spec(name: str, **overrides) -> AttackSpec:
    """The paper's default spec for an attack, with optional overrides."""
    info = attack_info(name)
    return replace(AttackSpec(name, info.paper_eps, info.paper_steps), **overrides)


def attack_info(name: str) -> AttackInfo:
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; choose from {', '.join(ATTACKS)}")
    return ATTACKS[name]


def build_attack(model: nn.Module, spec: AttackSpec) -> Attack:
    if spec.target not in TARGET_MODES:
        raise ValueError(f"unknown target mode {spec.target!r}; choose from {TARGET_MODES}")
    if spec.steps < 1:
        raise ValueError(f"steps must be at least 1, got {spec.steps}")
    threat_model(attack_info(spec.name).norm, spec.eps)  # validates eps
    return attack_info(spec.name).make(model, spec)


__all__ = ["Attack", "AttackSpec", "AttackInfo", "ATTACKS", "CW", "FGSM", "IFGSM", "PGD", "L2Step", "LinfStep",
           "attack_mode", "build_attack", "default_step_size", "list_attacks", "paper_spec", "threat_model",
           "TARGET_MODES"]
