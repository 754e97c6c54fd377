"""core.frequency: the Fourier basis is orthonormal, a perturbation has the requested norm, a model that only sees
low frequencies has a heat map that is low at high frequencies, and the perturbation spectrum adds up."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from core.attacks import paper_spec
from core.cache import ResultCache
from core.data import to_float
from core.experiments import EvalData, RunContext
from core.frequency import (FourierConfig, SpectrumConfig, fourier_basis, fourier_heatmap, frequencies, half_plane,
                            high_frequency_share, perturbation_spectrum, perturbed)

DATA = EvalData("builtin", "test", 10)


def test_the_half_plane_bases_are_orthonormal_and_cover_the_map():
    plane = half_plane(32)
    assert len(plane) == (31 * 31 + 1) // 2 and (0, 0) in plane
    basis = torch.stack([fourier_basis(u, v, 32, 32).flatten() for u, v in plane])
    torch.testing.assert_close(basis @ basis.T, torch.eye(len(plane), dtype=basis.dtype), atol=1e-12, rtol=0)
    torch.testing.assert_close(fourier_basis(3, -5, 32, 32), fourier_basis(-3, 5, 32, 32))
    assert frequencies(32) == list(range(-15, 16))


def test_a_perturbation_has_the_requested_norm_per_channel():
    x = torch.full((4, 3, 32, 32), 0.5)  # far from the range's ends: nothing clipped
    delta = perturbed(x, fourier_basis(2, 7, 32, 32), 4.0, torch.Generator().manual_seed(0)) - x
    torch.testing.assert_close(delta.flatten(2).norm(dim=2), torch.full((4, 3), 4.0), rtol=1e-5, atol=0)
    assert delta.flatten(1).norm(dim=1).allclose(torch.full((4,), 4.0 * math.sqrt(3)), rtol=1e-5)


def test_a_non_positive_norm_is_refused():
    for eps in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="must be positive"):
            FourierConfig(eps=eps)


CUTOFF = 4  # the low-pass model keeps the frequencies |u|, |v| < 4 (of 32) and nothing else


def low_pass(x: torch.Tensor) -> torch.Tensor:
    """An ideal low-pass filter (periodic, so no edge lets a high frequency through)."""
    f = torch.fft.fftfreq(x.shape[-1], 1 / x.shape[-1]).abs()
    keep = ((f.view(-1, 1) < CUTOFF) & (f.view(1, -1) < CUTOFF)).to(x.device)
    return torch.fft.ifft2(torch.fft.fft2(x) * keep).real


class LowPass(nn.Module):
    """:func:`low_pass` and a linear layer fitted to the built-in training images by ridge regression (it classifies
    the built-in test images)."""

    def __init__(self, spec, builtin) -> None:
        super().__init__()
        self.spec = spec
        x, y = builtin.split("train")
        features = low_pass(to_float(x[:3000]).double()).flatten(1)
        targets = nn.functional.one_hot(y[:3000], 10).double()
        gram = features.T @ features + 0.1 * torch.eye(features.shape[1], dtype=torch.float64)
        self.weight = nn.Parameter(torch.linalg.solve(gram, features.T @ targets).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return low_pass(x).flatten(1) @ self.weight


def test_a_low_pass_models_heat_map_is_low_at_high_frequencies(trained_pair, builtin, tmp_path):
    checkpoint = replace(trained_pair["none"], model=LowPass(trained_pair["none"].spec, builtin).eval())
    result = fourier_heatmap(checkpoint, FourierConfig(eps=4.0, data=DATA), RunContext(ResultCache(tmp_path)))
    error, f = torch.tensor(result.error), torch.tensor(result.frequencies).abs()
    high = (f.view(-1, 1) >= CUTOFF) | (f.view(1, -1) >= CUTOFF)
    # Only clipping to [0, 1] could leak a high-frequency perturbation into what the model sees (hardly any pixel
    # of the built-in images is at 0 or 1).
    assert (error[high] - result.clean_error).abs().max() <= 0.02
    assert error[~high].max() > result.clean_error + 0.2  # the low frequencies it sees do change its predictions
    assert torch.equal(error, error.flip(0).flip(1))  # (u, v) and (-u, -v): one image


def test_perturbation_spectrum_of_a_model(trained_pair, tmp_path):
    spec = SpectrumConfig(paper_spec("pgd_l2"), EvalData("builtin", "test", 2))
    result = perturbation_spectrum(trained_pair["bn"], spec, RunContext(ResultCache(tmp_path)))
    spectrum = torch.tensor(result.spectrum)
    assert spectrum.shape == (32, 32) and (spectrum >= 0).all() and 0 < result.high_frequency_share < 1
    assert result.l2 <= 0.5 + 1e-4  # the paper's l2 budget


def test_high_frequency_share_of_known_spectra():
    power = torch.zeros(32, 32, dtype=torch.float64)
    power[16, 16] = 1.0  # DC only
    assert high_frequency_share(power) == 0.0
    power[0, 0] = 1.0  # the corner: (-1/2, -1/2) cycles per pixel
    assert high_frequency_share(power) == 0.5
