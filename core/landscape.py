"""The optimization landscape along the training gradient (App. I): what the trainer records, and its summaries.

**Optimization landscape** (App. I, Fig. A7-A10, after Santurkar et al., NeurIPS 2018). At a training step
with weights ``w``, batch loss ``L`` and its gradient ``g = grad L(w)``, for step sizes ``eta``:

- loss variation: the range of ``L(w - eta g)`` over the etas;
- gradient change (predictiveness): ``||grad L(w) - grad L(w - eta g)||_2`` per eta;
- effective beta-smoothness: ``max_eta ||grad L(w) - grad L(w - eta g)||_2 / ||eta g||_2``.

:func:`landscape_step` measures them in the model's current mode (train mode in the trainer: batch
statistics, as the training step) and leaves weights, buffers (BN running statistics), gradients, mode and
the global RNG exactly as they were. ``TrainConfig(landscape_every=k)`` records one every k steps.

The loss surface around an input (input space, per image) is :mod:`core.surface`.
"""
from __future__ import annotations

import statistics
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from core.device import model_device
from core.errors import ParameterError

# Step sizes of the optimization landscape, as multiples of the configured (peak) learning rate: a log range
# around it. Santurkar et al. move "in the gradient direction" over a range of steps; NOTES.md fixes no grid.
LANDSCAPE_STEP_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)


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
        raise ParameterError(f"step sizes must be positive, got {tuple(etas)}")
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
        raise ParameterError("no optimization-landscape records: the run was trained without landscape_every")
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
