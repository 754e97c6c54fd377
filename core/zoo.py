"""The reference zoo's plan: what the project trains and ships in ``checkpoints/``.

``ZOO_PLAN`` is the single source of truth for every reference model's training config;
``scripts/build_zoo.py`` trains whatever is missing and writes the index ``checkpoints/zoo.json``.
Where the zoo lives and what it holds is :mod:`core.catalog`'s business (``zoo_dir``, ``list_checkpoints``).
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path

from core.catalog import ZOO_INDEX
from core.errors import ParameterError
from core.train import TrainConfig, preset

INDEX = ZOO_INDEX


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


# Issue 26's seed spread: the main CPU pairs (VGG11 and ResNet18, with and without BN) trained again, same config,
# at seeds 1 and 2 (seed 0 is the entry above), so a finding can say whether it holds on every seed. Without epoch
# snapshots: the repository stays small enough to travel to a GPU machine (64 MiB).
SEED_GROUP = "seeds"
SEEDS = (1, 2)
SEED_BASES = ("cifar10jpeg-vgg11-bn", "cifar10jpeg-vgg11-none", "cifar10jpeg-resnet18-bn", "cifar10jpeg-resnet18-none")


def seed_name(name: str, seed: int) -> str:
    return name if seed == 0 else f"{name}-seed{seed}"


ZOO_PLAN += [ZooEntry(seed_name(e.name, s), replace(e.config, seed=s, snapshot_every=0), SEED_GROUP)
             for s in SEEDS for e in ZOO_PLAN if e.name in SEED_BASES]

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


# App. I at CPU scale: the optimization landscape over the first 300 training steps (Santurkar et al. 2018),
# measured every 10 steps, at a constant learning rate so that the step sizes (multiples of it) mean the same at
# every measured step. Short runs far from converged: the group stays out of the findings scoreboard (core.findings).
LANDSCAPE_GROUP = "landscape"
_LANDSCAPE_RUNS = {  # comparison -> (arch, norm, shortcut) of each run, as the paper's figures
    "Normalizations on ResNet18 (Fig. A7)": [("resnet18", n, True) for n in ("bn", "none", "in", "ln", "gn")],
    "Normalizations on VGG11 (Fig. A8 uses VGG16)": [("vgg11", n, True) for n in ("bn", "none", "in", "ln", "gn")],
    "Shortcut on / off on ResNet18 (Fig. A9)": [("resnet18", n, s) for n in ("bn", "none") for s in (True, False)],
    "Fixup vs BN on ResNet20 and ResNet56 (Fig. A10)": [(a, n, True) for a in ("resnet20", "resnet56")
                                                        for n in ("bn", "fixup")],
}


def _landscape_name(arch: str, norm: str, shortcut: bool) -> str:
    return f"cifar10jpeg-landscape-{arch}-{norm}" + ("" if shortcut else "-noshortcut")


def _landscape(arch: str, norm: str, shortcut: bool) -> ZooEntry:
    return _cifar(_landscape_name(arch, norm, shortcut), LANDSCAPE_GROUP, arch=arch, norm=norm, shortcut=shortcut,
                  width=0.5 if arch in ("resnet20", "resnet56") else 0.25, epochs=3, train_subset=12800,
                  schedule="step", milestones=(), landscape_every=10, probe_every=3, probe_per_class=20)


LANDSCAPE_COMPARISONS: dict[str, tuple[str, ...]] = {
    title: tuple(_landscape_name(*run) for run in runs) for title, runs in _LANDSCAPE_RUNS.items()}
ZOO_PLAN += [_landscape(*run) for run in dict.fromkeys(r for runs in _LANDSCAPE_RUNS.values() for r in runs)]


# Table 1 / A6 at paper scale, for a GPU (``scripts/build_zoo.py --preset gpu --device cuda``): full-width
# ResNet18 and VGG16 with and without BN, the ``gpu`` preset (40 one-cycle epochs, bf16, compiled). The
# norm-free nets keep the peak learning rate the CPU zoo trained them at (0.02; whether they bear the BN nets'
# 0.1 was not tried); each run keeps snapshots every 5 epochs, so a BN model can be compared at the norm-free
# one's clean accuracy. Not trained yet: no GPU has been lent to the project (RESULTS.md).
GPU_GROUP = "paper-scale"
GPU_PLAN: list[ZooEntry] = [
    _cifar(f"cifar10jpeg-{arch}-{norm}-full", GPU_GROUP, "gpu", arch=arch, norm=norm, snapshot_every=5,
           lr=0.1 if norm == "bn" else 0.02)
    for arch in ("resnet18", "vgg16") for norm in ("bn", "none")]

# Issue 38's evidence nearer the paper's regime on a CPU: VGG11 at width 0.5 with and without BN on all 50,000
# cifar10-jpeg training images, the paper's optimizer (SGD, momentum 0.9, wd 5e-4, batch 128) with the same
# settings for both models (as the paper does), its 300-epoch step schedule shortened to a 40-epoch one-cycle
# (peak lr 0.05), fp32, 3 seeds. Every epoch is probed (clean, l2-PGD, LIGS on 1,000 test images) and kept as an
# fp16 snapshot in runs/zoo/snapshots/, so the BN model can be compared at the norm-free one's clean accuracy;
# only the snapshots the board uses are shipped. Trained in the background across sessions: a run in progress is
# parked in checkpoints/in-progress/ (scripts/build_zoo.py --park) and resumed from there on a new machine.
EVIDENCE_GROUP = "evidence"
EVIDENCE_SEEDS = (0, 1, 2)


def evidence_name(arch: str, norm: str, seed: int) -> str:
    return seed_name(f"cifar10jpeg-{arch}-w050-{norm}", seed)


EVIDENCE_PLAN: list[ZooEntry] = [
    _cifar(evidence_name("vgg11", norm, seed), EVIDENCE_GROUP, "cpu_full", arch="vgg11", norm=norm,
           snapshot_every=1, seed=seed)
    for seed in EVIDENCE_SEEDS for norm in ("none", "bn")]
PLANS = {"cpu": ZOO_PLAN, "gpu": GPU_PLAN, "evidence": EVIDENCE_PLAN}


def plan_entry(name: str) -> ZooEntry:
    entries = [e for plan in PLANS.values() for e in plan]
    found = [e for e in entries if e.name == name]
    if not found:
        raise ParameterError(f"no zoo entry {name!r}; known: {', '.join(e.name for e in entries)}")
    return found[0]


def train_entry(name: str, runs: Path, threads: int, device: str | None = None, **overrides) -> str:
    """Train the plan's entry ``name`` (its config with ``overrides``) into ``runs/<name>``, resuming from its last
    finished epoch; nothing to do when its weights are there. Progress goes to ``runs/<name>.log``, which starts
    with the host and process that ran it. Returns ``name``. A local process and a Ray worker run the same."""
    import torch

    from core.train import train

    torch.set_num_threads(threads)
    out = Path(runs) / name
    if out.with_suffix(".safetensors").is_file():
        return name
    with open(Path(runs) / f"{name}.log", "a") as log:
        log.write(f"{time.strftime('%H:%M:%S')} {name} on {socket.gethostname()} pid {os.getpid()}\n")
        log.flush()

        def report(fraction: float, message: str = "", _last=[0.0]) -> None:
            if time.time() - _last[0] > 20 or fraction >= 1:
                _last[0] = time.time()
                log.write(f"{time.strftime('%H:%M:%S')} {100 * fraction:5.1f}% {message}\n")
                log.flush()
        train(replace(plan_entry(name).config, **overrides), out, progress=report, device=device)
    return name


# Tables A3 / A4 at CPU scale (the paper's baseline is VGG16; VGG11 here): Eq. A2 datasets from the standard and
# the adversarially trained VGG11 of each normalization, each trained into every other normalization.
FEATURE_ARCH = "vgg11"
FEATURE_SOURCES = {"standard": {n: f"cifar10jpeg-vgg11-{n}" for n in ("none", "bn", "in", "ln", "gn")},
                   "robust": {n: f"cifar10jpeg-vgg11-{n}-adv" for n in ("none", "bn", "in", "ln", "gn")}}
# Fig. A4, 6 and A5 at CPU scale: a VGG11 (the paper: ResNet18, three times slower here) trained on each kind;
# D_R (and D_conflict's start) from the robust VGG11-BN, the others from the standard one.
FEATURE_TREND_ARCH = "vgg11"
FEATURE_TREND_SOURCES = {"D_R": "cifar10jpeg-vgg11-bn-adv", "D_conflict": "cifar10jpeg-vgg11-bn",
                         "D_NR": "cifar10jpeg-vgg11-bn", "D_rand": "cifar10jpeg-vgg11-bn",
                         "D_det": "cifar10jpeg-vgg11-bn"}


# Sec. 3.2's corruption comparison and App. A's Fourier view: the zoo's BN / no-BN pairs (BN model first).
CORRUPTION_PAIRS = (("builtin-vgg11-bn", "builtin-vgg11-none"), ("cifar10jpeg-vgg11-bn", "cifar10jpeg-vgg11-none"),
                    ("cifar10jpeg-resnet18-bn", "cifar10jpeg-resnet18-none"),
                    ("cifar10jpeg-vgg16-bn", "cifar10jpeg-vgg16-none"))
