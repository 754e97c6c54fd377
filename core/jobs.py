"""Background jobs: long work (training, big evaluations) outside any Streamlit script run.

A job is a folder under ``<cache>/jobs/<id>/`` holding ``spec.json`` (what to run), ``status.json``
(state, progress, message, result or error; rewritten atomically), ``log.txt`` and, when asked to
stop, a ``cancel`` flag. :func:`submit` starts ``python -m core jobs run <id>`` in its own process
session, so a job survives browser refreshes and Streamlit reruns; :func:`run` is the one runner,
used by that process and by the CLI's foreground commands alike.
"""
from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from core.cache import default_cache_dir
from core.cluster import ray_address
from core.checkpoints import weights_file
from core.errors import ParameterError
from core.io import atomic_write
from core.progress import Cancelled, scaled

if TYPE_CHECKING:
    from core.train import TrainConfig

STATES = ("queued", "running", "done", "failed", "cancelled")
_KINDS: dict[str, Callable[[dict, Callable], Any]] = {}


# Modules (comma-separated) that declare more job kinds, imported where a job is made or run (the tests' kinds).
EXTENSIONS = "NORMSCOPE_JOB_MODULES"


def job_kind(name: str):
    """Register a function ``(params, progress) -> JSON-able result`` as a job kind."""
    def wrap(fn):
        _KINDS[name] = fn
        return fn
    return wrap


def job_function(kind: str) -> Callable[[dict, Callable], Any]:
    """The function of job kind ``kind``: NormScope's own, or one declared by a module that ``NORMSCOPE_JOB_MODULES``
    names (imported here, so the detached process that runs a job knows the kinds its maker knew)."""
    for module in filter(None, (m.strip() for m in os.environ.get(EXTENSIONS, "").split(","))):
        if kind not in _KINDS:
            try:
                importlib.import_module(module)
            except ImportError as e:
                raise ParameterError(f"{EXTENSIONS} names {module!r}, which cannot be imported ({e})") from None
    if kind not in _KINDS:
        raise ParameterError(f"unknown job kind {kind!r}; known: {sorted(_KINDS)}")
    return _KINDS[kind]


@job_kind("train")
def _train(params: dict, progress) -> dict:
    """One part: on a Ray cluster, a task retried and resumed where its worker dies (its progress shows when it
    ends)."""
    (meta,) = in_parts(train_part, [params], progress, gpus=float(str(params.get("device")).startswith("cuda")))
    return {"checkpoint": str(weights_file(params["out"])), "final_metrics": meta["final_metrics"]}


def train_part(params: dict, progress=None) -> dict:
    from core.train import TrainConfig, train

    return train(TrainConfig.from_dict(params["config"]), params["out"], progress=progress, device=params.get("device"))


@job_kind("evaluate")
def _evaluate(params: dict, progress) -> dict:
    """Registered experiments (``core.experiments.Evaluation`` dicts) computed into the result cache, a part per
    checkpoint (on a Ray cluster, which must share the cache folder, a task each)."""
    by_checkpoint: dict[str, list[dict]] = {}
    for d in params["evaluations"]:
        by_checkpoint.setdefault(d["path"], []).append(d)
    parts = in_parts(evaluate_part, list(by_checkpoint.values()), progress, params.get("cache"))
    return {"evaluations": sum(p["evaluations"] for p in parts), "checkpoints": len(parts)}


def evaluate_part(evaluations: list[dict], cache: str | None, progress=None) -> dict:
    from core.cache import ResultCache
    from core.experiments import Evaluation, RunContext, run_evaluations

    return run_evaluations([Evaluation.from_dict(d) for d in evaluations], RunContext(ResultCache(cache),
                                                                                      progress=progress))


def in_parts(fn: Callable, items: list, progress, *extra, gpus: float = 0) -> list:
    """``fn(item, *extra, progress)`` for each item: the one place a job meets Ray. With a Ray address
    (:mod:`core.cluster`) each item is a task on the cluster; else they run here, one after another, each on its
    slice of the job's progress."""
    if ray_address():
        progress(0.0, f"{len(items)} task(s) on the Ray cluster at {ray_address()}")
        return on_cluster(fn, items, progress, *extra, gpus=gpus)
    return [fn(item, *extra, scaled(progress, i / len(items), (i + 1) / len(items))) for i, item in enumerate(items)]


def on_cluster(fn: Callable, items: list, progress, *extra, gpus: float = 0) -> list:
    """``fn(item, *extra)`` for each item on the Ray cluster, the job's progress counting finished items; a cancel
    request (seen within 2 s) cancels the tasks still running."""
    from core.cluster import map_on_cluster

    results = []

    def report() -> None:  # raises Cancelled when the job is asked to stop: leaving the block cancels the rest
        progress(len(results) / len(items), f"{len(results)} of {len(items)} done on the cluster")

    with map_on_cluster(fn, items, ray_address(), gpus=gpus, extra_args=extra) as submitted:
        for result in submitted.as_finished(tick=report):
            results.append(result)
            report()
    return results


@dataclass
class Job:
    id: str
    directory: Path

    @property
    def status(self) -> dict:
        try:
            status = json.loads((self.directory / "status.json").read_text())
        except (OSError, ValueError):
            return {"state": "queued", "progress": 0.0, "message": ""}
        if status["state"] == "running" and not pid_alive(status.get("pid")):
            status |= {"state": "failed", "error": "the job's process ended without reporting (killed?)"}
        return status

    @property
    def spec(self) -> dict:
        return json.loads((self.directory / "spec.json").read_text())

    def log(self, tail: int = 50) -> str:
        path = self.directory / "log.txt"
        return "\n".join(path.read_text(errors="replace").splitlines()[-tail:]) if path.is_file() else ""

    def cancel(self) -> None:
        (self.directory / "cancel").touch()

    @property
    def cancel_requested(self) -> bool:
        return (self.directory / "cancel").exists()

    def write_status(self, **fields) -> None:
        status = {**self.status, **fields, "updated": time.time()}
        atomic_write(self.directory / "status.json", json.dumps(status).encode())


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie (finished, not yet reaped) counts as dead
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return True


def jobs_dir(root: Path | None = None) -> Path:
    return Path(root or default_cache_dir()) / "jobs"


def create(kind: str, params: dict, root: Path | None = None, title: str = "") -> Job:
    job_function(kind)  # an unknown kind is refused before its folder is made
    job = Job(f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}", jobs_dir(root))
    job.directory = job.directory / job.id
    job.directory.mkdir(parents=True)
    atomic_write(job.directory / "spec.json", json.dumps({"kind": kind, "params": params, "title": title}).encode())
    job.write_status(state="queued", progress=0.0, message="queued", created=time.time())
    return job


def submit(kind: str, params: dict, root: Path | None = None, title: str = "") -> Job:
    """Create a job and start it in a detached background process."""
    job = create(kind, params, root, title)
    start(job)
    return job


def start(job: Job) -> None:
    """``python -m core jobs run`` for ``job`` in its own process session: it outlives the process that started it
    (a server that stops or is killed)."""
    with open(job.directory / "log.txt", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "core", "jobs", "run", job.id, "--root", str(job.directory.parent.parent)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            cwd=Path(__file__).resolve().parents[1])
    threading.Thread(target=process.wait, daemon=True).start()  # reap it, so no zombie outlives the job


def resume(job: Job) -> Job:
    """Start again a job that ended unfinished (its process killed, a failure, a cancel): a training continues from
    its last finished epoch, an evaluation computes what the cache still lacks."""
    state = job.status["state"]
    if state in ("queued", "running", "done"):
        raise ParameterError(f"job {job.id} is {state}: only a failed or cancelled job resumes")
    (job.directory / "cancel").unlink(missing_ok=True)
    job.write_status(state="queued", message="resuming", error=None, pid=None)
    start(job)
    return job


def submit_training(config: "TrainConfig", root: Path | None = None) -> Job:
    """Train ``config`` in the background into the catalog's folder of trained models (listed once done)."""
    from core.catalog import safe_stem, trained_dir

    title = f"{config.arch}-{config.norm}-{config.dataset}-{config.preset}"
    out = trained_dir(root) / f"{safe_stem(title)}-{time.strftime('%Y%m%d-%H%M%S')}"
    return submit("train", {"config": config.to_dict(), "out": str(out)}, root, title)


def run(job: Job, echo: Callable[[float, str], None] | None = None) -> dict:
    """Run a job in this process, reporting progress to its status file (and to ``echo``)."""
    spec, last = job.spec, [0.0]
    job.write_status(state="running", pid=os.getpid(), started=time.time(), message="starting")

    def progress(fraction: float, message: str = "") -> None:
        if job.cancel_requested:
            raise Cancelled("cancelled by request")
        if echo:
            echo(fraction, message)
        if time.time() - last[0] > 0.5 or fraction >= 1:
            last[0] = time.time()
            job.write_status(progress=fraction, message=message)

    try:
        result = job_function(spec["kind"])(spec["params"], progress)
    except Cancelled:
        job.write_status(state="cancelled", message="cancelled", finished=time.time())
        return job.status
    except Exception as e:  # a job reports its failure in its status instead of dying silently
        job.write_status(state="failed", error=f"{type(e).__name__}: {e}", finished=time.time())
        raise
    job.write_status(state="done", progress=1.0, message="done", result=result, finished=time.time())
    return job.status


JOB_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")  # what create() names them: nothing else reaches the file system


def get(job_id: str, root: Path | None = None) -> Job:
    if not JOB_ID.fullmatch(job_id):
        raise ParameterError(f"{job_id!r} is not a job id (they look like 20261203-101500-3fa2c1)")
    directory = jobs_dir(root) / job_id
    if not (directory / "spec.json").is_file():
        raise ParameterError(f"no job {job_id!r} under {jobs_dir(root)}")
    return Job(job_id, directory)


def list_jobs(root: Path | None = None) -> list[Job]:
    """Every job, newest first."""
    base = jobs_dir(root)
    ids = sorted((p.name for p in base.iterdir() if (p / "spec.json").is_file()), reverse=True) if base.is_dir() else []
    return [Job(i, base / i) for i in ids]
