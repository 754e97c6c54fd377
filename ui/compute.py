"""Cached-first computation for pages: show what the cache holds, compute the rest on request.

Every task is a core call taking ``cached_only`` and a progress callback. A page first asks all of
them with ``cached_only=True`` (a cache lookup, so a revisit renders at once); missing results are
computed only when the user presses a button, never in demo mode: here, under a progress bar, or,
for tasks that carry their work as plain data (``Task.evaluations``), as a background job that
outlives the page and leaves its results in the shared cache.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Hashable

import streamlit as st

from core import jobs
from core.cache import default_cache_dir
from core.experiments import Evaluation
from core.progress import Progress, scaled
from ui import render, state


@dataclass(frozen=True)
class Task:
    """A core call ``run(cached_only, progress)``; ``evaluations``, when given, is the same work as plain
    data, so that it can also run as a background job."""

    run: Callable[[bool, Progress | None], Any]
    evaluations: tuple[Evaluation, ...] = ()


def gather(tasks: dict[Hashable, Task], key: str, what: str = "results") -> dict[Hashable, Any]:
    """The results of ``tasks`` that are cached or were just computed (on this run's button press)."""
    found = {}
    with render.user_errors("Cannot evaluate"):
        found = {k: task.run(True, None) for k, task in tasks.items()}
    missing = [k for k, v in found.items() if v is None]
    if missing and state.demo_mode():
        render.not_precomputed(len(missing))
    elif missing:
        offer(tasks, missing, found, key, what)
    return {k: v for k, v in found.items() if v is not None}


def offer(tasks: dict[Hashable, Task], missing: list, found: dict, key: str, what: str) -> None:
    """Buttons to compute the missing results here or in the background, and the background job's progress."""
    background = [e for k in missing for e in tasks[k].evaluations]
    movable = all(tasks[k].evaluations for k in missing)
    note = st.empty()
    note.info(f"{len(missing)} of {len(tasks)} {what} are not in the cache yet; compute them here"
              + (" or as a background job (it keeps running if you leave the page)." if movable else "."))
    here, elsewhere = st.columns(2)
    if here.button(f"Compute {len(missing)} missing {what}", key=key, type="primary", icon=":material/play_arrow:"):
        note.empty()
        compute(tasks, missing, found)
    if movable and elsewhere.button("Run in background", key=f"{key}_bg", icon=":material/schedule:"):
        st.session_state[f"{key}_job"] = submit(background, f"{len(missing)} {what}").id
    if st.session_state.get(f"{key}_job"):
        job_progress(f"{key}_job")


def submit(evaluations: list[Evaluation], title: str) -> jobs.Job:
    params = {"evaluations": [e.to_dict() for e in evaluations], "cache": str(default_cache_dir())}
    return jobs.submit("evaluate", params, title=title)


@st.fragment(run_every=2)
def job_progress(state_key: str) -> None:
    """The background job's progress, refreshed alone every 2 s; the whole page reruns when it is done."""
    try:
        job = jobs.get(st.session_state[state_key])
    except ValueError:  # its folder is gone (the cache folder was cleared or moved)
        del st.session_state[state_key]
        return
    status = job.status
    if status["state"] == "done":
        del st.session_state[state_key]
        st.rerun()
    st.progress(float(status.get("progress", 0.0)), text=f"Background job {job.id}: {status['state']} "
                                                          f"{status.get('message', '')}")
    if status.get("error"):
        st.error(f"The background job failed: {status['error']}")
    elif status["state"] in ("queued", "running") and st.button("Cancel", key=f"{state_key}_cancel"):
        job.cancel()


def compute(tasks: dict[Hashable, Task], missing: list, found: dict) -> None:
    """Run the missing tasks one after another under one progress bar, stopping at the first user error."""
    bar = render.progress_bar("Computing…")
    with render.user_errors("Cannot compute"):
        for i, k in enumerate(missing):
            found[k] = tasks[k].run(False, scaled(bar, i / len(missing), (i + 1) / len(missing)))
    bar(1.0, "Done")
