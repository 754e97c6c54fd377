"""CIFAR ResNeXt-29 (Xie et al. 2017), a transfer target of the paper's Table A8.

Three stages of three bottleneck blocks (1x1 reduce, grouped 3x3, 1x1 expand; 9 x 3 convs + stem +
head = 29 layers), post-activation as in the paper. Cardinality 8 with 8-channel groups at stage 1
("8x8d"), the group width D and the output (2D, as in ResNeXt-50 32x4d) doubling per stage:
D = 64/128/256, outputs 128/256/512. The paper's CIFAR 8x64d (34M parameters, 1024-wide outputs) is
far beyond CPU training. ``width`` scales the channels per group, so the cardinality stays 8.
"""
from __future__ import annotations

import torch
from torch import nn

from core.models._registry import NORMS, register_model
from core.models.backbone import Backbone, pooled
from core.models.norms import make_norm, scaled
from core.models.vgg import kaiming_init


def conv_norm(cin: int, cout: int, kernel: int, norm: str, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                         make_norm(norm, cout))


class ResNeXtBlock(nn.Module):
    def __init__(self, cin: int, group_width: int, cout: int, cardinality: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv_reduce = conv_norm(cin, group_width, 1, norm)
        self.conv_grouped = conv_norm(group_width, group_width, 3, norm, stride, cardinality)
        self.conv_expand = conv_norm(group_width, cout, 1, norm)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else conv_norm(cin, cout, 1, norm, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.conv_grouped(torch.relu(self.conv_reduce(x))))
        return torch.relu(self.conv_expand(out) + self.shortcut(x))


class ResNeXt(Backbone):
    def __init__(self, cardinality: int = 8, base_width: int = 8, blocks: int = 3, norm: str = "bn",
                 num_classes: int = 10, width: float = 1.0) -> None:
        super().__init__()
        channels = scaled(64, width)
        self.stem = nn.Sequential(*conv_norm(3, channels, 3, norm), nn.ReLU(inplace=True))
        stages = []
        for s in range(3):
            group_width = cardinality * max(1, round(base_width * 2 ** s * width))
            stage = []
            for i in range(blocks):
                stride = 2 if s > 0 and i == 0 else 1
                stage.append(ResNeXtBlock(channels, group_width, 2 * group_width, cardinality, stride, norm))
                channels = 2 * group_width
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(channels, num_classes)
        kaiming_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stages(self.stem(x))
        return pooled(out)


@register_model(NORMS)
def resnext29(**kw) -> ResNeXt:
    return ResNeXt(cardinality=8, base_width=8, **kw)
