"""The paper's robustness experiments on checkpoints: robust accuracy (Table 1 / A6), eps sweeps, LIGS
(Sec. 4) and the BN-vs-no-normalization headline.

    >>> robustness(checkpoint, RobustnessConfig(paper_spec("pgd_l2")))["robust_accuracy"]  # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass

from core.attacks import AttackSpec, paper_spec
from core.cache import MISSING, Missing
from core.catalog import CatalogEntry
from core.checkpoints import Checkpoint
from core.experiments import EvalData, RunContext, Subject, eval_tensors, experiment
from core.metrics import LIGSSpec, ligs, run_attack

TABLE_ATTACKS = ("pgd_l2", "pgd_linf", "cw_l2", "fgsm")  # Table 1 and Table A6, at the paper's settings
# The eps grid of the accuracy-vs-eps curves, per threat model (linf in the paper's x/255 units).
SWEEP_EPS = {"l2": (0.0, 0.125, 0.25, 0.5, 1.0), "linf": tuple(k / 255 for k in (0, 0.5, 1, 2, 4, 8))}
HEADLINE_METRICS = {"test_accuracy": "clean acc", "robust_accuracy": "l2-PGD acc (probe)", "ligs": "LIGS (probe)"}


@dataclass(frozen=True)
class RobustnessConfig:
    attack: AttackSpec
    data: EvalData = EvalData()


@dataclass(frozen=True)
class LIGSConfig:
    ligs: LIGSSpec = LIGSSpec()
    data: EvalData = EvalData()


@experiment("robustness", RobustnessConfig, "clean and robust accuracy under one white-box attack (Table 1, A6)")
def robustness(checkpoint: Checkpoint, config: RobustnessConfig, run: RunContext) -> dict:
    x, y = eval_tensors(config.data, checkpoint.spec.num_classes)
    model = checkpoint.model.to(run.torch_device)
    result = run_attack(model, x, y, config.attack, checkpoint.spec.num_classes, progress=run.progress)
    return {**result.to_dict(), "robust_correct": result.robust_correct.tolist()}


@experiment("ligs", LIGSConfig, "LIGS: similarity of input gradients under a small perturbation (Sec. 4)")
def ligs_report(checkpoint: Checkpoint, config: LIGSConfig, run: RunContext) -> dict:
    x, y = eval_tensors(config.data, checkpoint.spec.num_classes)
    result = ligs(checkpoint.model.to(run.torch_device), x, y, config.ligs, progress=run.progress)
    per_class = [result.per_sample[y == c].mean().item() for c in range(checkpoint.spec.num_classes)]
    return {**result.to_dict(), "per_sample": result.per_sample.tolist(), "labels": y.tolist(),
            "per_class": per_class}


def robustness_sweep(subject: Subject, attack: AttackSpec, eps: list[float], data: EvalData = EvalData(),
                     run: RunContext = RunContext()) -> list[dict] | Missing:
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
    return {"checkpoint": first["checkpoint"]["name"], "dataset": first["dataset"], "n": first["n"],
            "clean_accuracy": first["clean_accuracy"], **{k: r["robust_accuracy"] for k, r in results.items()},
            "ligs": lg["ligs"]}


def headline_pairs(entries: list[CatalogEntry]) -> list[CatalogEntry]:
    """The zoo's standard-trained BN and norm-free models of the architectures that have both, so that both
    means cover the same architectures (uploads, trained runs and adversarially trained models would skew them)."""
    kept = [e for e in entries if e.source == "zoo" and not e.adversarial and e.norm in ("bn", "none")]
    paired = {e.arch for e in kept if e.norm == "bn"} & {e.arch for e in kept if e.norm == "none"}
    return [e for e in kept if e.arch in paired]


def mean_metric(entries: list[CatalogEntry], norm: str, metric: str) -> float | None:
    values = [e.final_metrics[metric] for e in entries if e.norm == norm and e.final_metrics.get(metric) is not None]
    return sum(values) / len(values) if values else None


def headline(entries: list[CatalogEntry]) -> dict | None:
    """BN vs no normalization: each probe metric's mean over :func:`headline_pairs` (None without a pair).

    Returns ``{"archs": [...], "metrics": {label: {"bn": mean, "none": mean}}}``; the probes are each
    checkpoint's last-epoch ones (l2-PGD eps 0.25, 10 steps; LIGS Gaussian 0.01).
    """
    pairs = headline_pairs(entries)
    if not pairs:
        return None
    metrics = {label: {norm: mean_metric(pairs, norm, key) for norm in ("bn", "none")}
               for key, label in HEADLINE_METRICS.items()}
    return {"archs": sorted({e.arch for e in pairs}), "metrics": metrics}
