"""A request's work as a public server limits it: each experiment's count holds everything its compute runs, a
training run's count its architecture, epochs, probes and test pass, a model's cost scales the count (estimated
once per checkpoint, cached by sha256), and one client holds at most its share of the computation slots."""
from __future__ import annotations

import json
import logging
import math
from dataclasses import replace

import pytest

from core import cost
from core.attacks import paper_spec
from core.cache import ResultCache
from core.checkpoints import load_checkpoint, save_checkpoint
from core.corruptions.evaluation import CorruptionConfig
from core.experiments import EvalData, Evaluation, RunContext, get_experiment, load_subject
from core.features.config import FeatureConfig
from core.features.extraction import extraction_work
from core.features.reliance import RelianceConfig
from core.features import training as feature_training_module
from core.features.training import FeatureTrainingConfig
from core.frequency import FourierConfig, SpectrumConfig
from core.gallery import GalleryConfig
from core.metrics import LIGSSpec
from core.models import ModelSpec, Normalize, build
from core.planning import Plan
from core.robustness import AutoAttackConfig, LIGSConfig, RobustnessConfig
from core.serving import LimitExceeded, ServingError, ServingPolicy, serving_policy
from core.surface import LossSurfaceConfig
from core.train import TrainConfig, training_passes
from core.transfer import TransferCellConfig, TransferConfig
from ui.serving import limits

TEN = EvalData("builtin", per_class=1)  # the built-in set's 10 classes, one image each


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A norm-free width-0.125 VGG11 on the built-in data, untrained: norm-free, so the attacks run the model itself
    (nothing to fold) and every pass goes through its Normalize layer, where :func:`passes` counts it."""
    path = tmp_path_factory.mktemp("tiny") / "tiny-none"
    save_checkpoint(build("vgg11", "none", width=0.125), path, {"dataset": "builtin"})
    return load_checkpoint(f"{path}.safetensors")


@pytest.fixture
def passes(monkeypatch):
    """Counts the images that go through any model's forward pass (each gradient pass has one)."""
    seen = {"images": 0}
    forward = Normalize.forward

    def counted(self, x):
        seen["images"] += len(x)
        return forward(self, x)

    monkeypatch.setattr(Normalize, "forward", counted)
    return seen


def run_context(tmp_path) -> RunContext:
    return RunContext(cache=ResultCache(tmp_path / "cache"), device="cpu")


# Every registered experiment (python -m core list experiments) at a small size; exact: the count is what runs
# (APGD skips images it broke already, a spectrum makes no clean pass and a corruption counts making it: at most).
AUDIT = [
    ("robustness", RobustnessConfig(paper_spec("pgd_l2", steps=3), TEN), True),
    ("robustness", RobustnessConfig(paper_spec("fgsm"), TEN), True),
    ("robustness", RobustnessConfig(paper_spec("apgd_ce_linf", steps=3), TEN), False),
    ("autoattack", AutoAttackConfig(steps=2, data=TEN), False),
    ("gallery", GalleryConfig(paper_spec("pgd_linf", steps=3), TEN), True),
    ("ligs", LIGSConfig(LIGSSpec(), TEN), True),
    ("ligs", LIGSConfig(LIGSSpec(kind="pgd", steps=2), TEN), True),
    ("loss_surface", LossSurfaceConfig(resolution=5, data=TEN), True),
    ("fourier_heatmap", FourierConfig(data=TEN), True),
    ("perturbation_spectrum", SpectrumConfig(paper_spec("pgd_l2", steps=2), TEN), False),
    ("corruption", CorruptionConfig("glass_blur", 1, TEN), False),
    ("conflict_reliance", RelianceConfig(EvalData("builtin", "conflict", per_class=1)), True),
    ("transfer_examples", TransferConfig(paper_spec("ifgsm", steps=2), TEN), True),
    ("feature_dataset", FeatureConfig("D_NR", EvalData("builtin", "train", per_class=1), steps=2), True),
    ("feature_dataset", FeatureConfig("D_det", EvalData("builtin", "train", per_class=1), steps=2), True),
]


@pytest.mark.parametrize("name, config, exact", AUDIT, ids=lambda v: v if isinstance(v, str) else "")
def test_an_experiments_count_holds_every_pass_it_runs(tiny, passes, tmp_path, name, config, exact):
    experiment = get_experiment(name)
    experiment(tiny, config, run_context(tmp_path))
    counted = experiment.work(experiment.resolved(tiny, config))
    assert passes["images"] == counted if exact else 0 < passes["images"] <= counted


def test_a_transfer_cells_count_is_the_targets_two_predictions(tiny, passes, tmp_path):
    examples = TransferConfig(paper_spec("ifgsm", steps=2), TEN)
    run = run_context(tmp_path)
    get_experiment("transfer_examples")(tiny, examples, run)
    passes["images"] = 0
    cell = TransferCellConfig(tiny.sha256, examples.attack, TEN)
    get_experiment("transfer")(tiny, cell, run)
    assert passes["images"] == get_experiment("transfer").work(cell) == 20


def feature_training(epochs: int = 1, arch: str = "resnet18", width: float = 1.0, **train) -> FeatureTrainingConfig:
    """Issue 41's request: one image per class, one extraction step, one epoch, on the built-in data."""
    features = FeatureConfig(data=EvalData("builtin", "train", per_class=1), steps=1)
    return FeatureTrainingConfig(features, replace(TrainConfig(dataset="features"), epochs=epochs, arch=arch,
                                                   width=width, **train))


def training_count(config: FeatureTrainingConfig) -> int:
    return get_experiment("feature_training").trained_work(config)


def test_a_training_runs_count_grows_with_epochs_architecture_and_width():
    one = training_count(feature_training())
    assert training_count(feature_training(epochs=1000)) > 100 * one
    assert training_count(feature_training(arch="wrn28_10")) > 5 * one
    assert training_count(feature_training(width=0.25)) < one / 2
    # the probe (100 images per class: clean, PGD-10 with its 3 passes, LIGS) and the 2,000 test images, at the
    # full-width ResNet-18's cost: the 30 image passes it was counted at before
    assert one >= (100 * 10 * 16 + 2000) * cost.spec_cost(ModelSpec("resnet18"))


def test_a_training_runs_count_holds_every_pass_it_runs(tiny, passes, tmp_path):
    """A tiny norm-free run: every pass through the source and the trained model is counted, in passes (before
    the trained model's cost and the training pass's factor)."""
    config = feature_training(arch="vgg11", width=0.125, norm="none", probe_per_class=1, probe_steps=1)
    get_experiment("feature_training")(tiny, config, run_context(tmp_path))
    trained = training_passes(config.train, 10, 10)
    assert passes["images"] == (extraction_work(config.features) + trained.training + trained.other
                                + feature_training_module.test_split_images("builtin"))


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """A full-width VGG11: more than one reference pass a pass."""
    path = tmp_path_factory.mktemp("wide") / "wide-none"
    save_checkpoint(build("vgg11", "none", width=1.0), path, {"dataset": "builtin"})
    return load_checkpoint(f"{path}.safetensors")


def on(checkpoint, config) -> Evaluation:
    return Evaluation.of(checkpoint, get_experiment("robustness"), config)


def test_a_bigger_models_count_is_larger_by_its_cost(tiny, wide, tmp_path):
    config = RobustnessConfig(paper_spec("pgd_l2", steps=20), TEN)
    run = run_context(tmp_path)
    ratio = cost.spec_cost(wide.spec)
    assert ratio > 1.5 and cost.spec_cost(tiny.spec) == 1  # below the reference a pass is overhead: it counts one
    assert Plan({}, {}, [on(tiny, config)], run=run).work == 10 * 23
    assert Plan({}, {}, [on(wide, config)], run=run).work == math.ceil(10 * 23 * ratio)


def test_a_models_cost_is_estimated_once_and_cached_by_its_sha256(wide, tmp_path):
    loads = []

    def load(subject):
        loads.append(subject.sha256)
        return load_subject(subject)

    subject = Evaluation.of(wide, get_experiment("robustness"), RobustnessConfig())
    first = cost.model_cost(subject, replace(run_context(tmp_path), load=load))
    again = cost.model_cost(subject, replace(run_context(tmp_path), load=load))  # another process, the same cache
    assert first == again == cost.spec_cost(wide.spec) and loads == [wide.sha256]


def test_nothing_left_to_compute_loads_no_weights(tiny):
    def refuse(subject):
        raise AssertionError("loaded weights for a plan with no work left")

    assert Plan({}, {}, [], run=RunContext(load=refuse)).work == 0


def test_the_per_client_share_is_a_setting_like_the_others(tmp_path):
    nowhere = {"NORMSCOPE_CONFIG": str(tmp_path / "absent.toml")}
    assert serving_policy(nowhere).max_computations_per_client == 1
    assert serving_policy({**nowhere, "NORMSCOPE_MAX_CLIENT_COMPUTATIONS": "2"}).max_computations_per_client == 2
    path = tmp_path / "normscope.toml"
    path.write_text("[public]\nenabled = true\nmax_computations_per_client = 3\n")
    assert serving_policy({"NORMSCOPE_CONFIG": str(path)}) == ServingPolicy(enabled=True, max_computations_per_client=3)
    with pytest.raises(ServingError, match="max_computations_per_client must be at least 1"):
        serving_policy({**nowhere, "NORMSCOPE_MAX_CLIENT_COMPUTATIONS": "0"})


def test_slots_give_each_client_its_share():
    slots = limits.Slots(2)
    assert slots.take("1.2.3.4", per_client=1) is None
    assert slots.take("1.2.3.4", per_client=1) == "client"  # a second tab of the same visitor
    assert slots.take("5.6.7.8", per_client=1) is None
    assert slots.take("9.9.9.9", per_client=1) == "server"
    slots.give_back("1.2.3.4")
    assert slots.take("1.2.3.4", per_client=1) is None and slots.taken == 2


@pytest.fixture
def public_slots(monkeypatch, tmp_path):
    """A public server's computation_slot with a fresh pool of 2 and the client address of our choice."""
    monkeypatch.setenv("NORMSCOPE_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("NORMSCOPE_PUBLIC", "1")
    pool, client = limits.Slots(2), {"address": "1.2.3.4"}
    monkeypatch.setattr(limits, "_slots", lambda size: pool)
    monkeypatch.setattr(limits, "client_address", lambda: client["address"])
    return client


def test_one_client_cannot_hold_both_slots_another_can_take_one(public_slots, caplog):
    with limits.computation_slot(100):
        with caplog.at_level(logging.INFO, logger="normscope.access"), pytest.raises(LimitExceeded) as refused:
            with limits.computation_slot(100):  # the same visitor's second tab
                pass
        public_slots["address"] = "5.6.7.8"
        with limits.computation_slot(100):  # another visitor
            pass
    assert "of yours are already running" in str(refused.value) and "\n" not in str(refused.value)
    (line,) = [json.loads(r.message) for r in caplog.records if r.name == "normscope.access"]
    assert line["action"] == "refused" and line["work"] == 100 and "of yours" in line["reason"]
