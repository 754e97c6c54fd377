"""Cached experiments on checkpoints: the one call each CLI command and UI page makes.

Each result is keyed by the checkpoint's sha256, a frozen config (attack or LIGS spec + data
subset) and the code version, and carries that provenance in the returned dict.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import torch

from core._version import CODE_VERSION
from core.attacks import AttackSpec, paper_spec
from core.cache import ResultCache, config_dict, make_key
from core.checkpoints import Checkpoint, load_checkpoint
from core.data import DataError, balanced_subset, load_dataset, resolve_name, to_float
from core.device import resolve_device
from core.metrics import LIGSSpec, ligs, run_attack
from core.progress import Progress, scaled


# Test images per class that the dashboard and scripts/precompute.py use by default: the paper's trend
# setting, 1000 images (100 per class). NORMSCOPE_PER_CLASS lowers it for a talk on a slow machine; both
# read it here, so demo mode finds the precomputed results under the same cache keys.
DEFAULT_PER_CLASS = int(os.environ.get("NORMSCOPE_PER_CLASS", 100))


@dataclass(frozen=True)
class EvalData:
    """Which images an evaluation uses: a balanced subset (``per_class`` per class) of a split."""

    dataset: str = "auto"
    split: str = "test"
    per_class: int = 100


@dataclass(frozen=True)
class RobustnessConfig:
    attack: AttackSpec
    data: EvalData


@dataclass(frozen=True)
class LIGSConfig:
    ligs: LIGSSpec
    data: EvalData


def data_for(checkpoint: Checkpoint, data: EvalData | None = None) -> EvalData:
    """The checkpoint's own dataset unless another is named; ``auto`` resolved to a concrete name."""
    data = data or EvalData()
    name = data.dataset if data.dataset != "auto" else checkpoint.meta.get("dataset", "auto")
    return replace(data, dataset=resolve_name(name if name != "unknown" else "auto"))


def eval_tensors(data: EvalData, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    dataset = load_dataset(data.dataset)
    if dataset.num_classes != num_classes:
        raise DataError(f"the model has {num_classes} classes but {dataset.name} has {dataset.num_classes}")
    x, y = dataset.split(data.split)
    keep = balanced_subset(y, data.per_class, num_classes)
    return to_float(x[keep]), y[keep]


def provenance(checkpoint: Checkpoint, config) -> dict:
    return {"checkpoint": {"name": checkpoint.name, "sha256": checkpoint.sha256, "arch": checkpoint.spec.arch,
                           "norm": checkpoint.spec.norm, "dataset": checkpoint.dataset},
            "config": config_dict(config), "code_version": CODE_VERSION}


def cached(function: str, checkpoint: Checkpoint, config, compute, cache: ResultCache | None,
           cached_only: bool) -> Any:
    """The cached result, computing it on a miss unless ``cached_only`` (then a miss is None).

    ``cached_only`` serves the dashboard's demo mode: it shows precomputed results and never computes.
    """
    cache = cache if cache is not None else ResultCache()  # an empty cache is falsy (it has a length)
    if cached_only:
        return cache.get(make_key(function, checkpoint.sha256, config))
    return cache.get_or_compute(function, checkpoint.sha256, config, compute)


def robustness(checkpoint: Checkpoint, attack: AttackSpec, data: EvalData | None = None,
               cache: ResultCache | None = None, progress: Progress | None = None, device=None,
               cached_only: bool = False) -> dict | None:
    """Clean and robust accuracy of a checkpoint under one attack (cached; None if ``cached_only`` misses)."""
    config = RobustnessConfig(attack, data_for(checkpoint, data))

    def compute() -> dict:
        model = checkpoint.model.to(resolve_device(device))
        x, y = eval_tensors(config.data, checkpoint.spec.num_classes)
        result = run_attack(model, x, y, attack, checkpoint.spec.num_classes, progress=progress)
        return {**provenance(checkpoint, config), **result.to_dict(), "dataset": config.data.dataset,
                "robust_correct": result.robust_correct.tolist()}

    return cached("robustness", checkpoint, config, compute, cache, cached_only)


def robustness_sweep(checkpoint: Checkpoint, attack: AttackSpec, eps: list[float], data: EvalData | None = None,
                     cache: ResultCache | None = None, progress: Progress | None = None, device=None,
                     cached_only: bool = False) -> list[dict | None]:
    """A robustness-vs-eps curve in one call; every point is cached on its own (None: not cached)."""
    return [robustness(checkpoint, attack.with_eps(e), data, cache, scaled(progress, i / len(eps), (i + 1) / len(eps)),
                       device, cached_only) for i, e in enumerate(eps)]


def ligs_report(checkpoint: Checkpoint, spec: LIGSSpec = LIGSSpec(), data: EvalData | None = None,
                cache: ResultCache | None = None, progress: Progress | None = None, device=None,
                cached_only: bool = False) -> dict | None:
    """LIGS of a checkpoint: mean, per-sample values, per-class means and logit similarity (cached;
    None if ``cached_only`` misses)."""
    config = LIGSConfig(spec, data_for(checkpoint, data))

    def compute() -> dict:
        model = checkpoint.model.to(resolve_device(device))
        x, y = eval_tensors(config.data, checkpoint.spec.num_classes)
        result = ligs(model, x, y, spec, progress=progress)
        per_class = [result.per_sample[y == c].mean().item() for c in range(checkpoint.spec.num_classes)]
        return {**provenance(checkpoint, config), **result.to_dict(), "dataset": config.data.dataset,
                "per_sample": result.per_sample.tolist(), "labels": y.tolist(), "per_class": per_class}

    return cached("ligs", checkpoint, config, compute, cache, cached_only)


TABLE_ATTACKS = ("pgd_l2", "pgd_linf", "cw_l2", "fgsm")  # Table 1 and Table A6, at the paper's settings


def paper_table_row(checkpoint: Checkpoint, data: EvalData | None = None, cache: ResultCache | None = None,
                    progress: Progress | None = None, device=None, cached_only: bool = False) -> dict | None:
    """One row of Table 1 / A6: clean accuracy, robust accuracy per paper attack, and LIGS (None if
    ``cached_only`` and any part is missing)."""
    parts = len(TABLE_ATTACKS) + 1
    results = {name: robustness(checkpoint, paper_spec(name), data, cache, scaled(progress, i / parts, (i + 1) / parts),
                                device, cached_only) for i, name in enumerate(TABLE_ATTACKS)}
    lg = ligs_report(checkpoint, LIGSSpec(), data, cache, scaled(progress, 1 - 1 / parts, 1), device, cached_only)
    if lg is None or any(r is None for r in results.values()):
        return None
    first = results[TABLE_ATTACKS[0]]
    return {"checkpoint": checkpoint.name, "dataset": first["dataset"], "n": first["n"],
            "clean_accuracy": first["clean_accuracy"], **{k: r["robust_accuracy"] for k, r in results.items()},
            "ligs": lg["ligs"]}


@dataclass(frozen=True)
class Evaluation:
    """One cached evaluation of a checkpoint file as plain data: robustness under ``attack`` or LIGS under
    ``ligs``. Lists of them run outside the page that asked for them, as a background job ("evaluate")."""

    checkpoint: str  # path of the checkpoint file
    attack: AttackSpec | None = None
    ligs: LIGSSpec | None = None
    data: EvalData = EvalData()

    def __post_init__(self) -> None:
        if (self.attack is None) == (self.ligs is None):
            raise ValueError("an evaluation measures either an attack or LIGS, exactly one of them")

    def to_dict(self) -> dict:
        return config_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Evaluation":
        def part(kind: type, key: str):
            fields = {k: v for k, v in (d.get(key) or {}).items() if k != "__type__"}
            return kind(**fields) if d.get(key) else None
        return cls(d["checkpoint"], part(AttackSpec, "attack"), part(LIGSSpec, "ligs"),
                   part(EvalData, "data") or EvalData())

    def run(self, checkpoint: Checkpoint, cache: ResultCache | None = None, progress: Progress | None = None,
            device=None, cached_only: bool = False) -> dict | None:
        if self.attack is not None:
            return robustness(checkpoint, self.attack, self.data, cache, progress, device, cached_only)
        return ligs_report(checkpoint, self.ligs, self.data, cache, progress, device, cached_only)


def run_evaluations(evaluations: list[Evaluation], cache: ResultCache | None = None,
                    progress: Progress | None = None, device=None) -> dict:
    """Compute every evaluation not cached yet, loading each checkpoint file once; the results land in the cache."""
    checkpoints: dict[str, Checkpoint] = {}
    for i, evaluation in enumerate(evaluations):
        if evaluation.checkpoint not in checkpoints:
            checkpoints[evaluation.checkpoint] = load_checkpoint(evaluation.checkpoint)
        evaluation.run(checkpoints[evaluation.checkpoint], cache,
                       scaled(progress, i / len(evaluations), (i + 1) / len(evaluations)), device)
    return {"evaluations": len(evaluations), "checkpoints": len(checkpoints)}
