"""Reliance on robust vs non-robust features, on images whose two kinds of features disagree."""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from core.catalog import zoo_dir
from core.checkpoints import Checkpoint
from core.experiments import EvalData, RunContext, eval_tensors, experiment
from core.metrics import ConflictReliance, conflict_reliance

SPREAD_FILE = "builtin-margin.jsonl"  # in the zoo's folder; written by scripts/conflict_margin.py


@dataclass(frozen=True)
class RelianceConfig:
    """Images whose robust and non-robust features disagree: the built-in data's ``conflict`` split, or a
    D_det / D_conflict dataset's held-out part (``auto``: the model's own dataset)."""

    data: EvalData = EvalData(dataset="builtin", split="conflict", per_class=200)


@experiment("conflict_reliance", RelianceConfig, "on images whose robust and non-robust features disagree, "
            "the share labelled by each (reliance on robust vs non-robust features)")
def conflict_reliance_report(checkpoint: Checkpoint, config: RelianceConfig, run: RunContext) -> ConflictReliance:
    x, y = eval_tensors(config.data, checkpoint.spec.num_classes)
    return conflict_reliance(run.model(checkpoint), x, y, checkpoint.spec.num_classes)


@dataclass(frozen=True)
class SeedSpread:
    """The built-in demo over training seeds and CPU kernel paths: per run, the share of the conflict split that
    the ``tiny`` preset's BN and norm-free VGG11s label by the non-robust cue (``scripts/conflict_margin.py``)."""

    runs: list[dict]  # {"seed", "kernels", "bn", "none", "margin"}

    @property
    def margins(self) -> list[float]:
        return [r["margin"] for r in self.runs]

    def summary(self) -> str:
        """One line, as README and the page state it."""
        kernels = sorted({r["kernels"] for r in self.runs})
        return (f"BN - none margin on the non-robust cue: median {100 * statistics.median(self.margins):.1f} points, "
                f"smallest {100 * min(self.margins):.1f} ({len(self.runs)} runs: "
                f"{len({r['seed'] for r in self.runs})} seeds x {len(kernels)} kernel paths)")


def seed_spread(folder: Path | None = None) -> SeedSpread | None:
    """The shipped spread measurement, or None where none ships (a zoo without it)."""
    path = (folder or zoo_dir()) / SPREAD_FILE
    if not path.is_file():
        return None
    return SeedSpread([json.loads(line) for line in path.read_text().splitlines() if line.strip()])
