"""The reference zoo's plan: what the project trains and ships in ``checkpoints/``.

``ZOO_PLAN`` is the single source of truth for every reference model's training config;
``scripts/build_zoo.py`` trains whatever is missing and writes the index ``checkpoints/zoo.json``.
Where the zoo lives and what it holds is :mod:`core.catalog`'s business (``zoo_dir``, ``list_checkpoints``).
"""
from __future__ import annotations

from dataclasses import dataclass

from core.train import TrainConfig, preset

INDEX = "zoo.json"


@dataclass(frozen=True)
class ZooEntry:
    name: str
    config: TrainConfig
    group: str  # which comparison it belongs to


def _cifar(name: str, group: str, preset_name: str = "cpu", **kw) -> ZooEntry:
    return ZooEntry(name, preset(preset_name, dataset="cifar10-jpeg", **kw), group)


def _builtin(name: str, **kw) -> ZooEntry:
    return ZooEntry(name, preset("tiny", **kw), "builtin")


# BN trains fastest: the other norms and the norm-free models get more epochs so that every
# comparison with BN is at comparable clean accuracy (RESULTS.md gives the accuracies reached).
ZOO_PLAN: list[ZooEntry] = [
    _builtin("builtin-vgg11-none", arch="vgg11", norm="none"),
    _builtin("builtin-vgg11-bn", arch="vgg11", norm="bn"),
    _builtin("builtin-resnet20-none", arch="resnet20", norm="none", width=0.5, epochs=10),
    _builtin("builtin-resnet20-bn", arch="resnet20", norm="bn", width=0.5),
    *[_cifar(f"cifar10jpeg-vgg11-{n}", "vgg11-norms", arch="vgg11", norm=n, epochs=15 if n == "bn" else 24)
      for n in ("bn", "none", "in", "ln", "gn")],
    *[_cifar(f"cifar10jpeg-resnet20-{n}", "resnet20-fixup", arch="resnet20", norm=n, width=1.0,
             epochs=20 if n == "fixup" else 10, train_subset=25000) for n in ("bn", "fixup")],
    *[_cifar(f"cifar10jpeg-vgg11-{n}-adv", "adversarial", "cpu_adv", arch="vgg11", norm=n, epochs=8,
             train_subset=25000) for n in ("bn", "none")],
    *[_cifar(f"cifar10jpeg-resnet18-{n}", "resnet18-norms", arch="resnet18", norm=n,
             epochs={"bn": 6, "none": 16}.get(n, 12), train_subset=25000,
             snapshot_every={"bn": 2, "none": 4}.get(n, 0))
      for n in ("bn", "none", "in", "ln", "gn")],
]


# Table A8 at CPU scale: a VGG16 source pair (norm-free VGG16 trains only with Kaiming init, which the
# registry's VGG uses) and the paper's target architectures with their usual normalization.
TRANSFER_SOURCES = ("cifar10jpeg-vgg16-bn", "cifar10jpeg-vgg16-none", "cifar10jpeg-resnet18-bn",
                    "cifar10jpeg-resnet18-none")
TRANSFER_TARGETS = ("cifar10jpeg-alexnet-none", "cifar10jpeg-vgg16-bn", "cifar10jpeg-resnet20-bn",
                    "cifar10jpeg-densenet_bc-bn", "cifar10jpeg-resnext29-bn", "cifar10jpeg-wrn16_4-bn")
ZOO_PLAN += [
    *[_cifar(f"cifar10jpeg-vgg16-{n}", "transfer", arch="vgg16", norm=n, epochs={"bn": 10, "none": 16}[n],
             train_subset=25000, snapshot_every=0) for n in ("bn", "none")],
    *[_cifar(f"cifar10jpeg-{arch}-{n}", "transfer", arch=arch, norm=n, epochs=10, train_subset=25000)
      for arch, n in (("alexnet", "none"), ("densenet_bc", "bn"), ("resnext29", "bn"), ("wrn16_4", "bn"))],
]


def plan_entry(name: str) -> ZooEntry:
    found = [e for e in ZOO_PLAN if e.name == name]
    if not found:
        raise ValueError(f"no zoo entry {name!r}; known: {', '.join(e.name for e in ZOO_PLAN)}")
    return found[0]
