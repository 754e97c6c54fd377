"""CIFAR VGG (Simonyan & Zisserman) with a pluggable normalization after every conv.

Norm-free deep VGGs need Kaiming (fan-out) init, as torchvision uses: with PyTorch's default
init a norm-free VGG16 stays at chance on CIFAR-10.
"""
from __future__ import annotations

import torch
from torch import nn

from core.models._registry import NORMS, register_model
from core.models.backbone import Backbone
from core.models.norms import make_norm, scaled

CONFIGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
              512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class VGG(Backbone):
    def __init__(self, config: list, norm: str = "bn", num_classes: int = 10, width: float = 1.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            out = scaled(item, width)
            layers += [nn.Conv2d(channels, out, 3, padding=1), make_norm(norm, out), nn.ReLU(inplace=True)]
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, num_classes)
        kaiming_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.features(x), 1)


def kaiming_init(model: nn.Module) -> None:
    """torchvision's VGG init: Kaiming fan-out convs, N(0, 0.01) linears, zero biases, unit norms."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@register_model(NORMS)
def vgg11(**kw) -> VGG:
    return VGG(CONFIGS["vgg11"], **kw)


@register_model(NORMS)
def vgg13(**kw) -> VGG:
    return VGG(CONFIGS["vgg13"], **kw)


@register_model(NORMS)
def vgg16(**kw) -> VGG:
    return VGG(CONFIGS["vgg16"], **kw)


@register_model(NORMS)
def vgg19(**kw) -> VGG:
    return VGG(CONFIGS["vgg19"], **kw)
