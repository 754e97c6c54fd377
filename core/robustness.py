"""The paper's robustness experiments on checkpoints: robust accuracy (Table 1 / A6), eps sweeps, LIGS
(Sec. 4) and an AutoAttack-style evaluation for models of unknown origin.

    >>> robustness(checkpoint, RobustnessConfig(paper_spec("pgd_l2"))).robust_accuracy  # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from core.attacks import AttackSpec, paper_spec, threat_model
from core.cache import MISSING, Missing
from core.checkpoints import Checkpoint
from core.errors import ParameterError
from core.experiments import (EvalData, RunContext, Subject, eval_tensors, experiment, images_in,
                              stores)
from core.metrics import AttackResult, LIGSResult, LIGSSpec, ligs, run_attack
from core.records import Record

TABLE_ATTACKS = ("pgd_l2", "pgd_linf", "cw_l2", "fgsm")  # Table 1 and Table A6, at the paper's settings
# The eps grid of the accuracy-vs-eps curves, per threat model (linf in the paper's x/255 units).
SWEEP_EPS = {"l2": (0.0, 0.125, 0.25, 0.5, 1.0), "linf": tuple(k / 255 for k in (0, 0.5, 1, 2, 4, 8))}
@dataclass(frozen=True)
class RobustnessConfig:
    attack: AttackSpec = paper_spec("pgd_l2")  # Table 1's first column
    data: EvalData = EvalData()


@dataclass(frozen=True)
class LIGSConfig:
    ligs: LIGSSpec = LIGSSpec()
    data: EvalData = EvalData()


@dataclass(frozen=True, kw_only=True)
class RobustnessResult(Record):
    """Clean and robust accuracy of one attack on ``n`` images, with each image's outcome."""

    attack: str
    eps: float
    steps: int
    n: int
    clean_accuracy: float
    robust_accuracy: float
    target_success: float | None = None  # targeted attacks: the share classified as the target
    zero_gradient: float | None = None  # the share of images whose attack-loss gradient is exactly 0 at the start
    clean_correct: list[bool] | None = None  # per image; None in results cached before they were stored
    robust_correct: list[bool] | None = None

    @classmethod
    def of(cls, result: AttackResult) -> "RobustnessResult":
        return cls(attack=result.spec.name, eps=result.spec.eps, steps=result.spec.steps, n=result.n,
                   clean_accuracy=result.clean_accuracy, robust_accuracy=result.robust_accuracy,
                   target_success=result.target_success, zero_gradient=result.zero_gradient,
                   clean_correct=result.clean_correct.tolist(), robust_correct=result.robust_correct.tolist())


OUTCOMES = ("clean_correct", "robust_correct", "zero_gradient")  # per image (and the share of zero gradients)


def attack_passes(attack: AttackSpec) -> int:
    """What :func:`core.metrics.run_attack` runs per image: the attack, the clean and adversarial predictions, and
    the gradient at the clean image (:func:`core.metrics.zero_gradient_mask`)."""
    return attack.passes + 3


def robustness_work(config: RobustnessConfig) -> int:
    return images_in(config) * attack_passes(config.attack)


@experiment("robustness", RobustnessConfig, "clean and robust accuracy under one white-box attack (Table 1, A6)",
            current=stores(*OUTCOMES), work=robustness_work)
def robustness(checkpoint: Checkpoint, config: RobustnessConfig, run: RunContext) -> RobustnessResult:
    x, y = eval_tensors(config.data, checkpoint.spec.num_classes)
    model = run.model(checkpoint)
    return RobustnessResult.of(run_attack(model, x, y, config.attack, checkpoint.spec.num_classes,
                                          progress=run.progress))


@dataclass(frozen=True, kw_only=True)
class LIGSReport(Record):
    """LIGS on ``n`` images: the mean, each image's value with its label, and the mean per class."""

    kind: str
    size: float
    n: int
    ligs: float
    logit_similarity: float  # the mean cosine of the logits at x and x + nu
    per_sample: list[float]
    labels: list[int]
    per_class: list[float]

    @classmethod
    def of(cls, result: LIGSResult, y: torch.Tensor, num_classes: int) -> "LIGSReport":
        per_class = [result.per_sample[y == c].mean().item() for c in range(num_classes)]
        return cls(kind=result.spec.kind, size=result.spec.size, n=len(result.per_sample), ligs=result.mean,
                   logit_similarity=result.logit_similarity.mean().item(), per_sample=result.per_sample.tolist(),
                   labels=y.tolist(), per_class=per_class)


def ligs_work(config: LIGSConfig) -> int:
    return images_in(config) * config.ligs.passes


def ligs_summary(report: LIGSReport) -> str:
    return (f"{report.checkpoint.name} on {report.dataset}: LIGS={report.ligs:.4f} ({report.kind}, size "
            f"{report.size}, n={report.n})")


@experiment("ligs", LIGSConfig, "LIGS: similarity of input gradients under a small perturbation (Sec. 4)",
            work=ligs_work, command="ligs", summary=ligs_summary)
def ligs_report(checkpoint: Checkpoint, config: LIGSConfig, run: RunContext) -> LIGSReport:
    x, y = eval_tensors(config.data, checkpoint.spec.num_classes)
    result = ligs(run.model(checkpoint), x, y, config.ligs, progress=run.progress)
    return LIGSReport.of(result, y, checkpoint.spec.num_classes)


def robustness_sweep(subject: Subject, attack: AttackSpec, eps: list[float], data: EvalData = EvalData(),
                     run: RunContext = RunContext()) -> list[RobustnessResult] | Missing:
    """A robustness-vs-eps curve; every point is cached on its own, the curve is MISSING unless complete."""
    points = [robustness(subject, RobustnessConfig(attack.with_eps(e), data), run.part(i, len(eps)))
              for i, e in enumerate(eps)]
    return MISSING if any(p is MISSING for p in points) else points


def paper_table_row(subject: Subject, data: EvalData = EvalData(), run: RunContext = RunContext()) -> dict | Missing:
    """One row of Table 1 / A6: clean accuracy, robust accuracy per paper attack, and LIGS (MISSING unless complete)."""
    parts = len(TABLE_ATTACKS) + 1
    results = {name: robustness(subject, RobustnessConfig(paper_spec(name), data), run.part(i, parts))
               for i, name in enumerate(TABLE_ATTACKS)}
    lg = ligs_report(subject, LIGSConfig(LIGSSpec(), data), run.part(parts - 1, parts))
    if lg is MISSING or any(r is MISSING for r in results.values()):
        return MISSING
    first = results[TABLE_ATTACKS[0]]
    return {"checkpoint": first.checkpoint.name, "dataset": first.dataset, "n": first.n,
            "clean_accuracy": first.clean_accuracy, **{k: r.robust_accuracy for k, r in results.items()},
            "ligs": lg.ligs}


# AutoAttack (Croce & Hein 2020) "standard": APGD-CE, APGD-T, FAB-T and Square. Here the two APGDs only (FAB-T and
# Square are not included), so the numbers are an upper bound on AutoAttack's robust accuracy.
AUTOATTACK_ATTACKS = ("apgd_ce", "apgd_t")
AUTOATTACK_EPS = {"linf": 8 / 255, "l2": 0.5}  # AutoAttack's (and RobustBench's) standard CIFAR-10 budgets


def autoattack_budgets(threat: str) -> dict[str, float]:
    """The budgets offered for ``threat``: AutoAttack's standard one and the paper's (Table 1's PGD)."""
    return {"AutoAttack standard": AUTOATTACK_EPS[threat], "paper (Table 1)": paper_spec(f"pgd_{threat}").eps}


@dataclass(frozen=True)
class AutoAttackConfig:
    """An AutoAttack-style evaluation: APGD-CE and APGD-T (9 targets, 1 restart each, rho 0.75, step size
    2 eps halving on its own), ``steps`` iterations each, worst case per image. ``eps=None``: AutoAttack's
    standard budget of ``threat`` (linf 8/255, l2 0.5); :func:`autoattack_budgets` names the paper's."""

    threat: str = "linf"
    eps: float | None = None
    steps: int = 100
    seed: int = 0
    data: EvalData = EvalData()

    def __post_init__(self) -> None:
        if self.eps is None and self.threat in AUTOATTACK_EPS:
            object.__setattr__(self, "eps", AUTOATTACK_EPS[self.threat])
        threat_model(self.threat, self.eps)  # refuses an unknown threat model and a meaningless eps
        if not (isinstance(self.steps, int) and self.steps >= 1):
            raise ParameterError(f"APGD needs at least 1 step, got {self.steps!r}")

    @property
    def specs(self) -> tuple[AttackSpec, ...]:
        return tuple(AttackSpec(f"{a}_{self.threat}", self.eps, self.steps, seed=self.seed) for a in AUTOATTACK_ATTACKS)


def autoattack_work(config: AutoAttackConfig) -> int:
    """Each attack is a robustness result of its own (:func:`attack_passes`)."""
    return images_in(config) * sum(attack_passes(s) for s in config.specs)


@dataclass(frozen=True, kw_only=True)
class AutoAttackResult(Record):
    """The worst case per image over the AutoAttack-style attacks, with each attack's own accuracy and share of
    zero gradients (None where a result predates its measurement)."""

    threat: str
    eps: float
    steps: int
    n: int
    clean_accuracy: float
    robust_accuracy: float
    per_attack: dict[str, float]
    zero_gradient: dict[str, float | None]
    robust_correct: list[bool]


@experiment("autoattack", AutoAttackConfig, "AutoAttack-style robust accuracy: the worst case per image over "
            "APGD-CE and APGD-T (Croce & Hein 2020; FAB-T and Square not included)", work=autoattack_work)
def autoattack(checkpoint: Checkpoint, config: AutoAttackConfig, run: RunContext) -> AutoAttackResult:
    specs = config.specs
    parts = {s.name: robustness(checkpoint, RobustnessConfig(s, config.data), run.part(i, len(specs)))
             for i, s in enumerate(specs)}  # each attack is itself a cached robustness result
    return worst_case(config, parts)


def worst_case(config: AutoAttackConfig, results: dict[str, RobustnessResult]) -> AutoAttackResult:
    """Robust accuracy when every image meets the attack that breaks it (a robustness result per attack, on the
    same images): an image counts as robust only if no attack broke it."""
    robust = [all(flags) for flags in zip(*(r.robust_correct for r in results.values()))]
    first = next(iter(results.values()))
    return AutoAttackResult(
        threat=config.threat, eps=config.eps, steps=config.steps, n=first.n, clean_accuracy=first.clean_accuracy,
        robust_accuracy=torch.tensor(robust).float().mean().item() if robust else float("nan"),  # as each part
        per_attack={name: r.robust_accuracy for name, r in results.items()},
        zero_gradient={name: r.zero_gradient for name, r in results.items()}, robust_correct=robust)
