"""Replay the Dockerfile's steps without a Docker engine, then check that the app it builds answers.

What an image build and ``docker run`` would do, read from the Dockerfile itself so the two cannot drift: a fresh
venv from the image's requirements file (its RUN pip line), only the folders its COPY lines copy, its ENV
(``/cache`` and ``/data`` mapped to temporary folders), its non-root USER (an unprivileged uid when this runs as
root; the app folder is read-only, as in the image), its CMD. Then: the health endpoint (the HEALTHCHECK's URL)
answers, and every page of ``ui/navigation.py`` renders in headless Chromium without an exception and with the
sidebar. Exit status 0 when all of that holds; 1 with the reason otherwise.

    python scripts/replay_image.py             # CI runs this (.ci/run)
    python scripts/replay_image.py --keep DIR  # leave the replayed image in DIR

Needs playwright and Debian's chromium in the Python that runs it (requirements-dev.txt); the replayed app
itself gets only the image's requirements. Docker's own parts (the base image, the CUDA variant's wheel index,
the VOLUME and HEALTHCHECK timing) are not replayed: no engine runs on the project's machines.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNPRIVILEGED = 65534  # nobody: stands in for the image's normscope user when this runs as root
HEALTH_TIMEOUT = 120
PAGE_TIMEOUT_MS = 120_000


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(instruction, arguments) per Dockerfile line, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def image_env(steps: list[tuple[str, str]], mounts: dict[str, Path]) -> dict[str, str]:
    """The ENV lines' variables, with the image's volume paths replaced by this replay's folders."""
    env: dict[str, str] = {}
    for kind, args in steps:
        if kind == "ENV":
            for pair in shlex.split(args):
                name, value = pair.split("=", 1)
                env[name] = str(mounts.get(value, value))
    return env


def copies(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [tuple(shlex.split(args)) for kind, args in steps if kind == "COPY"]


def requirements_file(steps: list[tuple[str, str]]) -> str:
    (line,) = [args for kind, args in steps if kind == "RUN" and "pip install" in args]
    return re.search(r"-r\s+(\S+)", line).group(1)


def command(steps: list[tuple[str, str]]) -> list[str]:
    (cmd,) = [args for kind, args in steps if kind == "CMD"]
    return json.loads(cmd)  # the exec form


def build(app: Path, steps: list[tuple[str, str]]) -> Path:
    """The image's file system: its COPY sources under ``app``, and a fresh venv with its requirements."""
    app.mkdir(parents=True)
    for source, target in copies(steps):
        src, dst = ROOT / source, app / target
        shutil.copytree(src, dst) if src.is_dir() else shutil.copy2(src, dst)
    venv = app.parent / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-r", str(app / requirements_file(steps))],
                   check=True)
    return venv


def writable(folder: Path, allowed: bool) -> None:
    """The image's app folder is read-only to its user; made writable again for cleaning up."""
    bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IWUSR if allowed else mode & ~bits)


def as_image_user(args: list[str]) -> list[str]:
    """``args`` run as an unprivileged user when this runs as root (so the read-only app folder binds)."""
    if os.geteuid() != 0:
        return args
    return ["setpriv", f"--reuid={UNPRIVILEGED}", f"--regid={UNPRIVILEGED}", "--clear-groups", *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def wait_healthy(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while time.monotonic() < deadline and server.poll() is None:
        try:
            urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=4)
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the health endpoint did not answer (server exit status {server.poll()})")


def check_pages(port: int) -> None:
    """Every page as a visitor opens it: rendered, no exception, the app's sidebar."""
    sys.path.insert(0, str(ROOT))
    from playwright.sync_api import expect, sync_playwright

    from ui import navigation
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1400, "height": 900})
        for page in navigation.PAGES:
            tab.goto(f"http://localhost:{port}/{page.route}")
            tab.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]',
                                  timeout=PAGE_TIMEOUT_MS)
            expect(tab.get_by_test_id("stException")).to_have_count(0)
            expect(tab.get_by_test_id("stSidebar").get_by_text("Data source")).to_be_visible(timeout=30_000)
            expect(tab.locator("h1").first).to_be_visible()
            print(f"page {page.url_path}: {tab.locator('h1').first.inner_text()!r}")
        browser.close()


def replay(where: Path) -> None:
    steps = instructions(ROOT / "Dockerfile")
    mounts = {"/cache": where / "cache", "/data": where / "data", "/home/normscope": where / "home"}
    for folder in mounts.values():
        folder.mkdir(parents=True)
    app = where / "app"
    venv = build(app, steps)
    writable(app, False)
    if os.geteuid() == 0:
        for folder in mounts.values():
            os.chown(folder, UNPRIVILEGED, UNPRIVILEGED)
        where.chmod(0o755)
    env = {**image_env(steps, mounts), "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    port = free_port()
    cmd = [c if c != "8501" else str(port) for c in command(steps)]
    server = subprocess.Popen(as_image_user([str(venv / "bin" / cmd[0]), *cmd[1:]]), cwd=app, env=env)
    try:
        wait_healthy(port, server)
        print(f"health: ok on port {port}, as uid {UNPRIVILEGED if os.geteuid() == 0 else os.geteuid()}")
        check_pages(port)
    finally:
        server.terminate()
        server.wait(timeout=30)
        writable(app, True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="replay into this (new) folder and keep it")
    args = parser.parse_args()
    if args.keep:
        replay(args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="normscope-image-") as where:
            replay(Path(where))
    print("image replay: ok")


if __name__ == "__main__":
    main()
