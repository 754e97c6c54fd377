"""Cached-first computation for pages: show what the cache holds, compute the rest on request.

A page asks for :class:`core.experiments.Evaluation` s (an experiment, its config and a checkpoint, as
plain data). :func:`gather` plans them (:mod:`core.planning`: each model's dataset, cache lookups by
sha256, so no weights load and a revisit renders at once); the work left is computed only when the user
presses a button, never in demo mode: here, under a progress bar, or as a background job that outlives
the page and leaves its results in the shared cache.
"""
from __future__ import annotations

from typing import Hashable

import streamlit as st

from core import jobs
from core.cache import default_cache_dir
from core.errors import ParameterError
from core import planning
from core.experiments import Evaluation, RunContext, offered
from core.planning import Plan
from core.records import Record
from core.progress import Progress
from ui import catalog, datasource, render, serving, state


def context(cached_only: bool, progress: Progress | None = None) -> RunContext:
    """The pages' run context: the shared cache, and models loaded once for every session."""
    return RunContext(state.cache(), progress=progress, cached_only=cached_only, load=catalog.load)


def plan(requests: dict[Hashable, Evaluation], **where) -> Plan | None:
    """:func:`core.planning.plan` on the shared cache (``where``: its placement options); None after showing a user
    error (a bad checkpoint, a dataset that cannot load)."""
    with render.user_errors("Cannot evaluate"):
        return planning.plan(requests, context(cached_only=True), **where)
    return None


def gather(requests: dict[Hashable, Evaluation], key: str, what: str = "results", **where) -> dict[Hashable, Record]:
    """The results of ``requests`` (planned with ``where``) that are cached or were just computed."""
    work = plan(requests, **where)
    return settle(work, key, what) if work is not None else {}


def settle(work: Plan, key: str, what: str = "results") -> dict[Hashable, Record]:
    """A plan's cached results, with what cannot be had here named, and the rest computed on request (a button
    press: here under a progress bar, or as a background job), never in demo mode."""
    for dataset, count in work.unreachable.items():
        st.warning(f"{count} result(s) for models trained on **{dataset}** are not precomputed, and {dataset} is not "
                   f"on this machine, so they cannot be computed here: {datasource.how_to_get(dataset)}.")
    labels = {e.sha256: e.label for e in catalog.entries()}
    for shift, models in work.data_shifts.items():
        st.info(f"**{', '.join(labels.get(m, m[:12]) for m in models)}**: {shift}.", icon=":material/compare:")
    found = dict(work.found)
    if work.missing and state.demo_mode():
        render.not_precomputed(len(work.missing))
    elif work.missing:
        offer(work, found, key, what)
    return found


def offer(work: Plan, found: dict, key: str, what: str) -> None:
    """Buttons to compute the missing results here or in the background, and the background job's progress."""
    missing, note, public = work.missing, st.empty(), serving.public()
    note.info(f"{len(missing)} of {len(work.requests)} {what} are not in the cache yet; compute them here"
              + ("." if public else " or as a background job (it keeps running if you leave the page)."))
    here, elsewhere = st.columns(2)
    if here.button(f"Compute {len(missing)} missing {what}", key=key, type="primary", icon=":material/play_arrow:"):
        note.empty()
        compute(work, found)
    if not public and elsewhere.button("Run in background", key=f"{key}_bg", icon=":material/schedule:"):
        st.session_state[f"{key}_job"] = submit(work.remaining, f"{len(missing)} {what}").id
    if st.session_state.get(f"{key}_job"):
        background_progress(f"{key}_job")


def submit(evaluations: list[Evaluation], title: str) -> jobs.Job:
    params = {"evaluations": [e.to_dict() for e in evaluations], "cache": str(default_cache_dir())}
    return jobs.submit("evaluate", params, title=title)


def job_status(job: jobs.Job, key: str) -> dict:
    """A job's progress bar, its error if it failed, Cancel while it runs and Resume once it ended unfinished;
    returns its status."""
    status = job.status
    st.progress(float(status.get("progress", 0.0)), text=f"{job.spec.get('title') or job.id}: {status['state']} "
                                                          f"{status.get('message', '')}")
    if status.get("error"):
        st.error(f"The job failed: {status['error']}")
    if status["state"] in ("queued", "running") and st.button("Cancel", key=key, icon=":material/stop:"):
        job.cancel()
        st.toast("Cancel requested; the job stops at its next progress report.")
    elif status["state"] in ("failed", "cancelled") and st.button("Resume", key=f"{key}_resume",
                                                                  icon=":material/replay:",
                                                                  help="A training continues from its last epoch"):
        jobs.resume(job)
        st.toast("Resumed.")
    return status


@st.fragment(run_every=2)
def background_progress(state_key: str) -> None:
    """The background job's progress, refreshed alone every 2 s; the whole page reruns when it is done."""
    try:
        job = jobs.get(st.session_state[state_key])
    except ParameterError:  # its folder is gone (the cache folder was cleared or moved)
        del st.session_state[state_key]
        return
    if job_status(job, f"{state_key}_cancel")["state"] == "done":
        del st.session_state[state_key]
        st.rerun()


def compute(work: Plan, found: dict) -> None:
    """Run a plan's remaining work in order under one progress bar, stopping at the first user error; ``found``
    gains the results of its requests."""
    with render.user_errors("Cannot compute"):
        refuse_unoffered(work)
        with serving.computation_slot(work.work):
            serving.log_access("compute", work=work.work,
                               evaluations=[f"{e.experiment}:{e.name}" for e in work.remaining])
            bar = render.progress_bar("Computing…")
            run = context(cached_only=False, progress=bar)
            for i, evaluation in enumerate(work.remaining):
                evaluation.run(run.part(i, len(work.remaining)))
            found |= {k: work.requests[k].run(run) for k in work.missing}
            bar(1.0, "Done")


def refuse_unoffered(work: Plan) -> None:
    """Refuse (and log) a plan that runs an experiment this server does not offer: a page may not list it, but a
    crafted request can still name it."""
    unoffered = sorted({e.experiment for e in work.remaining} - set(offered(serving.public())))
    if unoffered:
        serving.refuse(work.work, serving.OFF_HERE.format(what=f"{unoffered[0]}, which trains a model,"))
