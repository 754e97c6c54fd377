"""The app under a :class:`core.serving.ServingPolicy`: what public visitors may not do
(:mod:`~ui.serving.policy`), the work limits (:mod:`~ui.serving.limits`), the access log (:mod:`~ui.serving.access`)
and the session-private uploads with their pool (:mod:`~ui.serving.uploads`)."""
from __future__ import annotations

import streamlit as st

from ui.serving.access import ACCESS_LOG, log_access, session_id, session_tag
from ui.serving.limits import Slots, _slots, computation_slot, refuse
from ui.serving.policy import OFF_HERE, apply_client_options, policy, public, upload_limit_mb
from ui.serving.uploads import (SWEEP_EVERY, UPLOAD_SLOTS, SessionUploads, _upload_slots, session_uploads,
                                upload_root, upload_slot)

__all__ = ["ACCESS_LOG", "OFF_HERE", "SWEEP_EVERY", "UPLOAD_SLOTS", "SessionUploads", "Slots", "_slots",
           "_upload_slots", "apply_client_options", "computation_slot", "log_access", "policy", "public", "refuse",
           "session_id", "session_tag", "session_uploads", "st", "upload_limit_mb", "upload_root", "upload_slot"]
