"""Model registry (timm style): ``@register_model`` fills it, ``build`` creates, ``list_models`` discovers."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Callable

from torch import nn

NORMS = ("none", "bn", "in", "ln", "gn")
RESNET_NORMS = NORMS + ("fixup",)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    norms: tuple[str, ...]
    family: str  # "cifar" (32x32 inputs) or "imagenet" (224x224, torchvision layout)
    input_size: int


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(norms: tuple[str, ...], family: str = "cifar", input_size: int = 32):
    """Register a backbone builder under its function name."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[fn.__name__] = ModelEntry(fn.__name__, fn, norms, family, input_size)
        return fn

    return wrap


def list_models(pattern: str = "*", family: str | None = None) -> list[str]:
    """Registered architecture names matching a glob pattern, optionally of one family."""
    return sorted(n for n, e in _REGISTRY.items()
                  if fnmatch.fnmatch(n, pattern) and family in (None, e.family))


def model_entry(arch: str) -> ModelEntry:
    if arch not in _REGISTRY:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(list_models())}")
    return _REGISTRY[arch]
