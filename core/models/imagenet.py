"""torchvision ImageNet architectures, for users' own checkpoints (no weights are downloaded).

The torchvision module is kept whole so its state_dict keys (``conv1.weight``, ``fc.weight``,
``classifier.6.weight`` ...) load unchanged; ``forward_features`` stops before the last linear.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from core.errors import ParameterError
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


# registry name -> (torchvision constructor, its normalization, the attribute holding the classifier)
TORCHVISION_MODELS = {"tv_resnet18": ("resnet18", "bn", "fc"), "tv_resnet50": ("resnet50", "bn", "fc"),
                      "tv_vgg16": ("vgg16", "none", "classifier"), "tv_vgg16_bn": ("vgg16_bn", "bn", "classifier")}


def torchvision_builder(name: str, constructor: str, expected_norm: str, head: str) -> Callable[..., TorchvisionNet]:
    """A registry builder for one torchvision architecture, which exists with one normalization only."""
    def build(norm: str = expected_norm, num_classes: int = 1000, width: float = 1.0) -> TorchvisionNet:
        if norm != expected_norm:
            raise ParameterError(f"{name} exists only with norm={expected_norm!r} (torchvision layout)")
        import torchvision  # here, not at the top: it costs every process ~2 s (it imports torch._dynamo)

        return TorchvisionNet(getattr(torchvision.models, constructor)(weights=None, num_classes=num_classes), head)
    build.__name__ = name
    return build


for _name, (_constructor, _norm, _head) in TORCHVISION_MODELS.items():
    register_model((_norm,), family="imagenet", input_size=224)(torchvision_builder(_name, _constructor, _norm, _head))
