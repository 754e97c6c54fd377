"""The server's :class:`core.serving.ServingPolicy` as the pages read it: public or local, the client options a
public server sets, and the upload limit."""
from __future__ import annotations

import streamlit as st

import core.checkpoints as checkpoints  # its limit read when asked: tests lower it
from core.checkpoints import MB
from core.serving import ServingError, ServingPolicy, serving_policy

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


def upload_limit_mb() -> int:
    """The largest upload this server takes, in MB (10^6 bytes): NormScope's checkpoint limit, or the server's
    ``server.maxUploadSize`` where that is lower (a server started without the project's config). MB, because
    Streamlit's browser side reads the widget's limit as MB (10^6 bytes; 2^20 only where ``navigator.platform`` is
    Windows) while its server side counts MiB: the page refuses above the same byte as the browser
    (views/models.py), and Streamlit's MiB is only an outer bound. At least 1 (Streamlit's smallest)."""
    return max(1, min(checkpoints.MAX_CHECKPOINT_BYTES // MB, int(st.get_option("server.maxUploadSize"))))
