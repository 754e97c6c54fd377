"""Cached-first computation for pages: show what the cache holds, compute the rest on request.

Every task is a core call taking ``cached_only`` and a progress callback. A page first asks all of
them with ``cached_only=True`` (a cache lookup, so a revisit renders at once); missing results are
computed only when the user presses the button, with a progress bar, and never in demo mode.
"""
from __future__ import annotations

from typing import Callable, Hashable, TypeVar

import streamlit as st

from core.progress import Progress, scaled
from ui import render, state

T = TypeVar("T")
Task = Callable[[bool, Progress | None], T | None]


def gather(tasks: dict[Hashable, Task], key: str, what: str = "results") -> dict[Hashable, T]:
    """The results of ``tasks`` that are cached or were just computed (on this run's button press)."""
    found = {}
    with render.user_errors("Cannot evaluate"):
        found = {k: task(True, None) for k, task in tasks.items()}
    missing = [k for k, v in found.items() if v is None]
    if missing and state.demo_mode():
        render.not_precomputed(len(missing))
    elif missing:
        note = st.empty()
        note.info(f"{len(missing)} of {len(tasks)} {what} are not in the cache yet; press the button to compute them.")
        if st.button(f"Compute {len(missing)} missing {what}", key=key, type="primary", icon=":material/play_arrow:"):
            note.empty()
            compute(tasks, missing, found)
    return {k: v for k, v in found.items() if v is not None}


def compute(tasks: dict[Hashable, Task], missing: list, found: dict) -> None:
    """Run the missing tasks one after another under one progress bar, stopping at the first user error."""
    bar = render.progress_bar("Computing…")
    with render.user_errors("Cannot compute"):
        for i, k in enumerate(missing):
            found[k] = tasks[k](False, scaled(bar, i / len(missing), (i + 1) / len(missing)))
    bar(1.0, "Done")
