"""Load: N concurrent sessions open every page of a running server while background jobs train.

    python benchmarks/load.py --sessions 10 25 [--jobs 2] [--json]
    python benchmarks/load.py --audience 50 [--jobs 0] [--think 5 15] [--duration 90]   # a room and its speaker

Starts one server (``streamlit run app.py``, a fresh result cache seeded with the zoo's precomputed results, the
data found as the app finds it), warms it with one session, starts ``--jobs`` tiny training jobs in that cache's
job folder, then for each N: N websocket clients at once, each a real Streamlit session speaking the browser's
protocol (BackMsg rerun requests, ForwardMsg replies), open every page in ``ui/navigation.py`` in order. A page
time is from the rerun request to the server's ``script_finished``; a page fails when it reports an exception
element or does not finish. The server's resident memory is sampled every 0.5 s (peak reported). No browser
renders (a browser's drawing is the visitor's CPU, not the server's).

``--audience N``: a talk. N sessions open the link (the Overview) within the first ``--think`` seconds, then each
clicks a random page after a pause drawn from ``--think`` (reading the slide), for ``--duration`` seconds; the
speaker, one more session, clicks through every page in order with a 1 s pause, alone first and then during the
audience. Reported beside a bare Streamlit app's single-session page (``BARE_APP``: a title, one Plotly chart, a
30-row table; the floor any page pays) measured by the same client in the same run, and the speaker's clicks
alone. Issue #30's targets are these ratios.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import websockets  # noqa: E402  (a dependency of Streamlit's server)
from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402

from core import jobs  # noqa: E402
from core.train import preset  # noqa: E402
from ui import navigation  # noqa: E402

PAGE_TIMEOUT = 600.0  # seconds before a page counts as not answering
BARE_APP = '''
import pandas as pd
import plotly.express as px
import streamlit as st

def page(title):
    def draw():
        st.title(title)
        models = pd.DataFrame({"model": [f"model-{i}" for i in range(30)], "accuracy": [0.5 + i / 100 for i in range(30)]})
        st.plotly_chart(px.bar(models, x="model", y="accuracy"), key=f"chart-{title}")
        st.dataframe(models, key=f"table-{title}")
    return st.Page(draw, title=title, url_path=title.lower())

st.sidebar.selectbox("Data source", ["a", "b"], key="source")
st.navigation([page("Overview"), page("Second")]).run()
'''
BARE_PAGES = ("Overview", "Second")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def start_server(port: int, cache: Path, script: Path = ROOT / "app.py", cwd: Path = ROOT) -> subprocess.Popen:
    """A headless server of ``script`` run from ``cwd`` (whose ``.streamlit/config.toml`` it reads)."""
    command = [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true", "--server.port",
               str(port), "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
    return subprocess.Popen(command, cwd=cwd, env={**os.environ, "NORMSCOPE_CACHE": str(cache)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_healthy(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("the server did not answer its health check")


@contextmanager
def running(cache: Path, script: Path = ROOT / "app.py", cwd: Path = ROOT) -> Iterator[tuple[int, subprocess.Popen]]:
    """A server of ``script`` (:func:`start_server`), healthy; yields its port and process, and stops it after."""
    port = free_port()
    server = start_server(port, cache, script, cwd)
    try:
        wait_healthy(port)
        yield port, server
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextmanager
def training(count: int, root: Path) -> Iterator[list[jobs.Job]]:
    """``count`` tiny training jobs (200 epochs: they run throughout) in ``root``'s job folder, cancelled after."""
    started = [jobs.submit_training(preset("tiny", epochs=200, dataset="builtin"), root=root) for _ in range(count)]
    try:
        yield started
    finally:
        for job in started:
            job.cancel()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class MemoryWatch(threading.Thread):
    """The peak resident memory of one process, sampled every half second."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0.0, True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(0.5)


def rerun(page: str) -> bytes:
    msg = BackMsg()
    msg.rerun_script.page_name = page
    msg.rerun_script.query_string = ""
    return msg.SerializeToString()


async def open_page(ws, page: str) -> tuple[float, int]:
    """Seconds until the page's script run finished, and the exception elements it drew."""
    start, exceptions = time.monotonic(), 0
    await ws.send(rerun(page))
    while True:
        msg = ForwardMsg()
        msg.ParseFromString(await asyncio.wait_for(ws.recv(), PAGE_TIMEOUT))
        kind = msg.WhichOneof("type")
        if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            exceptions += msg.delta.new_element.WhichOneof("type") == "exception"
        if kind == "script_finished":
            return time.monotonic() - start, exceptions


async def visit(ws, page: str) -> dict:
    """A page visit as a record: its seconds and whether it drew no exception; a page that does not answer (or a
    closed connection) is a failed visit, not an error of the benchmark."""
    try:
        seconds, exceptions = await open_page(ws, page)
        return {"page": page, "seconds": seconds, "ok": exceptions == 0}
    except (asyncio.TimeoutError, websockets.ConnectionClosed) as e:
        return {"page": page, "seconds": None, "ok": False, "error": type(e).__name__}


async def visitor(port: int, pages: list[str]) -> list[dict]:
    """One session opening every page in order."""
    async with connect(port) as ws:
        return [await visit(ws, page) for page in pages]


async def crowd(port: int, sessions: int, pages: list[str]) -> list[dict]:
    results = await asyncio.gather(*(visitor(port, pages) for _ in range(sessions)))
    return [v for visits in results for v in visits]


def summary(sessions: int, visits: list[dict], peak_mib: float, wall: float, running_jobs: int) -> dict:
    times = [v["seconds"] for v in visits if v["seconds"] is not None]
    return {"sessions": sessions, "page_visits": len(visits), "failed": sum(not v["ok"] for v in visits),
            "median_s": round(statistics.median(times), 2), "worst_s": round(max(times), 2),
            "server_peak_rss_mib": round(peak_mib), "wall_s": round(wall, 1), "jobs_running": running_jobs}


def connect(port: int):
    return websockets.connect(f"ws://localhost:{port}/_stcore/stream", subprotocols=["streamlit"], max_size=None,
                              open_timeout=PAGE_TIMEOUT)


async def clicks(port: int, pages: list[str], pause: float) -> list[float]:
    """One session opening ``pages`` in order, ``pause`` seconds between them: each page's seconds."""
    async with connect(port) as ws:
        times = []
        for page in pages:
            seconds, exceptions = await open_page(ws, page)
            if exceptions:
                raise SystemExit(f"{page} drew an exception")
            times.append(seconds)
            await asyncio.sleep(pause)
        return times


async def listener(port: int, pages: list[str], think: tuple[float, float], until: float, seed: int) -> list[dict]:
    """An audience member: opens the link within ``think`` seconds, then a random page after each pause."""
    rng, visits = random.Random(seed), []
    await asyncio.sleep(rng.uniform(0, think[1]))
    async with connect(port) as ws:
        page = pages[0]
        while time.monotonic() < until:
            visits.append(await visit(ws, page))
            if "error" in visits[-1]:
                return visits
            await asyncio.sleep(rng.uniform(*think))
            page = rng.choice(pages)
    return visits


async def talk(port: int, pages: list[str], audience: int, think: tuple[float, float],
               duration: float) -> tuple[list[float], list[dict]]:
    """The speaker's clicks (every page, in order, twice) while ``audience`` sessions listen."""
    until = time.monotonic() + duration
    room = asyncio.gather(*(listener(port, pages, think, until, seed) for seed in range(audience)))
    await asyncio.sleep(think[1])  # the room has opened the link
    speaker = await clicks(port, pages + pages, 1.0)
    return speaker, [v for visits in await room for v in visits]


def bare_page_seconds(folder: Path, visits: int = 10) -> float:
    """The bare app's median page, one session alone, by the same client (after a warm-up visit of each page)."""
    script = folder / "bare_app.py"
    script.write_text(BARE_APP)
    with running(folder / "bare-cache", script) as (port, _):
        pages = [p.lower() for p in BARE_PAGES]
        times = asyncio.run(clicks(port, pages + pages * (visits // len(pages)), 0.2))[len(pages):]
    return statistics.median(times)


def audience_report(bare: float, alone: list[float], speaker: list[float], visits: list[dict], peak: float,
                    audience: int, jobs_running: int) -> dict:
    times = [v["seconds"] for v in visits if v["seconds"] is not None]
    median = statistics.median(times)
    return {"audience": audience, "page_visits": len(visits), "failed": sum(not v["ok"] for v in visits),
            "bare_page_s": round(bare, 3), "audience_median_s": round(median, 2),
            "audience_worst_s": round(max(times), 2), "audience_median_x_bare": round(median / bare, 1),
            "speaker_alone_median_s": round(statistics.median(alone), 2),
            "speaker_median_s": round(statistics.median(speaker), 2), "speaker_worst_s": round(max(speaker), 2),
            "speaker_x_alone": round(statistics.median(speaker) / statistics.median(alone), 1),
            "speaker_worst_x_alone_worst": round(max(speaker) / max(alone), 1),
            "server_peak_rss_mib": round(peak), "jobs_running": jobs_running}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, nargs="+", default=[10, 25])
    parser.add_argument("--jobs", type=int, default=2, help="tiny training jobs running meanwhile")
    parser.add_argument("--audience", type=int, default=None, help="a talk: this many listeners and a speaker")
    parser.add_argument("--think", type=float, nargs=2, default=[5.0, 15.0], help="a listener's pause, seconds")
    parser.add_argument("--duration", type=float, default=90.0, help="how long the audience listens, seconds")
    parser.add_argument("--app", type=Path, default=ROOT / "app.py", help="with --audience: another checkout's app "
                        "(run from its folder, with its own server config), e.g. the code before a change")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.audience is not None:
        return audience_main(args)
    pages = [p.url_path for p in navigation.PAGES]
    with tempfile.TemporaryDirectory(prefix="normscope-load-") as folder, running(Path(folder)) as (port, server):
        warm = asyncio.run(crowd(port, 1, pages))  # the first visit imports and seeds: not a load figure
        print(f"warm-up (one session, first visits): {sum(v['seconds'] or 0 for v in warm):.1f} s", flush=True)
        with training(args.jobs, Path(folder)) as started:
            time.sleep(5)
            for sessions in args.sessions:
                watch = MemoryWatch(server.pid)
                watch.start()
                t0 = time.monotonic()
                visits = asyncio.run(crowd(port, sessions, pages))
                watch.running = False
                active = sum(j.status["state"] == "running" for j in started)
                row = summary(sessions, visits, watch.peak, time.monotonic() - t0, active)
                print(json.dumps(row) if args.json else row, flush=True)


def audience_main(args) -> None:
    pages = [p.url_path for p in navigation.PAGES]
    with tempfile.TemporaryDirectory(prefix="normscope-load-") as folder:
        bare, cache, app = bare_page_seconds(Path(folder)), Path(folder) / "app", args.app.resolve()
        with running(cache, app, app.parent) as (port, server):
            asyncio.run(clicks(port, pages, 0.0))  # the first visit imports and seeds: not a load figure
            alone = asyncio.run(clicks(port, pages + pages, 1.0))
            with training(args.jobs, cache) as started:
                watch = MemoryWatch(server.pid)
                watch.start()
                speaker, visits = asyncio.run(talk(port, pages, args.audience, tuple(args.think), args.duration))
                watch.running = False
                active = sum(j.status["state"] == "running" for j in started)
        report = audience_report(bare, alone, speaker, visits, watch.peak, args.audience, active)
        print(json.dumps(report) if args.json else report, flush=True)


if __name__ == "__main__":
    main()
