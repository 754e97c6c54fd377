"""Metrics: clean and robust accuracy, robustness-vs-eps curves, zero input gradients, and LIGS.

LIGS (Local Input Gradient Similarity, Benz et al. Sec. 4) is
``E_(x,y) cos(grad_x L(x, y), grad_x L(x + nu, y))`` with cross-entropy L, gradients w.r.t. the
[0, 1] input, ``x + nu`` not clipped, the cosine per sample and then averaged. High LIGS means the
loss is locally linear around inputs, i.e. the model relies on robust features.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.attacks import AttackSpec, attack_mode, build_attack, paper_spec
from core.config import later_option, one_of
from core.device import model_device, to_device
from core.errors import ParameterError
from core.models.inference import PRECISIONS, InferenceForm, check_precision
from core.progress import Progress, null_progress
from core.records import Record

LIGS_KINDS = ("gaussian", "uniform", "fgsm", "pgd")
MASKING_WARNING = 0.01  # a share of exactly-zero input gradients above this flags a result as possibly masked


# Images per attack batch by device type: a GPU needs large batches to fill (a width-0.25 ResNet18's PGD step
# is launch-bound at 500); on the CPU 250 keeps memory small at no cost in speed. Neither changes results
# except random starts (drawn per batch) and float rounding, which the cache key leaves out like the device.
ATTACK_BATCH = {"cpu": 250, "cuda": 2000}


def batches(n: int, batch_size: int) -> list[slice]:
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def attack_batch(model: nn.Module, batch_size: int | None = None) -> int:
    """``batch_size``, or the model's device's :data:`ATTACK_BATCH`."""
    return batch_size or ATTACK_BATCH.get(model_device(model).type, ATTACK_BATCH["cpu"])


@torch.no_grad()
def confidences(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted labels and their softmax probabilities (CPU) in eval mode; the caller's mode is restored."""
    device = model_device(model)
    with attack_mode(model):
        probs = torch.cat([model(to_device(x[s], device)).softmax(1).cpu() for s in batches(len(x), batch_size)])
    conf, pred = probs.max(1)
    return pred, conf


def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Predicted labels (CPU) in eval mode."""
    return confidences(model, x, batch_size)[0]


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Fraction of ``x`` predicted as ``y``; images and labels may be on any device."""
    return (predict(model, x, batch_size) == y.cpu()).float().mean().item() if len(y) else float("nan")


def target_labels(y: torch.Tensor, mode: str, num_classes: int, seed: int = 0) -> torch.Tensor | None:
    """Attack targets on ``y``'s device: None (untargeted), ``y + 1 mod K`` ("next") or a random other
    class ("random", drawn on the CPU so every device gets the same targets)."""
    if mode == "untargeted":
        return None
    if mode == "next":
        return (y + 1) % num_classes
    g = torch.Generator().manual_seed(seed)
    return ((y.cpu() + torch.randint(1, num_classes, y.shape, generator=g)) % num_classes).to(y.device)


@dataclass
class AttackResult:
    spec: AttackSpec
    clean_accuracy: float
    robust_accuracy: float
    target_success: float | None  # targeted attacks: fraction classified as the target
    n: int
    clean_correct: torch.Tensor  # bool [N]
    robust_correct: torch.Tensor  # bool [N]
    zero_gradient: float | None = None  # fraction of images whose attack-loss gradient at x is exactly 0


def adversarial_examples(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: AttackSpec, num_classes: int = 10,
                         batch_size: int | None = None, progress: Progress | None = None) -> torch.Tensor:
    """The adversarial images of ``x`` under ``spec`` (CPU), ``batch_size`` at a time; targeted specs aim at
    :func:`target_labels`. Images and labels may be on any device."""
    progress, attack = progress or null_progress, build_attack(model, spec)
    targets = target_labels(y, spec.target, num_classes, spec.seed)
    out = []
    for i, s in enumerate(parts := batches(len(x), attack_batch(model, batch_size))):
        out.append(attack(x[s], y[s], None if targets is None else targets[s]).cpu())
        progress((i + 1) / len(parts), f"{spec.label}: {s.stop}/{len(x)}")
    return torch.cat(out)


def zero_gradient_mask(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: AttackSpec, num_classes: int = 10,
                       batch_size: int | None = None) -> torch.Tensor:
    """Which images' input gradient of the attack's own loss, at the clean image, is exactly zero (bool [N], CPU).

    Why: a softmax saturated in fp32 (p_y rounds to 1) makes the cross-entropy's gradient exactly 0, so FGSM and
    PGD have nothing to follow and the model reads as robust (gradient masking, not robustness). The CW margin and
    DLR losses do not saturate, so the same model can show 100 % here for CE attacks and 0 % for them."""
    attack, device = build_attack(model, spec), model_device(model)
    targets = target_labels(y, spec.target, num_classes, spec.seed)
    zero = []
    with attack_mode(model):
        for s in batches(len(x), attack_batch(model, batch_size)):
            target = None if targets is None else targets[s].to(device)
            grad = attack.ascent_grad(to_device(x[s], device), y[s].to(device), target)
            zero.append((grad.flatten(1) == 0).all(1).cpu())
    return torch.cat(zero) if zero else torch.zeros(0, dtype=torch.bool)


def run_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: AttackSpec, num_classes: int = 10,
               batch_size: int | None = None, progress: Progress | None = None) -> AttackResult:
    """Attack every sample; report clean and robust accuracy (and target success when targeted), and the
    fraction of images whose gradient is exactly zero at the start (:func:`zero_gradient_mask`).
    Images and labels may be on any device; the per-sample results are CPU tensors."""
    y, batch_size = y.cpu(), attack_batch(model, batch_size)  # predictions are on the CPU
    adversarial = adversarial_examples(model, x, y, spec, num_classes, batch_size, progress)
    targets = target_labels(y, spec.target, num_classes, spec.seed)
    clean_c, adv_pred = predict(model, x, batch_size) == y, predict(model, adversarial, batch_size)
    robust_c = adv_pred == y
    success = (adv_pred == targets).float().mean().item() if targets is not None else None
    zero = zero_gradient_mask(model, x, y, spec, num_classes, batch_size).float().mean().item() if len(y) else None
    return AttackResult(spec, clean_c.float().mean().item(), robust_c.float().mean().item(), success,
                        len(y), clean_c, robust_c, zero)


def robust_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: AttackSpec | str,
                    batch_size: int | None = None, progress: Progress | None = None) -> float:
    """Accuracy on adversarial examples; ``attack`` is a spec or a name (paper defaults)."""
    spec = paper_spec(attack) if isinstance(attack, str) else attack
    return run_attack(model, x, y, spec, batch_size=batch_size, progress=progress).robust_accuracy


@dataclass(frozen=True)
class LIGSSpec:
    """The perturbation nu of LIGS. Paper default: Gaussian, std 0.01 (App. B.3); Fig. A1 variants:
    uniform in [-size, size], FGSM with eps=size, linf-PGD with eps=size, 7 steps, step 2.5*eps/7."""

    kind: str = one_of(LIGS_KINDS, "gaussian")  # the perturbation nu
    size: float = 0.01  # the std (gaussian) or eps (the others)
    steps: int = 7  # pgd's iterations
    seed: int = 0  # draws the random perturbations
    precision: str = later_option("fp32", PRECISIONS)  # bf16: the gradients under bf16 autocast (the cosine in fp32)

    def __post_init__(self) -> None:
        # checked here once, so the UI, CLI and jobs refuse the same specs (a negative size gave a LIGS)
        if self.kind not in LIGS_KINDS:
            raise ParameterError(f"unknown LIGS perturbation {self.kind!r}; choose from {', '.join(LIGS_KINDS)}")
        if not (isinstance(self.size, numbers.Real) and math.isfinite(self.size) and self.size > 0):
            raise ParameterError(f"LIGS perturbation size must be a positive number, got {self.size!r}")
        if not (isinstance(self.steps, numbers.Integral) and self.steps >= 1):
            raise ParameterError(f"LIGS steps must be an integer >= 1, got {self.steps!r}")
        check_precision(self.precision)

    @property
    def passes(self) -> int:
        """Gradient passes per image: at x and at x + nu, plus the attack's steps for the fgsm / pgd kinds."""
        return 2 + {"fgsm": 1, "pgd": self.steps}.get(self.kind, 0)


@dataclass
class LIGSResult:
    spec: LIGSSpec
    per_sample: torch.Tensor  # cosine similarity of input gradients, [N]
    logit_similarity: torch.Tensor  # cosine similarity of logits at x and x + nu, [N]

    @property
    def mean(self) -> float:
        return self.per_sample.mean().item()


def perturbation(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: LIGSSpec,
                 generator: torch.Generator) -> torch.Tensor:
    """The perturbation nu for one batch, drawn on ``generator``'s device and moved to ``x``'s."""
    if spec.kind == "gaussian":
        return spec.size * torch.randn(x.shape, generator=generator, device=generator.device).to(x.device)
    if spec.kind == "uniform":
        return spec.size * (torch.rand(x.shape, generator=generator, device=generator.device) * 2 - 1).to(x.device)
    if spec.kind in ("fgsm", "pgd"):
        attack_spec = AttackSpec("fgsm" if spec.kind == "fgsm" else "pgd_linf", spec.size, spec.steps, seed=spec.seed,
                                 precision=spec.precision)
        return build_attack(model, attack_spec)(x, y) - x
    raise ParameterError(f"unknown LIGS perturbation {spec.kind!r}; choose from {LIGS_KINDS}")


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of the summed cross-entropy w.r.t. the input, and the logits."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    return torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x)[0], logits.detach()


def ligs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: LIGSSpec = LIGSSpec(),
         batch_size: int | None = None, progress: Progress | None = None) -> LIGSResult:
    """LIGS per sample (and its mean) for perturbations of ``spec``; deterministic under ``spec.seed``.
    Images and labels may be on any device; the noise is drawn on the CPU, so every device draws the same."""
    progress, device, inference = progress or null_progress, model_device(model), InferenceForm(spec.precision)
    generator = torch.Generator().manual_seed(spec.seed)
    cos, logit_cos = [], []
    for i, s in enumerate(parts := batches(len(x), attack_batch(model, batch_size))):
        xb, yb = to_device(x[s], device), y[s].to(device)
        nu = perturbation(model, xb, yb, spec, generator)
        with attack_mode(model):
            network = inference(model)  # the attacks' form: BN folded, at the spec's precision
            (g0, z0), (g1, z1) = input_gradient(network, xb, yb), input_gradient(network, xb + nu, yb)
        cos.append(F.cosine_similarity(g0.flatten(1), g1.flatten(1), dim=1).cpu())
        logit_cos.append(F.cosine_similarity(z0, z1, dim=1).cpu())
        progress((i + 1) / len(parts), f"LIGS ({spec.kind}): {s.stop}/{len(x)}")
    return LIGSResult(spec, torch.cat(cos), torch.cat(logit_cos))


@dataclass(frozen=True, kw_only=True)
class ConflictReliance(Record):
    """On ``n`` images whose robust and non-robust features disagree: the share labelled by each cue."""

    robust: float
    non_robust: float
    n: int


def conflict_reliance(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int = 10) -> ConflictReliance:
    """On images whose robust features say ``y`` and non-robust ones ``y + 1 mod K`` (a ``conflict`` split):
    how often the model follows each cue; the two need not sum to 1."""
    pred, y = predict(model, x), y.cpu()
    return ConflictReliance(robust=(pred == y).float().mean().item(),
                            non_robust=(pred == (y + 1) % num_classes).float().mean().item(), n=len(y))
