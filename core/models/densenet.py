"""CIFAR DenseNet-BC (Huang et al. 2017), a transfer target of the paper's Table A8.

Three dense blocks of BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k) layers, each layer's k new maps
concatenated to its input; transitions BN-ReLU-Conv1x1 halve the channels (compression 0.5) and
the resolution. Depth 40 (6 layers per block) rather than the paper's 100: the 48 layers of
DenseNet-BC-100 are too slow per image on CPU for a zoo of targets. ``width`` scales the growth
rate k (12 at width 1); every other channel count follows from it.
"""
from __future__ import annotations

import torch
from torch import nn

from core.errors import ParameterError
from core.models._registry import NORMS, register_model
from core.models.backbone import Backbone, pooled
from core.models.norms import make_norm
from core.models.vgg import kaiming_init


def pre_act_conv(cin: int, cout: int, kernel: int, norm: str) -> list[nn.Module]:
    """norm -> relu -> conv. Not an in-place ReLU: with norm "none" it would overwrite the shared input."""
    return [make_norm(norm, cin), nn.ReLU(), nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False)]


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int, norm: str) -> None:
        super().__init__()
        self.branch = nn.Sequential(*pre_act_conv(cin, 4 * growth, 1, norm),
                                    *pre_act_conv(4 * growth, growth, 3, norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.branch(x)], 1)


def dense_block(cin: int, layers: int, growth: int, norm: str) -> nn.Sequential:
    return nn.Sequential(*(DenseLayer(cin + i * growth, growth, norm) for i in range(layers)))


def transition(cin: int, cout: int, norm: str) -> nn.Sequential:
    return nn.Sequential(*pre_act_conv(cin, cout, 1, norm), nn.AvgPool2d(2))


class DenseNet(Backbone):
    def __init__(self, depth: int = 40, growth: int = 12, compression: float = 0.5, norm: str = "bn",
                 num_classes: int = 10, width: float = 1.0) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ParameterError(f"DenseNet-BC depth must be 6n+4, got {depth}")
        layers, k = (depth - 4) // 6, max(2, round(growth * width))  # norms see >= 2k channels
        channels = 2 * k
        self.stem = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        blocks: list[nn.Module] = []
        for b in range(3):
            blocks.append(dense_block(channels, layers, k, norm))
            channels += layers * k
            if b < 2:
                blocks.append(transition(channels, int(channels * compression), norm))
                channels = int(channels * compression)
        self.blocks = nn.Sequential(*blocks)
        self.norm = make_norm(norm, channels)
        self.head = nn.Linear(channels, num_classes)
        kaiming_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.norm(self.blocks(self.stem(x))))
        return pooled(out)


@register_model(NORMS)
def densenet_bc(**kw) -> DenseNet:
    return DenseNet(depth=40, growth=12, **kw)
