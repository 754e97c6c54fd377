"""Feature datasets (App. C, F): extraction, labels, storage, resume, training on them, cross-evaluation."""
from __future__ import annotations

import shutil
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.checkpoints import load_checkpoint
from core.data import load_dataset, to_float
from core.experiments import EvalData, RunContext
from core.features import (PAPER_NORMS, CrossEvaluation, FeatureConfig, FeatureTrainingConfig, cross_evaluation,
                           ensure_dataset, extract, feature_config, feature_dataset, feature_train_config,
                           features_dir, load_feature_dataset, match_features, other_class_partners, write_dataset)
from core.models.backbone import Backbone
from core.progress import Cancelled
from core.train import train

ZOO = "checkpoints/builtin-vgg11-{}.safetensors"


class LowPass(Backbone):
    """Features = 4x4 block means of the image: the built-in data's robust (low-frequency) cue and nothing of
    its 6/255 high-frequency one, so Eq. A2 on it can carry only robust features."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(48, 10)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 8).flatten(1)


def wrapped(backbone: nn.Module):
    from core.models import ModelSpec, NormScopeModel

    return NormScopeModel(backbone, ModelSpec("lowpass", "none", mean=(0, 0, 0), std=(1, 1, 1))).eval()


def test_extraction_lowers_the_feature_distance_monotonically(trained_pair, eval_batch):
    x, y = eval_batch
    start = x[other_class_partners(y, seed=0)]
    images, rel, trace = match_features(trained_pair["bn"].model, x, start, steps=20, step_size=0.02, trace_every=1)
    assert trace[0] == 1.0 and all(b <= a + 1e-6 for a, b in zip(trace, trace[1:]))
    assert trace[-1] < 0.8 and rel.mean().item() == pytest.approx(trace[-1], rel=1e-5)
    assert images.min() >= 0 and images.max() <= 1  # no eps bound, but pixels stay images


def test_partners_are_of_another_class():
    y = torch.arange(1000) % 10
    partners = other_class_partners(y, seed=3)
    assert (y[partners] != y).all() and len(partners.unique()) > 500


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NORMSCOPE_CACHE", str(tmp_path_factory.mktemp("features-cache")))
        yield


@pytest.fixture(autouse=True)
def isolated_cache(module_cache):
    """Overrides conftest's per-test cache: this module's datasets are extracted once and shared."""


@pytest.fixture(scope="module")
def tiny_sets(trained_pair, module_cache):
    """D_NR, D_rand, D_det from the tiny BN model, through the cached experiment (and so on disk)."""
    from core.cache import ResultCache

    source = trained_pair["bn"]
    out = {}
    for kind in ("D_NR", "D_rand", "D_det"):
        config = feature_config(kind, "tiny", steps=5)
        out[kind] = (config, ensure_dataset(source, config, RunContext(ResultCache())))
    return out


def test_labels_follow_each_kind_rule(tiny_sets, trained_pair, builtin):
    for kind, (config, name) in tiny_sets.items():
        data = load_dataset(f"features:{name}")
        images = torch.cat([data.split(s)[0] for s in data.splits if s != "test"])
        assert images.dtype == torch.float16 and len(images) == 200
        assert data.split("test")[0].shape == builtin.split("test")[0].shape  # the real test set
        preview = feature_dataset(trained_pair["bn"], config, RunContext(cached_only=True)).preview
        original, targets = torch.tensor(preview["labels"]), torch.tensor(preview["targets"])
        rule = {"D_det": targets == (original + 1) % 10, "D_rand": targets != original, "D_NR": targets == original}
        assert rule[kind].all(), kind
    conflict = load_dataset(f"features:{tiny_sets['D_det'][1]}")
    assert set(conflict.splits) == {"train", "test", "conflict"} and len(conflict.split("conflict")[0]) == 20


def test_det_labels_are_next_class_on_every_image(tiny_sets):
    import numpy as np

    from core.features import read_meta

    _, name = tiny_sets["D_det"]
    with np.load(features_dir() / name / "images.npz") as z:
        labels, original = torch.from_numpy(z["labels"]), torch.from_numpy(z["original"])
    assert (labels == (original + 1) % 10).all()
    assert read_meta(name)["sanity"]["target_rate"] > 0.5  # the source model mostly sees the target


def test_rand_targets_never_equal_y(tiny_sets):
    import numpy as np

    _, name = tiny_sets["D_rand"]
    with np.load(features_dir() / name / "images.npz") as z:
        assert (z["labels"] != z["original"]).all()


def test_dataset_round_trips_through_storage(tmp_path, trained_pair, builtin):
    model, config = trained_pair["bn"].model, feature_config("D_NR", "tiny", steps=3)
    parts = extract(model, config, builtin, tmp_path / "d")
    meta = {"kind": "D_NR", "source_dataset": "builtin", "config": {"holdout": 0.1, "preset": "tiny"},
            "source": {"name": "m"}}
    write_dataset(tmp_path / "d", parts, meta)
    shutil.copytree(tmp_path / "d", features_dir() / "roundtrip")
    loaded = load_feature_dataset("roundtrip")
    x, y = loaded.split("train")
    assert torch.equal(y, torch.cat([p.labels for p in parts]))
    assert torch.allclose(x.float(), torch.cat([p.x for p in parts]), atol=1e-3)  # float16 storage
    assert not (tmp_path / "d" / "parts").exists()


def test_extraction_resumes_after_a_kill(tmp_path, trained_pair, builtin, monkeypatch):
    import core.features.extraction as features

    monkeypatch.setattr(features, "CHUNK", 50)
    model, config = trained_pair["bn"].model, feature_config("D_rand", "tiny", steps=3)

    def kill_after_two(fraction: float, message: str = "") -> None:
        if fraction >= 0.5:
            raise Cancelled("killed")

    with pytest.raises(Cancelled):
        extract(model, config, builtin, tmp_path / "a", kill_after_two)
    assert len(list((tmp_path / "a" / "parts").iterdir())) == 2
    resumed = extract(model, config, builtin, tmp_path / "a")
    fresh = extract(model, config, builtin, tmp_path / "b")
    assert all(torch.equal(a.x, b.x) and torch.equal(a.labels, b.labels) for a, b in zip(resumed, fresh))


def test_cached_equals_recomputed_and_lost_files_are_reextracted(trained_pair):
    from core.cache import ResultCache

    source, config = trained_pair["bn"], feature_config("D_det", "tiny", steps=3)
    run = RunContext(ResultCache())
    name = ensure_dataset(source, config, run)
    cached = feature_dataset(source, config, replace(run, cached_only=True))
    first = load_feature_dataset(name).split("train")[0].clone()
    shutil.rmtree(features_dir() / name)
    assert ensure_dataset(source, config, run) == name
    assert torch.equal(load_feature_dataset(name).split("train")[0], first)
    again = feature_dataset(source, config, replace(run, cached_only=True))
    assert again.sanity == cached.sanity and again.id == cached.id
    with pytest.raises(LookupError):
        shutil.rmtree(features_dir() / name)
        ensure_dataset(source, config, replace(run, cached_only=True))


def test_kind_and_source_must_agree(trained_pair):
    with pytest.raises(ValueError, match="adversarially trained"):
        feature_dataset(trained_pair["bn"], feature_config("D_R", "tiny"), RunContext())
    with pytest.raises(ValueError, match="start"):
        FeatureConfig(kind="D_conflict")
    with pytest.raises(ValueError, match="kind"):
        FeatureConfig(kind="D_X")


def test_table_a5_settings():
    assert feature_train_config("D_det", preset="paper").lr == 0.1
    assert not feature_train_config("D_conflict", preset="paper").augment
    paper = feature_train_config("D_NR", preset="paper")
    assert (paper.lr, paper.augment, paper.epochs, paper.milestones, paper.batch_size) == \
        (0.01, True, 150, (50, 100), 128)
    assert feature_config("D_NR").iterations == 1000 and feature_config("D_rand").iterations == 100
    assert feature_config("D_NR").data.per_class == 5000 and feature_config("D_rand").attack.eps == 0.5


def test_training_on_robust_features_beats_chance(tmp_path, builtin):
    """Eq. A2 through a low-pass feature map carries the robust cue alone; a model trained on the result
    classifies the real test images (both cues) well above chance."""
    model, config = wrapped(LowPass()), feature_config("D_R", "tiny", steps=60, step_size=0.5,
                                                        data=EvalData("builtin", "train", per_class=100))
    parts = extract(model, config, builtin, tmp_path / "r")
    assert torch.cat([p.sanity for p in parts]).mean() < 0.3  # the low-frequency content matched
    meta = {"kind": "D_R", "source_dataset": "builtin", "config": {"holdout": 0.1, "preset": "tiny"},
            "source": {"name": "lowpass"}}
    write_dataset(features_dir() / "robust-lowpass", parts, meta)
    data = load_dataset("features:robust-lowpass")
    config = feature_train_config("D_R", "vgg11", "none", "tiny", epochs=10, batch_size=32, probe_steps=1,
                                  dataset=data.name)
    trained = train(config, tmp_path / "m", dataset=data)
    assert trained["final_metrics"]["test_accuracy"] > 0.2  # chance: 0.1 (measured: 0.285)


def test_cross_evaluation_shape_and_empty_diagonal(trained_pair):
    from core.cache import ResultCache

    sources = [trained_pair["none"], trained_pair["bn"]]
    run = RunContext(ResultCache(), cached_only=True)
    empty = cross_evaluation(sources, ["none", "bn"], "D_NR", "vgg11", ("none", "bn"), "tiny", run)
    assert isinstance(empty, CrossEvaluation) and empty.accuracy == [[None, None], [None, None]]
    assert sorted(empty.missing) == [(0, 1), (1, 0)]
    full = cross_evaluation(sources, ["none", "bn"], "D_NR", "vgg11", ("none", "bn"), "tiny",
                            replace(run, cached_only=False))
    assert full.accuracy[0][0] is None and full.accuracy[1][1] is None and not full.missing
    assert all(0 <= full.accuracy[i][j] <= 100 for i, j in ((0, 1), (1, 0)))


def test_conflict_reliance_bn_follows_non_robust_cue():
    """The built-in data's conflict split (robust cue y, non-robust cue y + 1): the shipped tiny BN model follows
    the non-robust cue more, and the robust one less, than its norm-free twin."""
    from core.features import RelianceConfig, conflict_reliance_report

    shares = {n: conflict_reliance_report(load_checkpoint(ZOO.format(n)), RelianceConfig(), RunContext())
              for n in ("none", "bn")}
    assert shares["bn"].non_robust > shares["none"].non_robust
    assert shares["bn"].robust < shares["none"].robust


def test_feature_training_records_conflict_curves(trained_pair):
    from core.cache import ResultCache
    from core.features import feature_training

    config = FeatureTrainingConfig(feature_config("D_det", "tiny", steps=3),
                                   feature_train_config("D_det", "vgg11", "none", "tiny", epochs=2))
    result = feature_training(trained_pair["bn"], config, RunContext(ResultCache()))
    assert len(result.history) == 2 and result.test_images == 2000
    assert all({"conflict_robust", "conflict_non_robust"} <= set(h) for h in result.history)


def test_float_images_stay_in_unit_range():
    assert to_float(torch.full((1, 3, 1, 1), 0.5, dtype=torch.float16)).eq(0.5).all()


def test_paper_tables_read_with_sources_as_rows():
    """The text's claim (no-normalization features transfer best, IN's worst) holds in the stored orientation."""
    from core.features import PAPER_TABLES

    means = {s: sum(v for v in row if v) / 4 for s, row in PAPER_TABLES["standard"].items()}
    assert max(means, key=means.get) == "none" and min(means, key=means.get) == "in"
    assert all(PAPER_TABLES[t][n][i] is None for t in PAPER_TABLES for i, n in enumerate(PAPER_NORMS))


def test_feature_requests_round_trip_as_job_specs(trained_pair):
    """A page's "Run in background" sends the cells as plain data: they come back equal (same cache keys)."""
    import json

    from core.experiments import Evaluation
    from core.features import cross_evaluation_requests

    sources = [trained_pair["none"], trained_pair["bn"]]
    for request in cross_evaluation_requests(sources, ["none", "bn"], "D_NR", "vgg11", ("none", "bn"), "tiny").values():
        back = Evaluation.from_dict(json.loads(json.dumps(request.to_dict())))
        assert back == request


def test_a_feature_dataset_is_read_from_the_cache_in_use_not_an_earlier_one(tiny_sets, tmp_path, monkeypatch):
    """``load_dataset("features:<id>")`` must not hand back images remembered from another cache's folder."""
    from core.data import DataError, load_dataset

    name = tiny_sets["D_NR"][1]
    assert load_dataset(f"features:{name}").name == f"features:{name}"
    monkeypatch.setenv("NORMSCOPE_CACHE", str(tmp_path / "elsewhere"))
    with pytest.raises(DataError, match="no extracted feature dataset"):
        load_dataset(f"features:{name}")
