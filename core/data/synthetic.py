"""The built-in dataset: made by the code, no files or network, so everything runs offline.

Each of the 10 classes has two cues that agree on ``train`` and ``test``:

* a **robust** cue: a smooth, low-frequency colour pattern (amplitude ~0.15), partly masked by
  random low-frequency backgrounds and random strength, so it is informative but not perfect;
* a **non-robust** cue: a fixed +-1 high-frequency pattern per class at amplitude 6/255, far
  below what a person sees, yet perfectly predictive.

The ``conflict`` split pairs the robust cue of class ``y`` with the non-robust cue of class
``(y + 1) % 10`` and keeps label ``y``. A model's accuracy there against ``y`` measures its
reliance on robust features; accuracy against ``y + 1`` measures reliance on non-robust ones.
The amplitudes are chosen so both cues are learnable in a few CPU epochs, and the ``tiny`` preset
(VGG11, 6 epochs) so that the BN model ends on the non-robust cue and the norm-free one on the robust
cue on every training seed and CPU kernel path measured (``scripts/conflict_margin.py``; the shipped
measurement is ``checkpoints/builtin-margin.jsonl``, its summary in README). At 4/255 the BN model
no longer finds the non-robust cue in 8 epochs; with 8 epochs the norm-free one sometimes does.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from core.data.dataset import Dataset

SIZE, NUM_CLASSES = 32, 10
CLASSES = [f"class {i}" for i in range(NUM_CLASSES)]
ROBUST_AMPLITUDE, NON_ROBUST_AMPLITUDE = 0.15, 6 / 255
SPLIT_SIZES = {"train": 10000, "test": 2000, "conflict": 2000}


def smooth_field(n: int, g: torch.Generator, cells: int = 4) -> torch.Tensor:
    """Random low-frequency RGB fields in [-1, 1]: a ``cells x cells`` grid, bicubically upsampled."""
    coarse = torch.rand(n, 3, cells, cells, generator=g) * 2 - 1
    return F.interpolate(coarse, size=(SIZE, SIZE), mode="bicubic", align_corners=True).clamp(-1, 1)


def class_cues(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class robust (smooth, unit-range) and non-robust (+-1 checker-modulated) patterns."""
    robust = smooth_field(NUM_CLASSES, g, cells=3)
    robust = robust / robust.abs().amax(dim=(1, 2, 3), keepdim=True)
    signs = torch.randint(0, 2, (NUM_CLASSES, 3, SIZE, SIZE), generator=g).float() * 2 - 1
    return robust, signs


def render(y_robust: torch.Tensor, y_non_robust: torch.Tensor, g: torch.Generator,
           robust: torch.Tensor, non_robust: torch.Tensor) -> torch.Tensor:
    """Images with the robust cue of ``y_robust`` and the non-robust cue of ``y_non_robust``."""
    n = len(y_robust)
    strength = 0.5 + torch.rand(n, 1, 1, 1, generator=g)
    base = 0.5 + 0.25 * smooth_field(n, g) + 0.1 * (torch.rand(n, 1, 1, 1, generator=g) - 0.5)
    x = base + ROBUST_AMPLITUDE * strength * robust[y_robust] + NON_ROBUST_AMPLITUDE * non_robust[y_non_robust]
    x = x + (2 / 255) * torch.randn(x.shape, generator=g)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def make_builtin(seed: int = 0) -> Dataset:
    """Generate the built-in dataset (deterministic for a seed; about a second on a CPU)."""
    g = torch.Generator().manual_seed(seed)
    robust, non_robust = class_cues(g)
    splits = {}
    for split, n in SPLIT_SIZES.items():
        y = torch.arange(n) % NUM_CLASSES
        y = y[torch.randperm(n, generator=g)]
        y_nr = (y + 1) % NUM_CLASSES if split == "conflict" else y
        splits[split] = (render(y, y_nr, g, robust, non_robust), y)
    return Dataset(
        name="builtin", splits=splits, classes=CLASSES,
        mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), source="generated",
        description="synthetic 32x32, 10 classes: low-frequency robust cue + 6/255 high-frequency "
                    "non-robust cue; 'conflict' split has the non-robust cue of class y+1",
        notes={"seed": seed, "robust_amplitude": ROBUST_AMPLITUDE, "non_robust_amplitude": NON_ROBUST_AMPLITUDE},
    )
