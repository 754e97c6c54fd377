"""Attacks: a registry of named attacks, each an attack class plus the keyword arguments that make it
the paper's attack, and a frozen :class:`AttackSpec` that runs one.

The spec is at once the UI's form, the cache key and the record of how a result was made.

    >>> spec = paper_spec("pgd_l2")       # eps 0.25, 20 steps, step 2.5*eps/20 (Table 1)
    >>> attack = build_attack(model, spec)  # doctest: +SKIP
    >>> x_adv = attack(images, labels)      # doctest: +SKIP

Each default lives in one place: the paper's budgets in :data:`ATTACKS`, everything else (steps,
step-size rule, loss) in the attack class's signature.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping

from torch import nn

from core.attacks.apgd import APGD, APGDT
from core.attacks.base import Attack, attack_mode
from core.attacks.fgsm import FGSM
from core.attacks.ifgsm import IFGSM
from core.attacks.pgd import PGD, default_step_size
from core.attacks.steps import THREATS, L2Step, LinfStep, threat_model
from core.config import later_option, one_of
from core.errors import ParameterError
from core.models.inference import PRECISIONS, check_precision

TARGET_MODES = ("untargeted", "next", "random")  # "next": t = (y + 1) mod K, as D_det


@dataclass(frozen=True)
class AttackEntry:
    """A registry entry: ``cls(model, **kwargs, **spec)`` is the attack; ``kwargs`` hold the paper's settings."""

    title: str
    cls: type[Attack]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kwargs", MappingProxyType(dict(self.kwargs)))

    def default(self, name: str, fallback: Any = None) -> Any:
        """The entry's setting ``name``: its own keyword argument, else the class's default."""
        if name in self.kwargs:
            return self.kwargs[name]
        parameter = inspect.signature(self.cls).parameters.get(name)
        return fallback if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default

    @property
    def iterative(self) -> bool:
        return "steps" in inspect.signature(self.cls).parameters

    @property
    def threat(self) -> str:
        return self.default("threat") or self.cls.threat


ATTACKS: dict[str, AttackEntry] = {
    "fgsm": AttackEntry("FGSM", FGSM, dict(eps=4 / 255), "one linf gradient-sign step (Table A6)"),
    "pgd_l2": AttackEntry("PGD-l2", PGD, dict(threat="l2", eps=0.25), "l2 PGD, cross-entropy (Table 1)"),
    "pgd_linf": AttackEntry("PGD-linf", PGD, dict(threat="linf", eps=1 / 255), "linf PGD, cross-entropy (Table 1)"),
    "cw_l2": AttackEntry("CW-l2", PGD, dict(threat="l2", eps=0.25, loss="cw"),
                         "l2 PGD on the CW margin loss (Table 1)"),
    "cw_linf": AttackEntry("CW-linf", PGD, dict(threat="linf", eps=1 / 255, loss="cw"),
                           "linf PGD on the CW margin loss"),
    # Transfer attacks (Sec. 7, App. H): linf 8/255, the usual budget of the I-FGSM family on CIFAR-10.
    "ifgsm": AttackEntry("I-FGSM", IFGSM, dict(eps=8 / 255), "iterative FGSM (transfer, Sec. 7)"),
    "mifgsm": AttackEntry("MI-FGSM", IFGSM, dict(eps=8 / 255, decay=1.0), "momentum I-FGSM"),
    "difgsm": AttackEntry("DI-FGSM", IFGSM, dict(eps=8 / 255, diversity_prob=0.5), "input-diversity I-FGSM"),
    "tifgsm": AttackEntry("TI-FGSM", IFGSM, dict(eps=8 / 255, kernel_size=5), "translation-invariant I-FGSM"),
    # AutoAttack's white-box attacks (Croce & Hein 2020) at AutoAttack's standard CIFAR-10 budgets, 100 steps,
    # step size set by the attack itself (the paper's budgets are a spec away).
    "apgd_ce_linf": AttackEntry("APGD-CE-linf", APGD, dict(threat="linf", eps=8 / 255), "linf APGD on cross-entropy"),
    "apgd_dlr_linf": AttackEntry("APGD-DLR-linf", APGD, dict(threat="linf", eps=8 / 255, loss="dlr"),
                                 "linf APGD on the DLR loss"),
    "apgd_t_linf": AttackEntry("APGD-T-linf", APGDT, dict(threat="linf", eps=8 / 255),
                               "linf APGD on the targeted DLR loss, top-9 targets"),
    "apgd_ce_l2": AttackEntry("APGD-CE-l2", APGD, dict(threat="l2", eps=0.5), "l2 APGD on cross-entropy"),
    "apgd_dlr_l2": AttackEntry("APGD-DLR-l2", APGD, dict(threat="l2", eps=0.5, loss="dlr"), "l2 APGD on the DLR loss"),
    "apgd_t_l2": AttackEntry("APGD-T-l2", APGDT, dict(threat="l2", eps=0.5),
                             "l2 APGD on the targeted DLR loss, top-9 targets"),
}
# The Robustness page's and gallery's choices: the paper's attacks, then AutoAttack's APGD (its own budgets).
WHITE_BOX = ("fgsm", "pgd_l2", "pgd_linf", "cw_l2", "cw_linf", "apgd_ce_linf", "apgd_dlr_linf", "apgd_t_linf",
             "apgd_ce_l2", "apgd_dlr_l2", "apgd_t_l2")


def attack_entry(name: str) -> AttackEntry:
    if name not in ATTACKS:
        raise ParameterError(f"unknown attack {name!r}; choose from {', '.join(ATTACKS)}")
    return ATTACKS[name]


@dataclass(frozen=True)
class AttackSpec:
    """One attack's full configuration, validated on construction.

    ``eps=None`` and ``steps=None`` are the attack's paper settings (:data:`ATTACKS`), so ``AttackSpec("fgsm")`` is
    :func:`paper_spec`'s and a config that names only an attack gets that attack's budget. ``step_size=None`` means
    the attack's rule (2.5*eps/steps for PGD and CW, eps/steps for I-FGSM).
    ``steps=0`` is the honest zero-step attack (the clean images). ``target`` is ``"untargeted"``,
    ``"next"`` or ``"random"`` (drawn with ``seed``). ``precision`` ``"bf16"`` runs the model's forward and
    backward under bf16 autocast (the perturbation stays fp32); it changes results, so it is part of the key.
    """

    name: str = one_of(ATTACKS)
    eps: float | None = None  # the budget (None: the attack's paper budget)
    steps: int | None = None  # iterations (None: the attack's paper setting)
    step_size: float | None = None  # None: the attack's rule
    random_start: bool = False
    target: str = one_of(TARGET_MODES, "untargeted")
    seed: int = 0  # draws the random start and random targets
    precision: str = later_option("fp32", PRECISIONS)  # bf16: forward and backward under bf16 autocast

    def __post_init__(self) -> None:
        entry = attack_entry(self.name)  # validates the name
        for name, value in (("eps", entry.default("eps")), ("steps", entry.default("steps", 1))):
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        threat_model(entry.threat, self.eps)
        check_precision(self.precision)
        if self.steps < 0:
            raise ParameterError(f"steps must be 0 or more, got {self.steps}")
        if self.step_size is not None and not (self.step_size > 0 and math.isfinite(self.step_size)):
            raise ParameterError(f"step size must be a positive number, got {self.step_size}")
        if self.target not in TARGET_MODES:
            raise ParameterError(f"unknown target mode {self.target!r}; choose from {', '.join(TARGET_MODES)}")

    def with_eps(self, eps: float) -> "AttackSpec":
        return replace(self, eps=eps)

    @property
    def entry(self) -> AttackEntry:
        return ATTACKS[self.name]

    @property
    def passes(self) -> int:
        """Passes per image: each step of each run (APGD-T: one run per target class), at least one; APGD also
        evaluates each run's start, and the clean images once (its targets and which images are broken already)."""
        runs = self.entry.default("restarts", 1) * self.entry.default("targets", 1)
        if issubclass(self.entry.cls, APGD) and self.steps:
            return (self.steps + 1) * runs + 1
        return max(1, self.steps if self.entry.iterative else 1) * runs

    @property
    def label(self) -> str:
        steps = f", {self.steps} steps" if self.entry.iterative else ""
        precision = f", {self.precision}" if self.precision != "fp32" else ""
        return f"{self.entry.title} (eps={self.eps:.4g}{steps}{precision})"


def format_eps(eps: float, threat: str) -> str:
    """A budget as the paper writes it: linf in x/255 units ("1/255"), l2 as a plain number."""
    if threat == "linf" and eps:
        return f"{eps * 255:.3g}/255"
    return f"{eps:.3g}"


def list_attacks() -> list[str]:
    return list(ATTACKS)


def paper_spec(name: str, **overrides) -> AttackSpec:
    """The paper's spec for an attack (its registry settings), with optional overrides."""
    return replace(AttackSpec(name), **overrides)


def build_attack(model: nn.Module, spec: AttackSpec) -> Attack:
    """The attack of ``spec`` on ``model``, built by keyword from its registry entry."""
    entry = spec.entry
    accepted = inspect.signature(entry.cls).parameters
    settings = dict(eps=spec.eps, steps=spec.steps, step_size=spec.step_size, random_start=spec.random_start,
                    seed=spec.seed, precision=spec.precision)
    return entry.cls(model, **{**entry.kwargs, **{k: v for k, v in settings.items() if k in accepted}})


__all__ = ["APGD", "APGDT",
           "Attack", "AttackSpec", "AttackEntry", "ATTACKS", "FGSM", "IFGSM", "PGD", "L2Step", "LinfStep",
           "PRECISIONS", "THREATS", "TARGET_MODES", "WHITE_BOX", "attack_entry", "attack_mode", "build_attack",
           "default_step_size", "list_attacks", "paper_spec", "threat_model"]
