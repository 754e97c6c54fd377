"""The zoo's feature-dataset results (Tables A3 / A4, Fig. A4 / 6 / A5 at CPU scale) into the result cache.

    python scripts/build_features.py                      # standard table, trends, robust table (cpu preset)
    python scripts/build_features.py --only standard robust --targets none bn   # a busy machine: two columns
    python scripts/precompute.py --export-only --export checkpoints/results.json.xz   # then ship them

Every cell is the registered ``feature_training`` experiment, so the Non-robust features page finds it under
the same cache key; extraction and training resume after a kill.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.cache import ResultCache  # noqa: E402
from core.catalog import list_checkpoints, zoo_results  # noqa: E402
from core.experiments import RunContext  # noqa: E402
from core.features import (PAPER_NORMS, RelianceConfig, conflict_reliance_report, trend_requests,  # noqa: E402
                           zoo_cross_requests)
from core.progress import ConsoleProgress  # noqa: E402

PARTS = ("reliance", "standard", "trends", "robust")


def run_cells(requests: dict, run: RunContext) -> None:
    for cell, evaluation in requests.items():
        start = time.perf_counter()
        result = evaluation.run(run)
        print(f"  {cell} {evaluation.name} -> {evaluation.config.train.arch}-{evaluation.config.train.norm}: "
              f"{100 * result.test_accuracy:.1f} % ({time.perf_counter() - start:.0f} s)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", choices=PARTS, default=list(PARTS))
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--targets", nargs="+", default=list(PAPER_NORMS),
                        help="the tables' target normalizations (default all five; fewer on a busy machine)")
    parser.add_argument("--cache", default=None)
    args = parser.parse_args(argv)
    cache = ResultCache(args.cache)
    print(f"{cache.seed(zoo_results())} shipped results added to the cache first")
    entries = {e.name: e for e in list_checkpoints(args.cache) if e.source == "zoo"}
    run = RunContext(cache, progress=ConsoleProgress())
    for part in args.only:
        start = time.perf_counter()
        print(f"{part}:", flush=True)
        if part == "reliance":  # the page's offline demo: the built-in models on the built-in conflict split
            for entry in (e for e in entries.values() if e.dataset == "builtin"):
                print(f"  {entry.name}: {conflict_reliance_report(entry, RelianceConfig(), run)}", flush=True)
            continue
        requests = trend_requests(entries, args.preset) if part == "trends" else \
            zoo_cross_requests(entries, part, args.preset, tuple(args.targets))[2]
        run_cells(requests, run)
        print(f"{part} done in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
