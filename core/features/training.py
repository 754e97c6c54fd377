"""Training on extracted feature datasets (Table A5), evaluated on the real test set; the zoo's training trends
on each kind (Fig. 6, A4, A5)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace

from core.checkpoints import Checkpoint, load_checkpoint, weights_file
from core.config import config_dict
from core.cost import TRAINING_PASS, spec_cost
from core.data import class_names, load_dataset, resolve_name, to_float
from core.data.synthetic import SPLIT_SIZES as BUILTIN_SPLITS
from core.errors import ParameterError
from core.experiments import Evaluation, RunContext, Subject, experiment
from core.features.config import HOLDOUT_KINDS, FeatureConfig, feature_config
from core.features.extraction import dataset_id, ensure_dataset, extracted_images, extraction_work
from core.features.storage import features_dir
from core.io import inside
from core.metrics import accuracy
from core.progress import scaled
from core.records import Record
from core.train import PRESETS as TRAINING_PRESETS
from core.train import TrainConfig, train, training_passes
from core.models import ModelSpec
from core.zoo import FEATURE_TREND_ARCH, FEATURE_TREND_SOURCES

# Table A5: SGD, momentum 0.9, wd 5e-4, batch 128, 150 epochs with lr x0.1 at 50 and 100; D_det and D_conflict
# with lr 0.1 and no augmentation, the others lr 0.01 with augmentation. The CPU presets keep the augmentation
# rule and the det/conflict lr being the higher one, at the zoo's CPU scale (width 0.25, one-cycle schedule).
TRAIN_PRESETS = {
    "paper": dict(epochs=150, milestones=(50, 100), schedule="step", lr={"low": 0.01, "high": 0.1}),
    # 2000 images are 16 batches an epoch: 40 epochs give about 640 SGD steps; probed at the end only
    "cpu": dict(width=0.25, epochs=40, milestones=(), schedule="onecycle", lr={"low": 0.02, "high": 0.05},
                probe_every=40),
    # the built-in demo's scale, read from the training preset (one lr: the tiny sets train in a few steps)
    "tiny": {**{k: TRAINING_PRESETS["tiny"][k] for k in ("width", "epochs", "milestones", "schedule", "probe_per_class")},
             "lr": {"low": TRAINING_PRESETS["tiny"]["lr"], "high": TRAINING_PRESETS["tiny"]["lr"]}},
}
FEATURES_PLACEHOLDER = "features"  # TrainConfig.dataset until the extracted dataset's id is known


def feature_train_config(kind: str, arch: str = "resnet18", norm: str = "bn", preset: str = "paper",
                         **overrides) -> TrainConfig:
    """Table A5's training config for a dataset of ``kind`` (scaled by ``preset``), with overrides."""
    if preset not in TRAIN_PRESETS:
        raise ParameterError(f"unknown feature training preset {preset!r}; choose from {', '.join(TRAIN_PRESETS)}")
    settings = dict(TRAIN_PRESETS[preset])
    high = kind in HOLDOUT_KINDS
    settings["lr"] = settings["lr"]["high" if high else "low"]
    base = dict(arch=arch, norm=norm, dataset=FEATURES_PLACEHOLDER, augment=not high, preset=f"features-{preset}")
    return replace(TrainConfig(), **{**base, **settings, **overrides})


@dataclass(frozen=True)
class FeatureTrainingConfig:
    """A model trained on a feature dataset of the subject: the dataset's recipe and the training run."""

    features: FeatureConfig = FeatureConfig()
    train: TrainConfig = TrainConfig(dataset=FEATURES_PLACEHOLDER)


@dataclass(frozen=True, kw_only=True)
class FeatureTraining(Record):
    """A model trained on a feature dataset (``dataset_id``, of ``kind``), its file, training history and final
    metrics, and its accuracy on the real test split."""

    dataset_id: str
    kind: str
    model: str
    model_sha256: str
    history: list[dict]
    final_metrics: dict
    test_accuracy: float
    test_images: int


def feature_training_work(config: FeatureTrainingConfig) -> int:
    """Extracting the dataset, through the subject's model (the training runs the trained one: :func:`trained_work`)."""
    return extraction_work(config.features)


# Test images of the datasets known without reading them (the final test pass reads the whole split).
TEST_IMAGES = {"builtin": BUILTIN_SPLITS["test"], "cifar10": 10_000, "cifar10-jpeg": 10_000, "cifar100": 10_000,
               "svhn": 26_032}


def test_split_images(dataset: str) -> int:
    name = resolve_name(dataset)
    return TEST_IMAGES[name] if name in TEST_IMAGES else len(load_dataset(name).split("test")[1])


def trained_work(config: FeatureTrainingConfig) -> float:
    """The training run's work in reference passes: every pass of :func:`core.train.train` (each epoch's images,
    probes and conflict probe) and the final test pass on the whole real test split, times the cost of the
    architecture trained (core.cost: its arch, norm and width; a training pass is TRAINING_PASS attack passes)."""
    images, classes = extracted_images(config.features), len(class_names(config.features.data.dataset))
    conflict = round(config.features.holdout * images) if config.features.kind in HOLDOUT_KINDS else 0
    passes = training_passes(config.train, images - conflict, classes, conflict)
    spec = ModelSpec(config.train.arch, config.train.norm, classes, config.train.width, config.train.shortcut)
    own = TRAINING_PASS * passes.training + passes.other + test_split_images(config.features.data.dataset)
    return own * spec_cost(spec)


@experiment("feature_training", FeatureTrainingConfig, "a model trained on a feature dataset of this model, "
            "evaluated on the real test set (Tables A3-A5, Fig. 6, A4, A5)", work=feature_training_work, trains=True,
            trained_work=trained_work)
def feature_training(checkpoint: Checkpoint, config: FeatureTrainingConfig, run: RunContext) -> FeatureTraining:
    """Extract (or find) the dataset, train on it (resumable), and test on the whole real test split."""
    name = ensure_dataset(checkpoint, config.features, run.part(0, 4))
    dataset = load_dataset(f"features:{name}")
    out = inside(features_dir(), "models", f"{name}--{config.train.arch}-{config.train.norm}-{run_tag(config)}")
    meta = train(replace(config.train, dataset=dataset.name), out, scaled(run.progress, 0.25, 1), run.device,
                 dataset=dataset)
    x, y = dataset.split("test")
    model = run.model(load_checkpoint(weights_file(out)))
    return FeatureTraining(dataset_id=name, kind=config.features.kind, model=str(weights_file(out)),
                           model_sha256=meta["sha256"], history=meta["history"], final_metrics=meta["final_metrics"],
                           test_accuracy=accuracy(model, to_float(x), y), test_images=len(y))


def run_tag(config: FeatureTrainingConfig) -> str:
    return hashlib.sha256(json.dumps(config_dict(config.train), sort_keys=True).encode()).hexdigest()[:8]



def trend_config(kind: str, start: str = "", preset: str = "cpu", arch: str = FEATURE_TREND_ARCH,
                 norm: str = "bn") -> FeatureTrainingConfig:
    """Fig. A4 / 6 / A5: a model trained on ``kind`` with probes every 5th epoch (on half the usual images);
    the conflict curves are measured every epoch (:func:`core.train.conflict_probe`)."""
    return FeatureTrainingConfig(feature_config(kind, preset, start=start),
                                 feature_train_config(kind, arch, norm, preset, probe_per_class=50, probe_every=5))


def trend_requests(entries: dict[str, Subject], preset: str = "cpu") -> dict[str, Evaluation]:
    """The zoo's training trends on each kind (sources in :data:`core.zoo.FEATURE_TREND_SOURCES`)."""
    sources = {kind: entries[name] for kind, name in FEATURE_TREND_SOURCES.items() if name in entries}
    start = dataset_id(sources["D_R"], feature_config("D_R", preset)) if "D_R" in sources else ""
    return {kind: Evaluation.of(source, feature_training, trend_config(kind, start if kind == "D_conflict" else "",
                                                                       preset))
            for kind, source in sources.items() if kind != "D_conflict" or start}
