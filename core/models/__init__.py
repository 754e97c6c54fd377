"""Models: a registry of CIFAR and torchvision architectures, each wrapped with input normalization.

    >>> from core.models import build, list_models
    >>> model = build("vgg11", norm="bn", width=0.25)   # takes images in [0, 1]
    >>> model(torch.rand(2, 3, 32, 32)).shape            # doctest: +SKIP
    torch.Size([2, 10])
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from core.errors import ParameterError
from core.models import (alexnet, chenyaofo, densenet, imagenet, kuangliu, resnet, resnext,  # noqa: F401
                         robustbench, vgg, wrn)  # (fill the registry)
from core.models._registry import NORMS, RESNET_NORMS, list_models, model_entry, register_model

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model; stored in checkpoint metadata."""

    arch: str
    norm: str = "bn"
    num_classes: int = 10
    width: float = 1.0
    shortcut: bool = True
    mean: tuple[float, float, float] = CIFAR10_MEAN
    std: tuple[float, float, float] = CIFAR10_STD

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for k in ("mean", "std"):
            if k in known:
                known[k] = tuple(known[k])
        return cls(**known)


class Normalize(nn.Module):
    """(x - mean) / std per channel: the model's first layer, so attacks live in [0, 1] pixel space."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class NormScopeModel(nn.Module):
    """A backbone behind its input normalization; ``features`` gives the penultimate activations."""

    def __init__(self, backbone: nn.Module, spec: ModelSpec) -> None:
        super().__init__()
        self.normalize = Normalize(spec.mean, spec.std)
        self.backbone = backbone
        self.spec = spec

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(self.normalize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.head(self.features(x))


def build(arch: str, norm: str = "bn", num_classes: int = 10, width: float = 1.0, **kw) -> NormScopeModel:
    """Build a registered architecture with a normalization; the model takes images in [0, 1]."""
    return build_from_spec(ModelSpec(arch, norm, num_classes, width, **kw))


def build_from_spec(spec: ModelSpec) -> NormScopeModel:
    entry = model_entry(spec.arch)
    if spec.norm not in entry.norms:
        raise ParameterError(f"{spec.arch} supports norm in {entry.norms}, not {spec.norm!r}")
    if spec.width <= 0:
        raise ParameterError(f"width must be positive, got {spec.width}")
    kw = dict(norm=spec.norm, num_classes=spec.num_classes, width=spec.width)
    if not spec.shortcut:
        if spec.arch not in list_models("resnet*"):
            raise ParameterError("shortcut=False exists only for CIFAR ResNets")
        kw["shortcut"] = False
    return NormScopeModel(entry.builder(**kw), spec)


__all__ = ["build", "build_from_spec", "list_models", "model_entry", "register_model", "ModelSpec",
           "NormScopeModel", "Normalize", "NORMS", "RESNET_NORMS", "CIFAR10_MEAN", "CIFAR10_STD",
           "IMAGENET_MEAN", "IMAGENET_STD"]
