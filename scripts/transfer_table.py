"""Table A8 for the reference zoo, as markdown: ``python scripts/transfer_table.py [--cached-only]``.

For each transfer attack (I-, MI-, DI-, TI-FGSM, linf 8/255, 10 steps), the success rate (%) of the examples
of each Table A8 source on each target (* = white-box), the row average over all targets ("Avg", as the paper)
and over the black-box targets only; then the over-training curve of the sources with epoch snapshots.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.attacks import paper_spec  # noqa: E402
from core.cache import ResultCache  # noqa: E402
from core.catalog import list_checkpoints, snapshots  # noqa: E402
from core.experiments import DEFAULT_PER_CLASS, EvalData, RunContext  # noqa: E402
from core.progress import ConsoleProgress  # noqa: E402
from core.transfer import TRANSFER_ATTACKS, TransferMatrix, transfer_matrix, transferability_over_training  # noqa: E402
from core.zoo import TRANSFER_SOURCES, TRANSFER_TARGETS  # noqa: E402


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def markdown(matrix: TransferMatrix, norms: list[str]) -> list[str]:
    short = [t.removeprefix("cifar10jpeg-") for t in matrix.targets]
    lines = ["| attack | source | BN | " + " | ".join(short) + " | Avg | black-box avg |",
             "|---|---|---|" + "---|" * (len(short) + 2)]
    for i, source in enumerate(matrix.sources):
        cells = [pct(matrix.value(i, j)) + ("*" if (i, j) in matrix.white_box else "") for j in range(len(short))]
        lines.append(f"| {matrix.attack.entry.title} | {source.removeprefix('cifar10jpeg-')} | "
                     f"{'Y' if norms[i] == 'bn' else 'N'} | " + " | ".join(cells) +
                     f" | {pct(matrix.row_average(i))} | {pct(matrix.row_average(i, black_box_only=True))} |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-class", type=int, default=DEFAULT_PER_CLASS)
    p.add_argument("--cached-only", action="store_true", help="print only what the cache holds")
    args = p.parse_args()
    zoo = {e.name: e for e in list_checkpoints() if e.source == "zoo"}
    sources = [zoo[n] for n in TRANSFER_SOURCES if n in zoo]
    targets = [zoo[n] for n in TRANSFER_TARGETS if n in zoo]
    run = RunContext(ResultCache(), progress=None if args.cached_only else ConsoleProgress(),
                     cached_only=args.cached_only)
    data = EvalData(sources[0].dataset, per_class=args.per_class)
    lines = []
    for name in TRANSFER_ATTACKS:
        rows = markdown(transfer_matrix(sources, targets, paper_spec(name), data, run), [s.norm for s in sources])
        lines += rows if not lines else rows[2:]
    history = [s for source in sources for s in snapshots(source)]
    curve = transferability_over_training(history, targets, paper_spec("ifgsm"), data, run)
    lines += ["", "| source snapshot | black-box I-FGSM success (%) |", "|---|---|"]
    lines += [f"| {s.name.removeprefix('cifar10jpeg-')} | {pct(v)} |" for s, v in zip(history, curve)]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
