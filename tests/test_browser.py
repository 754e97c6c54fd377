"""The app in a real browser: every page's URL works as the very first visit of a fresh server, and a public demo
server keeps its visitors apart and within its limits.

Streamlit (1.67) treats a ``pages/`` folder next to app.py as a v1 multipage app until some session has run
``st.navigation``, so a first visit to ``/models`` ran that page's file alone: the folder's file names as
navigation and none of app.py's sidebar (hence ``views/``, see ui/navigation.py). Each page gets its own
fresh server here, and its deep link is that server's first request.

Needs Debian's chromium (``apt-get install -y chromium``) and playwright (requirements-dev.txt); skipped
without them.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

from ui import navigation

sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (requirements-dev.txt)")
CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip("needs Debian's chromium (apt-get install -y chromium)", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60  # seconds until a server answers its health check
RENDER_TIMEOUT_MS = 120_000  # until the first script run ends; the CPU may be busy with other tests
# Until a widget shows once its script run has ended. CI once saw every early widget (the sidebar's, the page's
# first selectors) missing 5 s after a first run whose text and later buttons were there; 100 loaded first visits
# here showed it once. Streamlit fetches each widget type's code on first use, from a server just out of its
# slowest run: the widgets get that long, and the console's messages are kept for the report.
WIDGET_TIMEOUT_MS = 30_000
WAVE = 5  # fresh servers started at once
FIRST_RUN_DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def start_server(port: int, cache: Path, environment: dict[str, str] | None = None, *options: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.port", str(port), "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
               *options]
    env = {**os.environ, "NORMSCOPE_CACHE": str(cache), **(environment or {})}
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

    Servers start, and their tabs load, WAVE at a time: the first script runs (imports, checkpoint catalog, cache
    seeding) overlap, as on a server that a class opens at once, while the two CPU cores keep up.
    """
    tabs = {}
    running: list[subprocess.Popen] = []
    try:
        for start in range(0, len(navigation.PAGES), WAVE):
            wave = navigation.PAGES[start:start + WAVE]
            ports = {p.url_path: free_port() for p in wave}
            servers = {p.url_path: start_server(ports[p.url_path], tmp_path_factory.mktemp(f"cache-{p.url_path}"))
                       for p in wave}
            running += servers.values()
            for name, port in ports.items():
                wait_healthy(port, servers[name])
            for page in wave:
                tab = tabs[page.url_path] = browser.new_page(viewport={"width": 1400, "height": 900})
                tab.console = []
                tab.on("console", lambda message, tab=tab: tab.console.append(f"{message.type}: {message.text}"))
                tab.goto(f"http://localhost:{ports[page.url_path]}/{page.route}", wait_until="commit")
            for page in wave:
                tabs[page.url_path].wait_for_selector(FIRST_RUN_DONE, timeout=RENDER_TIMEOUT_MS)
        yield tabs
    finally:
        for server in running:
            server.kill()  # nothing to save: a graceful stop takes seconds per server
            server.wait()


@pytest.mark.parametrize("page", navigation.PAGES, ids=lambda p: p.url_path)
def test_deep_link_as_a_fresh_servers_first_visit(page, first_visits, tmp_path):
    tab = first_visits[page.url_path]
    try:
        sync_api.expect(tab.get_by_test_id("stException")).to_have_count(0)
        sidebar = tab.get_by_test_id("stSidebar")
        for label in ("Data source", "Demo mode"):
            sync_api.expect(sidebar.get_by_text(label), f"console: {tab.console}").to_be_visible(timeout=WIDGET_TIMEOUT_MS)
        links = tab.get_by_test_id("stSidebarNavLink")
        sync_api.expect(links.get_by_test_id("stMarkdownContainer")).to_have_text([p.title for p in navigation.PAGES])
        current = tab.locator('[data-testid="stSidebarNavLink"][aria-current="page"]')
        sync_api.expect(current.get_by_test_id("stMarkdownContainer")).to_have_text(page.title)
    finally:
        tab.screenshot(path=str(tmp_path / f"{page.url_path}.png"))


@pytest.fixture(scope="module")
def public_server(tmp_path_factory):
    """A public demo server (NORMSCOPE_PUBLIC=1) with a small request limit, forgetting a closed tab's session after
    a second; yields its port and its cache folder (session uploads live in its ``sessions/``)."""
    port, cache, temp = free_port(), tmp_path_factory.mktemp("cache-public"), tmp_path_factory.mktemp("tmp-public")
    limits = {"NORMSCOPE_PUBLIC": "1", "NORMSCOPE_MAX_WORK": "2000", "TMPDIR": str(temp),
              "NORMSCOPE_CONFIG": str(cache / "no-config.toml")}
    server = start_server(port, cache, limits, "--server.disconnectedSessionTTL", "1")
    try:
        wait_healthy(port, server)
        yield port, cache
    finally:
        server.kill()
        server.wait()


def visit(browser, port: int, route: str) -> sync_api.Page:
    """A new visitor (its own browser context: its own Streamlit session) on ``route`` after its first run."""
    tab = browser.new_page(viewport={"width": 1400, "height": 900})
    tab.goto(f"http://localhost:{port}/{route}")
    tab.wait_for_selector(FIRST_RUN_DONE, timeout=RENDER_TIMEOUT_MS)
    return tab


def checkpoint_count(tab: sync_api.Page) -> int:
    text = tab.get_by_text(" checkpoints: the reference zoo").inner_text()
    return int(text.split()[0])


def test_a_public_server_hides_clearing_training_and_other_visitors_uploads(browser, public_server, tmp_path):
    port, cache = public_server
    first = visit(browser, port, "models")
    try:
        sidebar = first.get_by_test_id("stSidebar")
        sync_api.expect(sidebar.get_by_text("Public demo server")).to_be_visible(timeout=WIDGET_TIMEOUT_MS)
        sync_api.expect(sidebar.get_by_role("button", name="Clear result cache")).to_have_count(0)
        before = checkpoint_count(first)
        first.get_by_role("tab", name="Train").click()
        sync_api.expect(first.get_by_text("training is off here")).to_be_visible()
        sync_api.expect(first.get_by_role("button", name="Start training")).to_have_count(0)
        first.get_by_role("tab", name="Upload").click()
        mine = tmp_path / "visitor-upload.safetensors"
        shutil.copy(ROOT / "checkpoints" / "builtin-vgg11-bn.safetensors", mine)
        first.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(mine))
        sync_api.expect(first.get_by_text("of this session")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
        first.get_by_test_id("stSidebarNavLink").filter(has_text="Overview").click()  # this session, on
        sync_api.expect(first.get_by_role("heading", name="NormScope", exact=True)).to_be_visible(timeout=RENDER_TIMEOUT_MS)
        first.get_by_test_id("stSidebarNavLink").filter(has_text="Models").click()
        sync_api.expect(first.get_by_text(f"{before + 1} checkpoints: the reference zoo")).to_be_visible(
            timeout=RENDER_TIMEOUT_MS)
        second = visit(browser, port, "models")
        assert checkpoint_count(second) == before  # the other visitor's upload is not listed
        (folder,) = (cache / "sessions").iterdir()
        assert list(folder.glob("uploads/*.safetensors"))
    finally:
        first.screenshot(path=str(tmp_path / "public-models.png"), full_page=True)
    first.context.close()  # the visitor leaves: the server forgets the session, and its uploads with it
    deadline = time.monotonic() + 60
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not folder.exists()


def test_a_public_servers_request_over_its_limit_gets_the_message(browser, public_server, tmp_path):
    tab = visit(browser, public_server[0], "robustness")
    try:  # the default models' Table 1 is shipped: 50 images per class is not
        per_class = tab.get_by_role("spinbutton", name="Test images per class").first
        per_class.fill("50")
        per_class.press("Enter")
        compute = tab.get_by_role("button", name=re.compile(r"^Compute \d+ missing"))
        compute.first.click()
        sync_api.expect(tab.get_by_text("limit of 2,000 per request")).to_be_visible(timeout=RENDER_TIMEOUT_MS)
        sync_api.expect(tab.get_by_test_id("stException")).to_have_count(0)
        sync_api.expect(tab.get_by_role("button", name="Run in background")).to_have_count(0)
    finally:
        tab.screenshot(path=str(tmp_path / "public-limit.png"), full_page=True)


def test_two_servers_sharing_one_cache_folder_both_answer_from_it(browser, tmp_path):
    """Both start at once on one NORMSCOPE_CACHE: they seed it together and read the same entries."""
    cache, ports = tmp_path / "shared-cache", [free_port(), free_port()]
    servers = [start_server(port, cache) for port in ports]
    try:
        for port, server in zip(ports, servers):
            wait_healthy(port, server)
        tabs = [browser.new_page(viewport={"width": 1400, "height": 900}) for _ in ports]
        for tab, port in zip(tabs, ports):
            tab.goto(f"http://localhost:{port}/robustness", wait_until="commit")
        for tab in tabs:
            tab.wait_for_selector(FIRST_RUN_DONE, timeout=RENDER_TIMEOUT_MS)
            sync_api.expect(tab.get_by_test_id("stException")).to_have_count(0)
            sync_api.expect(tab.get_by_role("heading", name="Robust accuracy (Table 1)")).to_be_visible()
        counts = [tab.get_by_text(re.compile(r"^Result cache: ")).inner_text() for tab in tabs]
        assert counts[0] == counts[1] and "entries" in counts[0], counts
    finally:
        for server in servers:
            server.kill()
            server.wait()


@pytest.mark.parametrize("options", [(), ("--client.toolbarMode", "auto")], ids=["server-config", "set-by-the-app"])
def test_a_fresh_public_servers_first_visitor_gets_no_deploy_menu(browser, tmp_path, options):
    """``server-config``: `.streamlit/config.toml` sets it before any session; ``set-by-the-app``: a server started
    with another mode (as from another folder) gets it from the app, whose first run starts again."""
    port = free_port()
    public = {"NORMSCOPE_PUBLIC": "1", "NORMSCOPE_CONFIG": str(tmp_path / "no-config.toml")}
    server = start_server(port, tmp_path / "cache", public, *options)
    try:
        wait_healthy(port, server)
        tab = visit(browser, port, "")
        sync_api.expect(tab.get_by_role("heading", name="NormScope", exact=True)).to_be_visible(timeout=RENDER_TIMEOUT_MS)
        sync_api.expect(tab.get_by_test_id("stToolbar")).to_be_attached(timeout=WIDGET_TIMEOUT_MS)
        sync_api.expect(tab.get_by_test_id("stAppDeployButton")).to_have_count(0)
        sync_api.expect(tab.get_by_test_id("stException")).to_have_count(0)
        tab.screenshot(path=str(tmp_path / "first-visitor.png"))
    finally:
        server.kill()
        server.wait()


def test_an_upload_just_over_the_limit_is_refused_in_the_browser_with_the_limit(browser, public_server, tmp_path):
    from core.checkpoints import MAX_CHECKPOINT_BYTES, MB

    tab = visit(browser, public_server[0], "models")
    try:
        tab.get_by_role("tab", name="Upload").click()
        limit = MAX_CHECKPOINT_BYTES // MB
        sync_api.expect(tab.get_by_text(f"Checkpoint (at most {limit} MB)")).to_be_visible(timeout=WIDGET_TIMEOUT_MS)
        over = tmp_path / "over.safetensors"
        with open(over, "wb") as f:
            f.truncate(MAX_CHECKPOINT_BYTES + 1)  # sparse: no disk used
        tab.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(over))
        # Streamlit's own refusal, before anything is sent: a red mark on the file, this text on it (0.5 GB: 512 MB)
        sync_api.expect(tab.get_by_role("alert")).to_contain_text(re.compile(r"File must be (512 ?MB|0\.5 ?GB) or smaller"),
                                                                  timeout=WIDGET_TIMEOUT_MS)
        sync_api.expect(tab.get_by_text(f"larger than {limit} MB")).to_be_visible()
        sync_api.expect(tab.get_by_test_id("stException")).to_have_count(0)
        sync_api.expect(tab.get_by_text("Stored")).to_have_count(0)
    finally:
        tab.screenshot(path=str(tmp_path / "upload-over-limit.png"), full_page=True)


def local(url: str) -> bool:
    """Whether a request stays on this machine: the server itself, or data the page already holds."""
    parsed = urlparse(url)
    return parsed.scheme in ("data", "blob") or parsed.hostname in ("localhost", "127.0.0.1", "::1")


def test_no_page_asks_anything_of_the_internet(browser, public_server, tmp_path):
    """Every request of every page's load (scripts, fonts, the tab's icon) goes to this server, so a demo without a
    network works whole; a ``:material/...:`` page icon was fetched from fonts.gstatic.com."""
    port, outside = public_server[0], []
    tab = browser.new_page(viewport={"width": 1400, "height": 900})
    tab.on("request", lambda request: outside.append(request.url) if not local(request.url) else None)
    try:
        for page in navigation.PAGES:
            tab.goto(f"http://localhost:{port}/{page.route}")
            tab.wait_for_selector(FIRST_RUN_DONE, timeout=RENDER_TIMEOUT_MS)
            tab.wait_for_load_state("networkidle")  # the icon is set, and fetched, once the first run ends
            assert outside == [], (page.url_path, outside)
        icon = tab.locator("link[rel='shortcut icon']").get_attribute("href")
        assert local(urljoin(tab.url, icon)), icon
    finally:
        tab.screenshot(path=str(tmp_path / "offline.png"))
