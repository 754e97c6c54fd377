"""The app under a :class:`core.serving.ServingPolicy`: what public visitors may not do, the work limits, the
access log and the session-private uploads."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.catalog import uploads_dir
from core.checkpoints import MAX_CHECKPOINT_BYTES
from core.experiments import WORK_UNIT
from core.serving import LimitExceeded, ServingError, ServingPolicy, serving_policy

ACCESS_LOG = logging.getLogger("normscope.access")
UPLOADS_TOKEN_KEY = "_uploads_token"


def _access_handler() -> logging.Handler:
    """JSON lines to ``NORMSCOPE_ACCESS_LOG`` (a file) if set, else to stderr beside Streamlit's own log."""
    path = os.environ.get("NORMSCOPE_ACCESS_LOG")
    handler = logging.FileHandler(path) if path else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


if not ACCESS_LOG.handlers:  # once per process: Streamlit reruns import this module once
    ACCESS_LOG.addHandler(_access_handler())
    ACCESS_LOG.setLevel(logging.INFO)
OFF_HERE = "This is a public demo server: {what} is off here. Run NormScope on your own machine to use it."


def policy() -> ServingPolicy:
    """The server's policy; an unusable setting stops the page with one clear message (for the operator)."""
    try:
        return serving_policy()
    except ServingError as e:
        st.error(f"NormScope's serving settings cannot be used: {e}")
        st.stop()


def public() -> bool:
    return policy().public


def apply_client_options() -> None:
    """Visitors of a public server see no stack traces and no Deploy menu. The toolbar's mode reaches the browser
    when a script run starts, so where the server's config did not set it already (`.streamlit/config.toml`, read
    from the working directory) the first run that sets it starts again, for its visitor to get it."""
    if not public():
        return
    st.set_option("client.showErrorDetails", "none")
    if st.get_option("client.toolbarMode") != "viewer":
        st.set_option("client.toolbarMode", "viewer")
        st.rerun()


def upload_limit_mib() -> int:
    """The largest upload this server takes, in MiB: NormScope's checkpoint limit, or the server's
    ``server.maxUploadSize`` where that is lower (a server started without the project's config)."""
    return min(MAX_CHECKPOINT_BYTES // 2 ** 20, int(st.get_option("server.maxUploadSize")))


def session_tag(session: str | None = None) -> str:
    """A short, stable, non-reversible name of a browser session (default: this one) for the access log."""
    return hashlib.sha256((session or session_id()).encode()).hexdigest()[:10]


def log_access(action: str, **details) -> None:
    """One JSON line per visitor action that computes or stores something: who (session, client address), what."""
    address = st.context.ip_address
    _log(session=session_tag(), client=address if isinstance(address, str) else "localhost", action=action, **details)


def _log(**record) -> None:
    ACCESS_LOG.info(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **record}, default=str))


class Slots:
    """At most ``size`` computations at once in this server process (a non-blocking counting semaphore)."""

    def __init__(self, size: int) -> None:
        self.size, self.taken, self._lock = size, 0, threading.Lock()

    def try_take(self) -> bool:
        with self._lock:
            if self.taken >= self.size:
                return False
            self.taken += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.taken -= 1


@st.cache_resource(show_spinner=False)
def _slots(size: int) -> Slots:
    return Slots(size)


@contextmanager
def computation_slot(work: int) -> Iterator[None]:
    """Hold one of the server's computation slots for a request of ``work`` image passes (:data:`WORK_UNIT`); on a
    public server a request over the limits raises :class:`LimitExceeded` (logged) before anything runs. A local
    server has no limits."""
    rules = policy()
    if not rules.public:
        yield
        return
    slots = _slots(rules.max_concurrent_computations)
    if work > rules.max_work_per_request:
        refuse(work, f"this asks for {work:,} {WORK_UNIT} (images x attack steps, summed over models), over this "
                     f"public server's limit of {rules.max_work_per_request:,} per request: select fewer models, "
                     "fewer images per class or fewer steps (the precomputed results show without computing)")
    if not slots.try_take():
        refuse(work, f"{slots.size} computation(s) are already running on this public server, its limit; try "
                     "again in a minute (precomputed results show without waiting)")
    try:
        yield
    finally:
        slots.give_back()


def refuse(work: int, reason: str) -> None:
    log_access("refused", work=work, reason=reason)
    raise LimitExceeded(reason)


class SessionUploads:
    """Each public session's private upload folder, deleted once its session has been gone for ``grace`` seconds
    (the server's ``disconnectedSessionTTL``: a tab reconnecting within it keeps its uploads), or when the server
    stops. Streamlit has no session-end hook, so :meth:`sweep` asks whether each folder's owner still lives. A folder
    is found by a token kept in its session's state (AppTest's sessions all share one session id)."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self._folders: dict[str, tuple[str, tempfile.TemporaryDirectory]] = {}  # token -> (owner session, folder)
        self._gone_since: dict[str, float] = {}
        self._lock = threading.Lock()

    def root(self, token: str, owner: str) -> Path:
        with self._lock:
            if token not in self._folders:
                self._folders[token] = owner, tempfile.TemporaryDirectory(prefix="normscope-session-")
            return Path(self._folders[token][1].name)

    def existing(self, token: str) -> Path | None:
        with self._lock:
            held = self._folders.get(token)
            return Path(held[1].name) if held is not None else None

    def sweep(self, alive: Callable[[str], bool], now: float) -> list[str]:
        """Delete the folders whose owner session has not been ``alive`` for longer than the grace period; returns
        those owners."""
        ended = []
        with self._lock:
            for token, (owner, folder) in list(self._folders.items()):
                if alive(owner):
                    self._gone_since.pop(token, None)
                elif now - self._gone_since.setdefault(token, now) > self.grace:
                    folder.cleanup()
                    del self._folders[token], self._gone_since[token]
                    ended.append(owner)
        return ended


SWEEP_EVERY = 5.0  # seconds between looks for ended sessions


def _sweep_forever(uploads: SessionUploads) -> None:
    runtime = Runtime.instance()
    while True:
        try:
            for ended in uploads.sweep(runtime.is_active_session, time.monotonic()):
                _log(session=session_tag(ended), action="uploads deleted")
        except OSError as e:  # a folder that cannot be removed now is tried again at the next sweep
            ACCESS_LOG.warning(json.dumps({"action": "uploads not deleted", "error": str(e)}))
        time.sleep(SWEEP_EVERY)


@st.cache_resource(show_spinner=False)
def _session_uploads() -> SessionUploads:
    uploads = SessionUploads(grace=float(st.get_option("server.disconnectedSessionTTL")))
    if Runtime.exists():  # a served app (AppTest runs scripts without a server: its sessions end with the test)
        threading.Thread(target=_sweep_forever, args=(uploads,), name="normscope-upload-sweeper", daemon=True).start()
    return uploads


def session_id() -> str:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx else "none"


def _token() -> str:
    return st.session_state.setdefault(UPLOADS_TOKEN_KEY, uuid.uuid4().hex)


def upload_root() -> Path | None:
    """Where this session's uploads are stored (:func:`core.catalog.store_upload`'s ``root``): None on a local
    server (the shared folder); a private folder, made on first use, on a public one. Check
    :attr:`ServingPolicy.uploads_allowed` first."""
    return _session_uploads().root(_token(), session_id()) if public() else None


def session_uploads() -> Path | None:
    """The folder of this session's private uploads, None where it has none (or the server is local)."""
    root = _session_uploads().existing(_token()) if public() else None
    return uploads_dir(root) if root is not None else None
