"""Accuracy under corruptions (Sec. 3.2): one cached cell per model x corruption x severity, and the sweep's
summary, the mean corruption error.

The corrupted images are the same for every model, so they are made once per image set, corruption,
severity and seed and kept as 8-bit arrays (as the published CIFAR-10-C stores them) under
``<cache>/corrupted/``; a sweep of a second model only classifies them. With ``source="cifar10c"`` the cells
read the published arrays instead (:mod:`core.corruptions.cifar10c`), on the same balanced test subset.

The mean corruption error here is the plain mean of the error rates over the cells (CIFAR-10-C has no
AlexNet baseline to divide by, unlike ImageNet-C's mCE); the relative one subtracts the clean error first.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from core.cache import MISSING, Missing, default_cache_dir, make_key
from core.checkpoints import Checkpoint
from core.config import one_of
from core.errors import ParameterError
from core.io import atomic_write, read_npy
from core.corruptions.cifar10c import PUBLISHED, load_cifar10c
from core.corruptions.transforms import CORRUPTIONS, SEVERITIES, check_severity, corrupt, corruption_def, quantized
from core.data import DataError, balanced_subset, load_dataset, to_float
from core.data.sources import SAME_IMAGES
from core.experiments import (EvalData, Evaluation, RunContext, Subject, data_for, eval_tensors, experiment, images_in,
                              stores)
from core.metrics import predict
from core.records import Record
from core.progress import Progress, null_progress

IMAGE_SOURCES = ("generated", "cifar10c")
CHUNK = 500  # images corrupted at a time; fixed, so that a seed's random draws never depend on memory


@dataclass(frozen=True)
class CorruptionConfig:
    """One cell: the test images under ``corruption`` at ``severity`` (1-5), made here from ``seed``
    (``source="generated"``) or read from the published CIFAR-10-C arrays (``source="cifar10c"``)."""

    corruption: str = one_of(CORRUPTIONS, "gaussian_noise")
    severity: int = 1  # 1-5
    data: EvalData = EvalData()
    seed: int = 0  # draws the corruptions' randomness
    source: str = one_of(IMAGE_SOURCES, "generated")  # cifar10c: the published arrays (NORMSCOPE_CIFAR10C)

    def __post_init__(self) -> None:
        if self.source not in IMAGE_SOURCES:
            raise ParameterError(f"unknown corruption source {self.source!r}; choose from {', '.join(IMAGE_SOURCES)}")
        if self.source == "generated":
            corruption_def(self.corruption)
        elif self.corruption not in PUBLISHED:
            raise ParameterError(f"CIFAR-10-C has no corruption {self.corruption!r}; it has {', '.join(PUBLISHED)}")
        check_severity(self.severity)


def corrupted_dir() -> Path:
    return default_cache_dir() / "corrupted"


def generated_images(config: CorruptionConfig, x: torch.Tensor, progress: Progress = null_progress) -> torch.Tensor:
    """``x``, the config's clean test images, corrupted here, uint8 ``[N, 3, H, W]``: read from ``<cache>/corrupted``
    if made before, else made (``CHUNK`` images at a time, one seeded stream) and written there atomically."""
    path = corrupted_dir() / f"{make_key('corrupted', '', replace(config, source='generated'))}.npy"
    if path.is_file():
        return torch.from_numpy(read_npy(path))
    spec, g = CORRUPTIONS[config.corruption], torch.Generator().manual_seed(config.seed)
    parts = []
    for start in range(0, len(x), CHUNK):
        parts.append(quantized(spec.apply(x[start:start + CHUNK], spec.levels[config.severity - 1], g)))
        progress(min(1.0, (start + CHUNK) / len(x)), f"{spec.title}, severity {config.severity}")
    images = torch.cat(parts)
    buffer = io.BytesIO()
    np.save(buffer, images.numpy(), allow_pickle=False)
    atomic_write(path, buffer.getvalue())
    return images


def published_images(config: CorruptionConfig, y: torch.Tensor) -> torch.Tensor:
    """The published arrays' images of the config's balanced test subset (CIFAR-10's test images only)."""
    if SAME_IMAGES.get(config.data.dataset) != "cifar10" or config.data.split != "test":
        raise DataError(f"CIFAR-10-C corrupts CIFAR-10's test images; this evaluation uses {config.data.dataset} "
                        f"({config.data.split})")
    x_all, y_all = load_cifar10c(config.corruption, config.severity)
    keep = balanced_subset(y_all, config.data.per_class, 10)
    if not torch.equal(y_all[keep], y.cpu()):
        raise DataError("the CIFAR-10-C labels differ from CIFAR-10's test labels: not the published arrays")
    return x_all[keep]


@dataclass(frozen=True, kw_only=True)
class CorruptionCell(Record):
    """Accuracy on ``n`` images under one corruption at one severity, and clean, with each image's outcome."""

    corruption: str
    severity: int
    n: int
    accuracy: float
    clean_accuracy: float
    clean_correct: list[bool] | None = None  # per image; None in results cached before they were stored
    correct: list[bool] | None = None


CELL_OUTCOMES = ("clean_correct", "correct")  # per image: right on the clean image, right on the corrupted one


def corruption_work(config: CorruptionConfig) -> int:
    """Predictions on the corrupted and on the clean images, and making the corruption: one pass more, since the
    slowest (glass blur, 1.1 ms an image) takes less than a pass of the reference model (4 ms; core.cost)."""
    return 3 * images_in(config)


@experiment("corruption", CorruptionConfig, "accuracy under one common corruption at one severity (Sec. 3.2)",
            current=stores(*CELL_OUTCOMES), work=corruption_work)
def corruption_cell(checkpoint: Checkpoint, config: CorruptionConfig, run: RunContext) -> CorruptionCell:
    x, y = eval_tensors(config.data, checkpoint.spec.num_classes)
    if config.source == "generated":
        images = generated_images(config, x, run.progress or null_progress)
    else:
        images = published_images(config, y)
    model = run.model(checkpoint)
    correct = predict(model, to_float(images)) == y
    clean = predict(model, x) == y
    run.report(1.0, f"{config.corruption} {config.severity} on {checkpoint.name}")
    return CorruptionCell(corruption=config.corruption, severity=config.severity, n=len(y),
                          accuracy=correct.float().mean().item(), clean_accuracy=clean.float().mean().item(),
                          clean_correct=clean.tolist(), correct=correct.tolist())


def sweep_requests(subject: Subject, corruptions: tuple[str, ...] = tuple(CORRUPTIONS),
                   severities: tuple[int, ...] = SEVERITIES, data: EvalData = EvalData(), seed: int = 0,
                   source: str = "generated") -> dict[tuple[str, int], Evaluation]:
    """A sweep's cells as plain data, keyed (corruption, severity)."""
    data = data_for(subject, data)
    return {(c, s): Evaluation.of(subject, corruption_cell, CorruptionConfig(c, s, data, seed, source))
            for c in corruptions for s in severities}


def summary(cells: dict[tuple[str, int], CorruptionCell]) -> dict:
    """The mean corruption error over the cells, relative to clean too, and the mean error per corruption."""
    errors = {k: 1 - c.accuracy for k, c in cells.items()}
    clean_error = 1 - next(iter(cells.values())).clean_accuracy
    per_corruption: dict[str, list[float]] = {}
    for (name, _), error in errors.items():
        per_corruption.setdefault(name, []).append(error)
    mce = sum(errors.values()) / len(errors)
    return {"mean_corruption_error": mce, "relative_mean_corruption_error": mce - clean_error,
            "clean_error": clean_error,
            "per_corruption": {name: sum(v) / len(v) for name, v in per_corruption.items()}}


def corruption_sweep(subject: Subject, corruptions: tuple[str, ...] = tuple(CORRUPTIONS),
                     severities: tuple[int, ...] = SEVERITIES, data: EvalData = EvalData(), seed: int = 0,
                     source: str = "generated", run: RunContext = RunContext()) -> dict | Missing:
    """Every cell of a model's sweep (each cached on its own) and their :func:`summary`; MISSING unless complete."""
    requests = sweep_requests(subject, corruptions, severities, data, seed, source)
    cells = {k: r.run(run.part(i, len(requests))) for i, (k, r) in enumerate(requests.items())}
    if any(c is MISSING for c in cells.values()):
        return MISSING
    first = next(iter(cells.values()))
    return {"checkpoint": first.checkpoint.name, "dataset": first.dataset, "n": first.n,
            "clean_accuracy": first.clean_accuracy, "source": source, "seed": seed,
            "cells": [{"corruption": c, "severity": s, "accuracy": cells[c, s].accuracy} for c, s in cells],
            **summary(cells)}


def corruption_gallery(data: EvalData, index: int = 0, corruptions: tuple[str, ...] = tuple(CORRUPTIONS),
                       severities: tuple[int, ...] = SEVERITIES, seed: int = 0) -> dict:
    """Image ``index`` of ``data``'s balanced subset, clean (``"clean"``) and under each corruption and severity
    (``(name, severity)``), uint8 ``[H, W, 3]``: made and stored (8-bit) as the cells' images are, with random draws
    of its own (a batch of other images draws others)."""
    dataset = load_dataset(data.dataset)
    x, y = dataset.split(data.split)
    keep = balanced_subset(y, data.per_class, dataset.num_classes)
    if not 0 <= index < len(keep):
        raise ParameterError(f"image {index} is outside the {len(keep)} images of this evaluation")
    image = to_float(x[keep[index]:keep[index] + 1])
    shown = {"clean": x[keep[index]].permute(1, 2, 0).numpy(), "label": int(y[keep[index]])}
    return shown | {(c, s): quantized(corrupt(image, c, s, seed))[0].permute(1, 2, 0).numpy()
                    for c in corruptions for s in severities}
