"""CIFAR Wide ResNets (Zagoruyko & Komodakis 2016): WRN-16-4, a transfer target of the paper's Table A8, and
WRN-28-10 / WRN-34-10, the backbones of most adversarially trained CIFAR-10 models (RobustBench).

Pre-activation basic blocks (norm-ReLU-conv twice), (16 - 4) / 6 = 2 blocks per stage, stage widths
16k/32k/64k with widen factor k = 4 (64/128/256), no dropout; a 1x1 conv shortcut where the shape
changes, fed the pre-activated input as in the authors' code. ``width`` scales every channel count.
"""
from __future__ import annotations

import torch
from torch import nn

from core.errors import ParameterError
from core.models._registry import NORMS, register_model
from core.models.backbone import Backbone, pooled
from core.models.norms import make_norm, scaled
from core.models.vgg import kaiming_init


class PreActBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, norm: str) -> None:
        super().__init__()
        self.norm1, self.conv1 = make_norm(norm, cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.norm2, self.conv2 = make_norm(norm, cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None if stride == 1 and cin == cout else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = torch.relu(self.norm1(x))  # out of place: with norm "none" x is still the identity shortcut
        out = self.conv2(torch.relu(self.norm2(self.conv1(act))))
        return out + (x if self.shortcut is None else self.shortcut(act))


class WideResNet(Backbone):
    def __init__(self, depth: int = 16, widen: int = 4, norm: str = "bn", num_classes: int = 10,
                 width: float = 1.0) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ParameterError(f"WRN depth must be 6n+4, got {depth}")
        channels = scaled(16, width)
        self.stem = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        stages = []
        for s, planes in enumerate((16 * widen, 32 * widen, 64 * widen)):
            blocks = []
            for i in range((depth - 4) // 6):
                blocks.append(PreActBlock(channels, scaled(planes, width), 2 if s > 0 and i == 0 else 1, norm))
                channels = scaled(planes, width)
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.norm = make_norm(norm, channels)
        self.head = nn.Linear(channels, num_classes)
        kaiming_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.norm(self.stages(self.stem(x))))
        return pooled(out)


@register_model(NORMS)
def wrn16_4(**kw) -> WideResNet:
    return WideResNet(depth=16, widen=4, **kw)


@register_model(NORMS)
def wrn28_10(**kw) -> WideResNet:
    """WRN-28-10, the usual adversarial-training backbone (TRADES, RobustBench's ``WideResNet``)."""
    return WideResNet(depth=28, widen=10, **kw)


@register_model(NORMS)
def wrn34_10(**kw) -> WideResNet:
    """WRN-34-10, Madry et al.'s and TRADES' CIFAR-10 backbone."""
    return WideResNet(depth=34, widen=10, **kw)
