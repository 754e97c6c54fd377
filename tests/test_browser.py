"""Deep links in a real browser: every page's URL works as the very first visit of a fresh server.

Streamlit (1.67) treats a ``pages/`` folder next to app.py as a v1 multipage app until some session has run
``st.navigation``, so a first visit to ``/models`` ran that page's file alone: the folder's file names as
navigation and none of app.py's sidebar (hence ``views/``, see ui/navigation.py). Each page gets its own
fresh server here, and its deep link is that server's first request.

Needs Debian's chromium (``apt-get install -y chromium``) and playwright (requirements-dev.txt); skipped
without them.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ui import navigation

sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (requirements-dev.txt)")
CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip("needs Debian's chromium (apt-get install -y chromium)", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60  # seconds until a server answers its health check
RENDER_TIMEOUT_MS = 60_000  # until the first script run ends; the CPU may be busy with other tests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def start_server(port: int, cache: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.port", str(port), "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
    env = {**os.environ, "NORMSCOPE_CACHE": str(cache)}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_healthy(port: int, server: subprocess.Popen) -> None:
    """Until the health endpoint answers; this opens no session, so the server stays fresh."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and server.poll() is None:
        try:
            urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"streamlit on port {port} did not start (exit status {server.poll()})")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def first_visits(browser, tmp_path_factory) -> dict[str, sync_api.Page]:
    """url path -> a browser tab on that page's deep link, the first visit of a fresh server of its own.

    All servers start, and all tabs load, at once: the first script runs (imports, checkpoint catalog) overlap.
    """
    ports = {p.url_path: free_port() for p in navigation.PAGES}
    running = {name: start_server(port, tmp_path_factory.mktemp(f"cache-{name}")) for name, port in ports.items()}
    try:
        for name, port in ports.items():
            wait_healthy(port, running[name])
        tabs = {}
        for page in navigation.PAGES:
            tabs[page.url_path] = browser.new_page(viewport={"width": 1400, "height": 900})
            tabs[page.url_path].goto(f"http://localhost:{ports[page.url_path]}/{page.route}", wait_until="commit")
        yield tabs
    finally:
        for server in running.values():
            server.kill()  # nothing to save: a graceful stop takes seconds per server
            server.wait()


@pytest.mark.parametrize("page", navigation.PAGES, ids=lambda p: p.url_path)
def test_deep_link_as_a_fresh_servers_first_visit(page, first_visits, tmp_path):
    tab = first_visits[page.url_path]
    try:
        tab.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=RENDER_TIMEOUT_MS)
        sync_api.expect(tab.get_by_test_id("stException")).to_have_count(0)
        sidebar = tab.get_by_test_id("stSidebar")
        sync_api.expect(sidebar.get_by_text("Data source")).to_be_visible()
        sync_api.expect(sidebar.get_by_text("Demo mode")).to_be_visible()
        links = tab.get_by_test_id("stSidebarNavLink")
        sync_api.expect(links.get_by_test_id("stMarkdownContainer")).to_have_text([p.title for p in navigation.PAGES])
        current = tab.locator('[data-testid="stSidebarNavLink"][aria-current="page"]')
        sync_api.expect(current.get_by_test_id("stMarkdownContainer")).to_have_text(page.title)
    finally:
        tab.screenshot(path=str(tmp_path / f"{page.url_path}.png"))
