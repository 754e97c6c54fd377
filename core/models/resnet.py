"""CIFAR ResNets: ResNet18/34/50 (He et al. 2016, CIFAR stem) and ResNet20/32/44/56 (the 6n+2 CIFAR family).

``norm`` picks the normalization, or ``"fixup"`` for Fixup init without any normalization
(Zhang, Dauphin & Ma 2019): scalar biases and a scale per branch, the last conv of every
branch zero, the others scaled by L^(-1/(2m-2)). ``shortcut=False`` drops identity shortcuts
(App. I, Fig. A9).

Where a block changes shape, its shortcut is a 1x1 conv + norm (He et al. 2016's option B), or in
``resnet20a`` ... ``resnet1202a`` option A: parameter-free, as the CIFAR experiments of the ResNet paper and
akamaster/pytorch_resnet_cifar10 (whose published weights load onto these, :mod:`core.models.layouts`) have it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import ParameterError
from core.models._registry import RESNET_NORMS, register_model
from core.models.backbone import Backbone, pooled
from core.models.norms import make_norm, scaled


class Bias(nn.Module):
    """A learnable scalar added to its input (Fixup)."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias


class Scale(nn.Module):
    """A learnable scalar multiplier (Fixup)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def conv_stack(channels: list[int], kernels: list[int], stride: int, norm: str) -> nn.Sequential:
    """conv -> norm -> relu ... ending without relu; stride on the first 3x3 conv. Fixup adds its scalars."""
    fixup, layers, strided = norm == "fixup", [], kernels.index(3)
    for i, (cin, cout, k) in enumerate(zip(channels[:-1], channels[1:], kernels)):
        s = stride if i == strided else 1
        layers += [Bias()] if fixup else []
        layers += [nn.Conv2d(cin, cout, k, s, k // 2, bias=False), make_norm(norm, cout)]
        last = i == len(kernels) - 1
        layers += ([Scale(), Bias()] if last else [Bias(), nn.ReLU(inplace=True)]) if fixup else \
            ([] if last else [nn.ReLU(inplace=True)])
    return nn.Sequential(*layers)


class PaddedShortcut(nn.Module):
    """Option A (He et al. 2016, Sec. 4.2): the input subsampled by the stride, its new channels zero, half of them
    on each side; akamaster's ``F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))``."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride, self.before = stride, (cout - cin) // 2
        self.after = cout - cin - self.before

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.before, self.after))


class Block(nn.Module):
    """A residual block: BasicBlock (two 3x3) or Bottleneck (1x1, 3x3, 1x1 with expansion 4)."""

    def __init__(self, cin: int, planes: int, stride: int, norm: str, bottleneck: bool, shortcut: bool,
                 padded: bool = False) -> None:
        super().__init__()
        cout = planes * (4 if bottleneck else 1)
        chans, kernels = ([cin, planes, planes, cout], [1, 3, 1]) if bottleneck else ([cin, planes, cout], [3, 3])
        self.branch = conv_stack(chans, kernels, stride, norm)
        self.shortcut = None
        if shortcut:
            self.shortcut = nn.Identity() if stride == 1 and cin == cout else \
                PaddedShortcut(cin, cout, stride) if padded else \
                nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), make_norm(norm, cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        return self.relu(out + self.shortcut(x) if self.shortcut is not None else out)


class ResNet(Backbone):
    def __init__(self, blocks: list[int], planes: list[int], strides: list[int], bottleneck: bool = False,
                 norm: str = "bn", num_classes: int = 10, width: float = 1.0, shortcut: bool = True,
                 padded: bool = False) -> None:
        super().__init__()
        if padded and not shortcut:
            raise ParameterError("option A is a kind of shortcut: without shortcuts, use the option-B model's name")
        stem = scaled(planes[0] if len(planes) == 4 else 16, width)
        self.stem = nn.Sequential(nn.Conv2d(3, stem, 3, 1, 1, bias=False), make_norm(norm, stem),
                                  *([Bias()] if norm == "fixup" else []), nn.ReLU(inplace=True))
        stages, cin = [], stem
        for n, p, s in zip(blocks, planes, strides):
            stage = []
            for i in range(n):
                stage.append(Block(cin, scaled(p, width), s if i == 0 else 1, norm, bottleneck, shortcut, padded))
                cin = scaled(p, width) * (4 if bottleneck else 1)
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(cin, num_classes)
        self.init_weights(norm, sum(blocks), 3 if bottleneck else 2)

    def init_weights(self, norm: str, num_branches: int, branch_depth: int) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if norm == "fixup":
            fixup_init(self, num_branches, branch_depth)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stages(self.stem(x))
        return pooled(out)


def fixup_init(model: ResNet, num_branches: int, branch_depth: int) -> None:
    """Fixup: rescale inner branch convs by L^(-1/(2m-2)), zero each branch's last conv and the head."""
    factor = num_branches ** (-1.0 / (2 * branch_depth - 2))
    for block in (m for m in model.modules() if isinstance(m, Block)):
        convs = [m for m in block.branch if isinstance(m, nn.Conv2d)]
        for conv in convs[:-1]:
            nn.init.normal_(conv.weight, 0, factor * math.sqrt(2 / (conv.weight[0].numel())))
        nn.init.zeros_(convs[-1].weight)
    nn.init.zeros_(model.head.weight)
    nn.init.zeros_(model.head.bias)


def _resnet(blocks: list[int], planes: list[int], strides: list[int], bottleneck: bool = False, **kw) -> ResNet:
    return ResNet(blocks, planes, strides, bottleneck, **kw)


@register_model(RESNET_NORMS)
def resnet18(**kw) -> ResNet:
    return _resnet([2, 2, 2, 2], [64, 128, 256, 512], [1, 2, 2, 2], **kw)


@register_model(RESNET_NORMS)
def resnet34(**kw) -> ResNet:
    return _resnet([3, 4, 6, 3], [64, 128, 256, 512], [1, 2, 2, 2], **kw)


@register_model(RESNET_NORMS)
def resnet50(**kw) -> ResNet:
    return _resnet([3, 4, 6, 3], [64, 128, 256, 512], [1, 2, 2, 2], bottleneck=True, **kw)


@register_model(RESNET_NORMS)
def resnet20(**kw) -> ResNet:
    return _resnet([3, 3, 3], [16, 32, 64], [1, 2, 2], **kw)


@register_model(RESNET_NORMS)
def resnet32(**kw) -> ResNet:
    return _resnet([5, 5, 5], [16, 32, 64], [1, 2, 2], **kw)


@register_model(RESNET_NORMS)
def resnet44(**kw) -> ResNet:
    return _resnet([7, 7, 7], [16, 32, 64], [1, 2, 2], **kw)


@register_model(RESNET_NORMS)
def resnet56(**kw) -> ResNet:
    return _resnet([9, 9, 9], [16, 32, 64], [1, 2, 2], **kw)


# Option A (parameter-free shortcuts): the 6n+2 family as the ResNet paper's CIFAR experiments and akamaster's
# repository have it. ResNet110 and ResNet1202 are there to load its published weights, so BN only (without a norm,
# 1202 layers overflow to inf at init).
OPTION_A_BLOCKS = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18, 1202: 200}


def _option_a(depth: int):
    def builder(**kw) -> ResNet:
        return _resnet([OPTION_A_BLOCKS[depth]] * 3, [16, 32, 64], [1, 2, 2], padded=True, **kw)
    builder.__name__ = f"resnet{depth}a"
    builder.__doc__ = f"ResNet{depth} with option-A (zero-padding) shortcuts."
    return register_model(RESNET_NORMS if depth <= 56 else ("bn",))(builder)


for _depth in OPTION_A_BLOCKS:
    _option_a(_depth)
