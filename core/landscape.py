"""Loss landscapes: the optimization landscape along the training gradient (App. I) and the loss surface
around an input (what LIGS summarises in one number).

**Optimization landscape** (App. I, Fig. A7-A10, after Santurkar et al., NeurIPS 2018). At a training step
with weights ``w``, batch loss ``L`` and its gradient ``g = grad L(w)``, for step sizes ``eta``:

- loss variation: the range of ``L(w - eta g)`` over the etas;
- gradient change (predictiveness): ``||grad L(w) - grad L(w - eta g)||_2`` per eta;
- effective beta-smoothness: ``max_eta ||grad L(w) - grad L(w - eta g)||_2 / ||eta g||_2``.

:func:`landscape_step` measures them in the model's current mode (train mode in the trainer: batch
statistics, as the training step) and leaves weights, buffers (BN running statistics), gradients, mode and
the global RNG exactly as they were. ``TrainConfig(landscape_every=k)`` records one every k steps.

**Loss surface around an input.** The cross-entropy on a 2-D plane of the input space through an image
``x``: ``L(x + a d1 + b d2)`` for ``a, b`` on a grid in ``[-radius, radius]``, where ``d1`` is the
normalized input-gradient direction and ``d2`` a random direction orthogonal to it ("gradient-random"),
or two orthogonal random directions ("random-random"). Directions have unit norm in the threat model
(l2: ``||d||_2 = 1``; linf: ``||d||_inf = 1``, the gradient direction being ``sign(grad)``, FGSM's);
points are not clipped to [0, 1] (as LIGS's ``x + nu``). A locally linear loss (high LIGS) is a tilted
plane there; a non-linear one a crumpled sheet.

    >>> loss_surface(checkpoint, LossSurfaceConfig(image=3))["loss"]  # doctest: +SKIP
"""
from __future__ import annotations

import math
import numbers
import statistics
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from core.attacks import attack_mode
from core.checkpoints import Checkpoint
from core.data import DataError, load_dataset, to_float
from core.device import model_device, to_device
from core.experiments import EvalData, RunContext, experiment
from core.images import encode_images
from core.metrics import LIGSSpec, batches, input_gradient, ligs

# Step sizes of the optimization landscape, as multiples of the configured (peak) learning rate: a log range
# around it. Santurkar et al. move "in the gradient direction" over a range of steps; NOTES.md fixes no grid.
LANDSCAPE_STEP_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
PLANES = ("gradient-random", "random-random")
THREATS = ("l2", "linf")
DEFAULT_RADIUS = {"l2": 1.0, "linf": 8 / 255}  # l2 1.0 is 4x the training probe's eps; linf 8/255 as Table 1


# --- optimization landscape during training -------------------------------------------------------------

@dataclass(frozen=True)
class LandscapeStep:
    """One measurement along the gradient ``g`` at weights ``w``, for each step size in ``etas``."""

    loss: float  # L(w)
    grad_norm: float  # ||g||_2
    etas: tuple[float, ...]
    losses: tuple[float, ...]  # L(w - eta g), per eta
    grad_changes: tuple[float, ...]  # ||grad L(w) - grad L(w - eta g)||_2, per eta

    @property
    def beta(self) -> float:
        """Effective beta-smoothness: max over eta of gradient change / ||eta g||_2 (0 when g = 0)."""
        if self.grad_norm == 0:
            return 0.0
        return max(c / (eta * self.grad_norm) for c, eta in zip(self.grad_changes, self.etas))

    def to_dict(self, step: int) -> dict:
        """The record kept in a checkpoint's history (plain floats, JSON-ready)."""
        return {"step": step, "loss": self.loss, "loss_min": min(self.losses), "loss_max": max(self.losses),
                "grad_change_min": min(self.grad_changes), "grad_change_max": max(self.grad_changes),
                "beta": self.beta, "grad_norm": self.grad_norm}


def landscape_etas(lr: float, factors: Sequence[float] = LANDSCAPE_STEP_FACTORS) -> tuple[float, ...]:
    """The step sizes measured at a learning rate ``lr``: ``lr`` times each factor."""
    return tuple(lr * f for f in factors)


def rng_state(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The global RNG state (CPU, and ``device``'s if CUDA): pass it to :func:`landscape_step` from just before
    a training step's forward pass, so dropout draws the same masks there as in the step."""
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def _set_rng_state(state: tuple[torch.Tensor, torch.Tensor | None], device: torch.device) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


@contextmanager
def preserved(model: nn.Module) -> Iterator[None]:
    """On exit, the model's parameters, buffers (BN running statistics, ``num_batches_tracked``) and mode,
    and the global RNG, are bit-identical to what they were on entry."""
    saved = [(t, t.detach().clone()) for t in (*model.parameters(), *model.buffers())]
    was_training, device = model.training, model_device(model)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        try:
            yield
        finally:
            with torch.no_grad():
                for tensor, copy in saved:
                    tensor.copy_(copy)
            model.train(was_training)


def _global_norm(tensors: Sequence[torch.Tensor]) -> float:
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t.double()) for t in tensors])).item()


def _loss_and_grad(loss_fn: Callable[[], torch.Tensor], params: list[nn.Parameter]) -> tuple[float, tuple]:
    loss = loss_fn()
    return loss.item(), torch.autograd.grad(loss, params, allow_unused=True, materialize_grads=True)


def landscape_step(model: nn.Module, loss_fn: Callable[[], torch.Tensor], etas: Sequence[float],
                   gradient: Sequence[torch.Tensor | None] | None = None,
                   rng: tuple[torch.Tensor, torch.Tensor | None] | None = None) -> LandscapeStep:
    """Loss and gradient along ``-g`` at step sizes ``etas`` (App. I, after Santurkar et al. 2018).

    Args:
        model: the network; measured in its current mode (the trainer's: train mode, batch statistics).
        loss_fn: ``() -> scalar loss`` of ``model`` on one fixed batch (forward pass included).
        etas: positive step sizes.
        gradient: ``g = grad L(w)`` over the parameters that require grad, in ``model.parameters()`` order
            (``None`` entries are zero); None: computed here. The trainer passes its ``p.grad``.
        rng: the global RNG state every forward pass starts from (:func:`rng_state`); None: the current one.

    Nothing of the model changes: parameters, buffers, ``.grad``, mode and the global RNG are restored
    bit-exactly (gradients are taken with ``torch.autograd.grad``, never accumulated), and no optimizer is
    touched. Cost: ``len(etas)`` forward and backward passes, and one more (a forward alone when
    ``gradient`` is given).
    """
    if not etas or any(not (eta > 0) for eta in etas):
        raise ValueError(f"step sizes must be positive, got {tuple(etas)}")
    params = [p for p in model.parameters() if p.requires_grad]
    with preserved(model):
        device = model_device(model)
        rng = rng or rng_state(device)
        _set_rng_state(rng, device)
        if gradient is None:
            loss, gradient = _loss_and_grad(loss_fn, params)
        else:
            with torch.no_grad():
                loss = loss_fn().item()
        g = [torch.zeros_like(p) if t is None else t.detach() for p, t in zip(params, gradient)]
        w = [p.detach().clone() for p in params]
        losses, changes = [], []
        for eta in etas:
            with torch.no_grad():
                for p, w0, d in zip(params, w, g):
                    p.copy_(w0 - eta * d)
            _set_rng_state(rng, device)
            shifted_loss, shifted = _loss_and_grad(loss_fn, params)
            losses.append(shifted_loss)
            changes.append(_global_norm([a - b for a, b in zip(g, shifted)]))
    return LandscapeStep(loss, _global_norm(g), tuple(float(e) for e in etas), tuple(losses), tuple(changes))


def landscape_records(history: list[dict]) -> list[dict]:
    """The optimization-landscape records in a checkpoint's per-epoch history, each with its epoch (keys:
    epoch, step, loss, loss_min, loss_max, grad_change_min, grad_change_max, beta, grad_norm); [] for a run
    trained without ``landscape_every``."""
    return [{"epoch": h.get("epoch"), **r} for h in history for r in h.get("landscape", [])]


# One number per measure and run, to compare runs in a table: the median over the measured steps (robust to the
# first steps' outliers) of the loss variation's range, the largest gradient change, that change relative to the
# gradient's norm (scale-free: a near-zero gradient on a flat plateau has a small absolute change too), and beta.
SUMMARY_MEASURES = {"loss_range": "loss variation (range)", "grad_change": "gradient change (max, l2)",
                    "relative_grad_change": "gradient change / ‖g‖", "beta": "β-smoothness"}


def landscape_summary(records: list[dict]) -> dict[str, float]:
    """The medians over measured steps of :data:`SUMMARY_MEASURES` (keys as there, plus ``steps``: how many were
    measured), from :func:`landscape_records`. Raises ValueError without records."""
    if not records:
        raise ValueError("no optimization-landscape records: the run was trained without landscape_every")
    per_step = {"loss_range": [r["loss_max"] - r["loss_min"] for r in records],
                "grad_change": [r["grad_change_max"] for r in records],
                "relative_grad_change": [r["grad_change_max"] / r["grad_norm"] if r["grad_norm"] else 0.0
                                         for r in records],
                "beta": [r["beta"] for r in records]}
    return {"steps": len(records), **{k: statistics.median(v) for k, v in per_step.items()}}


def landscape_phases(records: list[dict]) -> dict[str, list[dict]]:
    """The records of the whole run and of its last recorded epoch: norm-free and Fixup nets spend their first
    steps on a flat plateau (a tiny gradient, hence tiny changes), which the whole run's medians mix in."""
    last = [r for r in records if r.get("epoch") == records[-1].get("epoch")] if records else []
    return {"all steps": records, "last epoch": last}


def comparison_members(comparison: tuple[str, ...], labels: Sequence[str]) -> list[str]:
    """The members of a comparison (checkpoint names, as :data:`core.zoo.LANDSCAPE_COMPARISONS`) present among
    ``labels``, in the comparison's order."""
    present = set(labels)
    return [name for name in comparison if name in present]


# --- loss surface around an input ----------------------------------------------------------------------

@dataclass(frozen=True)
class LossSurfaceConfig:
    """The loss on a plane of input space around test image ``image`` (an index into ``data.split`` of
    ``data.dataset``; ``data.per_class`` is not used). ``radius`` None: :data:`DEFAULT_RADIUS` of ``threat``
    (l2 1.0, linf 8/255). ``resolution`` points per axis, odd so that the image itself is on the grid.
    ``ligs``: the image's own LIGS, reported beside the surface (paper default: Gaussian, std 0.01)."""

    image: int = 0
    plane: str = "gradient-random"
    threat: str = "l2"
    radius: float | None = None
    resolution: int = 21
    seed: int = 0
    ligs: LIGSSpec = LIGSSpec()
    data: EvalData = EvalData(per_class=1)

    def __post_init__(self) -> None:
        if self.plane not in PLANES:
            raise ValueError(f"unknown plane {self.plane!r}; choose from {', '.join(PLANES)}")
        if self.threat not in THREATS:
            raise ValueError(f"unknown threat model {self.threat!r}; choose from {', '.join(THREATS)}")
        if self.radius is None:  # resolved here, so the default and its explicit value share a cache key
            object.__setattr__(self, "radius", DEFAULT_RADIUS[self.threat])
        if not (isinstance(self.radius, numbers.Real) and math.isfinite(self.radius) and self.radius > 0):
            raise ValueError(f"radius must be a positive number, got {self.radius!r}")
        if not (isinstance(self.resolution, numbers.Integral) and 3 <= self.resolution <= 101
                and self.resolution % 2 == 1):
            raise ValueError(f"resolution must be an odd integer from 3 to 101, got {self.resolution!r}")
        if not (isinstance(self.image, numbers.Integral) and self.image >= 0):
            raise ValueError(f"image must be a non-negative index, got {self.image!r}")


def threat_norm(d: torch.Tensor, threat: str) -> torch.Tensor:
    """Per-sample norm of a batch ``[N, ...]`` in the threat model (l2 or linf)."""
    return d.flatten(1).norm(p=2 if threat == "l2" else math.inf, dim=1)


def unit(d: torch.Tensor, threat: str) -> torch.Tensor:
    """``d`` (``[N, ...]``) scaled to unit norm per sample in the threat model."""
    return d / threat_norm(d, threat).view(-1, *[1] * (d.ndim - 1))


def orthogonal_to(d: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``d`` minus its l2 projection on ``u`` (per sample): ``<result, u> = 0``."""
    dot = (d * u).flatten(1).sum(1) / (u * u).flatten(1).sum(1)
    return d - dot.view(-1, *[1] * (d.ndim - 1)) * u


def random_direction(shape: torch.Size, threat: str, generator: torch.Generator) -> torch.Tensor:
    """A random direction on the CPU: Gaussian (l2) or random signs (linf, a corner of the linf ball)."""
    z = torch.randn(shape, generator=generator)
    return z if threat == "l2" else z.sign()


def plane_directions(gradient: torch.Tensor, plane: str, threat: str,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The plane's two directions for a batch of input gradients ``[N, C, H, W]``: orthogonal (l2 inner
    product 0) and each of unit norm in ``threat``. "gradient-random": the ascent direction (l2: the gradient;
    linf: its sign) and a random one; "random-random": two random ones. Random draws are on the CPU."""
    if plane == "gradient-random" and bool((threat_norm(gradient, "l2") == 0).any()):
        raise ValueError("the input gradient is zero at this image (the loss is flat at float precision); "
                         "choose the plane random-random")
    cpu = gradient.detach().cpu()
    first = (cpu if threat == "l2" else cpu.sign()) if plane == "gradient-random" else \
        random_direction(cpu.shape, threat, generator)
    second = orthogonal_to(random_direction(cpu.shape, threat, generator), first)
    return unit(first, threat).to(gradient.device), unit(second, threat).to(gradient.device)


def grid_coordinates(radius: float, resolution: int) -> torch.Tensor:
    """``resolution`` (odd) evenly spaced points in ``[-radius, radius]``; the middle one is exactly 0."""
    half = resolution // 2
    return radius * (torch.arange(-half, half + 1, dtype=torch.float64) / half)


@torch.no_grad()
def plane_losses(model: nn.Module, x: torch.Tensor, y: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor,
                 coords: torch.Tensor, batch_size: int = 250) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy and predicted class at ``x + coords[j] d1 + coords[i] d2`` for every grid point, in eval
    mode (the caller's mode is restored). Shape: ``x, d1, d2`` ``[1, C, H, W]``; returns two CPU tensors
    ``[R, R]`` indexed ``[i, j]`` (row: the second direction, column: the first), as plotly's ``z``."""
    device, n = model_device(model), len(coords)
    a = coords.repeat(n).to(x.dtype)  # column coordinate, along d1
    b = coords.repeat_interleave(n).to(x.dtype)  # row coordinate, along d2
    losses, preds = [], []
    with attack_mode(model):
        for s in batches(n * n, batch_size):
            points = x + a[s].view(-1, 1, 1, 1).to(x.device) * d1 + b[s].view(-1, 1, 1, 1).to(x.device) * d2
            logits = model(to_device(points, device))
            losses.append(F.cross_entropy(logits, y.to(device).expand(len(logits)), reduction="none").cpu())
            preds.append(logits.argmax(1).cpu())
    return torch.cat(losses).view(n, n), torch.cat(preds).view(n, n)


def split_image(data: EvalData, index: int, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Image ``index`` of ``data``'s split as ``[1, C, H, W]`` floats in [0, 1], and its label ``[1]``."""
    dataset = load_dataset(data.dataset)
    if dataset.num_classes != num_classes:
        raise DataError(f"the model has {num_classes} classes but {dataset.name} has {dataset.num_classes}")
    x, y = dataset.split(data.split)
    if index >= len(y):
        raise ValueError(f"image {index} does not exist: the {data.split} split of {dataset.name} has "
                         f"{len(y)} images (0 to {len(y) - 1})")
    return to_float(x[index:index + 1]), y[index:index + 1]


def axis_names(plane: str) -> list[str]:
    return ["gradient", "random"] if plane == "gradient-random" else ["random 1", "random 2"]


@experiment("loss_surface", LossSurfaceConfig, "the loss on a 2-D plane of input space around one test image")
def loss_surface(checkpoint: Checkpoint, config: LossSurfaceConfig, run: RunContext) -> dict:
    """The grid's coordinates, loss and predicted class (``[row][column]``: second direction, first
    direction), the loss and prediction at the image, its label, input-gradient norm and LIGS."""
    model = run.model(checkpoint)
    x, y = split_image(config.data, config.image, checkpoint.spec.num_classes)
    x, y = to_device(x, run.torch_device), y.to(run.torch_device)
    with attack_mode(model):
        gradient, logits = input_gradient(model, x, y)
    generator = torch.Generator().manual_seed(config.seed)
    d1, d2 = plane_directions(gradient, config.plane, config.threat, generator)
    coords = grid_coordinates(config.radius, config.resolution)
    run.report(0.1, "loss surface")
    loss, pred = plane_losses(model, x, y, d1, d2, coords)
    run.report(0.8, "LIGS of the image")
    return {"image_index": config.image, "label": int(y.item()), "axes": axis_names(config.plane),
            "coords": coords.tolist(), "loss": loss.tolist(), "pred": pred.tolist(),
            "centre_loss": F.cross_entropy(logits, y).item(), "centre_pred": int(logits.argmax(1).item()),
            "gradient_norm": gradient.flatten().norm().item(),
            "ligs": ligs(model, x, y, config.ligs).mean, "image": encode_images(x.cpu())}


def gradient_profile(result: dict) -> tuple[list[float], list[float]]:
    """The loss along the plane's first direction (the gradient's, on "gradient-random") through the image:
    the grid's middle row, as (coordinates, losses)."""
    return result["coords"], result["loss"][len(result["coords"]) // 2]
