"""RobustBench's CIFAR-10 PreActResNet-18s, with its own state-dict keys so its checkpoints load unchanged.

From ``robustbench/model_zoo/architectures/resnet.py`` (github.com/RobustBench/robustbench, master):
``PreActResNet(PreActBlock, [2, 2, 2, 2])`` (Wong et al. 2020, Andriushchenko & Flammarion 2020) feeds the 1x1
shortcut the raw block input and has no final BN; ``PreActResNet(PreActBlockV2, ..., bn_before_fc=True)`` (Rice et
al. 2020 l2, Kireev et al. 2021) feeds it the pre-activated input and ends in BN-ReLU. The zoo's models keep their
input normalization as ``mu`` / ``sigma`` buffers, which the loader reads. RobustBench's ``WideResNet`` (TRADES'
code: WRN-28-10, WRN-34-10) computes exactly NormScope's ``wrn28_10`` / ``wrn34_10`` and is key-mapped onto them
(:mod:`core.models.layouts`).
"""
from __future__ import annotations

from core.models._registry import register_model
from core.models.kuangliu import PUBLISHED, PreActResNet, published_only


@register_model(("bn",), family=PUBLISHED)
def robustbench_preact_resnet18(norm: str = "bn", num_classes: int = 10, width: float = 1.0) -> PreActResNet:
    published_only("robustbench_preact_resnet18", norm, width)
    return PreActResNet(num_classes, raw_shortcut=True)


@register_model(("bn",), family=PUBLISHED)
def robustbench_preact_resnet18_bn(norm: str = "bn", num_classes: int = 10, width: float = 1.0) -> PreActResNet:
    published_only("robustbench_preact_resnet18_bn", norm, width)
    return PreActResNet(num_classes, raw_shortcut=False, final_norm=True)
