"""Extracting a feature dataset from a source model: Eq. A2's feature matching (D_R / D_NR) and the targeted
attacks (D_rand / D_det / D_conflict), batch by batch and resumable, as the cached experiment ``feature_dataset``."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.attacks import attack_mode
from core.attacks.steps import TINY, per_sample_norm
from core.checkpoints import Checkpoint
from core.config import config_dict
from core.data import Dataset, balanced_subset, load_dataset, to_float
from core.device import model_device, to_device
from core.cache import MISSING
from core.errors import ParameterError
from core.experiments import RunContext, Subject, experiment, get_experiment, images_in
from core.features.config import FEATURE_MATCHING, FeatureConfig
from core.features.storage import Part, dataset_folder, load_part, read_meta, save_part, write_dataset
from core.io import plain_name
from core.images import amplify, decode_images, encode_images, uint8_images
from core.metrics import adversarial_examples, batches, predict, target_labels
from core.progress import Progress, null_progress
from core.records import Record

CHUNK = 500  # images per resumable part
PREVIEW = 10  # images kept in the cached result for the gallery (the first of each class)


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
    raise ParameterError("could not draw images of another class: does the data have a single class?")



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



def dataset_id(source: Subject, config: FeatureConfig) -> str:
    """A readable, unique name: kind, source file, preset and the experiment key's hash; a plain name
    (:func:`core.io.plain_name` of the file's stem), as ``features:<id>`` must be."""
    key = get_experiment("feature_dataset").key(source, config).split(":")[1]
    return f"{config.kind}-{plain_name(Path(str(source.path)).stem)}-{config.preset}-{key[:10]}"



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
        raise ParameterError(f"D_R is extracted from an adversarially trained model; {checkpoint.name} is standard "
                             "(its Eq. A2 dataset is D_NR)")
    if config.kind != "D_R" and adversarial:
        raise ParameterError(f"{config.kind} is extracted from a standard model; {checkpoint.name} is adversarially "
                             "trained (its Eq. A2 dataset is D_R)")


@dataclass(frozen=True, kw_only=True)
class FeatureDataset(Record):
    """An extracted feature dataset's metadata (as its folder's ``meta.json`` holds it): its ``id``, kind, size, the
    dataset and model it came from, the sanity figures (:func:`sanity`), and a preview of one image per class."""

    id: str
    kind: str
    images: int
    source_dataset: str
    source: dict  # {"name", "sha256"} of the model it was extracted from
    sanity: dict
    preview: dict


def extracted(result: FeatureDataset) -> bool:
    """Whether a cached extraction's files are on this machine (a result outlives them: shipped, or a cleared
    features folder)."""
    return (dataset_folder(result.id) / "meta.json").is_file()


def extraction_work(config: FeatureConfig) -> int:
    """Every image extracted: Eq. A2's gradient pass per iteration, the target's and the start's features, the
    final distance and the trace's (:func:`match_features`); or the targeted attack and its check."""
    if config.kind not in FEATURE_MATCHING:
        return extracted_images(config) * (config.attack.passes + 1)
    traces = config.iterations // max(1, config.iterations // 10)
    return extracted_images(config) * (config.iterations + 3 + traces)


def extracted_images(config: FeatureConfig) -> int:
    """The images a config extracts: its balanced subset, or for D_conflict every image of the D_R set it starts
    from (as many as that set's own subset where its files are not here to say)."""
    if config.kind == "D_conflict" and (dataset_folder(config.start) / "meta.json").is_file():
        return int(read_meta(config.start).get("images", 0)) or images_in(config)
    return images_in(config)


@experiment("feature_dataset", FeatureConfig, "a feature dataset D_R / D_NR / D_rand / D_det / D_conflict "
            "extracted from the model (App. C, F); its metadata and sanity figures", current=extracted,
            work=extraction_work)
def feature_dataset(checkpoint: Checkpoint, config: FeatureConfig, run: RunContext) -> FeatureDataset:
    """Extract into the features folder (resuming), and return the dataset's metadata."""
    check_source(checkpoint, config)
    dataset, name = load_dataset(config.data.dataset), dataset_id(checkpoint, config)
    folder = dataset_folder(name)
    parts = extract(run.model(checkpoint), config, dataset, folder, run.progress or null_progress)
    meta = {"id": name, "kind": config.kind, "images": sum(len(p.labels) for p in parts),
            "source_dataset": dataset.name, "source": {"name": checkpoint.name, "sha256": checkpoint.sha256},
            "config": config_dict(config), "sanity": sanity(config, parts)}
    write_dataset(folder, parts, meta)
    return FeatureDataset(**{k: v for k, v in meta.items() if k != "config"}, preview=preview(parts, dataset, config))


def ensure_dataset(source: Subject, config: FeatureConfig, run: RunContext = RunContext()) -> str:
    """The id of ``config``'s dataset from ``source``, extracted when its files are not on disk (again, if a
    cached result outlived them); a cached-only run raises LookupError instead of extracting."""
    result = feature_dataset(source, config, run)
    if result is MISSING or not extracted(result):
        raise LookupError(f"feature dataset {dataset_id(source, config)} is not extracted on this machine")
    return result.id
