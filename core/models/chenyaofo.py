"""chenyaofo/pytorch-cifar-models' VGG-BN (torchvision's VGG shrunk for CIFAR), with that repository's own
state-dict keys so its checkpoints load unchanged.

Written from ``pytorch_cifar_models/vgg.py`` of github.com/chenyaofo/pytorch-cifar-models (master): conv3x3
(with bias)-BN-ReLU stacks and max pools, then a 512-512-512-classes MLP with ReLU and dropout (p 0.5).
Its CIFAR ResNet20/32/44/56 compute exactly NormScope's ``resnet20/32/44/56`` (3x3 stem of 16, option-B 1x1
conv+BN shortcuts), so their checkpoints are key-mapped onto those (:mod:`core.models.layouts`).
"""
from __future__ import annotations

import torch
from torch import nn

from core.models._registry import register_model
from core.models.backbone import Backbone
from core.models.kuangliu import PUBLISHED, published_only
from core.models.vgg import CONFIGS


class VGG(Backbone):
    def __init__(self, config: list, num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.BatchNorm2d(item), nn.ReLU(inplace=True)]
            channels = item
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(512, 512), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(512, 512), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(512, num_classes))

    @property
    def head(self) -> nn.Linear:  # type: ignore[override]
        return self.classifier[6]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The MLP's second hidden layer (after ReLU and dropout): what the last linear reads."""
        return self.classifier[:6](torch.flatten(self.features(x), 1))


def _vgg_bn(depth: int):
    name = f"chenyaofo_vgg{depth}_bn"

    def build(norm: str = "bn", num_classes: int = 10, width: float = 1.0) -> VGG:
        published_only(name, norm, width)
        return VGG(CONFIGS[f"vgg{depth}"], num_classes)
    build.__name__ = name
    return register_model(("bn",), family=PUBLISHED)(build)


chenyaofo_vgg11_bn, chenyaofo_vgg13_bn, chenyaofo_vgg16_bn, chenyaofo_vgg19_bn = (_vgg_bn(d) for d in (11, 13, 16, 19))
