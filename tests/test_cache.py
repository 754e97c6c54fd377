"""The result cache: cached == recomputed, keys cover every input, corrupt entries are recomputed, a full disk
leaves no entry."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

import core.cache as cache_module
from core.attacks import paper_spec
from core.cache import MISSING, ResultCache, make_key
from core.io import read_json
from core.experiments import EvalData, RunContext
from core.robustness import LIGSConfig, RobustnessConfig, ligs_report, robustness

ROOT = Path(__file__).resolve().parents[1]


def test_cached_result_equals_recomputed(trained_pair, tmp_path):
    ckpt, data = trained_pair["bn"], EvalData("builtin", "test", 5)
    cache, config = ResultCache(tmp_path), RobustnessConfig(paper_spec("pgd_linf", steps=5), data)
    first = robustness(ckpt, config, RunContext(cache))
    assert cache.get(robustness.key(ckpt, config)) == first.to_dict()
    fresh = robustness(ckpt, config, RunContext(ResultCache(tmp_path / "other")))
    assert first == fresh == robustness(ckpt, config, RunContext(cache, cached_only=True))
    ligs = LIGSConfig(data=data)
    assert ligs_report(ckpt, ligs, RunContext(cache)) == ligs_report(ckpt, ligs, RunContext(ResultCache(tmp_path / "o2")))


def test_key_covers_function_checkpoint_config_and_code_version(monkeypatch):
    base = make_key("robustness", "a" * 64, paper_spec("pgd_l2"))
    assert base != make_key("ligs", "a" * 64, paper_spec("pgd_l2"))
    assert base != make_key("robustness", "b" * 64, paper_spec("pgd_l2"))
    assert base != make_key("robustness", "a" * 64, paper_spec("pgd_l2", steps=10))
    monkeypatch.setattr(cache_module, "CODE_VERSION", "999")
    assert base != make_key("robustness", "a" * 64, paper_spec("pgd_l2"))


def test_corrupt_entry_is_a_miss_and_dropped_not_raised(tmp_path):
    cache = ResultCache(tmp_path)
    key = make_key("f", "sha", {"x": 1})
    cache._cache.set(key, "{not json")
    assert cache.get(key) is MISSING and key not in cache._cache
    cache.set(key, {"v": 2})
    assert cache.get(key) == {"v": 2}


def test_corrupt_entry_is_recomputed_by_an_experiment(trained_pair, tmp_path):
    ckpt, cache = trained_pair["bn"], ResultCache(tmp_path)
    config = RobustnessConfig(paper_spec("fgsm"), EvalData("builtin", "test", 2))
    cache._cache.set(robustness.key(ckpt, config), "{not json")
    assert robustness(ckpt, config, RunContext(cache)).n == 20


def _writer(directory: str, worker: int) -> None:
    cache = ResultCache(directory)
    for i in range(50):
        cache.set(f"k{i}", {"worker": worker, "i": i})
        assert cache.get(f"k{i}")["i"] == i


def test_several_processes_share_one_cache(tmp_path):
    procs = [mp.get_context("spawn").Process(target=_writer, args=(str(tmp_path), w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    assert len(ResultCache(tmp_path)) == 50


def test_export_then_seed_restores_entries_without_overwriting(tmp_path):
    source, target = ResultCache(tmp_path / "a"), ResultCache(tmp_path / "b")
    source.set("robustness:1", {"v": 1})
    source.set("ligs:2", {"v": 2})
    source.set("other:3", {"v": 3})
    assert source.export(tmp_path / "seed.json", ("robustness:", "ligs:")) == 2
    target.set("ligs:2", {"v": "kept"})
    assert target.seed(tmp_path / "seed.json") == 1
    assert target.get("robustness:1") == {"v": 1} and target.get("ligs:2") == {"v": "kept"}
    assert target.get("other:3") is MISSING and target.seed(tmp_path / "missing.json") == 0


def test_export_can_keep_only_some_checkpoints(tmp_path):
    cache = ResultCache(tmp_path)
    cache.set("robustness:1", {"checkpoint": {"sha256": "zoo"}})
    cache.set("robustness:2", {"checkpoint": {"sha256": "upload"}})
    assert cache.export(tmp_path / "seed.json", checkpoints={"zoo"}) == 1
    assert list(__import__("json").loads((tmp_path / "seed.json").read_text())) == ["robustness:1"]


FULL_DISK = """
import json, os, resource, signal, sys
from core.cache import CacheWriteError, ResultCache
cache = ResultCache(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG instead of killing
sizes = [os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(sys.argv[1]) for f in files]
resource.setrlimit(resource.RLIMIT_FSIZE, (max(sizes) + 1024,) * 2)  # the disk is as good as full
outcome = {}
for key, size in (("large", 200_000), ("small", 5_000)):  # diskcache keeps one in a file, the other in SQLite
    try:
        cache.set(key, {"x": "y" * size})
        outcome[key] = "stored"
    except CacheWriteError as e:
        outcome[key] = str(e)
print(json.dumps(outcome))
"""


def test_a_full_disk_is_a_clear_error_and_leaves_no_entry(tmp_path):
    cache = ResultCache(tmp_path)
    cache.set("before", {"kept": True})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", FULL_DISK, str(tmp_path)], capture_output=True, text=True, env=env,
                         timeout=120)
    outcome = json.loads(run.stdout)
    for key in ("large", "small"):
        assert "cannot store a result in the cache" in outcome[key] and "computed but not kept" in outcome[key]
    again = ResultCache(tmp_path)  # as the next process opens it
    assert again.get("large") is MISSING and again.get("small") is MISSING
    assert again.get("before") == {"kept": True}
    again.set("after", {"fine": 1})  # with room again, the cache works on
    assert again.get("after") == {"fine": 1} and len(again) == 2


def test_the_generation_moves_on_with_every_store_and_never_back(tmp_path):
    """A view built from the cache is current while the generation holds (the Overview's shared scoreboard)."""
    cache = ResultCache(tmp_path)
    assert cache.generation == 0
    cache.set("a", {"x": 1})
    cache.set("b", {"x": 2})
    assert cache.generation == 2 and len(cache) == 2 and ResultCache(tmp_path).generation == 2  # every process
    assert cache.export(tmp_path / "out.json") == 2 and set(read_json(tmp_path / "out.json")) == {"a", "b"}
    assert cache.clear() == 2 and len(cache) == 0 and cache.generation == 3
    cache.set("a", {"x": 1})
    assert cache.generation == 4


def test_the_generation_is_never_evicted_with_the_results(tmp_path):
    """Over its size limit the cache evicts old results, never the count: a restarted count could equal the one a
    shown view was built at."""
    cache = ResultCache(tmp_path, size_limit=1)  # every store evicts what it can
    for i in range(30):
        cache.set(f"r{i}", {"x": "y" * 1000})
    assert len(cache) < 30 and cache.generation == 30


def test_an_earlier_versions_counter_among_the_results_is_not_a_result(tmp_path):
    cache = ResultCache(tmp_path)
    cache.set("a", {"x": 1})
    cache._cache.set("__generation__", 7)  # where versions up to 2026-12-05 kept the count
    assert len(cache) == 1 and cache.export(tmp_path / "out.json") == 1
    assert cache.clear() == 1 and len(cache) == 0  # one result dropped, the old counter with it
