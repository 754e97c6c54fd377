"""State-dict layouts of published CIFAR repositories: recognised from their keys, mapped onto registry models.

Where a repository's model computes exactly what a registry model computes, its keys are renamed onto that
model's (one implementation of each architecture):

- kuangliu/pytorch-cifar ResNet18/34/50 (also RobustBench's and MadryLab robustness' CIFAR ResNet) -> resnet18/34/50
- chenyaofo/pytorch-cifar-models ResNet20/32/44/56 -> resnet20/32/44/56
- akamaster/pytorch_resnet_cifar10 ResNet20/32/44/56/110/1202 (option-A shortcuts) -> resnet20a ... resnet1202a
- kuangliu/pytorch-cifar VGG11/13/16/19 (BN) -> vgg11/13/16/19
- RobustBench's / TRADES' WideResNet-28-10 and 34-10 -> wrn28_10 / wrn34_10 (TRADES' unused ``sub_block1`` dropped)

Others keep their own keys in a registry model written after the original (:mod:`core.models.kuangliu`,
:mod:`core.models.chenyaofo`, :mod:`core.models.robustbench`). Where keys and shapes fit two models that compute
different things, the layout names both and the user chooses.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from collections.abc import Callable

import torch

from core.errors import ParameterError
from core.models import ModelSpec, list_models

AKAMASTER_HINT = ("akamaster/pytorch_resnet_cifar10's trainer.py trains behind ImageNet's mean (0.485, 0.456, 0.406), "
                  "std (0.229, 0.224, 0.225)")
KUANGLIU_HINT = ("kuangliu/pytorch-cifar's main.py trains behind mean (0.4914, 0.4822, 0.4465), "
                 "std (0.2023, 0.1994, 0.2010)")


@dataclass(frozen=True)
class Layout:
    """Where a state dict's keys come from and how they become a registry model's keys.

    ``rename`` maps each key onto the registry model's (None: kept); ``drop`` matches keys the original model holds
    but never uses; ``archs`` are the registry models with these very keys (more than one: the user chooses, as
    ``ambiguity`` explains); ``head`` is their classifier weight, whose rows count the classes; ``hint`` says which
    input normalization the source's own training script used, when that is known.
    """

    source: str
    rename: Callable[[str], str] | None = None
    drop: str = ""
    archs: tuple[str, ...] = ()
    head: str = ""
    ambiguity: str = ""
    hint: str = ""

    def apply(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        kept = {k: v for k, v in state.items() if not (self.drop and re.match(self.drop, k))}
        return {self.rename(k): v for k, v in kept.items()} if self.rename else kept

    def spec(self, state: dict[str, torch.Tensor]) -> ModelSpec | None:
        """The architecture, for layouts kept in their own keys; None where the renamed keys are inferred."""
        if len(self.archs) > 1:
            raise ParameterError(f"the keys fit {' and '.join(self.archs)} ({self.source}), {self.ambiguity}; "
                                 "choose the architecture")
        if not self.archs:
            return None
        heads = [v for k, v in state.items() if strip_wrapper(k) == self.head]
        return ModelSpec(self.archs[0], "bn", int(heads[0].shape[0]) if heads else 10)


NATIVE = Layout("NormScope or torchvision")


def strip_wrapper(key: str) -> str:
    """A key without NormScope's model wrapper (``backbone.`` / torchvision's ``backbone.net.``)."""
    return re.sub(r"^backbone\.(net\.)?", "", key)

BLOCK_KEYS = {"conv1": "branch.0", "bn1": "branch.1", "conv2": "branch.3", "bn2": "branch.4", "conv3": "branch.6",
              "bn3": "branch.7", "downsample": "shortcut"}


def resnet_key(key: str) -> str:
    """kuangliu's / chenyaofo's ResNet key -> NormScope's: ``layer2.0.bn1`` -> ``stages.1.0.branch.1``."""
    block = re.fullmatch(r"layer(\d)\.(\d+)\.(\w+)\.(.+)", key)
    if block:
        return f"stages.{int(block[1]) - 1}.{block[2]}.{BLOCK_KEYS.get(block[3], block[3])}.{block[4]}"
    return re.sub(r"^(linear|fc)\.", "head.", re.sub(r"^conv1\.", "stem.0.", re.sub(r"^bn1\.", "stem.1.", key)))


def wrn_key(key: str) -> str:
    """RobustBench's WideResNet key -> NormScope's: ``block2.layer.0.convShortcut`` -> ``stages.1.0.shortcut``."""
    block = re.fullmatch(r"block(\d)\.layer\.(\d+)\.(\w+)\.(.+)", key)
    if block:
        part = {"bn1": "norm1", "bn2": "norm2", "convShortcut": "shortcut"}.get(block[3], block[3])
        return f"stages.{int(block[1]) - 1}.{block[2]}.{part}.{block[4]}"
    return re.sub(r"^fc\.", "head.", re.sub(r"^conv1\.", "stem.", re.sub(r"^bn1\.", "norm.", key)))


def vgg_key(key: str) -> str:
    return re.sub(r"^classifier\.", "head.", key)


def _conv_count(keys: set[str], shapes: dict) -> int:
    return sum(1 for k in keys if re.fullmatch(r"features\.\d+\.weight", k) and len(shapes[k]) == 4)


def _resnet(keys: set[str], shapes: dict) -> Layout | None:
    if not {"conv1.weight", "bn1.weight", "layer1.0.conv1.weight"} <= keys:
        return None
    if "linear.weight" in keys and "layer4.0.conv1.weight" not in keys:
        return _akamaster(keys)
    if "linear.weight" in keys:
        return Layout("kuangliu/pytorch-cifar ResNet", resnet_key, hint=KUANGLIU_HINT)
    if "fc.weight" in keys and "layer4.0.conv1.weight" not in keys and shapes["conv1.weight"][-1] == 3:
        return Layout("chenyaofo/pytorch-cifar-models ResNet", resnet_key)
    return None  # torchvision's ResNet: NormScope keeps its keys


def _akamaster(keys: set[str]) -> Layout:
    """Three stages and ``linear``: akamaster's CIFAR ResNet. Without shortcut weights its blocks use option A (the
    repository's default); a file of its option B has them and is the plain ``resnet*``, inferred from the keys."""
    source = "akamaster/pytorch_resnet_cifar10 ResNet"
    if any(k.startswith("layer2.0.shortcut.") for k in keys):
        return Layout(f"{source} (option-B shortcuts)", resnet_key, hint=AKAMASTER_HINT)
    blocks = [len({k.split(".")[1] for k in keys if k.startswith(f"layer{s}.")}) for s in (1, 2, 3)]
    arch = f"resnet{6 * blocks[0] + 2}a"
    known = len(set(blocks)) == 1 and arch in list_models()
    if not known:  # a block missing, or a depth without a registry model: the error names what was found
        raise ParameterError(f"its keys read as {source} with option-A shortcuts, but {blocks} blocks per stage "
                             f"make none of its ResNets ({', '.join(list_models('resnet*a'))}: n, n, n blocks); "
                             "is a block missing?")
    return Layout(f"{source} (option-A shortcuts)", resnet_key, archs=(arch,), head="head.weight",
                  hint=AKAMASTER_HINT)


def _vgg(keys: set[str], shapes: dict) -> Layout | None:
    if "features.0.weight" not in keys:
        return None
    if "classifier.weight" in keys:
        return Layout("kuangliu/pytorch-cifar VGG", vgg_key, hint=KUANGLIU_HINT)
    if "classifier.6.weight" in keys and shapes["classifier.0.weight"][-1] == 512:
        arch = f"chenyaofo_vgg{_conv_count(keys, shapes) + 3}_bn"
        return Layout("chenyaofo/pytorch-cifar-models VGG-BN", archs=(arch,), head="classifier.6.weight")
    return None


def _preact(keys: set[str], shapes: dict) -> Layout | None:
    if not {"conv1.weight", "layer1.0.bn1.weight", "linear.weight"} <= keys or "bn1.weight" in keys:
        return None
    if "bn.weight" in keys:  # bn_before_fc: RobustBench uses it with PreActBlockV2 only
        return Layout("RobustBench PreActResNet-18 (PreActBlockV2, BN before the classifier)",
                      archs=("robustbench_preact_resnet18_bn",), head="linear.weight")
    if "mu" in keys:  # RobustBench's zoo models carry their normalization: Wong et al. 2020's PreActBlock
        return Layout("RobustBench PreActResNet-18", archs=("robustbench_preact_resnet18",), head="linear.weight")
    return Layout("kuangliu/pytorch-cifar or RobustBench PreActResNet-18", head="linear.weight",
                  archs=("kuangliu_preact_resnet18", "robustbench_preact_resnet18"), hint=KUANGLIU_HINT,
                  ambiguity="which compute different outputs from the same weights: kuangliu's 1x1 shortcut reads "
                            "the pre-activated input, RobustBench's PreActBlock (Wong et al. 2020, Andriushchenko "
                            "& Flammarion 2020) the raw input")


def _kuangliu_densenet(keys: set[str], shapes: dict) -> Layout | None:
    if "dense1.0.conv1.weight" not in keys:
        return None
    return Layout("kuangliu/pytorch-cifar DenseNet", archs=("kuangliu_densenet121",), head="linear.weight",
                  hint=KUANGLIU_HINT)


def _kuangliu_mobilenetv2(keys: set[str], shapes: dict) -> Layout | None:
    if not {"layers.0.conv1.weight", "conv2.weight", "linear.weight"} <= keys:
        return None
    return Layout("kuangliu/pytorch-cifar MobileNetV2", archs=("kuangliu_mobilenetv2",), head="linear.weight",
                  hint=KUANGLIU_HINT)


def _robustbench_wrn(keys: set[str], shapes: dict) -> Layout | None:
    if "block1.layer.0.conv1.weight" not in keys:
        return None
    return Layout("RobustBench / TRADES WideResNet", wrn_key, drop=r"sub_block1\.")


DETECTORS = (_resnet, _vgg, _preact, _kuangliu_densenet, _kuangliu_mobilenetv2, _robustbench_wrn)


def read_layout(state: dict[str, torch.Tensor]) -> Layout:
    """The published layout these keys come from, or :data:`NATIVE` (NormScope's or torchvision's own keys)."""
    shapes = {strip_wrapper(k): v.shape for k, v in state.items()}
    keys = set(shapes)
    for detect in DETECTORS:
        layout = detect(keys, shapes)
        if layout is not None:
            return layout
    return NATIVE
