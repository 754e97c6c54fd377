"""Scale-out on Ray (core/cluster.py): two tiny zoo models trained on a local 2-worker Ray instance, one worker
killed mid-training, give the weights of a local run. Needs requirements-ray.txt; skipped without Ray."""
from __future__ import annotations

import importlib.util
import os
import re
import sys
import signal
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from core import cluster, jobs
from core.cache import MISSING, ResultCache
from core.catalog import list_checkpoints
from core.progress import Cancelled
from core.experiments import EvalData, Evaluation, RunContext, get_experiment
from core.robustness import LIGSConfig
from core.train import preset
from core.zoo import train_entry

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="needs Ray: pip install -r requirements-ray.txt")

NAMES = ["builtin-vgg11-none", "builtin-vgg11-bn"]  # the zoo plan's tiny pair
SHORTER = {"epochs": 2}  # the plan's tiny preset in 2 epochs of its 6: the kill lands in the second


@pytest.fixture(scope="module")
def local_ray():
    threads = torch.get_num_threads()
    ray = cluster.connect("local", cpus=2)
    yield ray
    ray.shutdown()
    torch.set_num_threads(threads)


def worker_pids(log: Path) -> list[int]:
    return [int(p) for p in re.findall(r" pid (\d+)", log.read_text())] if log.is_file() else []


def kill_mid_training(runs: Path, name: str, timeout: float = 300) -> int:
    """SIGKILL the worker training ``name`` once it has finished an epoch (its resume state exists)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (runs / f"{name}.state.pt").is_file() and worker_pids(runs / f"{name}.log"):
            pid = worker_pids(runs / f"{name}.log")[-1]
            os.kill(pid, signal.SIGKILL)
            return pid
        time.sleep(0.2)
    raise AssertionError(f"{name} never finished an epoch")


@needs_ray
def test_a_killed_worker_resumes_and_the_weights_equal_a_local_run(tmp_path, local_ray):
    local, runs = tmp_path / "local", tmp_path / "cluster"
    local.mkdir(), runs.mkdir()
    results = cluster.map_on_cluster(train_entry, NAMES, "local", extra_args=(runs, 1), extra_kwargs=SHORTER)
    killed = kill_mid_training(runs, NAMES[1])
    assert sorted(results) == sorted(NAMES)
    pids = worker_pids(runs / f"{NAMES[1]}.log")
    assert len(pids) == 2 and pids[0] == killed and pids[1] != killed  # retried on another worker process
    assert not (runs / f"{NAMES[1]}.safetensors").stat().st_size == 0
    for name in NAMES:
        train_entry(name, local, 1, **SHORTER)
        here, there = load_file(local / f"{name}.safetensors"), load_file(runs / f"{name}.safetensors")
        assert here.keys() == there.keys() and all(torch.equal(here[k], there[k]) for k in here), name


@needs_ray
def test_background_jobs_run_their_work_on_the_cluster(tmp_path, local_ray, monkeypatch):
    """With NORMSCOPE_RAY_ADDRESS, an evaluation job's checkpoints and a training job run as Ray tasks; their
    results land where a local job's do (the result cache, the trained folder)."""
    monkeypatch.setenv("NORMSCOPE_RAY_ADDRESS", "local")
    submitted = []
    real = cluster.map_on_cluster
    monkeypatch.setattr(cluster, "map_on_cluster", lambda fn, items, *a, **kw: submitted.append(
        (fn.__name__, len(items))) or real(fn, items, *a, **kw))
    cache = ResultCache(tmp_path / "cache")
    pair = [e for e in list_checkpoints(tmp_path) if e.name in NAMES]  # the shipped zoo's
    assert len(pair) == 2
    requests = [Evaluation.of(entry, get_experiment("ligs"), LIGSConfig(data=EvalData("builtin", per_class=2)))
                for entry in pair]
    evaluate = jobs.create("evaluate", {"evaluations": [r.to_dict() for r in requests], "cache": str(tmp_path / "cache")},
                           root=tmp_path)
    assert jobs.run(evaluate)["result"] == {"evaluations": 2, "checkpoints": 2}
    assert all(r.run(RunContext(cache, cached_only=True)) is not MISSING for r in requests)
    config = preset("tiny", arch="vgg11", norm="bn", epochs=1, train_subset=500, probe_per_class=1)
    training = jobs.create("train", {"config": config.to_dict(), "out": str(tmp_path / "trained" / "m")}, root=tmp_path)
    status = jobs.run(training)
    assert status["state"] == "done" and Path(status["result"]["checkpoint"]).is_file()
    assert submitted == [("evaluate_part", 2), ("train_part", 1)]  # one task per checkpoint, one training


@needs_ray
def test_a_cancelled_job_cancels_its_tasks_on_the_cluster(local_ray, monkeypatch):
    monkeypatch.setenv("NORMSCOPE_RAY_ADDRESS", "local")
    started, both_ran = time.monotonic(), []

    def cancelled_once_both_run(fraction: float, message: str = "") -> None:
        both_ran.append(local_ray.available_resources().get("CPU", 0) == 0)  # each task holds a CPU
        if both_ran[-1] or time.monotonic() - started > 60:
            raise Cancelled("cancelled by request")

    with pytest.raises(Cancelled):
        jobs.on_cluster(lambda seconds: time.sleep(seconds), [600, 600], cancelled_once_both_run)  # ten minutes each
    assert both_ran[-1]
    deadline = time.monotonic() + 60
    while local_ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert local_ray.available_resources().get("CPU", 0) == 2  # both freed long before their ten minutes


def test_ray_configured_but_not_installed_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an import of a missing package raises
    with pytest.raises(cluster.ClusterError, match="requirements-ray.txt"):
        cluster.connect("local")
