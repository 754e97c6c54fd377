"""The in-memory dataset type: uint8 NCHW tensors per split, with class names and channel stats."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from core.errors import NormScopeError


class DataError(NormScopeError, RuntimeError):
    """A dataset is missing, corrupt or malformed; the message says what was tried and how to fix it."""


@dataclass
class Dataset:
    name: str  # recorded in every result, e.g. "cifar10-jpeg", never presented as another dataset
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]  # split -> (uint8 [N,3,H,W], int64 [N])
    classes: list[str]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    description: str = ""
    source: str = ""  # the path it was read from, or "generated"
    notes: dict = field(default_factory=dict)

    def split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in self.splits:
            raise DataError(f"dataset {self.name!r} has no split {split!r}; it has {sorted(self.splits)}")
        return self.splits[split]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [0, 1]; floating images (feature datasets, stored in [0, 1]) -> float32."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.to(torch.float32, copy=True)


def balanced_subset(y: torch.Tensor, n_per_class: int, num_classes: int | None = None) -> torch.Tensor:
    """Indices of the first ``n_per_class`` samples of every class, in dataset order (deterministic)."""
    num_classes = num_classes or int(y.max()) + 1
    picks = [torch.nonzero(y == c).flatten()[:n_per_class] for c in range(num_classes)]
    return torch.sort(torch.cat(picks)).values


STATS_IMAGES = 5000  # the first images of a split that its channel stats are taken from


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of the first :data:`STATS_IMAGES` uint8 images, in [0, 1] units, rounded for stable
    metadata."""
    xf = to_float(x[:STATS_IMAGES])
    mean = tuple(round(v, 4) for v in xf.mean(dim=(0, 2, 3)).tolist())
    std = tuple(round(v, 4) for v in xf.std(dim=(0, 2, 3)).tolist())
    return mean, std


def check_arrays(x: torch.Tensor, y: torch.Tensor, where: str) -> None:
    """Validate one split: uint8 [N,3,H,W] images and int64 [N] labels."""
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
        raise DataError(f"{where}: images must be uint8 with 3 channels, got {tuple(x.shape)} {x.dtype}")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{where}: {len(x)} images but labels of shape {tuple(y.shape)}")
    if len(y) and int(y.min()) < 0:
        raise DataError(f"{where}: negative labels")
