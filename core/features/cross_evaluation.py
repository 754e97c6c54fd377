"""Tables A3 / A4: models of each normalization trained on the feature datasets of each other one, beside the
paper's printed tables."""
from __future__ import annotations

from dataclasses import dataclass

from core.cache import MISSING
from core.experiments import Evaluation, RunContext, Subject
from core.features.config import feature_config
from core.features.training import FeatureTrainingConfig, feature_train_config, feature_training
from core.zoo import FEATURE_ARCH, FEATURE_SOURCES

PAPER_NORMS = ("none", "bn", "in", "ln", "gn")
# Tables A3 / A4 (VGG16) as printed, a row per norm. The printed header does not say which axis is the source;
# the text does: "features extracted from the model w/o normalization transfer better ... especially IN" holds
# only with the columns as sources (the None column is the highest of every row, the IN column the lowest),
# so each printed row is a target, and PAPER_TABLES is the transpose: source -> accuracy on each target.
_PRINTED = {
    "standard": [[None, 45.6, 29.6, 52.1, 45.9], [75.3, None, 35.8, 58.9, 54.3], [66.1, 50.4, None, 53.0, 61.9],
                 [79.4, 59.4, 37.9, None, 63.4], [73.3, 54.4, 43.1, 61.3, None]],
    "robust": [[None, 85.0, 59.8, 75.8, 65.9], [81.3, None, 58.1, 73.7, 62.5], [75.8, 78.8, None, 69.4, 62.9],
               [82.9, 84.5, 60.0, None, 64.8], [80.7, 83.7, 63.8, 73.7, None]],
}
PAPER_TABLES = {table: {source: [rows[t][s] for t in range(len(PAPER_NORMS))] for s, source in enumerate(PAPER_NORMS)}
                for table, rows in _PRINTED.items()}


@dataclass
class CrossEvaluation:
    """Accuracy (%) on the real test set of each target normalization (columns) trained on each source's
    dataset (rows); None on the diagonal and where a cell is not computed yet."""

    sources: list[str]  # row labels (the source models)
    source_norms: list[str]
    targets: list[str]  # target normalizations
    accuracy: list[list[float | None]]
    missing: list[tuple[int, int]]

    def to_dict(self) -> dict:
        return {"sources": self.sources, "source_norms": self.source_norms, "targets": self.targets,
                "accuracy": self.accuracy, "missing": [list(c) for c in self.missing]}


def cross_evaluation_requests(sources: list[Subject], source_norms: list[str], kind: str, arch: str,
                              targets: tuple[str, ...] = PAPER_NORMS, preset: str = "cpu",
                              ) -> dict[tuple[int, int], Evaluation]:
    """The off-diagonal cells, as plain-data evaluations (what a page gathers and a job computes)."""
    features = feature_config(kind, preset)
    return {(i, j): Evaluation.of(source, feature_training, FeatureTrainingConfig(
        features, feature_train_config(kind, arch, target, preset)))
            for i, source in enumerate(sources) for j, target in enumerate(targets) if target != source_norms[i]}


def cross_evaluation(sources: list[Subject], source_norms: list[str], kind: str, arch: str,
                     targets: tuple[str, ...] = PAPER_NORMS, preset: str = "cpu",
                     run: RunContext = RunContext()) -> CrossEvaluation:
    """Tables A3 / A4: every off-diagonal cell, computed (or, ``cached_only``, looked up)."""
    requests = cross_evaluation_requests(sources, source_norms, kind, arch, targets, preset)
    results = {cell: e.run(run.part(i, len(requests))) for i, (cell, e) in enumerate(requests.items())}
    return cross_table(sources, source_norms, targets, requests, results)


def cross_table(sources: list[Subject], source_norms: list[str], targets: tuple[str, ...],
                requests: dict[tuple[int, int], Evaluation], results: dict) -> CrossEvaluation:
    """The table of the cells' results (a page's gathered ones, or :func:`cross_evaluation`'s); a requested
    cell without a result is missing."""
    found = {cell: r for cell, r in results.items() if r is not MISSING}
    grid = [[100 * found[(i, j)].test_accuracy if (i, j) in found else None for j in range(len(targets))]
            for i in range(len(sources))]
    return CrossEvaluation([s.name for s in sources], list(source_norms), list(targets), grid,
                           [cell for cell in requests if cell not in found])


def zoo_cross_requests(entries: dict[str, Subject], table: str, preset: str = "cpu",
                       targets: tuple[str, ...] = PAPER_NORMS
                       ) -> tuple[list[Subject], list[str], dict[tuple[int, int], Evaluation]]:
    """Table A3 (``standard``) or A4 (``robust``) over the zoo's VGG11 of each normalization that is present."""
    found = {norm: entries[name] for norm, name in FEATURE_SOURCES[table].items() if name in entries}
    sources, norms = list(found.values()), list(found)
    return sources, norms, cross_evaluation_requests(sources, norms, table_kind(table), FEATURE_ARCH, targets, preset)


def table_kind(table: str) -> str:
    """The dataset kind of a cross-evaluation table: Eq. A2 from robust sources is D_R, from standard ones D_NR."""
    return "D_R" if table == "robust" else "D_NR"
