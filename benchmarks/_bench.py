"""What the benchmarks share: their options for the model, the images and the machine, and loading them.

Each benchmark runs as a script (``python benchmarks/<name>.py``), so this folder is on ``sys.path`` and
``from _bench import ...`` finds this module.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.checkpoints import Checkpoint, load_checkpoint  # noqa: E402
from core.data import balanced_subset, load_dataset, to_float  # noqa: E402
from core.device import resolve_device  # noqa: E402

DEFAULT_CHECKPOINT = ROOT / "checkpoints" / "cifar10jpeg-vgg11-bn.safetensors"


def bench_parser(doc: str, n: int, repeats: int = 3) -> argparse.ArgumentParser:
    """The shared options: --checkpoint, --n (balanced images), --repeats, --threads, --device."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    p.add_argument("--n", type=int, default=n, help="images, balanced over the classes")
    p.add_argument("--repeats", type=int, default=repeats, help="runs of each side; the best counts")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", help="cuda or cpu (default: cuda if available)")
    p.add_argument("--dataset", help="images to use (default: the checkpoint's own dataset; auto: the best present)")
    return p


@dataclass
class Bench:
    checkpoint: Checkpoint
    model: torch.nn.Module  # on the device, in eval mode
    x: torch.Tensor  # [n, 3, H, W] in [0, 1], on the device
    y: torch.Tensor
    device: torch.device


def load_bench(args: argparse.Namespace, split: str = "test") -> Bench:
    """The checkpoint and ``args.n`` balanced images of ``split`` of its own dataset (or ``args.dataset``), on
    ``args.device``."""
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    checkpoint = load_checkpoint(args.checkpoint)
    xs, ys = load_dataset(args.dataset or checkpoint.dataset).split(split)
    keep = balanced_subset(ys, args.n // checkpoint.spec.num_classes)
    return Bench(checkpoint, checkpoint.model.to(device).eval(), to_float(xs[keep]).to(device), ys[keep].to(device),
                 device)
