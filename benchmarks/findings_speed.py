"""The findings scoreboard's server work from the shipped cache, beside a page the dashboard already had.

    NORMSCOPE_CACHE=$(mktemp -d) .venv/bin/python benchmarks/findings_speed.py [--repeat 5]

Times, in one process on a cache seeded with checkpoints/results.json.xz and findings-estimates.json:
``core.findings.scoreboard`` alone (the first call, then the median of ``--repeat``), and the Overview page (the
scoreboard, its table, nine forest plots, the model tables) and the Robustness page (Table 1) as a second visitor
gets them (AppTest, median of ``--repeat`` new sessions). Reported as seconds and as ratios to the Robustness page.
"""
from __future__ import annotations

import argparse
import statistics
import time

from app_render import session  # puts the repository on sys.path

from core.cache import ResultCache
from core.catalog import list_checkpoints, shipped_seeds
from core.findings import scoreboard


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    cache = ResultCache()
    print(f"{sum(cache.seed(path) for path in shipped_seeds())} shipped entries seeded")
    entries = list_checkpoints()
    first = timed(lambda: scoreboard(cache, entries=entries))
    board = statistics.median(timed(lambda: scoreboard(cache, entries=entries)) for _ in range(args.repeat))
    pages = {}
    for page in ("overview", "robustness"):
        session("cifar10-jpeg", page)  # the first visit loads what a server keeps; the second is what is timed
        pages[page] = statistics.median(session("cifar10-jpeg", page)[1] for _ in range(args.repeat))
    base = pages["robustness"]
    print("| what | seconds | / Robustness page |\n|---|---|---|")
    print(f"| scoreboard, first call in the process | {first:.3f} | {first / base:.2f} |")
    print(f"| scoreboard, again (median) | {board:.3f} | {board / base:.2f} |")
    for page, seconds in pages.items():
        print(f"| {page} page, second visitor (median) | {seconds:.3f} | {seconds / base:.2f} |")


if __name__ == "__main__":
    main()
