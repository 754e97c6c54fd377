"""torchvision ImageNet architectures, for users' own checkpoints (no weights are downloaded).

The torchvision module is kept whole so its state_dict keys (``conv1.weight``, ``fc.weight``,
``classifier.6.weight`` ...) load unchanged; ``forward_features`` stops before the last linear.
"""
from __future__ import annotations

import torch
import torchvision
from torch import nn

from core.models._registry import register_model


class TorchvisionNet(nn.Module):
    def __init__(self, net: nn.Module, head_name: str) -> None:
        super().__init__()
        self.net = net
        self.head_name = head_name

    @property
    def head(self) -> nn.Linear:
        return self.net.fc if self.head_name == "fc" else self.net.classifier[-1]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.head_name == "fc":
            n = self.net
            x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
            x = n.layer4(n.layer3(n.layer2(n.layer1(x))))
            return torch.flatten(n.avgpool(x), 1)
        x = torch.flatten(self.net.avgpool(self.net.features(x)), 1)
        return self.net.classifier[:-1](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _check(norm: str, expected: str, arch: str) -> None:
    if norm != expected:
        raise ValueError(f"{arch} exists only with norm={expected!r} (torchvision layout)")


@register_model(("bn",), family="imagenet", input_size=224)
def tv_resnet18(norm: str = "bn", num_classes: int = 1000, width: float = 1.0) -> TorchvisionNet:
    _check(norm, "bn", "tv_resnet18")
    return TorchvisionNet(torchvision.models.resnet18(weights=None, num_classes=num_classes), "fc")


@register_model(("bn",), family="imagenet", input_size=224)
def tv_resnet50(norm: str = "bn", num_classes: int = 1000, width: float = 1.0) -> TorchvisionNet:
    _check(norm, "bn", "tv_resnet50")
    return TorchvisionNet(torchvision.models.resnet50(weights=None, num_classes=num_classes), "fc")


@register_model(("none",), family="imagenet", input_size=224)
def tv_vgg16(norm: str = "none", num_classes: int = 1000, width: float = 1.0) -> TorchvisionNet:
    _check(norm, "none", "tv_vgg16")
    return TorchvisionNet(torchvision.models.vgg16(weights=None, num_classes=num_classes), "classifier")


@register_model(("bn",), family="imagenet", input_size=224)
def tv_vgg16_bn(norm: str = "bn", num_classes: int = 1000, width: float = 1.0) -> TorchvisionNet:
    _check(norm, "bn", "tv_vgg16_bn")
    return TorchvisionNet(torchvision.models.vgg16_bn(weights=None, num_classes=num_classes), "classifier")
