"""The access log: one JSON line per visitor action that computes or stores something (who, from where, what)."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

ACCESS_LOG = logging.getLogger("normscope.access")


def _access_handler() -> logging.Handler:
    """JSON lines to ``NORMSCOPE_ACCESS_LOG`` (a file) if set, else to stderr beside Streamlit's own log."""
    path = os.environ.get("NORMSCOPE_ACCESS_LOG")
    handler = logging.FileHandler(path) if path else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


if not ACCESS_LOG.handlers:  # once per process: Streamlit reruns import this module once
    ACCESS_LOG.addHandler(_access_handler())
    ACCESS_LOG.setLevel(logging.INFO)


def session_tag(session: str | None = None) -> str:
    """A short, stable, non-reversible name of a browser session (default: this one) for the access log."""
    return hashlib.sha256((session or session_id()).encode()).hexdigest()[:10]


def log_access(action: str, **details) -> None:
    """One JSON line per visitor action that computes or stores something: who (session, client address), what."""
    _log(session=session_tag(), client=client_address(), action=action, **details)


def client_address() -> str:
    """The visitor's address as the server sees it ("localhost" where Streamlit knows none: a local run, a test)."""
    address = st.context.ip_address
    return address if isinstance(address, str) else "localhost"


def _log(**record) -> None:
    ACCESS_LOG.info(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **record}, default=str))


def session_id() -> str:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx else "none"
