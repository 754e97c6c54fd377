"""The Fourier view of App. A (Yin et al. 2019): which spatial frequencies a model is sensitive to, and where the
energy of its adversarial perturbations lies.

* ``fourier_heatmap``: the error rate under ``x + eps * r * U(u, v)`` for each real 2-D Fourier basis image
  ``U(u, v)`` (unit l2 norm per channel; ``u, v`` in -15..15 on 32x32 images, the DC at the centre), every
  channel perturbed with its own random sign ``r``, clipped to the image range. ``eps`` is the perturbation's
  l2 norm per channel, as Yin et al.'s (4 on CIFAR-10); the whole perturbation has norm ``eps * sqrt(3)``
  before clipping. ``U(u, v)`` and ``U(-u, -v)`` are the same image, so half of the map is measured.
* ``perturbation_spectrum``: the mean magnitude of the 2-D Fourier transform of a model's adversarial
  perturbations (the paper's l2 PGD by default), and the share of their energy above a quarter of the
  sampling rate: are the perturbations of BN models more high-frequency?
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from core.attacks import AttackSpec, paper_spec
from core.checkpoints import Checkpoint
from core.errors import ParameterError
from core.experiments import EvalData, RunContext, attack_work, eval_tensors, experiment, images_in
from core.metrics import adversarial_examples, predict
from core.records import Record

YIN_EPS = 4.0  # Yin et al. 2019's per-channel l2 norm for CIFAR-10


@dataclass(frozen=True)
class FourierConfig:
    eps: float = YIN_EPS
    data: EvalData = EvalData()
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.eps > 0:
            raise ParameterError(f"the Fourier perturbation's l2 norm must be positive, got {self.eps}")


@dataclass(frozen=True)
class SpectrumConfig:
    attack: AttackSpec = paper_spec("pgd_l2")
    data: EvalData = EvalData()


def frequencies(size: int) -> list[int]:
    """The frequencies of one axis shown for ``size`` pixels: -15..15 for 32 (the Nyquist row left out)."""
    half = (size - 1) // 2
    return list(range(-half, half + 1))


def fourier_basis(u: int, v: int, h: int, w: int) -> torch.Tensor:
    """The real basis image of frequency (u, v) on an ``h x w`` grid, unit l2 norm (float64)."""
    spectrum = torch.zeros(h, w, dtype=torch.complex128)
    spectrum[u % h, v % w] = spectrum[-u % h, -v % w] = 1
    image = torch.fft.ifft2(spectrum).real
    return image / image.norm()


def half_plane(size: int) -> list[tuple[int, int]]:
    """One frequency of each (u, v), (-u, -v) pair (they give the same basis image)."""
    return [(u, v) for u in frequencies(size) for v in frequencies(size) if (u, v) >= (-u, -v)]


def perturbed(x: torch.Tensor, basis: torch.Tensor, eps: float, g: torch.Generator) -> torch.Tensor:
    """``x`` plus ``eps`` times the basis image, every channel of every image with its own random sign, clipped."""
    signs = 2 * torch.randint(0, 2, (len(x), x.shape[1], 1, 1), generator=g) - 1
    delta = eps * signs.to(x.device, x.dtype) * basis.to(x.device, x.dtype)
    return (x + delta).clamp(0, 1)


@dataclass(frozen=True, kw_only=True)
class FourierHeatmap(Record):
    """The error rate under a perturbation along each Fourier basis (``[u][v]`` over ``frequencies`` both ways),
    and on clean images."""

    error: list[list[float]]
    frequencies: list[int]
    eps: float
    n: int
    clean_error: float


@dataclass(frozen=True, kw_only=True)
class PerturbationSpectrum(Record):
    """The mean magnitude spectrum of an attack's perturbations (centred), the share of their energy at high
    frequencies, and their mean l2 norm."""

    spectrum: list[list[float]]
    n: int
    attack: str
    high_frequency_share: float
    l2: float


def fourier_work(config: FourierConfig) -> int:
    """A forward pass of every image per basis of a 32 x 32 image's half plane, and a clean one."""
    return images_in(config) * (len(half_plane(32)) + 1)


@experiment("fourier_heatmap", FourierConfig, "error under perturbations along each Fourier basis (App. A)",
            work=fourier_work)
def fourier_heatmap(checkpoint: Checkpoint, config: FourierConfig, run: RunContext) -> FourierHeatmap:
    x, y = eval_tensors(config.data, checkpoint.spec.num_classes)
    model, (h, w) = run.model(checkpoint), x.shape[-2:]
    freq_u, freq_v, g = frequencies(h), frequencies(w), torch.Generator().manual_seed(config.seed)
    error = [[0.0] * len(freq_v) for _ in freq_u]
    plane = half_plane(min(h, w))
    for k, (u, v) in enumerate(plane):
        wrong = (predict(model, perturbed(x, fourier_basis(u, v, h, w), config.eps, g)) != y).float().mean().item()
        error[u + freq_u[-1]][v + freq_v[-1]] = error[-u + freq_u[-1]][-v + freq_v[-1]] = wrong
        run.report((k + 1) / len(plane), f"Fourier basis ({u}, {v})")
    clean_error = (predict(model, x) != y).float().mean().item()
    return FourierHeatmap(error=error, frequencies=freq_u, eps=config.eps, n=len(y), clean_error=clean_error)


def high_frequency_share(power: torch.Tensor) -> float:
    """The share of a centred power spectrum's energy beyond a quarter of the sampling rate."""
    h, w = power.shape
    fu, fv = (torch.arange(h) - h // 2) / h, (torch.arange(w) - w // 2) / w
    radius = torch.sqrt(fu.view(-1, 1) ** 2 + fv.view(1, -1) ** 2)
    return (power[radius > 0.25].sum() / power.sum()).item()


@experiment("perturbation_spectrum", SpectrumConfig, "Fourier spectrum of a model's adversarial perturbations",
            work=attack_work)
def perturbation_spectrum(checkpoint: Checkpoint, config: SpectrumConfig, run: RunContext) -> PerturbationSpectrum:
    x, y = eval_tensors(config.data, checkpoint.spec.num_classes)
    adversarial = adversarial_examples(run.model(checkpoint), x, y, config.attack, checkpoint.spec.num_classes,
                                       progress=run.progress)
    delta = (adversarial - x.cpu()).double()
    transform = torch.fft.fftshift(torch.fft.fft2(delta), dim=(-2, -1)).abs()
    return PerturbationSpectrum(spectrum=transform.mean((0, 1)).tolist(), n=len(y), attack=config.attack.label,
                                high_frequency_share=high_frequency_share((transform ** 2).mean((0, 1))),
                                l2=delta.flatten(1).norm(dim=1).mean().item())
