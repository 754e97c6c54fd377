"""Model registry (timm style): ``@register_model`` fills it, ``build`` creates, ``list_models`` discovers."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Callable

from torch import nn

from core.errors import ParameterError

NORMS = ("none", "bn", "in", "ln", "gn")
RESNET_NORMS = NORMS + ("fixup",)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    norms: tuple[str, ...]
    family: str  # "cifar" (32x32 inputs) or "imagenet" (224x224, torchvision layout)
    input_size: int
    # The architecture's usual normalization (bn, or none for AlexNet and the VGG16 of torchvision), for
    # selectors to preselect; ``norms`` keeps the one order of NORMS so every list reads alike.
    default_norm: str = "bn"


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(norms: tuple[str, ...], family: str = "cifar", input_size: int = 32,
                   default_norm: str | None = None):
    """Register a backbone builder under its function name; ``default_norm`` is bn where allowed, else norms[0]."""
    default = default_norm or ("bn" if "bn" in norms else norms[0])
    if default not in norms:
        raise ParameterError(f"default norm {default!r} is not among {norms}")

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[fn.__name__] = ModelEntry(fn.__name__, fn, norms, family, input_size, default)
        return fn

    return wrap


def list_models(pattern: str = "*", family: str | None = None) -> list[str]:
    """Registered architecture names matching a glob pattern, optionally of one family."""
    return sorted(n for n, e in _REGISTRY.items()
                  if fnmatch.fnmatch(n, pattern) and family in (None, e.family))


def model_entry(arch: str) -> ModelEntry:
    if arch not in _REGISTRY:
        raise ParameterError(f"unknown architecture {arch!r}; known: {', '.join(list_models())}")
    return _REGISTRY[arch]
