"""Infer a :class:`ModelSpec` from a state dict's keys and shapes, for checkpoints without metadata.

Keys of a published repository's layout (:mod:`core.models.layouts`) are mapped first. IN, LN and GN layers
have identical parameter shapes, so a norm among them cannot be told from weights alone; the error then says
so and asks for the norm. The input normalization is never inferred here: the loader reads it from the file
or asks (:mod:`core.checkpoints`).
"""
from __future__ import annotations

import re

import torch

from core.errors import ParameterError
from core.models import ModelSpec, list_models
from core.models.layouts import read_layout

VGG_DEPTHS = {8: "vgg11", 10: "vgg13", 13: "vgg16", 16: "vgg19"}
RESNET_BLOCKS = {(2, 2, 2, 2): "resnet18", (3, 4, 6, 3): "resnet34", (3, 3, 3): "resnet20", (5, 5, 5): "resnet32",
                 (7, 7, 7): "resnet44", (9, 9, 9): "resnet56"}
WRN_DEPTHS = {2: ("wrn16_4", 4), 4: ("wrn28_10", 10), 5: ("wrn34_10", 10)}  # blocks per stage -> name, widen


def infer_model_spec(state: dict[str, torch.Tensor]) -> ModelSpec:
    """The architecture of a state dict in NormScope's, torchvision's or a published layout's keys."""
    layout = read_layout(state)
    state = layout.apply(state)
    return layout.spec(state) or registry_spec(state)


def registry_spec(state: dict[str, torch.Tensor]) -> ModelSpec:
    """The architecture of a state dict in a registry model's own keys."""
    keys = {re.sub(r"^backbone\.(net\.)?", "", k) for k in state if not k.startswith("normalize.")}
    shapes = {re.sub(r"^backbone\.(net\.)?", "", k): v.shape for k, v in state.items()}
    # AlexNet before VGG and ResNeXt before ResNet: each pair shares its top-level key names
    for guess in (_torchvision, _cifar_alexnet, _cifar_vgg, _cifar_resnext, _cifar_resnet, _cifar_densenet,
                  _cifar_wrn):
        spec = guess(keys, shapes)
        if spec is not None:
            return spec
    raise ParameterError(f"the architecture is not recognised from its {len(keys)} keys (e.g. {sorted(keys)[:4]}); "
                         "choose the architecture, norm and width explicitly")


def _torchvision(keys: set[str], shapes: dict) -> ModelSpec | None:
    if "fc.weight" in keys and "layer1.0.conv1.weight" in keys:
        if "layer1.2.conv1.weight" in keys and "layer1.0.conv3.weight" not in keys:
            raise ParameterError("this looks like a torchvision ResNet34, which is not supported (resnet18/50 are)")
        arch = "tv_resnet50" if "layer1.0.conv3.weight" in keys else "tv_resnet18"
        return ModelSpec(arch, "bn", shapes["fc.weight"][0])
    if "classifier.6.weight" in keys and "features.0.weight" in keys:
        arch = "tv_vgg16_bn" if "features.1.running_mean" in keys else "tv_vgg16"
        return ModelSpec(arch, "bn" if arch.endswith("bn") else "none", shapes["classifier.6.weight"][0])
    return None


def _layer_norm(keys: set[str], prefix: str) -> str:
    """The norm of the layer at ``prefix``: bn has running stats, none has no parameters."""
    if f"{prefix}.running_mean" in keys:
        return "bn"
    if f"{prefix}.weight" in keys:
        raise ParameterError("the normalization is IN, LN or GN, which have identical weight shapes; choose the norm")
    return "none"


def _cifar_vgg(keys: set[str], shapes: dict) -> ModelSpec | None:
    if "head.weight" not in keys or "features.0.weight" not in keys:
        return None
    convs = [k for k in keys if re.fullmatch(r"features\.\d+\.weight", k) and len(shapes[k]) == 4]
    if len(convs) not in VGG_DEPTHS:
        raise ParameterError(f"a VGG with {len(convs)} conv layers is not one of vgg11/13/16/19")
    width = shapes["features.0.weight"][0] / 64
    return ModelSpec(VGG_DEPTHS[len(convs)], _layer_norm(keys, "features.1"), shapes["head.weight"][0], width)


def _cifar_resnet(keys: set[str], shapes: dict) -> ModelSpec | None:
    if "stem.0.weight" not in keys or "head.weight" not in keys:
        return None
    blocks = [len({k.split(".")[2] for k in keys if k.startswith(f"stages.{s}.")}) for s in range(4)]
    blocks = [b for b in blocks if b]
    norm = "fixup" if "stem.2.bias" in keys else _layer_norm(keys, "stem.1")
    width = shapes["stem.0.weight"][0] / (64 if len(blocks) == 4 else 16)
    shortcut = any(k.startswith("stages.1.0.shortcut.") for k in keys)
    arch = _resnet_arch(keys, shapes, blocks, shortcut)
    option_a = arch.endswith("a")  # shortcuts without weights
    return ModelSpec(arch, norm, shapes["head.weight"][0], width, shortcut or option_a)


def _resnet_arch(keys: set[str], shapes: dict, blocks: list[int], shortcut: bool) -> str:
    """The registry ResNet with these blocks; without shortcut weights a 6n+2 ResNet may have option-A shortcuts
    or none at all, which the keys cannot tell apart (unless only one of the two is registered)."""
    arch = RESNET_BLOCKS.get(tuple(blocks))
    padded = f"resnet{6 * blocks[0] + 2}a" if len(set(blocks)) == 1 and len(blocks) == 3 else ""
    padded = padded if padded in list_models() and not shortcut else ""
    if arch is None:
        if padded:
            return padded
        known = ", ".join([*sorted(RESNET_BLOCKS.values()), "resnet50", *list_models("resnet*a")])
        raise ParameterError(f"a ResNet with blocks {blocks} is not one of {known}")
    if padded:
        raise ParameterError(f"without shortcut weights these keys are {arch} with no shortcuts (App. I's ablation) or "
                             f"{padded} (option A: parameter-free shortcuts), which compute different outputs from the "
                             "same weights; choose the architecture")
    bottleneck = any(k.startswith("stages.0.0.branch.") and ".weight" in k and len(shapes[k]) == 4
                     and shapes[k][-1] == 1 for k in keys)
    if bottleneck and arch != "resnet34":
        raise ParameterError(f"bottleneck blocks {blocks} do not make resnet50 (3, 4, 6, 3)")
    return "resnet50" if bottleneck else arch


def _cifar_alexnet(keys: set[str], shapes: dict) -> ModelSpec | None:
    if not {"features.0.weight", "classifier.1.weight", "head.weight"} <= keys:
        return None
    return ModelSpec("alexnet", _layer_norm(keys, "features.1"), shapes["head.weight"][0],
                     shapes["features.0.weight"][0] / 64)


def _blocks_per_stage(keys: set[str], prefix: str) -> int:
    return len({k.split(".")[2] for k in keys if k.startswith(f"{prefix}.")})


def _cifar_resnext(keys: set[str], shapes: dict) -> ModelSpec | None:
    if "stages.0.0.conv_grouped.0.weight" not in keys:
        return None
    if [_blocks_per_stage(keys, f"stages.{s}") for s in range(3)] != [3, 3, 3]:
        raise ParameterError("a ResNeXt without 3 stages of 3 blocks is not resnext29")
    return ModelSpec("resnext29", _layer_norm(keys, "stem.1"), shapes["head.weight"][0],
                     shapes["stem.0.weight"][0] / 64)


def _cifar_densenet(keys: set[str], shapes: dict) -> ModelSpec | None:
    if "stem.weight" not in keys or "blocks.0.0.branch.2.weight" not in keys:
        return None
    if _blocks_per_stage(keys, "blocks.0") != 6:
        raise ParameterError("a DenseNet-BC without 6 layers per dense block is not densenet_bc (depth 40)")
    # the stem has 2k channels and the growth rate k is 12 at width 1
    return ModelSpec("densenet_bc", _layer_norm(keys, "blocks.0.0.branch.0"), shapes["head.weight"][0],
                     shapes["stem.weight"][0] / 24)


def _cifar_wrn(keys: set[str], shapes: dict) -> ModelSpec | None:
    if "stem.weight" not in keys or "stages.0.0.conv1.weight" not in keys:
        return None
    blocks = [_blocks_per_stage(keys, f"stages.{s}") for s in range(3)]
    if len(set(blocks)) != 1 or blocks[0] not in WRN_DEPTHS:
        raise ParameterError(f"a Wide ResNet with {blocks} blocks per stage is not one of wrn16_4, wrn28_10, wrn34_10")
    arch, widen = WRN_DEPTHS[blocks[0]]
    width = shapes["stem.weight"][0] / 16
    if round(shapes["stages.0.0.conv1.weight"][0] / width) != 16 * widen:
        raise ParameterError(f"a Wide ResNet of depth {6 * blocks[0] + 4} with widen factor other than {widen} "
                             f"is not {arch}")
    return ModelSpec(arch, _layer_norm(keys, "norm"), shapes["head.weight"][0], width)
