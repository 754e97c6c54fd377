"""The zoo's plans as issue 38 asks for them, and the training runs that outlive a machine: a run's resume state
parked in the repository comes back where the machine has no later one, and a shipped model is not trained again."""
from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from core.zoo import EVIDENCE_GROUP, EVIDENCE_PLAN, EVIDENCE_SEEDS

ROOT = Path(__file__).resolve().parents[1]


def test_the_evidence_pairs_differ_only_in_normalization_and_seed_and_train_as_the_paper():
    configs = {(e.config.norm, e.config.seed): e.config for e in EVIDENCE_PLAN}
    assert set(configs) == {(n, s) for n in ("bn", "none") for s in EVIDENCE_SEEDS} and len(EVIDENCE_SEEDS) >= 3
    base = configs["bn", 0]
    assert all(replace(c, norm="bn", seed=0) == base for c in configs.values())
    assert (base.arch, base.width, base.dataset, base.train_subset) == ("vgg11", 0.5, "cifar10-jpeg", None)
    assert (base.momentum, base.weight_decay, base.batch_size, base.augment) == (0.9, 5e-4, 128, True)
    assert base.snapshot_every == 1 and base.probe_every == 1 and base.precision == "fp32"
    assert {e.group for e in EVIDENCE_PLAN} == {EVIDENCE_GROUP}


@pytest.fixture
def build_zoo(tmp_path, monkeypatch):
    """scripts/build_zoo.py with its runs, parking and zoo folders in ``tmp_path``."""
    spec = importlib.util.spec_from_file_location("build_zoo", ROOT / "scripts" / "build_zoo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(module, "PARKED", tmp_path / "parked")
    monkeypatch.setenv("NORMSCOPE_ZOO", str(tmp_path / "zoo"))
    (tmp_path / "runs").mkdir()
    return module


def write_state(path: Path, epoch: int) -> None:
    torch.save({"epoch": epoch, "model": {}, "optimizer": {}, "history": "[]", "config": "{}"}, path)


def test_a_parked_run_resumes_on_a_machine_without_it_and_never_replaces_a_later_state(build_zoo):
    name = EVIDENCE_PLAN[0].name
    local = build_zoo.RUNS / f"{name}.state.pt"
    write_state(local, 7)
    build_zoo.park([name, EVIDENCE_PLAN[1].name])  # the second has no run yet: nothing parked for it
    assert [p.name for p in build_zoo.PARKED.iterdir()] == [local.name]
    local.unlink()  # a new machine
    build_zoo.unpark(name)
    assert build_zoo.read_epoch(local) == 7
    write_state(local, 9)  # this machine went further than what was parked
    build_zoo.unpark(name)
    assert build_zoo.read_epoch(local) == 9


def test_a_shipped_model_is_not_trained_again(build_zoo, monkeypatch):
    name = EVIDENCE_PLAN[0].name
    (build_zoo.zoo_dir()).mkdir(parents=True)
    (build_zoo.zoo_dir() / f"{name}.safetensors").write_bytes(b"shipped")
    monkeypatch.setattr(build_zoo, "train_entry", lambda *a, **k: pytest.fail("trained again"))
    assert build_zoo.train_one(name, 1) == name
