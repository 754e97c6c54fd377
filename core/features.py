"""Feature datasets (App. C and F, after Ilyas et al. 2019): what a model's features say, as a training set.

* ``D_R`` / ``D_NR`` (Eq. A2): for each training image x (label y) an image x' of another class is moved by
  l2 steps (step 0.1, 1000 iterations, no eps bound, pixels kept in [0, 1]) until its penultimate activations
  match x's, ``min ||g(x) - g(x' + delta)||_2``; labelled y. From an adversarially trained source that is
  D_R, from a standard one D_NR.
* ``D_rand`` / ``D_det``: targeted l2-PGD examples of a standard model (eps 0.5, step 0.1, 100 iterations)
  towards t random (D_rand) or ``y + 1 mod K`` (D_det), labelled t.
* ``D_conflict``: D_det's attack started from D_R's images, so robust features say y, non-robust ones t.

D_det and D_conflict keep a tenth of their images out of training as a ``conflict`` split labelled y: a
model's accuracy there against y measures its reliance on robust features, against ``y + 1`` on
non-robust ones (Fig. 6 and A5), as the built-in dataset's own ``conflict`` split does.

A dataset is extracted once per (source weights, :class:`FeatureConfig`), batch by batch and resumable after a
kill, into ``<cache>/features/<id>/`` (float16 images, labels, metadata); ``load_dataset("features:<id>")``
and training read it by name, with the source dataset's real test split as its ``test`` split. The declared
experiment ``feature_dataset`` caches its metadata and sanity figures, so pages show them without the images.
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.attacks import AttackSpec, attack_mode
from core.attacks.steps import TINY, per_sample_norm
from core.cache import MISSING, default_cache_dir
from core.checkpoints import Checkpoint, atomic_write, load_checkpoint, weights_file
from core.config import config_dict
from core.data import DataError, Dataset, balanced_subset, load_dataset, to_float
from core.device import model_device, to_device
from core.experiments import (EvalData, Evaluation, RunContext, Subject, eval_tensors, experiment, get_experiment,
                              provenance)
from core.gallery import amplify, decode_images, encode_images, uint8_images
from core.metrics import accuracy, adversarial_examples, batches, conflict_reliance, predict, target_labels
from core.progress import Progress, null_progress, scaled
from core.train import TrainConfig, train
from core.zoo import FEATURE_ARCH, FEATURE_SOURCES, FEATURE_TREND_ARCH, FEATURE_TREND_SOURCES

FEATURE_MATCHING = ("D_R", "D_NR")  # Eq. A2
ADVERSARIAL_KINDS = {"D_rand": "random", "D_det": "next", "D_conflict": "next"}  # kind -> attack target mode
KINDS = FEATURE_MATCHING + tuple(ADVERSARIAL_KINDS)
HOLDOUT_KINDS = ("D_det", "D_conflict")  # kinds whose held-out images form a ``conflict`` split
CHUNK = 500  # images per resumable part
PREVIEW = 10  # images kept in the cached result for the gallery (the first of each class)


@dataclass(frozen=True)
class FeatureConfig:
    """One feature dataset. Defaults are the paper's: all 50k training images (5000 per class); Eq. A2 with
    step 0.1 and 1000 iterations; the adversarial kinds with l2 eps 0.5, step 0.1, 100 iterations.
    ``steps=None`` is the kind's paper default. D_conflict names the D_R dataset it starts from (``start``)."""

    kind: str = "D_NR"
    data: EvalData = EvalData(split="train", per_class=5000)
    steps: int | None = None
    step_size: float = 0.1
    eps: float = 0.5  # adversarial kinds only: Eq. A2 has no bound
    start: str = ""  # D_conflict: the id of the D_R dataset whose images the attack starts from
    holdout: float = 0.1  # D_det / D_conflict: fraction kept out of training as the conflict split
    seed: int = 0
    preset: str = "paper"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown feature dataset kind {self.kind!r}; choose from {', '.join(KINDS)}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if not (self.step_size > 0 and self.eps > 0 and 0 <= self.holdout < 1):
            raise ValueError("step size and eps must be positive and holdout in [0, 1)")
        if (self.kind == "D_conflict") != bool(self.start):
            raise ValueError("D_conflict (and only it) starts from a D_R dataset: set start to that dataset's id")

    @property
    def iterations(self) -> int:
        return self.steps if self.steps is not None else (1000 if self.kind in FEATURE_MATCHING else 100)

    @property
    def attack(self) -> AttackSpec:
        """The targeted attack of the adversarial kinds."""
        return AttackSpec("pgd_l2", self.eps, self.iterations, self.step_size, target=ADVERSARIAL_KINDS[self.kind],
                          seed=self.seed)


# CPU presets keep the paper's step sizes and budgets and cut the images (and Eq. A2's iterations).
PRESETS = {"paper": {}, "cpu": dict(per_class=200, steps_a2=100), "tiny": dict(per_class=20, steps_a2=20)}


def feature_config(kind: str, preset: str = "paper", **overrides) -> FeatureConfig:
    """The config of ``kind`` under a named preset (see :data:`PRESETS`), with overrides."""
    if preset not in PRESETS:
        raise ValueError(f"unknown feature preset {preset!r}; choose from {', '.join(PRESETS)}")
    p = PRESETS[preset]
    base = FeatureConfig(kind=kind, start=overrides.pop("start", ""), preset=preset)
    if "per_class" in p:
        base = replace(base, data=replace(base.data, per_class=p["per_class"]))
    if "steps_a2" in p and kind in FEATURE_MATCHING:
        base = replace(base, steps=p["steps_a2"])
    return replace(base, **overrides)


# ---------------------------------------------------------------------------------------------- extraction


def match_features(model: nn.Module, x: torch.Tensor, start: torch.Tensor, steps: int, step_size: float,
                   trace_every: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """Eq. A2 on one batch: move ``start`` by normalized-gradient l2 steps to minimize ``||g(x) - g(.)||_2``
    (no eps bound, pixels in [0, 1]). Returns the images, each one's final distance relative to its start
    distance, and the mean relative distance every ``trace_every`` steps (with the start's 1.0 first).
    Images may be on any device; they go channels-last, as the attacks' batches (oneDNN runs it faster)."""
    device = model_device(model)
    x, start = to_device(x, device), to_device(start, device)
    with attack_mode(model):
        target = model.features(x).detach()
        start_distance = (model.features(start) - target).norm(dim=1).clamp_min(TINY).detach()
        current, trace = start.detach().clone(), [1.0] if trace_every else []
        for i in range(steps):
            current.requires_grad_(True)
            distance = (model.features(current) - target).norm(dim=1)
            grad = torch.autograd.grad(distance.sum(), current)[0]
            current = (current.detach() - step_size * grad / per_sample_norm(grad).clamp_min(TINY)).clamp(0, 1)
            if trace_every and (i + 1) % trace_every == 0:
                trace.append(relative(model, current, target, start_distance).mean().item())
        return current, relative(model, current, target, start_distance), trace


@torch.no_grad()
def relative(model: nn.Module, images: torch.Tensor, target: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    return ((model.features(images) - target).norm(dim=1) / start).cpu()


def other_class_partners(y: torch.Tensor, seed: int) -> torch.Tensor:
    """For each image an index of an image of another class (Eq. A2's x'), drawn with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    partners = torch.randint(0, len(y), (len(y),), generator=g)
    for _ in range(100):  # redraw the clashes; with 10 classes, 100 rounds leave none in practice
        clash = y[partners] == y
        if not clash.any():
            return partners
        partners[clash] = torch.randint(0, len(y), (int(clash.sum()),), generator=g)
    raise ValueError("could not draw images of another class: does the data have a single class?")


@dataclass
class Part:
    """One extracted batch: images in [0, 1], training labels, original labels and per-image sanity figures."""

    x: torch.Tensor
    labels: torch.Tensor
    original: torch.Tensor
    sanity: torch.Tensor  # relative feature distance (Eq. A2) or 1 if the source predicts the target (attacks)
    trace: list[float]


def extract_part(model: nn.Module, config: FeatureConfig, x: torch.Tensor, y: torch.Tensor, start: torch.Tensor,
                 num_classes: int, first: int) -> Part:
    """One chunk of ``x`` (labels ``y``, starting images ``start``); ``first`` is its offset (seeds targets)."""
    if config.kind in FEATURE_MATCHING:
        images, rel, trace = match_features(model, x, start, config.iterations, config.step_size,
                                            trace_every=max(1, config.iterations // 10))
        return Part(images.cpu(), y, y, rel, trace)
    spec = replace(config.attack, seed=config.seed + first)
    images = adversarial_examples(model, start, y, spec, num_classes)
    targets = target_labels(y, spec.target, num_classes, spec.seed)
    return Part(images, targets, y, (predict(model, images) == targets).float(), [])


def inputs(config: FeatureConfig, dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The images x, labels y, starting images and their source indices of a config's extraction, in extraction
    order (shuffled with the config's seed, so that every part mixes the classes)."""
    x, y = dataset.split(config.data.split)
    keep = balanced_subset(y, config.data.per_class, dataset.num_classes)
    x, y = to_float(x[keep]), y[keep]
    if config.kind in FEATURE_MATCHING:
        source = other_class_partners(y, config.seed)
        start = x[source]
    elif config.kind == "D_conflict":
        x, y = load_dataset(f"features:{config.start}").split("train")
        x, start, source = to_float(x), to_float(x), torch.arange(len(y))
    else:
        start, source = x, torch.arange(len(y))
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(config.seed))
    return x[order], y[order], start[order], source[order]


# ---------------------------------------------------------------------------------------------- storage


def features_dir() -> Path:
    """Where extracted datasets live: ``<cache>/features`` (``NORMSCOPE_CACHE`` moves it)."""
    return default_cache_dir() / "features"


def dataset_id(source: Subject, config: FeatureConfig) -> str:
    """A readable, unique name: kind, source file, preset and the experiment key's hash."""
    key = get_experiment("feature_dataset").key(source, config).split(":")[1]
    return f"{config.kind}-{Path(str(source.path)).stem}-{config.preset}-{key[:10]}"


def save_part(folder: Path, index: int, part: Part) -> None:
    buffer = _npz_bytes(x=part.x.half().numpy(), labels=part.labels.numpy(), original=part.original.numpy(),
                        sanity=part.sanity.numpy(), trace=np.asarray(part.trace, dtype=np.float64))
    atomic_write(folder / "parts" / f"part_{index:05d}.npz", buffer)


def load_part(path: Path) -> Part:
    with np.load(path, allow_pickle=False) as z:
        return Part(torch.from_numpy(z["x"]).float(), torch.from_numpy(z["labels"]),
                    torch.from_numpy(z["original"]), torch.from_numpy(z["sanity"]), z["trace"].tolist())


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def write_dataset(folder: Path, parts: list[Part], meta: dict) -> None:
    """Join the parts into ``images.npz`` and write ``meta.json`` last: a folder with meta.json is complete."""
    labels, original = torch.cat([p.labels for p in parts]), torch.cat([p.original for p in parts])
    images = torch.cat([p.x for p in parts]).half()
    atomic_write(folder / "images.npz", _npz_bytes(x=images.numpy(), labels=labels.numpy(), original=original.numpy()))
    atomic_write(folder / "meta.json", json.dumps(meta, indent=1).encode())
    shutil.rmtree(folder / "parts", ignore_errors=True)


def read_meta(dataset: str) -> dict:
    path = features_dir() / dataset / "meta.json"
    if not path.is_file():
        raise DataError(f"no extracted feature dataset {dataset!r} under {features_dir()}; extract it first "
                        f"(`python -m core features extract ...` or the Non-robust features page)")
    return json.loads(path.read_text())


def load_feature_dataset(dataset: str) -> Dataset:
    """``features:<id>``: the extracted images as ``train`` (and ``conflict``), the source's real ``test`` split."""
    meta, folder = read_meta(dataset), features_dir() / dataset
    with np.load(folder / "images.npz", allow_pickle=False) as z:
        x, labels, original = (torch.from_numpy(z[k]) for k in ("x", "labels", "original"))
    origin = load_dataset(meta["source_dataset"])
    held = int(round(meta["config"]["holdout"] * len(x))) if meta["kind"] in HOLDOUT_KINDS else 0
    splits = {"train": (x[:len(x) - held], labels[:len(x) - held]), "test": origin.split("test")}
    if held:
        splits["conflict"] = (x[len(x) - held:], original[len(x) - held:])
    return Dataset(f"features:{dataset}", splits, origin.classes, origin.mean, origin.std,
                   description=f"{meta['kind']} extracted from {meta['source']['name']} ({meta['config']['preset']})",
                   source=str(folder), notes={"kind": meta["kind"], "preset": meta["config"]["preset"]})


# ---------------------------------------------------------------------------------------------- the experiment


def extract(model: nn.Module, config: FeatureConfig, dataset: Dataset, folder: Path,
            progress: Progress = null_progress) -> list[Part]:
    """Every part of the extraction, resuming from the parts already in ``folder``."""
    x, y, start, _ = inputs(config, dataset)
    parts = []
    for i, s in enumerate(chunks := batches(len(x), CHUNK)):
        path = folder / "parts" / f"part_{i:05d}.npz"
        if not path.is_file():
            save_part(folder, i, extract_part(model, config, x[s], y[s], start[s], dataset.num_classes, s.start))
        parts.append(load_part(path))
        progress((i + 1) / len(chunks), f"{config.kind}: {s.stop}/{len(x)} images")
    return parts


def sanity(config: FeatureConfig, parts: list[Part]) -> dict:
    """The figures that show whether the extraction worked (reproductions of Ilyas et al. often fail silently)."""
    values = torch.cat([p.sanity for p in parts])
    if config.kind in FEATURE_MATCHING:
        traces = [p.trace for p in parts if p.trace]
        return {"relative_distance_mean": values.mean().item(), "relative_distance_std": values.std().item(),
                "relative_distance_quartiles": torch.quantile(values, torch.tensor([0.25, 0.5, 0.75])).tolist(),
                "relative_distance_trace": np.mean(traces, axis=0).tolist() if traces else []}
    return {"target_rate": values.mean().item()}


def preview(parts: list[Part], dataset: Dataset, config: FeatureConfig) -> dict:
    """The first extracted image of each class, with its x and x' (for the feature gallery, kept in the result)."""
    labels = torch.cat([p.original for p in parts])
    picks = torch.stack([torch.nonzero(labels == c).flatten()[0] for c in labels.unique()[:PREVIEW]])
    x, _, start, source_index = inputs(config, dataset)
    return {"x": encode_images(x[picks]), "start": encode_images(start[picks]),
            "extracted": encode_images(torch.cat([p.x for p in parts])[picks]), "labels": labels[picks].tolist(),
            "targets": torch.cat([p.labels for p in parts])[picks].tolist(),
            "start_index": source_index[picks].tolist()}


def preview_images(preview: dict) -> dict[str, np.ndarray]:
    """A result's preview as uint8 ``[N, H, W, 3]`` images: x, x' (start), the extracted image, and the change
    from x' to it amplified for display (from the 8-bit images, so every cached result shows it alike)."""
    images = {k: decode_images(preview[k]) for k in ("x", "start", "extracted")}
    delta = torch.from_numpy(images["extracted"].astype(np.float32) - images["start"].astype(np.float32)) / 255
    return images | {"change": uint8_images(amplify(delta.permute(0, 3, 1, 2)))}


def check_source(checkpoint: Checkpoint, config: FeatureConfig) -> None:
    """D_R needs a robust source and the others a standard one: the dataset's name says which it is."""
    adversarial = bool((checkpoint.meta.get("train_config") or {}).get("adversarial"))
    if config.kind == "D_R" and not adversarial:
        raise ValueError(f"D_R is extracted from an adversarially trained model; {checkpoint.name} is standard "
                         "(its Eq. A2 dataset is D_NR)")
    if config.kind != "D_R" and adversarial:
        raise ValueError(f"{config.kind} is extracted from a standard model; {checkpoint.name} is adversarially "
                         "trained (its Eq. A2 dataset is D_R)")


@experiment("feature_dataset", FeatureConfig, "a feature dataset D_R / D_NR / D_rand / D_det / D_conflict "
            "extracted from the model (App. C, F); its metadata and sanity figures")
def feature_dataset(checkpoint: Checkpoint, config: FeatureConfig, run: RunContext) -> dict:
    """Extract into the features folder (resuming), and return the dataset's metadata."""
    check_source(checkpoint, config)
    dataset, name = load_dataset(config.data.dataset), dataset_id(checkpoint, config)
    folder = features_dir() / name
    parts = extract(checkpoint.model.to(run.torch_device), config, dataset, folder, run.progress or null_progress)
    meta = {"id": name, "kind": config.kind, "images": sum(len(p.labels) for p in parts),
            "source_dataset": dataset.name, "source": {"name": checkpoint.name, "sha256": checkpoint.sha256},
            "config": config_dict(config), "sanity": sanity(config, parts)}
    write_dataset(folder, parts, meta)
    return {**meta, "preview": preview(parts, dataset, config)}


def ensure_dataset(source: Subject, config: FeatureConfig, run: RunContext = RunContext()) -> str:
    """The id of ``config``'s dataset from ``source``, extracted when its files are not on disk (again, if a
    cached result outlived them); a cached-only run raises LookupError instead of extracting."""
    name = dataset_id(source, config)
    if not (features_dir() / name / "meta.json").is_file():
        if run.cached_only:
            raise LookupError(f"feature dataset {name} is not extracted on this machine")
        checkpoint, resolved = run.load(source), feature_dataset.resolved(source, config)
        result = {**provenance(checkpoint, resolved), **feature_dataset.compute(checkpoint, resolved, run)}
        run.results.set(feature_dataset.key(source, config), result)
    return name


# ---------------------------------------------------------------------------------------------- training on them

# Table A5: SGD, momentum 0.9, wd 5e-4, batch 128, 150 epochs with lr x0.1 at 50 and 100; D_det and D_conflict
# with lr 0.1 and no augmentation, the others lr 0.01 with augmentation. The CPU presets keep the augmentation
# rule and the det/conflict lr being the higher one, at the zoo's CPU scale (width 0.25, one-cycle schedule).
TRAIN_PRESETS = {
    "paper": dict(epochs=150, milestones=(50, 100), schedule="step", lr={"low": 0.01, "high": 0.1}),
    # 2000 images are 16 batches an epoch: 40 epochs give about 640 SGD steps; probed at the end only
    "cpu": dict(width=0.25, epochs=40, milestones=(), schedule="onecycle", lr={"low": 0.02, "high": 0.05},
                probe_every=40),
    "tiny": dict(width=0.125, epochs=4, milestones=(), schedule="onecycle", lr={"low": 0.05, "high": 0.05},
                 probe_per_class=20),
}
FEATURES_PLACEHOLDER = "features"  # TrainConfig.dataset until the extracted dataset's id is known


def feature_train_config(kind: str, arch: str = "resnet18", norm: str = "bn", preset: str = "paper",
                         **overrides) -> TrainConfig:
    """Table A5's training config for a dataset of ``kind`` (scaled by ``preset``), with overrides."""
    if preset not in TRAIN_PRESETS:
        raise ValueError(f"unknown feature training preset {preset!r}; choose from {', '.join(TRAIN_PRESETS)}")
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


@experiment("feature_training", FeatureTrainingConfig, "a model trained on a feature dataset of this model, "
            "evaluated on the real test set (Tables A3-A5, Fig. 6, A4, A5)")
def feature_training(checkpoint: Checkpoint, config: FeatureTrainingConfig, run: RunContext) -> dict:
    """Extract (or find) the dataset, train on it (resumable), and test on the whole real test split."""
    name = ensure_dataset(checkpoint, config.features, run.part(0, 4))
    dataset = load_dataset(f"features:{name}")
    out = features_dir() / "models" / f"{name}--{config.train.arch}-{config.train.norm}-{run_tag(config)}"
    meta = train(replace(config.train, dataset=dataset.name), out, scaled(run.progress, 0.25, 1), run.device,
                 dataset=dataset)
    x, y = dataset.split("test")
    model = load_checkpoint(weights_file(out)).model.to(run.torch_device)
    return {"dataset_id": name, "kind": config.features.kind, "model": str(weights_file(out)),
            "model_sha256": meta["sha256"], "history": meta["history"], "final_metrics": meta["final_metrics"],
            "test_accuracy": accuracy(model, to_float(x), y), "test_images": len(y)}


def run_tag(config: FeatureTrainingConfig) -> str:
    return hashlib.sha256(json.dumps(config_dict(config.train), sort_keys=True).encode()).hexdigest()[:8]


# ---------------------------------------------------------------------------------------------- cross-evaluation

PAPER_NORMS = ("none", "bn", "in", "ln", "gn")
# Tables A3 / A4 (VGG16) as printed, a row per norm. The printed header does not say which axis is the source;
# the text does: "features extracted from the model w/o normalization transfer better ... especially IN" holds
# only with the columns as sources (the None column is the highest of every row, the IN column the lowest),
# so each printed row is a target, and PAPER_TABLES is the transpose: source -> accuracy on each target.
_PRINTED = {
    "standard": [[None, 45.6, 29.6, 52.1, 45.9], [75.3, None, 35.8, 58.9, 54.3], [66.1, 50.4, None, 53.0, 61.9],
                 [79.4, 59.4, 37.9, None, 63.4], [73.3, 54.4, 43.1, 61.3, None]],
    "robust": [[None, 85.0, 59.8, 75.8, 65.9], [81.3, None, 58.1, 73.7, 62.5], [75.8, 78.8, None, 69.4, 62.9],
               [82.9, 84.5, 60.0, None, 64.8], [80.7, 83.7, 63.8, 73.7, None]],
}
PAPER_TABLES = {table: {source: [rows[t][s] for t in range(len(PAPER_NORMS))] for s, source in enumerate(PAPER_NORMS)}
                for table, rows in _PRINTED.items()}


@dataclass
class CrossEvaluation:
    """Accuracy (%) on the real test set of each target normalization (columns) trained on each source's
    dataset (rows); None on the diagonal and where a cell is not computed yet."""

    sources: list[str]  # row labels (the source models)
    source_norms: list[str]
    targets: list[str]  # target normalizations
    accuracy: list[list[float | None]]
    missing: list[tuple[int, int]]

    def to_dict(self) -> dict:
        return {"sources": self.sources, "source_norms": self.source_norms, "targets": self.targets,
                "accuracy": self.accuracy, "missing": [list(c) for c in self.missing]}


def cross_evaluation_requests(sources: list[Subject], source_norms: list[str], kind: str, arch: str,
                              targets: tuple[str, ...] = PAPER_NORMS, preset: str = "cpu",
                              ) -> dict[tuple[int, int], Evaluation]:
    """The off-diagonal cells, as plain-data evaluations (what a page gathers and a job computes)."""
    features = feature_config(kind, preset)
    return {(i, j): Evaluation.of(source, feature_training, FeatureTrainingConfig(
        features, feature_train_config(kind, arch, target, preset)))
            for i, source in enumerate(sources) for j, target in enumerate(targets) if target != source_norms[i]}


def cross_evaluation(sources: list[Subject], source_norms: list[str], kind: str, arch: str,
                     targets: tuple[str, ...] = PAPER_NORMS, preset: str = "cpu",
                     run: RunContext = RunContext()) -> CrossEvaluation:
    """Tables A3 / A4: every off-diagonal cell, computed (or, ``cached_only``, looked up)."""
    requests = cross_evaluation_requests(sources, source_norms, kind, arch, targets, preset)
    results = {cell: e.run(run.part(i, len(requests))) for i, (cell, e) in enumerate(requests.items())}
    grid = [[None if results.get((i, j), MISSING) is MISSING else 100 * results[(i, j)]["test_accuracy"]
             for j in range(len(targets))] for i in range(len(sources))]
    return CrossEvaluation([s.name for s in sources], list(source_norms), list(targets), grid,
                           [c for c, r in results.items() if r is MISSING])


@dataclass(frozen=True)
class RelianceConfig:
    """Images whose robust and non-robust features disagree: the built-in data's ``conflict`` split, or a
    D_det / D_conflict dataset's held-out part (``auto``: the model's own dataset)."""

    data: EvalData = EvalData(dataset="builtin", split="conflict", per_class=200)


@experiment("conflict_reliance", RelianceConfig, "on images whose robust and non-robust features disagree, "
            "the share labelled by each (reliance on robust vs non-robust features)")
def conflict_reliance_report(checkpoint: Checkpoint, config: RelianceConfig, run: RunContext) -> dict:
    x, y = eval_tensors(config.data, checkpoint.spec.num_classes)
    return conflict_reliance(checkpoint.model.to(run.torch_device), x, y, checkpoint.spec.num_classes)


# ---------------------------------------------------------------------------------------------- the zoo's plan


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


def zoo_cross_requests(entries: dict[str, Subject], table: str, preset: str = "cpu",
                       targets: tuple[str, ...] = PAPER_NORMS
                       ) -> tuple[list[Subject], list[str], dict[tuple[int, int], Evaluation]]:
    """Table A3 (``standard``) or A4 (``robust``) over the zoo's VGG11 of each normalization that is present."""
    found = {norm: entries[name] for norm, name in FEATURE_SOURCES[table].items() if name in entries}
    sources, norms = list(found.values()), list(found)
    return sources, norms, cross_evaluation_requests(sources, norms, table_kind(table), FEATURE_ARCH, targets, preset)


def table_kind(table: str) -> str:
    """The dataset kind of a cross-evaluation table: Eq. A2 from robust sources is D_R, from standard ones D_NR."""
    return "D_R" if table == "robust" else "D_NR"


def list_feature_datasets() -> list[dict]:
    """Every extracted dataset on this machine: id, kind, size, source, preset and sanity figures."""
    folder = features_dir()
    metas = [json.loads(p.read_text()) for p in sorted(folder.glob("*/meta.json"))] if folder.is_dir() else []
    return [{k: m[k] for k in ("id", "kind", "images", "source_dataset", "source", "sanity")} |
            {"preset": m["config"]["preset"]} for m in metas]
