"""Background jobs: run detached, report progress, cancel cleanly, report failures, survive their server and
resume after a kill."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from core import jobs
from core.checkpoints import weights_file
from core.train import preset

ROOT = Path(__file__).resolve().parents[1]


def wait(job, states=("done", "failed", "cancelled"), timeout=60.0):
    end = time.time() + timeout
    while time.time() < end:
        if job.status["state"] in states:
            return job.status
        time.sleep(0.2)
    raise AssertionError(f"job stuck in {job.status}")


def test_background_job_runs_to_completion(tmp_path):
    job = jobs.submit("sleep", {"steps": 3, "seconds": 0.05}, root=tmp_path)
    status = wait(job)
    assert status["state"] == "done" and status["result"] == {"steps": 3} and status["progress"] == 1.0
    assert [j.id for j in jobs.list_jobs(tmp_path)] == [job.id]


def test_cancelled_job_stops(tmp_path):
    job = jobs.submit("sleep", {"steps": 10_000, "seconds": 0.05}, root=tmp_path)  # 500 s unless cancelled
    wait(job, ("running",))
    job.cancel()
    status = wait(job)
    assert status["state"] == "cancelled" and status["progress"] < 1 and "result" not in status, status


def test_cancelled_training_job_leaves_no_checkpoint(tmp_path):
    from core.train import preset
    config = preset("tiny", arch="vgg11", norm="bn", epochs=50, train_subset=1000, probe_per_class=2, probe_steps=1)
    out = tmp_path / "model"
    job = jobs.submit("train", {"config": config.to_dict(), "out": str(out)}, root=tmp_path)
    wait(job, ("running",))
    time.sleep(1.0)
    job.cancel()
    status = wait(job, timeout=120)
    assert status["state"] == "cancelled" and status["progress"] < 1, status
    assert not out.with_suffix(".safetensors").exists() and not out.with_suffix(".json").exists()


def test_failing_job_reports_its_error(tmp_path):
    job = jobs.create("train", {"config": {"arch": "nonexistent"}, "out": str(tmp_path / "x")}, root=tmp_path)
    with pytest.raises(ValueError, match="unknown architecture 'nonexistent'"):
        jobs.run(job)
    assert job.status["state"] == "failed" and "nonexistent" in job.status["error"]


def test_training_job_refuses_zero_epochs_like_the_cli(tmp_path):
    from core.train import preset

    job = jobs.create("train", {"config": {**preset("tiny").to_dict(), "epochs": 0}, "out": str(tmp_path / "x")},
                      root=tmp_path)
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        jobs.run(job)
    assert job.status["state"] == "failed" and not (tmp_path / "x.safetensors").exists()


def test_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown job kind"):
        jobs.create("mine-bitcoin", {}, root=tmp_path)


def test_evaluate_job_leaves_the_foreground_results_in_the_cache(trained_pair, tmp_path):
    from core.attacks import paper_spec
    from core.cache import ResultCache
    from core.experiments import EvalData, Evaluation, RunContext
    from core.metrics import LIGSSpec
    from core.robustness import LIGSConfig, RobustnessConfig, ligs_report, robustness

    ckpt, data = trained_pair["bn"], EvalData("builtin", "test", 3)
    attack, spec = RobustnessConfig(paper_spec("pgd_l2", steps=4), data), LIGSConfig(LIGSSpec(size=0.02), data)
    evaluations = [Evaluation.of(ckpt, robustness, attack), Evaluation.of(ckpt, ligs_report, spec)]
    job = jobs.submit("evaluate", {"evaluations": [e.to_dict() for e in evaluations], "cache": str(tmp_path)},
                      root=tmp_path)
    status = wait(job, timeout=120)
    assert status["state"] == "done" and status["result"] == {"evaluations": 2, "checkpoints": 1}, status
    cached, fresh = RunContext(ResultCache(tmp_path), cached_only=True), RunContext(ResultCache(tmp_path / "fresh"))
    assert robustness(ckpt, attack, cached) == robustness(ckpt, attack, fresh)
    assert ligs_report(ckpt, spec, cached) == ligs_report(ckpt, spec, fresh)


def test_a_training_job_killed_mid_epoch_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path):
    """SIGKILL, not a polite cancel: the process dies in its second epoch, and ``resume`` continues it from the
    state its first epoch left."""
    config = preset("tiny", arch="vgg11", norm="bn", epochs=2, train_subset=1000, probe_per_class=2)
    straight = jobs.submit_training(config, root=tmp_path / "straight")
    killed = jobs.submit_training(config, root=tmp_path / "killed")
    out = Path(killed.spec["params"]["out"])
    deadline = time.time() + 300
    while not out.with_name(out.name + ".state.pt").is_file() and time.time() < deadline:
        time.sleep(0.05)
    os.kill(killed.status["pid"], signal.SIGKILL)
    status = wait(killed)
    assert status["state"] == "failed" and "killed" in status["error"]
    assert wait(jobs.resume(killed), timeout=300)["state"] == "done"
    assert wait(straight, timeout=300)["state"] == "done"
    a = load_file(weights_file(straight.spec["params"]["out"]))
    b = load_file(weights_file(killed.spec["params"]["out"]))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="only a failed or cancelled job resumes"):
        jobs.resume(killed)


def test_a_job_outlives_the_server_that_started_it_and_the_next_one_lists_it(tmp_path):
    server = subprocess.Popen([sys.executable, "-c", SERVER.format(root=str(tmp_path))], stdout=subprocess.PIPE,
                              text=True, cwd=ROOT)
    job_id = server.stdout.readline().strip()
    server.send_signal(signal.SIGKILL)  # the server dies while its job runs
    server.wait()
    job = jobs.get(job_id, tmp_path)
    assert job.status["state"] in ("queued", "running")
    assert wait(job)["state"] == "done"
    assert [j.id for j in jobs.list_jobs(tmp_path)] == [job_id]  # what the next server lists


SERVER = """
import time
from core import jobs
job = jobs.submit("sleep", {{"steps": 20, "seconds": 0.1}}, root="{root}")
print(job.id, flush=True)
time.sleep(120)
"""


def test_a_kind_declared_outside_core_runs_where_its_module_is_named_and_a_bad_name_is_one_line(monkeypatch):
    """``sleep`` is the tests' (tests/job_kinds.py), found through NORMSCOPE_JOB_MODULES; core ships no test kind."""
    assert "sleep" not in open(jobs.__file__).read()
    assert jobs.job_function("sleep").__module__ == "tests.job_kinds"
    monkeypatch.setenv(jobs.EXTENSIONS, "tests.no_such_module")
    with pytest.raises(ValueError, match="NORMSCOPE_JOB_MODULES names 'tests.no_such_module'"):
        jobs.job_function("nap")
