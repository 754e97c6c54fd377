"""Table 1 / A6 for the reference zoo, as markdown: ``python scripts/zoo_table.py [--per-class 100]``.

Computes (or reads from the cache) clean accuracy, PGD-l2 0.25, PGD-linf 1/255, CW-l2 0.25 and
FGSM 4/255 robust accuracy (20 steps, step 2.5*eps/20) and LIGS (Gaussian, std 0.01) for every zoo
model on its own dataset's balanced test subset, then prints each BN-vs-none comparison.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.cache import MISSING, ResultCache  # noqa: E402
from core.catalog import CatalogEntry, entry_from_file, list_checkpoints, zoo_dir  # noqa: E402
from core.experiments import DEFAULT_PER_CLASS, EvalData, RunContext  # noqa: E402
from core.progress import ConsoleProgress  # noqa: E402
from core.robustness import TABLE_ATTACKS, paper_table_row  # noqa: E402

HEADER = "| model | dataset | epochs | clean | PGD-l2 0.25 | PGD-linf 1/255 | CW-l2 0.25 | FGSM 4/255 | LIGS | PGD-l2 / clean |"
HEADER_RULE = "|" + "---|" * (HEADER.count("|") - 1)


def row_markdown(entry: CatalogEntry, row: dict) -> str:
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    cells = [entry.name, row["dataset"], str(len(entry.history)), pct(row["clean_accuracy"]),
             *[pct(row[a]) for a in TABLE_ATTACKS], f"{row['ligs']:.3f}",
             f"{row['pgd_l2'] / row['clean_accuracy']:.2f}"]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-class", type=int, default=DEFAULT_PER_CLASS)
    p.add_argument("--only", default="", help="only zoo models whose name contains this text")
    p.add_argument("--cached-only", action="store_true", help="print only rows already in the cache")
    p.add_argument("--snapshots", nargs="*", default=[], metavar="NAME/epoch_NNN",
                   help="also rows for these epoch snapshots, e.g. cifar10jpeg-resnet18-none/epoch_012")
    args = p.parse_args()
    run = RunContext(ResultCache(), progress=None if args.cached_only else ConsoleProgress(),
                     cached_only=args.cached_only)
    entries = [e for e in list_checkpoints() if e.source == "zoo" and args.only in e.name]
    for snap in args.snapshots:
        entries.append(replace(entry_from_file(zoo_dir() / "snapshots" / f"{snap}.safetensors", "zoo"), name=snap))
    lines = [HEADER, HEADER_RULE]
    for entry in entries:
        row = paper_table_row(entry, EvalData(entry.dataset, "test", args.per_class), run)
        if row is not MISSING:
            lines.append(row_markdown(entry, row))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
