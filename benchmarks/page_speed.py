"""What a visitor waits for, per page, beside a bare Streamlit page measured in the same run (issue #30).

    python benchmarks/page_speed.py [--rounds 2] [--json]        # needs Debian's chromium and playwright
    python benchmarks/page_speed.py --phases                       # the server's script time by phase only

Two servers, started fresh (``streamlit run``, headless, a new result cache): NormScope's ``app.py`` and a bare
two-page app (a title, one Plotly bar chart of 30 models, a 30-row table, a sidebar selectbox: the floor any
Streamlit page pays). Headless Chromium then times, on each:

* the fresh server's first visitor and a second visitor (new browser contexts) on the root page;
* sidebar clicks through every page in one session, ``--rounds`` times (the first round is a page's first visit in
  that server process).

A page counts as there when its script run has finished and every visible Plotly chart on it is drawn. Every figure is
also a ratio to the bare page's same figure (the targets of issue #30 are ratios: this machine kind varies ~6x).

``--phases``: each page's server script time in AppTest under cProfile, split by where the time is spent (own time
of the functions, grouped by package: imports, Streamlit (widgets and serialization), Plotly (figures), pandas,
the result cache (diskcache, JSON), torch, NormScope's own code), against the bare page's.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from load import BARE_APP, BARE_PAGES, free_port, start_server, wait_healthy  # noqa: E402  (benchmarks/ is on sys.path)
from ui import navigation  # noqa: E402

DRAWN = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (!document.querySelector('[data-testid="stSidebarNavLink"]') || !document.querySelector('[data-testid="stMain"] h1'))
    return false;  // before the first run starts, the app reads "notRunning" too
  const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].filter(c => c.checkVisibility());
  return charts.every(c => c.querySelector('.main-svg'));  // a chart in a closed tab or expander draws when opened
}"""
TITLE = """() => { const h = document.querySelector('[data-testid="stMain"] h1'); return h ? h.innerText : null; }"""
TIMEOUT_MS = 300_000


@contextmanager
def server(script: Path, cache: Path):
    """A fresh headless server of ``script``; yields its base URL."""
    port = free_port()
    process = start_server(port, cache, script, script.parent)
    try:
        wait_healthy(port)  # a server that never answers stops the benchmark, not a silent timing of nothing
        yield f"http://localhost:{port}"
    finally:
        process.kill()
        process.wait()


def visit(browser, url: str) -> float:
    """Seconds from opening ``url`` in a new browser context until the page is there."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        tab = context.new_page()
        start = time.perf_counter()
        tab.goto(url, wait_until="commit")
        tab.wait_for_function(DRAWN, timeout=TIMEOUT_MS)
        return time.perf_counter() - start
    finally:
        context.close()


def clicks(browser, url: str, titles: list[str], rounds: int) -> list[list[float]]:
    """Per round, the seconds of each sidebar click (to the page's title link) until that page is there."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    tab.goto(url, wait_until="commit")
    tab.wait_for_function(DRAWN, timeout=TIMEOUT_MS)
    links, found = tab.get_by_test_id("stSidebarNavLink"), []
    for _ in range(rounds):
        times = []
        for title in [*titles[1:], titles[0]]:  # the first page is open: it comes last in a round
            before = tab.evaluate(TITLE)  # the old page stays drawn, "notRunning", until the new run replaces it
            start = time.perf_counter()
            links.filter(has_text=title).first.click()
            tab.wait_for_function(f"""() => {{
                if (({TITLE})() === {json.dumps(before)}) return false;
                const current = document.querySelector('[data-testid="stSidebarNavLink"][aria-current="page"]');
                const name = current && current.querySelector('[data-testid="stMarkdownContainer"]');
                return name && name.innerText.trim() === {json.dumps(title)} && ({DRAWN})(); }}""",
                                  timeout=TIMEOUT_MS)
            times.append(time.perf_counter() - start)
        found.append(times)
    context.close()
    return found


def browse(browser, script: Path, titles: list[str], rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as cache, server(script, Path(cache)) as url:
        first, second = visit(browser, url), visit(browser, url)
        per_round = clicks(browser, url, titles, rounds)
    return {"first_visitor": first, "second_visitor": second,
            "clicks": [dict(zip([*titles[1:], titles[0]], r)) for r in per_round]}


def browser_figures(rounds: int, app: Path) -> dict:
    from playwright import sync_api

    with tempfile.TemporaryDirectory() as folder, sync_api.sync_playwright() as p:
        bare = Path(folder) / "bare_app.py"
        bare.write_text(BARE_APP)
        chromium = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        measured = {"bare": browse(chromium, bare, list(BARE_PAGES), rounds),
                    "normscope": browse(chromium, app, [p.title for p in navigation.PAGES], rounds)}
        chromium.close()
    return measured


# -- the server's script time, by phase --------------------------------------------------------------------------

PHASES = (("imports", ("<frozen importlib", "importlib/")), ("plotly (figures)", ("/plotly/", "/_plotly_utils/")),
          ("pandas", ("/pandas/",)), ("result cache (diskcache, json)", ("/diskcache/", "/json/", "core/cache.py")),
          ("torch", ("/torch/", "/safetensors/")), ("streamlit (widgets, serialization)",
                                                      ("/streamlit/", "/google/protobuf/", "/pyarrow/")))
OWN = "NormScope (core, ui, views)"  # the measured checkout's own files


def phase_of(filename: str, root: Path) -> str:
    if any(filename.startswith(str(root / part)) for part in ("core", "ui", "views", "app.py")):
        return OWN
    return next((name for name, marks in PHASES if any(m in filename for m in marks)), "other")


def by_phase(profiles: list[cProfile.Profile], root: Path) -> dict[str, float]:
    """Own time of every function, summed by :data:`PHASES` (and :data:`OWN`: files under ``root``)."""
    totals: dict[str, float] = {}
    for profile in profiles:
        for (filename, _, _), (_, _, own, _, _) in pstats.Stats(profile).stats.items():
            phase = phase_of(filename, root)
            totals[phase] = totals.get(phase, 0.0) + own
    return totals


@contextmanager
def profiling_new_threads():
    """cProfile in every thread started meanwhile (AppTest runs the script in a thread of its own); yields the list
    their profiles land in."""
    profiles: list[cProfile.Profile] = []

    def start(frame, event, arg) -> None:  # the new thread's first profile event hands over to cProfile
        sys.setprofile(None)
        profiles.append(profile := cProfile.Profile())
        profile.enable()

    threading.setprofile(start)
    try:
        yield profiles
    finally:
        threading.setprofile(None)


def profiled_run(script: Path, page_file: str | None, dataset: str | None) -> tuple[float, dict[str, float]]:
    """A new AppTest session's run of ``page_file`` (after the default page), timed and profiled."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(script), default_timeout=600)
    if dataset:
        at.session_state["dataset"] = dataset
    if page_file:
        at.run()
        at.switch_page(page_file)
    with profiling_new_threads() as profiles:
        start = time.perf_counter()
        at.run()
        seconds = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"{page_file}: {at.exception[0].value}")
    return seconds, by_phase(profiles, script.parent)


def phase_figures(dataset: str | None, app: Path) -> dict:
    """Each page's second-session script time and its phases, beside the bare page's."""
    with tempfile.TemporaryDirectory() as folder:
        os.environ["NORMSCOPE_CACHE"] = str(Path(folder) / "cache")
        bare = Path(folder) / "bare_app.py"
        bare.write_text(BARE_APP)
        rows = {"bare": (profiled_run(bare, None, None)[0], *profiled_run(bare, None, None))}
        for page in navigation.PAGES:
            file = None if page.default else page.file
            rows[page.url_path] = (profiled_run(app, file, dataset)[0], *profiled_run(app, file, dataset))
    return {name: {"first": first, "seconds": s, "phases": phases} for name, (first, s, phases) in rows.items()}


def print_phases(rows: dict) -> None:
    names = [name for name, _ in PHASES] + [OWN, "other"]
    bare = rows["bare"]["seconds"]
    print(f"{'page':12s} {'first s':>8s} {'second s':>8s} {'x bare':>7s}  " + "  ".join(f"{n[:14]:>14s}" for n in names))
    for page, row in rows.items():
        print(f"{page:12s} {row['first']:8.3f} {row['seconds']:8.3f} {row['seconds'] / bare:7.1f}  "
              + "  ".join(f"{row['phases'].get(n, 0.0):14.3f}" for n in names))


def print_browser(measured: dict) -> None:
    bare, ours = measured["bare"], measured["normscope"]
    bare_clicks = [t for r in bare["clicks"] for t in r.values()]
    floor = statistics.median(bare_clicks)
    for key in ("first_visitor", "second_visitor"):
        print(f"{key.replace('_', ' ')}: {ours[key]:.2f} s, bare {bare[key]:.2f} s: {ours[key] / bare[key]:.1f}x")
    for i, times in enumerate(ours["clicks"]):
        values = list(times.values())
        print(f"clicks, round {i + 1}: median {statistics.median(values):.2f} s ({statistics.median(values) / floor:.1f}x"
              f" the bare click's {floor:.2f} s), worst {max(values):.2f} s ({max(values) / floor:.1f}x, "
              f"{max(times, key=times.get)})")
        print("   " + ", ".join(f"{page} {t:.2f}" for page, t in times.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--phases", action="store_true", help="only the server's script time by phase (AppTest)")
    parser.add_argument("--dataset", default=None, help="the data source the pages use (default: the app's own)")
    parser.add_argument("--app", default=str(ROOT / "app.py"), help="the app measured in the browser (another "
                        "checkout's app.py measures its code: a before/after pair in one run)")
    parser.add_argument("--browser-only", action="store_true", help="skip the phases")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    measured = {} if args.browser_only else {"phases": phase_figures(args.dataset, Path(args.app))}
    if not args.phases:
        measured["browser"] = browser_figures(args.rounds, Path(args.app))
    if args.json:
        print(json.dumps(measured, indent=1))
        return 0
    if "phases" in measured:
        print_phases(measured["phases"])
    if "browser" in measured:
        print_browser(measured["browser"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
