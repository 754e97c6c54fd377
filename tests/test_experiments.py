"""core.experiments: one declaration per experiment, its key, the MISSING sentinel, cached == recomputed,
lookups without weights, and background jobs running a registered experiment by name."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace

import pytest

from core import jobs
from core.attacks import paper_spec
from core.cache import MISSING, ResultCache, make_key
from core.catalog import list_checkpoints, zoo_results
from core.io import read_json
from core.experiments import (EXPERIMENTS, EvalData, Evaluation, RunContext, experiment, get_experiment, registry,
                              run_evaluations, stores)
from core.metrics import LIGSSpec
from core.records import Record, RecordError
from core.zoo import LANDSCAPE_GROUP
from core.robustness import (LIGSConfig, RobustnessConfig, TABLE_ATTACKS, ligs_report, paper_table_row, robustness,
                             robustness_sweep)

DATA = EvalData("builtin", "test", 2)


@dataclass(frozen=True)
class CountConfig:
    data: EvalData = DATA
    offset: int = 0


@dataclass(frozen=True, kw_only=True)
class Count(Record):
    value: int


@dataclass(frozen=True, kw_only=True)
class Outcomes(Record):
    accuracy: float
    correct: list[bool] | None = None


@pytest.fixture
def counting():
    """A toy experiment counting its computations; removed from the registry afterwards."""
    calls = []

    @experiment("test_count", CountConfig, "counts test images (tests only)")
    def count(checkpoint, config: CountConfig, run: RunContext) -> Count:
        calls.append(config)
        return Count(value=config.data.per_class * 10 + config.offset)

    yield count, calls
    del EXPERIMENTS["test_count"]


def test_registry_lists_the_declared_experiments_by_name():
    assert {"robustness", "ligs", "gallery"} <= set(registry())
    assert get_experiment("robustness") is robustness and robustness.config_type is RobustnessConfig
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        get_experiment("nope")


def test_declaring_a_name_twice_is_refused(counting):
    with pytest.raises(ValueError, match="declared twice"):
        experiment("test_count", CountConfig, "again")(lambda c, cfg, run: {})


def test_a_command_needs_its_summary():
    def compute(checkpoint, config: CountConfig, run: RunContext) -> Count:
        return Count(value=0)

    with pytest.raises(TypeError, match="needs its text summary"):
        experiment("test_commanded", CountConfig, "a command without text", command="commanded")(compute)
    assert "test_commanded" not in EXPERIMENTS


def test_an_experiment_must_return_a_record_type():
    def untyped(checkpoint, config: CountConfig, run: RunContext) -> dict:
        return {}

    with pytest.raises(TypeError, match="Record subclass"):
        experiment("test_untyped", CountConfig, "returns a dict")(untyped)
    assert "test_untyped" not in EXPERIMENTS


def test_key_is_name_sha_and_config_with_auto_resolved(trained_pair):
    ckpt = trained_pair["bn"]
    config = RobustnessConfig(paper_spec("pgd_l2"), EvalData("auto", "test", 3))
    resolved = RobustnessConfig(paper_spec("pgd_l2"), EvalData("builtin", "test", 3))  # the checkpoint's dataset
    assert robustness.key(ckpt, config) == make_key("robustness", ckpt.sha256, resolved)
    assert robustness.key(ckpt, config) != ligs_report.key(ckpt, LIGSConfig(data=config.data))
    assert robustness.key(ckpt, config) != robustness.key(ckpt, replace(config, attack=paper_spec("pgd_l2", steps=3)))


def test_miss_is_the_sentinel_and_a_hit_computes_once(counting, trained_pair, tmp_path):
    count, calls = counting
    ckpt, cache = trained_pair["bn"], ResultCache(tmp_path)
    assert count(ckpt, CountConfig(), RunContext(cache, cached_only=True)) is MISSING and calls == []
    first = count(ckpt, CountConfig(), RunContext(cache))
    assert first.value == 20 and first.dataset == "builtin" and first.checkpoint.sha256 == ckpt.sha256
    assert first.config == CountConfig(EvalData("builtin", "test", 2)) and isinstance(first, Count)
    assert count(ckpt, CountConfig(), RunContext(cache)) == first and len(calls) == 1
    assert count(ckpt, CountConfig(offset=1), RunContext(cache)).value == 21 and len(calls) == 2


def test_refresh_computes_a_cached_result_again_and_stores_the_new_one(counting, trained_pair, tmp_path):
    count, calls = counting
    ckpt, cache = trained_pair["bn"], ResultCache(tmp_path)
    first = count(ckpt, CountConfig(), RunContext(cache))
    assert count(ckpt, CountConfig(), RunContext(cache, refresh=True)) == first and len(calls) == 2
    assert count(ckpt, CountConfig(), RunContext(cache)) == first and len(calls) == 2  # stored, read again


def test_a_stored_result_that_no_longer_fits_its_record_is_computed_again(counting, trained_pair, tmp_path):
    count, calls = counting
    ckpt, cache = trained_pair["bn"], ResultCache(tmp_path)
    cache.set(count.key(ckpt, CountConfig()), {"total": 20})  # as a version with other fields stored it
    assert count(ckpt, CountConfig(), RunContext(cache, cached_only=True)) is MISSING
    assert count(ckpt, CountConfig(), RunContext(cache)).value == 20 and len(calls) == 1


def test_records_round_trip_through_their_stored_form(counting, trained_pair, tmp_path):
    count, _ = counting
    first = count(trained_pair["bn"], CountConfig(), RunContext(ResultCache(tmp_path)))
    stored = first.to_dict()
    assert stored["config"]["__type__"] == "CountConfig" and stored["checkpoint"]["sha256"] == first.checkpoint.sha256
    assert Count.from_dict(stored, CountConfig) == first and json.loads(json.dumps(stored)) == stored
    with pytest.raises(RecordError, match="does not fit"):
        Count.from_dict({"total": 1})


def test_a_result_cached_before_its_outcomes_is_shown_cached_only_and_computed_again_otherwise(trained_pair, tmp_path):
    """A result that lacks the per-image fields its experiment now stores (``current=stores(...)``)."""
    calls = []

    @experiment("test_outcomes", CountConfig, "stores per-image outcomes (tests only)", current=stores("correct"))
    def with_outcomes(checkpoint, config: CountConfig, run: RunContext) -> Outcomes:
        calls.append(config)
        return Outcomes(accuracy=0.5, correct=[True, False])

    try:
        ckpt, cache = trained_pair["bn"], ResultCache(tmp_path)
        old = {"accuracy": 0.5}  # as an earlier version cached it
        cache.set(with_outcomes.key(ckpt, CountConfig()), old)
        assert with_outcomes(ckpt, CountConfig(), RunContext(cache, cached_only=True)) == Outcomes(accuracy=0.5)
        assert calls == []
        fresh = with_outcomes(ckpt, CountConfig(), RunContext(cache))
        assert fresh.correct == [True, False] and len(calls) == 1
        assert with_outcomes(ckpt, CountConfig(), RunContext(cache)) == fresh and len(calls) == 1
    finally:
        del EXPERIMENTS["test_outcomes"]


def test_wrong_config_type_is_refused(trained_pair):
    with pytest.raises(TypeError, match="robustness takes a RobustnessConfig"):
        robustness(trained_pair["bn"], LIGSConfig(), RunContext(cached_only=True))


def test_cached_equals_recomputed(trained_pair, tmp_path):
    ckpt, config = trained_pair["none"], LIGSConfig(LIGSSpec(size=0.02), DATA)
    cached = ligs_report(ckpt, config, RunContext(ResultCache(tmp_path / "a")))
    assert ligs_report(ckpt, config, RunContext(ResultCache(tmp_path / "a"), cached_only=True)) == cached
    assert ligs_report(ckpt, config, RunContext(ResultCache(tmp_path / "b"))) == cached


def test_lookup_needs_no_weights_only_sha_and_dataset(trained_pair, tmp_path):
    ckpt, cache = trained_pair["bn"], ResultCache(tmp_path)
    config = RobustnessConfig(paper_spec("fgsm"), EvalData(per_class=2))  # "auto": the subject's dataset
    result = robustness(ckpt, config, RunContext(cache))
    listed = Evaluation.of(ckpt, robustness, config)
    ghost = replace(listed, path=str(tmp_path / "gone.safetensors"))  # the weights are not even on disk

    def refuse(subject):
        raise AssertionError("a cache hit must not load weights")

    assert ghost.run(RunContext(cache, load=refuse)) == result


def test_a_changed_file_is_refused_not_cached_under_the_old_hash(trained_pair, tmp_path):
    ckpt = trained_pair["bn"]
    stale = replace(Evaluation.of(ckpt, robustness, RobustnessConfig(paper_spec("fgsm"), DATA)), sha256="0" * 64)
    with pytest.raises(ValueError, match="changed on disk"):
        stale.run(RunContext(ResultCache(tmp_path)))


def test_composites_are_missing_until_complete(trained_pair, tmp_path):
    ckpt, cache = trained_pair["bn"], ResultCache(tmp_path)
    lookup = RunContext(cache, cached_only=True)
    spec = paper_spec("pgd_l2", steps=2)
    assert robustness_sweep(ckpt, spec, [0.0, 0.5], DATA, lookup) is MISSING
    robustness(ckpt, RobustnessConfig(spec.with_eps(0.0), DATA), RunContext(cache))
    assert robustness_sweep(ckpt, spec, [0.0, 0.5], DATA, lookup) is MISSING  # one point of two
    curve = robustness_sweep(ckpt, spec, [0.0, 0.5], DATA, RunContext(cache))
    assert [p.eps for p in curve] == [0.0, 0.5] and curve[0].robust_accuracy == curve[0].clean_accuracy
    assert paper_table_row(ckpt, DATA, lookup) is MISSING


def test_table_row_collects_the_paper_attacks_and_ligs(trained_pair, tmp_path):
    row = paper_table_row(trained_pair["none"], DATA, RunContext(ResultCache(tmp_path)))
    assert set(TABLE_ATTACKS) <= set(row) and row["n"] == 20 and 0 <= row["ligs"] <= 1


def test_evaluation_round_trips_through_json():
    for e in (Evaluation("robustness", RobustnessConfig(paper_spec("cw_l2", steps=3), DATA), "m.safetensors", "a" * 64),
              Evaluation("ligs", LIGSConfig(LIGSSpec("pgd", 0.02)), "m.safetensors", "b" * 64, "builtin")):
        assert Evaluation.from_dict(json.loads(json.dumps(e.to_dict()))) == e
    with pytest.raises(ValueError, match="unknown experiment"):
        Evaluation.from_dict({**e.to_dict(), "experiment": "mine-bitcoin"})


def test_run_evaluations_loads_each_file_once(trained_pair, tmp_path):
    ckpt, loads = trained_pair["bn"], []

    def load(subject):
        loads.append(subject.path)
        return ckpt

    evaluations = [Evaluation.of(ckpt, robustness, RobustnessConfig(paper_spec(a, steps=1), DATA))
                   for a in ("pgd_l2", "pgd_linf")] + [Evaluation.of(ckpt, ligs_report, LIGSConfig(data=DATA))]
    assert run_evaluations(evaluations, RunContext(ResultCache(tmp_path), load=load)) == {
        "evaluations": 3, "checkpoints": 1}
    assert loads == [str(ckpt.path)]


def test_a_job_runs_a_registered_experiment_by_name(trained_pair, tmp_path):
    ckpt = trained_pair["none"]
    request = Evaluation.of(ckpt, get_experiment("gallery"), get_experiment("gallery").config_type(
        paper_spec("fgsm"), DATA))
    job = jobs.create("evaluate", {"evaluations": [request.to_dict()], "cache": str(tmp_path)}, root=tmp_path)
    assert jobs.run(job)["state"] == "done"
    assert request.run(RunContext(ResultCache(tmp_path), cached_only=True)) == request.run(
        RunContext(ResultCache(tmp_path / "fresh")))


def test_shipped_results_are_found_under_the_catalogs_keys():
    """The zoo's precomputed results seed the cache: every cifar10-jpeg zoo model's Table 1 row is there (the
    App. I runs, 300 steps each, are shipped for their training landscape, not as Table 1 models)."""
    shipped = read_json(zoo_results())
    zoo = [e for e in list_checkpoints() if e.source == "zoo" and e.dataset == "cifar10-jpeg"
           and e.group != LANDSCAPE_GROUP]
    assert zoo
    for entry in zoo:
        data = EvalData(entry.dataset)
        keys = [robustness.key(entry, RobustnessConfig(paper_spec(a), data)) for a in TABLE_ATTACKS]
        assert all(k in shipped for k in keys + [ligs_report.key(entry, LIGSConfig(data=data))]), entry.name


def test_every_shipped_result_is_keyed_by_the_config_it_records():
    """Config fields added later (``later_option``: attack and LIGS precision, training precision / compile)
    must leave every key made before them unchanged, or the shipped results would never be found."""
    from core.config import config_from_dict

    shipped, experiments = read_json(zoo_results()), registry()
    for key, result in shipped.items():
        name = key.split(":")[0]
        config = config_from_dict(experiments[name].config_type, result["config"])
        assert make_key(name, result["checkpoint"]["sha256"], config) == key, key


def test_every_shipped_result_reads_as_its_record_and_is_stored_back_unchanged():
    shipped, experiments = read_json(zoo_results()), registry()
    for key, stored in shipped.items():
        declared = experiments[key.split(":")[0]]
        record = declared.read(stored)
        assert isinstance(record, declared.result_type), key
        assert record.to_dict() == stored, key
