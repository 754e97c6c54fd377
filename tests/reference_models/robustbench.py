"""RobustBench ``robustbench/model_zoo/architectures/wide_resnet.py``, ``architectures/resnet.py`` and
``model_zoo/cifar10.py``, reduced to what builds each model (the copyright and licence are that
repository's, as its LICENSE file states)."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from reference_models.kuangliu import KLPreActBlock

# ---- RobustBench: architectures/wide_resnet.py, architectures/resnet.py, model_zoo/cifar10.py -------------------
class RBWideBasic(nn.Module):
    def __init__(self, in_planes, out_planes, stride, dropRate=0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.droprate = dropRate
        self.equalInOut = in_planes == out_planes
        self.convShortcut = (not self.equalInOut) and nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride,
                                                                padding=0, bias=False) or None

    def forward(self, x):
        if not self.equalInOut:
            x = self.relu1(self.bn1(x))
        else:
            out = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(out if self.equalInOut else x)))
        out = self.conv2(out)
        return torch.add(x if self.equalInOut else self.convShortcut(x), out)


class RBNetworkBlock(nn.Module):
    def __init__(self, nb_layers, in_planes, out_planes, block, stride, dropRate=0.0):
        super().__init__()
        self.layer = nn.Sequential(*[block(i == 0 and in_planes or out_planes, out_planes, i == 0 and stride or 1,
                                           dropRate) for i in range(int(nb_layers))])

    def forward(self, x):
        return self.layer(x)


class RBWideResNet(nn.Module):
    def __init__(self, depth=28, num_classes=10, widen_factor=10, sub_block1=False, dropRate=0.0, bias_last=True):
        super().__init__()
        nChannels = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        n = (depth - 4) / 6
        self.conv1 = nn.Conv2d(3, nChannels[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.block1 = RBNetworkBlock(n, nChannels[0], nChannels[1], RBWideBasic, 1, dropRate)
        if sub_block1:
            self.sub_block1 = RBNetworkBlock(n, nChannels[0], nChannels[1], RBWideBasic, 1, dropRate)
        self.block2 = RBNetworkBlock(n, nChannels[1], nChannels[2], RBWideBasic, 2, dropRate)
        self.block3 = RBNetworkBlock(n, nChannels[2], nChannels[3], RBWideBasic, 2, dropRate)
        self.bn1 = nn.BatchNorm2d(nChannels[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(nChannels[3], num_classes, bias=bias_last)
        self.nChannels = nChannels[3]

    def forward(self, x):
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = self.relu(self.bn1(out))
        out = F.avg_pool2d(out, 8)
        return self.fc(out.view(-1, self.nChannels))


class RiceWRN(RBWideResNet):  # model_zoo/cifar10.py Rice2020OverfittingNet's normalization, on WRN-28-10
    def __init__(self):
        super().__init__(depth=28, widen_factor=10, sub_block1=True)
        self.register_buffer("mu", torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1))
        self.register_buffer("sigma", torch.tensor([0.2471, 0.2435, 0.2616]).view(1, 3, 1, 1))

    def forward(self, x):
        return super().forward((x - self.mu) / self.sigma)


class RBPreActBlock(KLPreActBlock):  # the same layers; the shortcut reads the raw input unless out_shortcut
    def __init__(self, in_planes, planes, stride=1, out_shortcut=False):
        super().__init__(in_planes, planes, stride)
        self.out_shortcut = out_shortcut

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out if self.out_shortcut else x) if hasattr(self, "shortcut") else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        out += shortcut
        return out


class RBPreActBlockV2(KLPreActBlock):  # identical forward: the shortcut reads the pre-activated input
    def __init__(self, in_planes, planes, stride=1, out_shortcut=False):
        super().__init__(in_planes, planes, stride)


class RBPreActResNet(nn.Module):
    def __init__(self, block, num_blocks, num_classes=10, bn_before_fc=False, out_shortcut=False):
        super().__init__()
        self.in_planes = 64
        self.bn_before_fc = bn_before_fc
        self.out_shortcut = out_shortcut
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.layer1 = self._make_layer(block, 64, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 128, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 256, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(block, 512, num_blocks[3], stride=2)
        if bn_before_fc:
            self.bn = nn.BatchNorm2d(512 * block.expansion)
        self.linear = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, num_blocks, stride):
        layers = []
        for stride in [stride] + [1] * (num_blocks - 1):
            layers.append(block(self.in_planes, planes, stride, out_shortcut=self.out_shortcut))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = self.layer4(self.layer3(self.layer2(self.layer1(self.conv1(x)))))
        if self.bn_before_fc:
            out = F.relu(self.bn(out))
        out = F.avg_pool2d(out, 4)
        return self.linear(out.view(out.size(0), -1))


class Wong2020FastNet(RBPreActResNet):
    def __init__(self):
        super().__init__(RBPreActBlock, [2, 2, 2, 2])
        self.register_buffer("mu", torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1))
        self.register_buffer("sigma", torch.tensor([0.2471, 0.2435, 0.2616]).view(1, 3, 1, 1))

    def forward(self, x):
        return super().forward((x - self.mu) / self.sigma)


class Rice2020OverfittingNetL2(Wong2020FastNet):
    def __init__(self):
        RBPreActResNet.__init__(self, RBPreActBlockV2, [2, 2, 2, 2], bn_before_fc=True)
        self.register_buffer("mu", torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1))
        self.register_buffer("sigma", torch.tensor([0.2471, 0.2435, 0.2616]).view(1, 3, 1, 1))
