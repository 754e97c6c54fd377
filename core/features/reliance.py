"""Reliance on robust vs non-robust features, on images whose two kinds of features disagree."""
from __future__ import annotations

from dataclasses import dataclass

from core.checkpoints import Checkpoint
from core.experiments import EvalData, RunContext, eval_tensors, experiment
from core.metrics import conflict_reliance

@dataclass(frozen=True)
class RelianceConfig:
    """Images whose robust and non-robust features disagree: the built-in data's ``conflict`` split, or a
    D_det / D_conflict dataset's held-out part (``auto``: the model's own dataset)."""

    data: EvalData = EvalData(dataset="builtin", split="conflict", per_class=200)


@experiment("conflict_reliance", RelianceConfig, "on images whose robust and non-robust features disagree, "
            "the share labelled by each (reliance on robust vs non-robust features)")
def conflict_reliance_report(checkpoint: Checkpoint, config: RelianceConfig, run: RunContext) -> dict:
    x, y = eval_tensors(config.data, checkpoint.spec.num_classes)
    return conflict_reliance(run.model(checkpoint), x, y, checkpoint.spec.num_classes)
