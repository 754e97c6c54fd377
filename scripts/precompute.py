"""Fill the result cache for the dashboard's demo mode: the paper's default attacks, LIGS and galleries.

    python scripts/precompute.py                       # every zoo checkpoint, 100 images per class
    python scripts/precompute.py --only builtin --per-class 10 --no-transfer
    python scripts/precompute.py --only vgg16 --export checkpoints/results.json.xz   # tables for new models, then
                                                                                # the transfer matrices, then export

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
from core.catalog import CatalogEntry, list_checkpoints, snapshots, zoo_results  # noqa: E402
from core.checkpoints import load_checkpoint  # noqa: E402
from core.experiments import DEFAULT_PER_CLASS, EvalData, RunContext, registry  # noqa: E402
from core.gallery import DEFAULT_ATTACK, GalleryConfig, gallery_report  # noqa: E402
from core.progress import ConsoleProgress  # noqa: E402
from core.robustness import SWEEP_EPS, TABLE_ATTACKS, paper_table_row, robustness_sweep  # noqa: E402
from core.transfer import TRANSFER_ATTACKS, transfer_matrix, transferability_over_training  # noqa: E402
from core.zoo import LANDSCAPE_GROUP, TRANSFER_SOURCES, TRANSFER_TARGETS  # noqa: E402
from core.corruptions import corruption_sweep  # noqa: E402
from core.findings import CORRUPTION_FAMILIES  # noqa: E402


def precompute(entry: CatalogEntry, per_class: int, cache: ResultCache, tables_only: bool = False) -> None:
    """The pages' default views: Table 1 + A6 and LIGS, the l2 sweep, and the gallery (``tables_only``: the
    findings scoreboard's results: Table 1 + A6, LIGS and the corruption families it scores)."""
    checkpoint, data = load_checkpoint(entry.path), EvalData(entry.dataset, per_class=per_class)
    run = RunContext(cache, progress=ConsoleProgress())
    row = paper_table_row(checkpoint, data, run)
    print(f"  clean {row['clean_accuracy']:.3f}; robust " + ", ".join(f"{a} {row[a]:.3f}" for a in TABLE_ATTACKS)
          + f"; LIGS {row['ligs']:.3f} (n={row['n']})")
    if tables_only:
        names = tuple(n for family in CORRUPTION_FAMILIES.values() for n in family)
        sweep = corruption_sweep(checkpoint, names, data=data, run=run)
        print(f"  corruptions {', '.join(names)}: mCE {sweep['mean_corruption_error']:.3f}")
        return
    curve = robustness_sweep(checkpoint, paper_spec("pgd_l2"), list(SWEEP_EPS["l2"]), data, run)
    print("  l2 sweep  " + ", ".join(f"{p.eps:g}: {p.robust_accuracy:.2f}" for p in curve))
    gallery_report(checkpoint, GalleryConfig(paper_spec(DEFAULT_ATTACK)), run)


def precompute_transfer(entries: list[CatalogEntry], per_class: int, cache: ResultCache) -> None:
    """The Transferability page's defaults: the zoo's Table A8 matrix for every transfer attack, and the
    over-training curves of the sources with epoch snapshots (I-FGSM)."""
    by_name = {e.name: e for e in entries}
    sources = [by_name[n] for n in TRANSFER_SOURCES if n in by_name]
    targets = [by_name[n] for n in TRANSFER_TARGETS if n in by_name]
    if not (sources and targets):
        return
    run, data = RunContext(cache, progress=ConsoleProgress()), EvalData(sources[0].dataset, per_class=per_class)
    for name in TRANSFER_ATTACKS:
        matrix = transfer_matrix(sources, targets, paper_spec(name), data, run)
        print(f"  {name}: " + ", ".join(f"{s} {100 * matrix.row_average(i):.1f}" for i, s in enumerate(matrix.sources)))
    history = [snap for source in sources for snap in snapshots(source)]
    curve = transferability_over_training(history, targets, paper_spec("ifgsm"), data, run)
    print("  over training: " + ", ".join(f"{s.name} {100 * v:.1f}" for s, v in zip(history, curve) if v is not None))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-class", type=int, default=DEFAULT_PER_CLASS,
                        help="test images per class (default as the pages: NORMSCOPE_PER_CLASS or 100)")
    parser.add_argument("--only", default="", help="only checkpoints whose name contains this text")
    parser.add_argument("--cache", default=None, help="cache directory (default: NORMSCOPE_CACHE or ~/.cache/normscope)")
    parser.add_argument("--export", default=None, help="then write these checkpoints' cached results to this JSON "
                        "file, e.g. checkpoints/results.json.xz (what the app seeds its cache with)")
    parser.add_argument("--no-transfer", action="store_true", help="skip the zoo's transfer matrices")
    parser.add_argument("--tables-only", action="store_true", help="only what the findings scoreboard reads: Table 1 + "
                        "A6, LIGS and its corruption families (the seed replicas' results)")
    parser.add_argument("--export-only", action="store_true", help="compute nothing; with --export, write what the "
                        "cache holds (e.g. after scripts/build_features.py)")
    args = parser.parse_args(argv)
    cache = ResultCache(args.cache)
    print(f"{cache.seed(zoo_results())} shipped results added to the cache first")  # never recompute or lose them
    zoo = [e for e in list_checkpoints(args.cache) if e.source == "zoo"]
    # The App. I runs (300 steps each) ship their training landscape; their tables compute on request (--only).
    chosen = [] if args.export_only else [e for e in zoo if args.only in e.name and
                                          (args.only or e.group != LANDSCAPE_GROUP)]
    for entry in chosen:
        start = time.perf_counter()
        print(f"{entry.name} ({entry.dataset}):")
        precompute(entry, args.per_class, cache, args.tables_only)
        print(f"  done in {time.perf_counter() - start:.1f} s")
    if not (args.no_transfer or args.export_only):
        precompute_transfer(zoo, args.per_class, cache)
    print(f"{len(zoo)} zoo checkpoints; cache {cache.volume() / 2**20:.1f} MiB at {cache.directory}")
    if args.export:
        shas = {e.sha256 for e in zoo} | {s.sha256 for e in zoo for s in snapshots(e)}
        # Transfer examples (4 MB per source and attack) stay out: the shipped matrix needs only its cells.
        shipped = tuple(f"{name}:" for name in registry() if name != "transfer_examples")
        print(f"exported {cache.export(args.export, shipped, checkpoints=shas)} results to {args.export}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
