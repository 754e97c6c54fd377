"""kuangliu/pytorch-cifar models that NormScope has no identical twin of, with that repository's own state-dict
keys so its checkpoints load unchanged: PreActResNet18, DenseNet121 and MobileNetV2 (BN, width 1).

Written from ``models/{preact_resnet,densenet,mobilenetv2}.py`` of github.com/kuangliu/pytorch-cifar (master);
only the final pooling differs in form: its ``avg_pool2d(out, 4)`` on the 4x4 maps of a 32x32 input is the global
average pool. Its ResNet18/34/50 and VGG11/13/16/19 compute exactly NormScope's ``resnet*`` / ``vgg*``, so their
checkpoints are key-mapped onto those (:mod:`core.models.layouts`) rather than defined twice.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import ParameterError
from core.models._registry import register_model
from core.models.backbone import Backbone, pooled

PUBLISHED = "cifar-published"  # registry family: a published CIFAR architecture as its authors wrote it


def published_only(name: str, norm: str, width: float) -> None:
    """Published layouts exist with BN at width 1 only; anything else would not load their checkpoints."""
    if norm != "bn" or width != 1.0:
        raise ParameterError(f"{name} is a published layout: norm='bn' and width 1 only")


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3 twice (He et al. 2016b). The 1x1 shortcut, where the shape changes, reads the pre-activated
    input (kuangliu's block and RobustBench's ``PreActBlockV2``) or, with ``raw_shortcut``, the raw input
    (RobustBench's ``PreActBlock`` with ``out_shortcut=False``, from Wong et al. 2020's fast_adversarial)."""

    def __init__(self, cin: int, planes: int, stride: int, raw_shortcut: bool = False) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.raw_shortcut = raw_shortcut
        self.shortcut = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False)) \
            if stride != 1 or cin != planes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(x if self.raw_shortcut else out)
        return self.conv2(F.relu(self.bn2(self.conv1(out)))) + shortcut


class PreActResNet(Backbone):
    """PreActResNet18: a 3x3 stem conv, four stages of two pre-activation blocks (64..512), an optional final
    BN-ReLU (``final_norm``: RobustBench's ``bn_before_fc``; kuangliu's has none), global pool, ``linear``."""

    def __init__(self, num_classes: int = 10, raw_shortcut: bool = False, final_norm: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        cin = 64
        for i, planes in enumerate((64, 128, 256, 512)):
            blocks = [PreActBlock(cin, planes, 1 if i == 0 else 2, raw_shortcut), PreActBlock(planes, planes, 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            cin = planes
        self.bn = nn.BatchNorm2d(512) if final_norm else None
        self.linear = nn.Linear(512, num_classes)

    @property
    def head(self) -> nn.Linear:  # type: ignore[override]
        return self.linear

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer4(self.layer3(self.layer2(self.layer1(self.conv1(x)))))
        return pooled(out if self.bn is None else F.relu(self.bn(out)))


class DenseBottleneck(nn.Module):
    """BN-ReLU-conv1x1(4k)-BN-ReLU-conv3x3(k); the k new maps come first in the concatenation."""

    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu(self.bn2(self.conv1(F.relu(self.bn1(x))))))
        return torch.cat([out, x], 1)


class Transition(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNet(Backbone):
    """kuangliu's DenseNet: four dense blocks, transitions halving channels (floor) and resolution."""

    def __init__(self, blocks: tuple[int, ...] = (6, 12, 24, 16), growth: int = 32, num_classes: int = 10) -> None:
        super().__init__()
        channels = 2 * growth
        self.conv1 = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        for i, n in enumerate(blocks):
            setattr(self, f"dense{i + 1}", nn.Sequential(*(DenseBottleneck(channels + j * growth, growth)
                                                           for j in range(n))))
            channels += n * growth
            if i < len(blocks) - 1:
                setattr(self, f"trans{i + 1}", Transition(channels, math.floor(channels * 0.5)))
                channels = math.floor(channels * 0.5)
        self.bn = nn.BatchNorm2d(channels)
        self.linear = nn.Linear(channels, num_classes)

    @property
    def head(self) -> nn.Linear:  # type: ignore[override]
        return self.linear

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.trans1(self.dense1(self.conv1(x)))
        out = self.trans3(self.dense3(self.trans2(self.dense2(out))))
        return pooled(F.relu(self.bn(self.dense4(out))))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: expand 1x1, depthwise 3x3, linear 1x1; the residual only at stride 1 (a 1x1 conv+BN
    shortcut where the channels change)."""

    def __init__(self, cin: int, cout: int, expansion: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        planes = expansion * cin
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, groups=planes, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride == 1 and cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        out = self.bn3(self.conv3(out))
        return out + self.shortcut(x) if self.stride == 1 else out


# (expansion, out channels, blocks, first stride): kuangliu's CIFAR strides (stem and second stage at 1)
MOBILENETV2_CONFIG = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                      (6, 320, 1, 1))


class MobileNetV2(Backbone):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        layers, cin = [], 32
        for expansion, cout, n, stride in MOBILENETV2_CONFIG:
            for s in [stride] + [1] * (n - 1):
                layers.append(InvertedResidual(cin, cout, expansion, s))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.conv2 = nn.Conv2d(320, 1280, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(1280)
        self.linear = nn.Linear(1280, num_classes)

    @property
    def head(self) -> nn.Linear:  # type: ignore[override]
        return self.linear

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        return pooled(F.relu(self.bn2(self.conv2(out))))


@register_model(("bn",), family=PUBLISHED)
def kuangliu_preact_resnet18(norm: str = "bn", num_classes: int = 10, width: float = 1.0) -> PreActResNet:
    published_only("kuangliu_preact_resnet18", norm, width)
    return PreActResNet(num_classes)


@register_model(("bn",), family=PUBLISHED)
def kuangliu_densenet121(norm: str = "bn", num_classes: int = 10, width: float = 1.0) -> DenseNet:
    published_only("kuangliu_densenet121", norm, width)
    return DenseNet((6, 12, 24, 16), 32, num_classes)


@register_model(("bn",), family=PUBLISHED)
def kuangliu_mobilenetv2(norm: str = "bn", num_classes: int = 10, width: float = 1.0) -> MobileNetV2:
    published_only("kuangliu_mobilenetv2", norm, width)
    return MobileNetV2(num_classes)
