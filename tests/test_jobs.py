"""Background jobs: run detached, report progress, cancel cleanly, and report failures."""
from __future__ import annotations

import time

import pytest

from core import jobs


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
    job = jobs.submit("sleep", {"steps": 200, "seconds": 0.05}, root=tmp_path)
    wait(job, ("running",))
    job.cancel()
    assert wait(job)["state"] == "cancelled"


def test_cancelled_training_job_leaves_no_checkpoint(tmp_path):
    from core.train import preset
    config = preset("tiny", arch="vgg11", norm="bn", epochs=50, train_subset=1000, probe_per_class=2, probe_steps=1)
    out = tmp_path / "model"
    job = jobs.submit("train", {"config": config.to_dict(), "out": str(out)}, root=tmp_path)
    wait(job, ("running",))
    time.sleep(1.0)
    job.cancel()
    assert wait(job, timeout=120)["state"] == "cancelled"
    assert not out.with_suffix(".safetensors").exists() and not out.with_suffix(".json").exists()


def test_failing_job_reports_its_error(tmp_path):
    job = jobs.create("train", {"config": {"arch": "nonexistent"}, "out": str(tmp_path / "x")}, root=tmp_path)
    with pytest.raises(Exception):
        jobs.run(job)
    assert job.status["state"] == "failed" and "nonexistent" in job.status["error"]


def test_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown job kind"):
        jobs.create("mine-bitcoin", {}, root=tmp_path)


def test_evaluation_round_trips_through_json_and_needs_one_measurement():
    import json

    from core.attacks import paper_spec
    from core.experiments import EvalData, Evaluation
    from core.metrics import LIGSSpec

    for e in (Evaluation("m.safetensors", attack=paper_spec("cw_l2", steps=3), data=EvalData("builtin", "test", 2)),
              Evaluation("m.safetensors", ligs=LIGSSpec("pgd", 0.02))):
        assert Evaluation.from_dict(json.loads(json.dumps(e.to_dict()))) == e
    with pytest.raises(ValueError, match="exactly one"):
        Evaluation("m.safetensors")


def test_evaluate_job_leaves_the_foreground_results_in_the_cache(trained_pair, tmp_path):
    from core.attacks import paper_spec
    from core.cache import ResultCache
    from core.experiments import EvalData, Evaluation, ligs_report, robustness
    from core.metrics import LIGSSpec

    ckpt, data = trained_pair["bn"], EvalData("builtin", "test", 3)
    attack, spec = paper_spec("pgd_l2", steps=4), LIGSSpec(size=0.02)
    evaluations = [Evaluation(str(ckpt.path), attack=attack, data=data), Evaluation(str(ckpt.path), ligs=spec, data=data)]
    job = jobs.submit("evaluate", {"evaluations": [e.to_dict() for e in evaluations], "cache": str(tmp_path)},
                      root=tmp_path)
    status = wait(job, timeout=120)
    assert status["state"] == "done" and status["result"] == {"evaluations": 2, "checkpoints": 1}, status
    cache = ResultCache(tmp_path)
    assert robustness(ckpt, attack, data, cache, cached_only=True) == robustness(ckpt, attack, data, ResultCache(
        tmp_path / "fresh"))
    assert ligs_report(ckpt, spec, data, cache, cached_only=True) == ligs_report(ckpt, spec, data, ResultCache(
        tmp_path / "fresh"))
