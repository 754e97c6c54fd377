"""Adversarial gallery: clean images, their adversarial versions and the perturbation, with predictions.

:func:`adversarial_gallery` is the pure computation (model, images, labels, AttackSpec -> images,
predictions, confidences); the experiment :func:`gallery_report` caches it per checkpoint, storing
images as base64 uint8 so a cached entry stays small JSON.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.attacks import AttackSpec, paper_spec
from core.checkpoints import Checkpoint
from core.experiments import EvalData, RunContext, eval_tensors, experiment, images_in
from core.images import amplify, decode_images, encode_images
from core.metrics import adversarial_examples, confidences
from core.records import Record


@dataclass
class Gallery:
    """Images in [0, 1] ``[N, 3, H, W]`` (CPU) with true labels, predictions and softmax confidences."""

    clean: torch.Tensor
    adversarial: torch.Tensor
    labels: torch.Tensor
    clean_pred: torch.Tensor
    clean_conf: torch.Tensor
    adv_pred: torch.Tensor
    adv_conf: torch.Tensor

    @property
    def perturbation(self) -> torch.Tensor:
        return self.adversarial - self.clean


DEFAULT_ATTACK = "pgd_linf"  # what the gallery shows first (and precompute fills in)


@dataclass(frozen=True)
class GalleryConfig:
    attack: AttackSpec = paper_spec(DEFAULT_ATTACK)
    data: EvalData = EvalData(per_class=1)  # one image of each class


def adversarial_gallery(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, spec: AttackSpec,
                        num_classes: int = 10) -> Gallery:
    """Attack ``images`` (float in [0, 1], ``[N, 3, H, W]``) with ``spec``; predictions before and after.

    Shape: images ``[N, 3, H, W]`` in [0, 1]; labels ``[N]`` int64. Targeted specs use
    :func:`core.metrics.target_labels`, as :func:`core.metrics.run_attack` does. Attacked in the attacks' batches
    (:data:`core.metrics.ATTACK_BATCH`): one batch of every image held all their activations at once.
    """
    adversarial = adversarial_examples(model, images, labels, spec, num_classes)
    clean_pred, clean_conf = confidences(model, images)
    adv_pred, adv_conf = confidences(model, adversarial)
    return Gallery(images.cpu(), adversarial, labels.cpu(), clean_pred, clean_conf, adv_pred, adv_conf)


@dataclass(frozen=True, kw_only=True)
class GalleryReport(Record):
    """A :class:`Gallery` as stored: images encoded (:func:`core.images.encode_images`; the perturbation amplified
    to be seen), each image's linf distance, labels, predictions and confidences."""

    clean: dict
    adversarial: dict
    perturbation: dict
    linf: list[float]
    labels: list[int]
    clean_pred: list[int]
    clean_conf: list[float]
    adv_pred: list[int]
    adv_conf: list[float]

    @classmethod
    def of(cls, g: Gallery) -> "GalleryReport":
        return cls(clean=encode_images(g.clean), adversarial=encode_images(g.adversarial),
                   perturbation=encode_images(amplify(g.perturbation)),
                   linf=g.perturbation.abs().flatten(1).amax(1).tolist(), labels=g.labels.tolist(),
                   clean_pred=g.clean_pred.tolist(), clean_conf=g.clean_conf.tolist(), adv_pred=g.adv_pred.tolist(),
                   adv_conf=g.adv_conf.tolist())


def gallery_work(config: GalleryConfig) -> int:
    """The attack's passes, and the predictions on the clean and the adversarial images."""
    return images_in(config) * (config.attack.passes + 2)


@experiment("gallery", GalleryConfig, "clean and adversarial images with predictions (the adversarial gallery)",
            work=gallery_work)
def gallery_report(checkpoint: Checkpoint, config: GalleryConfig, run: RunContext) -> GalleryReport:
    x, y = eval_tensors(config.data, checkpoint.spec.num_classes)
    return GalleryReport.of(adversarial_gallery(run.model(checkpoint), x, y, config.attack,
                                                checkpoint.spec.num_classes))


def gallery_grid(reports: dict[str, GalleryReport], rows: int, zoom: int = 4, gap: int = 2) -> np.ndarray:
    """The gallery as one uint8 ``[H, W, 3]`` image: a row per test image; columns clean, then per report
    (model) its adversarial image and amplified perturbation; ``zoom``x nearest-neighbour, white gaps."""
    first = next(iter(reports.values()))
    columns = [decode_images(first.clean)[:rows]]
    for report in reports.values():
        columns += [decode_images(report.adversarial)[:rows], decode_images(report.perturbation)[:rows]]
    cells = [[c[i].repeat(zoom, 0).repeat(zoom, 1) for c in columns] for i in range(len(columns[0]))]
    return _tile(cells, gap)


def _tile(cells: list[list[np.ndarray]], gap: int) -> np.ndarray:
    h, w, _ = cells[0][0].shape
    grid = np.full((len(cells) * (h + gap) - gap, len(cells[0]) * (w + gap) - gap, 3), 255, dtype=np.uint8)
    for i, row in enumerate(cells):
        for j, cell in enumerate(row):
            grid[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = cell
    return grid
