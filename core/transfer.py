"""Transferability (Sec. 7, App. H; Table 4, A8; Fig. 9): adversarial examples crafted on a source model,
white-box, then shown to other (target) models.

Two experiments, so that adding a target to a matrix costs one column:

* ``transfer_examples`` on the source: the adversarial images of one attack on one test subset, stored as
  8-bit images (what a transferred image is in practice; for the linf attacks on 8-bit datasets the
  rounding keeps every image inside its eps-ball, as pixels and eps both lie on the 1/255 grid).
* ``transfer`` on a target: those images' attack success rate on it, keyed by the source's sha256.

The success rate counts, among the images the target classifies correctly when clean, those it
misclassifies after the attack (``n`` of them per cell); the plain error rate on all images is reported
beside it. The paper's CIFAR-10 budget is not stated in the supplement: linf eps 8/255, 10 steps of
eps/10, is the usual setting of the I-FGSM family on CIFAR-10 and is the assumed default here.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from core.attacks import AttackSpec, paper_spec
from core.cache import MISSING, Missing
from core.checkpoints import Checkpoint
from core.errors import ParameterError
from core.experiments import (EvalData, Evaluation, Need, RunContext, Subject, attack_work, data_for, eval_tensors,
                              experiment, images_in, run_evaluations, stores)
from core.images import decode_images, encode_images, uint8_images
from core.metrics import adversarial_examples, predict
from core.planning import plan
from core.records import Record

TRANSFER_ATTACKS = ("ifgsm", "mifgsm", "difgsm", "tifgsm")


@dataclass(frozen=True)
class TransferConfig:
    """Which adversarial examples a source model makes: the attack (paper: the I-FGSM family) and the images."""

    attack: AttackSpec = paper_spec("ifgsm")
    data: EvalData = EvalData()


@dataclass(frozen=True)
class TransferCellConfig:
    """One matrix cell, measured on the target: the examples of source ``source`` (its sha256) under ``attack``."""

    source: str
    attack: AttackSpec = paper_spec("ifgsm")
    data: EvalData = EvalData()

    @property
    def examples(self) -> TransferConfig:
        return TransferConfig(self.attack, self.data)


def to_uint8_grid(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round() / 255


@dataclass(frozen=True, kw_only=True)
class TransferExamples(Record):
    """A source's adversarial images (8-bit, :func:`core.images.encode_images`), their labels, the source's own
    predictions on them, and the largest linf distance from a clean image."""

    adversarial: dict
    labels: list[int]
    source_pred: list[int]
    linf: float

    @property
    def images(self) -> torch.Tensor:
        """The adversarial images as floats in [0, 1], ``[N, 3, H, W]``."""
        return torch.from_numpy(decode_images(self.adversarial).copy()).permute(0, 3, 1, 2).float() / 255


@experiment("transfer_examples", TransferConfig, "adversarial examples crafted on a source model (Sec. 7)",
            work=attack_work)
def transfer_examples(checkpoint: Checkpoint, config: TransferConfig, run: RunContext) -> TransferExamples:
    x, y = eval_tensors(config.data, checkpoint.spec.num_classes)
    model = run.model(checkpoint)
    crafted = adversarial_examples(model, x, y, config.attack, checkpoint.spec.num_classes, progress=run.progress)
    adversarial = to_uint8_grid(crafted)
    return TransferExamples(adversarial=encode_images(adversarial), labels=y.tolist(),
                            source_pred=predict(model, adversarial).tolist(),
                            linf=(adversarial - x).abs().flatten(1).amax(1).max().item())


def examples_needed(config: TransferCellConfig) -> list[Need]:
    """A cell is read on its source's adversarial examples of the same attack and images."""
    return [Need(transfer_examples.name, config.source, config.examples)]


@dataclass(frozen=True, kw_only=True)
class TransferCell(Record):
    """One matrix cell: on the target, the attack success rate of a source's examples over the ``n`` images it
    classifies correctly when clean (None if there are none), the plain error rate on all ``n_images``, and each
    image's outcomes (with another source's cell on the same target they pair image by image)."""

    source: str  # the source's sha256
    n_images: int
    n: int
    success_rate: float | None
    error_rate: float
    clean_accuracy: float
    adv_pred: list[int]
    clean_correct: list[bool] | None = None  # per image; None in results cached before they were stored
    adv_correct: list[bool] | None = None

    @classmethod
    def of(cls, source: str, y: torch.Tensor, clean_pred: torch.Tensor, adv_pred: torch.Tensor) -> "TransferCell":
        correct, fooled = clean_pred == y, adv_pred != y
        n = int(correct.sum())
        return cls(source=source, n_images=len(y), n=n,
                   success_rate=(correct & fooled).sum().item() / n if n else None,
                   error_rate=fooled.float().mean().item(), clean_accuracy=correct.float().mean().item(),
                   adv_pred=adv_pred.tolist(), clean_correct=correct.tolist(), adv_correct=(~fooled).tolist())


CELL_OUTCOMES = ("clean_correct", "adv_correct")  # per image: the target right on the clean and on the adversarial


def cell_work(config: TransferCellConfig) -> int:
    """The target's predictions on the clean images and on the source's examples (crafted by their own request)."""
    return 2 * images_in(config)


@experiment("transfer", TransferCellConfig, "attack success rate on a target of a source's examples (Table 4, A8)",
            current=stores(*CELL_OUTCOMES), requires=examples_needed, work=cell_work)
def transfer_cell(checkpoint: Checkpoint, config: TransferCellConfig, run: RunContext) -> TransferCell:
    examples = run.needed(examples_needed(config)[0])
    x, y = eval_tensors(config.data, checkpoint.spec.num_classes)
    if examples.labels != y.tolist():
        raise ParameterError("the source's examples were made from other images than this target's test subset")
    model = run.model(checkpoint)
    clean_pred, adv_pred = predict(model, x), predict(model, examples.images)
    run.report(1.0, f"{config.attack.label} on {checkpoint.name}")
    return TransferCell.of(config.source, y, clean_pred, adv_pred)


def common_dataset(subjects: list[Subject], data: EvalData) -> EvalData:
    """``data`` resolved for models that must share a matrix; a clear error when their datasets or classes differ."""
    datasets = {s.dataset for s in subjects}
    classes = {getattr(s, "num_classes", None) for s in subjects} - {None}
    if len(datasets) > 1 or len(classes) > 1:
        by = ", ".join(f"{s.name}: {s.dataset}" for s in subjects)
        raise ParameterError(f"sources and targets trained on different datasets or class counts cannot share a "
                             f"transfer matrix ({by}); pick models of one dataset")
    return data_for(subjects[0], data)


@dataclass
class TransferMatrix:
    """Cells (source i, target j): the ``transfer`` results, or MISSING where not computed (cached-only)."""

    sources: list[str]
    targets: list[str]
    attack: AttackSpec
    data: EvalData
    cells: dict[tuple[int, int], TransferCell | Missing] = field(default_factory=dict)
    white_box: set[tuple[int, int]] = field(default_factory=set)  # the same checkpoint as source and target

    def value(self, i: int, j: int, key: str = "success_rate") -> float | None:
        cell = self.cells.get((i, j), MISSING)
        return None if cell is MISSING else getattr(cell, key)

    def table(self, key: str = "success_rate") -> list[list[float | None]]:
        return [[self.value(i, j, key) for j in range(len(self.targets))] for i in range(len(self.sources))]

    def row_average(self, i: int, key: str = "success_rate", black_box_only: bool = False) -> float | None:
        """The paper's "Avg" column: the mean over every target (``black_box_only``: without the source itself)."""
        values = [self.value(i, j, key) for j in range(len(self.targets))
                  if not (black_box_only and (i, j) in self.white_box)]
        return None if not values or None in values else sum(values) / len(values)

    @property
    def missing(self) -> int:
        return sum(cell is MISSING for cell in self.cells.values())


def label(subject: Subject) -> str:
    """A subject's name in a matrix: a catalog entry's unique label (two uploads may share a name), else its name."""
    return getattr(subject, "label", subject.name)


def matrix_requests(sources: list[Subject], targets: list[Subject], attack: AttackSpec = paper_spec("ifgsm"),
                    data: EvalData = EvalData()) -> dict[tuple[int, int], Evaluation]:
    """A matrix's cells (source i, target j) as plain data; each requires its source's examples, which a plan
    (:func:`core.planning.plan` with ``subjects=sources``) puts before it."""
    data = common_dataset([*sources, *targets], data)
    return {(i, j): Evaluation.of(t, transfer_cell, TransferCellConfig(s.sha256, attack, data))
            for i, s in enumerate(sources) for j, t in enumerate(targets)}


def assembled(sources: list[Subject], targets: list[Subject], attack: AttackSpec, data: EvalData,
              cells: dict[tuple[int, int], TransferCell]) -> TransferMatrix:
    """The matrix of the cells found (MISSING elsewhere)."""
    matrix = TransferMatrix([label(s) for s in sources], [label(t) for t in targets], attack, data)
    for i, source in enumerate(sources):
        for j, target in enumerate(targets):
            matrix.cells[i, j] = cells.get((i, j), MISSING)
            if source.sha256 == target.sha256:
                matrix.white_box.add((i, j))
    return matrix


def transfer_matrix(sources: list[Subject], targets: list[Subject], attack: AttackSpec = paper_spec("ifgsm"),
                    data: EvalData = EvalData(), run: RunContext = RunContext()) -> TransferMatrix:
    """Examples crafted once per source, then evaluated on every target (each cached on its own), on ``data``."""
    requests = matrix_requests(sources, targets, attack, data)
    work = plan(requests, run, subjects=sources, relocate=False)
    if not run.cached_only:
        run_evaluations(work.remaining, run)
    lookup = replace(run, cached_only=True)
    cells = {k: r.run(lookup) for k, r in requests.items()}
    return assembled(sources, targets, attack, work.data(data), {k: v for k, v in cells.items() if v is not MISSING})


def transferability_over_training(snapshots: list[Subject], targets: list[Subject],
                                  attack: AttackSpec = paper_spec("ifgsm"), data: EvalData = EvalData(),
                                  run: RunContext = RunContext()) -> list[float | None]:
    """Fig. 9 / A6: per source snapshot (in training order), the mean success rate on the fixed ``targets``."""
    matrix = transfer_matrix(snapshots, targets, attack, data, run)
    return [matrix.row_average(i, black_box_only=True) for i in range(len(snapshots))]


def examples_request(source: Subject, attack: AttackSpec, data: EvalData) -> Evaluation:
    return Evaluation.of(source, transfer_examples, TransferConfig(attack, data))


def transferred_gallery(source: Subject, matrix: TransferMatrix, shown: int, run: RunContext) -> dict | None:
    """The first ``shown`` images of a matrix row, as uint8 ``[N, H, W, 3]``: clean, the source's adversarial
    version, and each target's prediction on it (None while the source's examples are not computed)."""
    examples = transfer_examples(source, TransferConfig(matrix.attack, matrix.data), run)
    if examples is MISSING:
        return None
    i = matrix.sources.index(label(source))
    x, y = eval_tensors(matrix.data, getattr(source, "num_classes", max(examples.labels) + 1))
    return {"clean": uint8_images(x[:shown]), "adversarial": decode_images(examples.adversarial)[:shown],
            "labels": y[:shown].tolist(), "source_pred": examples.source_pred[:shown],
            "target_pred": {t: matrix.cells[i, j].adv_pred[:shown] for j, t in enumerate(matrix.targets)
                            if matrix.value(i, j) is not None}}
