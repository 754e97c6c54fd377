"""The loss surface around an input (what LIGS summarises in one number), as the cached experiment ``loss_surface``.

The cross-entropy on a 2-D plane of the input space through an image
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
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.attacks import attack_mode
from core.checkpoints import Checkpoint
from core.config import one_of
from core.data import DataError, load_dataset, to_float
from core.device import model_device, to_device
from core.errors import ParameterError
from core.experiments import EvalData, RunContext, experiment
from core.images import encode_images
from core.metrics import LIGSSpec, batches, input_gradient, ligs
from core.records import Record

PLANES = ("gradient-random", "random-random")
THREATS = ("l2", "linf")
DEFAULT_RADIUS = {"l2": 1.0, "linf": 8 / 255}  # l2 1.0 is 4x the training probe's eps; linf 8/255 as Table 1


@dataclass(frozen=True)
class LossSurfaceConfig:
    """The loss on a plane of input space around test image ``image`` (an index into ``data.split`` of
    ``data.dataset``; ``data.per_class`` is not used). ``radius`` None: :data:`DEFAULT_RADIUS` of ``threat``
    (l2 1.0, linf 8/255). ``resolution`` points per axis, odd so that the image itself is on the grid.
    ``ligs``: the image's own LIGS, reported beside the surface (paper default: Gaussian, std 0.01)."""

    image: int = 0  # an index into the test split
    plane: str = one_of(PLANES, "gradient-random")  # the input gradient and a random direction, or two random
    threat: str = one_of(THREATS, "l2")  # the unit length of the plane's directions
    radius: float | None = None  # the grid's half-width (None: l2 1.0, linf 8/255)
    resolution: int = 21  # points per axis, odd
    seed: int = 0  # draws the random direction
    ligs: LIGSSpec = LIGSSpec()
    data: EvalData = EvalData(per_class=1)

    def __post_init__(self) -> None:
        if self.plane not in PLANES:
            raise ParameterError(f"unknown plane {self.plane!r}; choose from {', '.join(PLANES)}")
        if self.threat not in THREATS:
            raise ParameterError(f"unknown threat model {self.threat!r}; choose from {', '.join(THREATS)}")
        if self.radius is None:  # resolved here, so the default and its explicit value share a cache key
            object.__setattr__(self, "radius", DEFAULT_RADIUS[self.threat])
        if not (isinstance(self.radius, numbers.Real) and math.isfinite(self.radius) and self.radius > 0):
            raise ParameterError(f"radius must be a positive number, got {self.radius!r}")
        if not (isinstance(self.resolution, numbers.Integral) and 3 <= self.resolution <= 101
                and self.resolution % 2 == 1):
            raise ParameterError(f"resolution must be an odd integer from 3 to 101, got {self.resolution!r}")
        if not (isinstance(self.image, numbers.Integral) and self.image >= 0):
            raise ParameterError(f"image must be a non-negative index, got {self.image!r}")


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
        raise ParameterError("the input gradient is zero at this image (the loss is flat at float precision); "
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
        raise ParameterError(f"image {index} does not exist: the {data.split} split of {dataset.name} has "
                             f"{len(y)} images (0 to {len(y) - 1})")
    return to_float(x[index:index + 1]), y[index:index + 1]


def axis_names(plane: str) -> list[str]:
    return ["gradient", "random"] if plane == "gradient-random" else ["random 1", "random 2"]


def surface_work(config: LossSurfaceConfig) -> int:
    """One image: its input gradient (the plane's direction), a forward pass per grid point, and its LIGS."""
    return 1 + config.resolution ** 2 + config.ligs.passes


@dataclass(frozen=True, kw_only=True)
class LossSurface(Record):
    """The grid's coordinates, loss and predicted class (``[row][column]``: second direction, first direction),
    the loss and prediction at the image, its label, input-gradient norm and LIGS, and the image itself."""

    image_index: int
    label: int
    axes: list[str]
    coords: list[float]
    loss: list[list[float]]
    pred: list[list[int]]
    centre_loss: float
    centre_pred: int
    gradient_norm: float
    ligs: float
    image: dict


def surface_summary(surface: LossSurface) -> str:
    config, losses = surface.config, [v for row in surface.loss for v in row]
    return (f"{surface.checkpoint.name} on {surface.dataset}, image {surface.image_index} (label {surface.label}): "
            f"loss {surface.centre_loss:.4f} at the image, {min(losses):.4f}..{max(losses):.4f} on the "
            f"{config.plane} plane (radius {config.radius:.4g}, {config.threat}); LIGS {surface.ligs:.4f}")


@experiment("loss_surface", LossSurfaceConfig, "the loss on a 2-D plane of input space around one test image",
            work=surface_work, command="landscape", summary=surface_summary)
def loss_surface(checkpoint: Checkpoint, config: LossSurfaceConfig, run: RunContext) -> LossSurface:
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
    return LossSurface(image_index=config.image, label=int(y.item()), axes=axis_names(config.plane),
                       coords=coords.tolist(), loss=loss.tolist(), pred=pred.tolist(),
                       centre_loss=F.cross_entropy(logits, y).item(), centre_pred=int(logits.argmax(1).item()),
                       gradient_norm=gradient.flatten().norm().item(), ligs=ligs(model, x, y, config.ligs).mean,
                       image=encode_images(x.cpu()))


def gradient_profile(result: LossSurface) -> tuple[list[float], list[float]]:
    """The loss along the plane's first direction (the gradient's, on "gradient-random") through the image:
    the grid's middle row, as (coordinates, losses)."""
    return result.coords, result.loss[len(result.coords) // 2]
