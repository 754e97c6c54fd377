"""Render time of every dashboard page, first visit vs second visit, measured with AppTest.

    NORMSCOPE_CACHE=... python benchmarks/app_render.py [--dataset builtin] [--repeat 3]

"first": a new session's first render of the page in this process (checkpoints loaded, results read
from the diskcache); "second": another new session visiting it again (shared st.cache_resource models,
cached results), which is what a second visitor or a revisit sees; "rerun": the same session rerunning.
Pages never compute on render (missing results wait for a button), so these are render costs only.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ui import navigation  # noqa: E402

PAGES = [p.url_path for p in navigation.PAGES]


def session(dataset: str, page: str) -> tuple[AppTest, float]:
    """A new session on ``page``; returns it and the seconds the page's own run took."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.session_state["dataset"] = dataset
    start = time.perf_counter()
    at.run()
    if page != "overview":
        at.switch_page(navigation.page_def(page).file)
        start = time.perf_counter()
        at.run()
    seconds = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"{page}: {at.exception[0].value}")
    return at, seconds


def measure(dataset: str, page: str, repeat: int) -> dict:
    at, first = session(dataset, page)
    seconds = [session(dataset, page)[1] for _ in range(repeat)]
    reruns = []
    for _ in range(repeat):
        start = time.perf_counter()
        at.run()
        reruns.append(time.perf_counter() - start)
    return {"page": page, "first": first, "second": statistics.median(seconds), "rerun": statistics.median(reruns),
            "notices": sum("not in the cache" in i.value or "not precomputed" in i.value for i in [*at.info, *at.warning])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="builtin")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    session(args.dataset, "overview")  # import torch, plotly and the pages' modules once, outside the timings
    rows = [measure(args.dataset, p, args.repeat) for p in PAGES]
    print(f"{'page':12s} {'first (s)':>10s} {'second (s)':>11s} {'rerun (s)':>10s}  not-cached notices")
    for r in rows:
        print(f"{r['page']:12s} {r['first']:10.3f} {r['second']:11.3f} {r['rerun']:10.3f}  {r['notices']}")
    slow = [r["page"] for r in rows if r["second"] >= 1.0]
    print("second visit under 1 s on every page" if not slow else f"second visit >= 1 s: {', '.join(slow)}")
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
