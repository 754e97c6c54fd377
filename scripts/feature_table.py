"""The zoo's feature-dataset results as Markdown, read from the result cache (no computing): RESULTS.md's tables.

    python scripts/feature_table.py            # after scripts/build_features.py (or with the shipped results)
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.cache import MISSING, ResultCache  # noqa: E402
from core.catalog import list_checkpoints, zoo_results  # noqa: E402
from core.experiments import RunContext  # noqa: E402
from core.features import (FEATURE_ARCH, PAPER_NORMS, PAPER_TABLES, cross_evaluation, feature_config,  # noqa: E402
                           feature_dataset, table_kind, trend_requests, zoo_cross_requests)


def cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def matrix_markdown(table: str, entries: dict, run: RunContext) -> str:
    sources, norms, _ = zoo_cross_requests(entries, table)
    kind = table_kind(table)
    m = cross_evaluation(sources, norms, kind, FEATURE_ARCH, run=run)
    head = "| source \\ target | " + " | ".join(PAPER_NORMS) + " | mean |\n|---|" + "---|" * (len(PAPER_NORMS) + 1)
    rows = []
    for norm, row in zip(norms, m.accuracy):
        values = [v for v in row if v is not None]
        paper = PAPER_TABLES[table][norm]
        known = [p for p in paper if p is not None]
        rows.append(f"| {norm} | " + " | ".join(f"{cell(v)} ({cell(p)})" for v, p in zip(row, paper))
                    + f" | {cell(sum(values) / len(values) if values else None)} ({cell(sum(known) / len(known))}) |")
    sets = [feature_dataset(s, feature_config(kind, "cpu"), run) for s in sources]
    sanity = ", ".join(f"{n} {r.sanity['relative_distance_mean']:.3f}" for n, r in zip(norms, sets)
                       if r is not MISSING)
    return f"{head}\n" + "\n".join(rows) + f"\n\nEq. A2 relative feature distance at the end (mean): {sanity}\n"


def trends_markdown(entries: dict, run: RunContext) -> str:
    lines = ["| dataset | source | epochs | test acc | PGD-l2 acc | LIGS | conflict: y / y+1 (last) |",
             "|---|---|---|---|---|---|---|"]
    for kind, request in trend_requests(entries).items():
        r = request.run(run)
        if r is MISSING:
            lines.append(f"| {kind} | {request.name} | not computed | | | | |")
            continue
        last = [h for h in r.history if "ligs" in h][-1]
        conflict = (f"{last['conflict_robust']:.2f} / {last['conflict_non_robust']:.2f}"
                    if "conflict_robust" in last else "")
        lines.append(f"| {kind} | {request.name} | {len(r.history)} | {100 * r.test_accuracy:.1f} | "
                     f"{100 * last['robust_accuracy']:.1f} | {last['ligs']:.3f} | {conflict} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    cache = ResultCache()
    cache.seed(zoo_results())
    run = RunContext(cache, cached_only=True)
    entries = {e.name: e for e in list_checkpoints() if e.source == "zoo"}
    for table in ("standard", "robust"):
        print(f"### {table} sources: accuracy % on the real test set (paper's VGG16 value in brackets)\n")
        print(matrix_markdown(table, entries, run))
    print("### training on each kind (VGG11-BN w0.25)\n")
    print(trends_markdown(entries, run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
