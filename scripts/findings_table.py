"""The findings scoreboard of the shipped zoo (core.findings): RESULTS.md's verdict table, generated, and the
interval estimates behind it shipped in checkpoints/findings-estimates.json, so that a fresh server shows the scoreboard
without resampling.

    .venv/bin/python scripts/findings_table.py            # rewrite RESULTS.md's table, ship the estimates
    .venv/bin/python scripts/findings_table.py --check    # exit 1 where RESULTS.md differs from the scoreboard

Run it after refilling checkpoints/results.json.xz.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.cache import ResultCache  # noqa: E402
from core.catalog import ESTIMATES_SEED, list_checkpoints, shipped_seeds, zoo_dir, zoo_results  # noqa: E402
from core.findings import ESTIMATE_PREFIX, markdown_table, scoreboard  # noqa: E402
from core.io import atomic_write  # noqa: E402

RESULTS = ROOT / "RESULTS.md"
START, END = "<!-- findings table: scripts/findings_table.py writes it -->", "<!-- end of findings table -->"


def shipped_board(folder: Path, estimates: bool = True) -> tuple[list[dict], ResultCache]:
    """The scoreboard from the shipped results alone, in a cache of its own (no user's uploads or results);
    ``estimates=False``: without the shipped estimates, so that every interval is made anew (and only those the
    board uses are shipped)."""
    cache = ResultCache(folder)
    for shipped in shipped_seeds() if estimates else [zoo_results()]:
        cache.seed(shipped)
    return scoreboard(cache, entries=list_checkpoints(folder)), cache


def with_table(text: str, table: str) -> str:
    head, rest = text.split(START, 1)
    return f"{head}{START}\n{table}\n{END}{rest.split(END, 1)[1]}"


def ship_estimates(cache: ResultCache) -> int:
    """Write the estimates this board used (the cache holds the shipped results and these only)."""
    return cache.export(zoo_dir() / ESTIMATES_SEED, (ESTIMATE_PREFIX,))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on a difference")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        board, cache = shipped_board(Path(folder), estimates=args.check)
        text = RESULTS.read_text()
        updated = with_table(text, markdown_table(board))
        if args.check:
            print("RESULTS.md agrees with the scoreboard" if updated == text else "RESULTS.md differs: run this script")
            return int(updated != text)
        atomic_write(RESULTS, updated.encode())
        print(f"RESULTS.md's findings table written; {ship_estimates(cache)} estimates shipped in {ESTIMATES_SEED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
