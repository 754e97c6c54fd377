"""Fill the result cache for the dashboard's demo mode: the paper's default attacks, LIGS and galleries.

    python scripts/precompute.py                       # every zoo checkpoint, 100 images per class
    python scripts/precompute.py --only builtin --per-class 10

Uses exactly the core calls and default settings the pages use (paper specs, EvalData of each
model's dataset), so a page in demo mode finds every result by the same cache key.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.attacks import paper_spec  # noqa: E402
from core.cache import ResultCache  # noqa: E402
from core.catalog import CatalogEntry, list_checkpoints  # noqa: E402
from core.checkpoints import load_checkpoint  # noqa: E402
from core.experiments import DEFAULT_PER_CLASS, EvalData, RunContext  # noqa: E402
from core.gallery import DEFAULT_ATTACK, GalleryConfig, gallery_report  # noqa: E402
from core.progress import ConsoleProgress  # noqa: E402
from core.robustness import SWEEP_EPS, TABLE_ATTACKS, paper_table_row, robustness_sweep  # noqa: E402


def precompute(entry: CatalogEntry, per_class: int, cache: ResultCache) -> None:
    """The pages' default views: Table 1 + A6 and LIGS, the l2 sweep, and the gallery."""
    checkpoint, data = load_checkpoint(entry.path), EvalData(entry.dataset, per_class=per_class)
    run = RunContext(cache, progress=ConsoleProgress())
    row = paper_table_row(checkpoint, data, run)
    print(f"  clean {row['clean_accuracy']:.3f}; robust " + ", ".join(f"{a} {row[a]:.3f}" for a in TABLE_ATTACKS)
          + f"; LIGS {row['ligs']:.3f} (n={row['n']})")
    curve = robustness_sweep(checkpoint, paper_spec("pgd_l2"), list(SWEEP_EPS["l2"]), data, run)
    print("  l2 sweep  " + ", ".join(f"{p['eps']:g}: {p['robust_accuracy']:.2f}" for p in curve))
    gallery_report(checkpoint, GalleryConfig(paper_spec(DEFAULT_ATTACK)), run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-class", type=int, default=DEFAULT_PER_CLASS,
                        help="test images per class (default as the pages: NORMSCOPE_PER_CLASS or 100)")
    parser.add_argument("--only", default="", help="only checkpoints whose name contains this text")
    parser.add_argument("--cache", default=None, help="cache directory (default: NORMSCOPE_CACHE or ~/.cache/normscope)")
    parser.add_argument("--export", default=None, help="then write these checkpoints' cached results to this JSON "
                        "file, e.g. checkpoints/results.json (what the app seeds its cache with)")
    args = parser.parse_args(argv)
    cache = ResultCache(args.cache)
    entries = [e for e in list_checkpoints(args.cache) if e.source == "zoo" and args.only in e.name]
    for entry in entries:
        start = time.perf_counter()
        print(f"{entry.name} ({entry.dataset}):")
        precompute(entry, args.per_class, cache)
        print(f"  done in {time.perf_counter() - start:.1f} s")
    print(f"{len(entries)} checkpoints; cache {cache.volume() / 2**20:.1f} MiB at {cache.directory}")
    if args.export:
        shas = {e.sha256 for e in entries}  # the sidecar's hash, which loading verifies against the weights
        print(f"exported {cache.export(args.export, checkpoints=shas)} results to {args.export}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
