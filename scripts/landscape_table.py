"""App. I at CPU scale, as markdown: ``python scripts/landscape_table.py [--zoo DIR]``.

For each of the zoo's optimization-landscape comparisons (``core.zoo.LANDSCAPE_COMPARISONS``), two rows per
shipped run: the medians over all its measured training steps and over those of its last epoch
(``core.landscape.landscape_summary`` / ``landscape_phases``) of the loss variation's range, the largest l2
gradient change, that change relative to ||g||, and the beta-smoothness; beside them the run's last training
loss, its probe's clean accuracy, and its training time (the landscape measurement included, and apart).
Everything is read from the checkpoints' recorded histories: no evaluation.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.catalog import CatalogEntry, list_checkpoints, zoo_dir  # noqa: E402
from core.checkpoints import read_sidecar  # noqa: E402
from core.landscape import SUMMARY_MEASURES, landscape_phases, landscape_records, landscape_summary  # noqa: E402
from core.zoo import LANDSCAPE_COMPARISONS  # noqa: E402


def rows(entry: CatalogEntry) -> list[str]:
    """The run's markdown rows, one per phase: its medians, and its training context."""
    shortcut = read_sidecar(Path(entry.path))["model"].get("shortcut", True)
    seconds = sum(h.get("train_seconds", 0) for h in entry.history)
    measuring = sum(h.get("landscape_seconds", 0) for h in entry.history)
    context = [f"{entry.history[-1]['train_loss']:.2f}", f"{100 * entry.final_metrics.get('test_accuracy', 0):.1f}",
               f"{seconds:.0f} ({measuring:.0f})"]
    lines = []
    for i, (phase, records) in enumerate(landscape_phases(landscape_records(list(entry.history))).items()):
        summary = landscape_summary(records)
        cells = [entry.name.removeprefix("cifar10jpeg-landscape-") if i == 0 else "", entry.norm,
                 "on" if shortcut else "off", f"{phase} ({summary['steps']})",
                 *(f"{summary[k]:.3g}" for k in SUMMARY_MEASURES), *(context if i == 0 else [""] * len(context))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def table(title: str, entries: list[CatalogEntry]) -> list[str]:
    header = ["run", "norm", "shortcut", "medians over (steps)", *SUMMARY_MEASURES.values(), "last train loss",
              "clean acc %", "train s (landscape s)"]
    return [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *(line for e in entries for line in rows(e)), ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zoo", type=Path, default=None,
                        help="the zoo folder (default: NORMSCOPE_ZOO, else checkpoints/)")
    args = parser.parse_args()
    zoo = args.zoo or zoo_dir()
    by_name = {e.name: e for e in list_checkpoints(zoo=zoo) if e.source == "zoo"}
    for title, names in LANDSCAPE_COMPARISONS.items():
        present = [by_name[n] for n in names if n in by_name]
        missing = [n for n in names if n not in by_name]
        print("\n".join(table(title, present)) if present else f"**{title}**: not trained yet\n")
        if missing and present:
            print(f"(not trained yet: {', '.join(missing)})\n")


if __name__ == "__main__":
    main()
