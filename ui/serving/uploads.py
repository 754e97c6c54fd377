"""Each public session's private upload folder, deleted once its session has gone, and the small pool of uploads
a public server reads at once."""
from __future__ import annotations

import atexit
import json
import shutil
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import streamlit as st
from streamlit.runtime import Runtime

from core.cache import default_cache_dir
from core.catalog import uploads_dir
from core.serving import LimitExceeded
from ui.serving.access import ACCESS_LOG, _log, session_id, session_tag
from ui.serving.limits import Slots
from ui.serving.policy import public

UPLOADS_TOKEN_KEY = "_uploads_token"


class SessionUploads:
    """Each public session's private upload folder, deleted once its session has been gone for ``grace`` seconds
    (the server's ``disconnectedSessionTTL``: a tab reconnecting within it keeps its uploads), or when the server
    stops. Streamlit has no session-end hook, so :meth:`sweep` asks whether each folder's owner still lives. A folder
    is found by a token kept in its session's state (AppTest's sessions all share one session id). Folders are
    ``<cache>/sessions/<token>/``: on the cache volume a served image may write, not in the system's temp folder."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self._folders: dict[str, tuple[str, Path]] = {}  # token -> (owner session, folder)
        self._gone_since: dict[str, float] = {}
        self._lock = threading.Lock()

    def root(self, token: str, owner: str, make: bool = True) -> Path:
        """The folder of ``token``'s session; ``make=False`` only reserves its path (for deleting later): whoever
        stores the first upload makes it, so a refused upload leaves no folder."""
        with self._lock:
            if token not in self._folders:  # the cache is read per folder: tests move it between sessions
                self._folders[token] = owner, default_cache_dir() / "sessions" / token
            folder = self._folders[token][1]
            if make:
                folder.mkdir(parents=True, exist_ok=True)
            return folder

    def existing(self, token: str) -> Path | None:
        with self._lock:
            held = self._folders.get(token)
            return held[1] if held is not None else None

    def sweep(self, alive: Callable[[str], bool], now: float) -> list[str]:
        """Delete the folders whose owner session has not been ``alive`` for longer than the grace period; returns
        those owners."""
        ended = []
        with self._lock:
            for token, (owner, folder) in list(self._folders.items()):
                if alive(owner):
                    self._gone_since.pop(token, None)
                elif now - self._gone_since.setdefault(token, now) > self.grace:
                    if folder.exists():  # (reserved, never made: nothing to delete)
                        shutil.rmtree(folder)  # an OSError keeps it, for the next sweep
                    del self._folders[token], self._gone_since[token]
                    ended.append(owner)
        return ended

    def delete_all(self) -> None:
        """Every session's folder, when the server stops (its sessions end with it)."""
        with self._lock:
            for _, folder in self._folders.values():
                shutil.rmtree(folder, ignore_errors=True)
            self._folders.clear()


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
        atexit.register(uploads.delete_all)
    return uploads


def _token() -> str:
    return st.session_state.setdefault(UPLOADS_TOKEN_KEY, uuid.uuid4().hex)


def upload_root() -> Path | None:
    """Where this session's uploads are stored (:func:`core.catalog.store_upload`'s ``root``): None on a local
    server (the shared folder); a private folder on a public one, made by the first upload stored there. Check
    :attr:`ServingPolicy.uploads_allowed` first."""
    return _session_uploads().root(_token(), session_id(), make=False) if public() else None


def session_uploads() -> Path | None:
    """The folder of this session's private uploads, None where it has none (or the server is local)."""
    root = _session_uploads().existing(_token()) if public() else None
    return uploads_dir(root) if root is not None else None


UPLOAD_SLOTS = 2  # uploads a public server reads at once: each holds its file, then its tensors and model, in memory


@st.cache_resource(show_spinner=False)
def _upload_slots(size: int) -> Slots:
    return Slots(size)  # a pool of its own: limits._slots(2) would be the computations' pool


@contextmanager
def upload_slot() -> Iterator[None]:
    """Hold one of a public server's :data:`UPLOAD_SLOTS` while an upload is read and stored; over them, raise
    :class:`LimitExceeded` (the page logs it with the file) before anything is read. Uploads do not wait for a
    computation slot, so without their own pool a few at once could fill the server's memory. No limit locally."""
    if not public():
        yield
        return
    slots = _upload_slots(UPLOAD_SLOTS)
    if not slots.try_take():
        raise LimitExceeded(f"{slots.size} uploads are already being read on this public server, its limit; "
                            "try again in a minute")
    try:
        yield
    finally:
        slots.give_back()
