"""Each public session's private upload folder, deleted once its session has gone."""
from __future__ import annotations

import json
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

import streamlit as st
from streamlit.runtime import Runtime

from core.catalog import uploads_dir
from ui.serving.access import ACCESS_LOG, _log, session_id, session_tag
from ui.serving.policy import public

UPLOADS_TOKEN_KEY = "_uploads_token"


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
