"""core.planning: a page's work is what is missing plus what it requires, in order, each once; and a plan's
remaining work, run as a background job runs it, completes the page."""
from __future__ import annotations

from dataclasses import replace

import pytest

from core.attacks import paper_spec
from core.cache import ResultCache
from core.experiments import EvalData, RunContext, run_evaluations
from core.planning import plan
from core.transfer import matrix_requests, transfer_matrix

DATA = EvalData("builtin", "test", 2)
ATTACK = replace(paper_spec("ifgsm"), steps=2)


@pytest.fixture
def pair(trained_pair):
    return [trained_pair["none"], trained_pair["bn"]]


def names(evaluations) -> list[tuple[str, str]]:
    return [(e.experiment, e.name) for e in evaluations]


def test_each_missing_cell_comes_after_its_sources_examples_made_once(pair, tmp_path):
    none, bn = pair
    work = plan(matrix_requests([none], pair, ATTACK, DATA), RunContext(ResultCache(tmp_path)), subjects=[none])
    assert work.found == {} and work.missing == [(0, 0), (0, 1)]
    assert names(work.remaining) == [("transfer_examples", none.name), ("transfer", none.name), ("transfer", bn.name)]


def test_cached_prerequisites_and_results_leave_nothing_to_do(pair, tmp_path):
    run = RunContext(ResultCache(tmp_path))
    requests = matrix_requests(pair[:1], pair[:1], ATTACK, DATA)
    transfer_matrix(pair[:1], pair[:1], ATTACK, DATA, run)
    done = plan(requests, run, subjects=pair[:1])
    assert done.remaining == [] and done.missing == [] and set(done.found) == {(0, 0)}
    widened = plan(matrix_requests(pair[:1], pair, ATTACK, DATA), run, subjects=pair[:1])
    assert names(widened.remaining) == [("transfer", pair[1].name)]  # the examples are cached: not made again


def test_remaining_work_run_as_a_job_fills_the_plan(pair, tmp_path):
    run = RunContext(ResultCache(tmp_path))
    requests = matrix_requests(pair, pair, ATTACK, DATA)
    run_evaluations(plan(requests, run, subjects=pair).remaining, run)
    assert plan(requests, run, subjects=pair).missing == []


def test_a_prerequisite_on_a_checkpoint_not_given_is_a_clear_error(pair, tmp_path):
    with pytest.raises(ValueError, match="not among the models given"):
        plan(matrix_requests(pair[:1], pair[1:], ATTACK, DATA), RunContext(ResultCache(tmp_path)))


def test_a_plan_names_the_models_read_on_other_pixels_than_they_were_trained_on():
    from core.experiments import Evaluation
    from core.planning import Plan
    from core.robustness import RobustnessConfig

    def request(name: str, trained_on: str, read_on: str) -> Evaluation:
        return Evaluation("robustness", RobustnessConfig(ATTACK, EvalData(read_on)), f"up/{name}.safetensors", name * 8,
                          trained_on)
    work = Plan({"a": request("published", "cifar10", "cifar10-jpeg"),
                 "b": request("zoo", "cifar10-jpeg", "cifar10-jpeg"), "c": request("mine", "unknown", "cifar10-jpeg")},
                {}, [])
    (shift, models), = work.data_shifts.items()
    assert models == ["published" * 8] and "91.8" in shift and "genuine CIFAR-10, evaluated on cifar10-jpeg" in shift
