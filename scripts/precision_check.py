"""How far bf16 autocast moves the paper's robust accuracies from fp32 (issue #12: at most 0.5 points to be
offered as a default), on the zoo's models.

    python scripts/precision_check.py [--device cuda] [--per-class 100] [--only NAME ...]

For each cifar10-jpeg zoo model (the App. I landscape runs excluded): PGD-l2, PGD-linf and CW-l2 at the paper's
budgets (Table 1) and LIGS, on the balanced 1000-image test subset, once in fp32 and once in bf16, both by the
current code on the same device. Prints a markdown table and the largest difference.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.attacks import paper_spec  # noqa: E402
from core.catalog import list_checkpoints  # noqa: E402
from core.checkpoints import load_checkpoint  # noqa: E402
from core.data import balanced_subset, load_dataset, to_float  # noqa: E402
from core.device import describe_device, resolve_device  # noqa: E402
from core.metrics import LIGSSpec, ligs, robust_accuracy  # noqa: E402
from core.zoo import LANDSCAPE_GROUP  # noqa: E402

ATTACKS = ("pgd_l2", "pgd_linf", "cw_l2")


def differences(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[tuple[float, float]]:
    """(fp32, bf16) for each attack's robust accuracy (points) and for LIGS."""
    pairs = [tuple(100 * robust_accuracy(model, x, y, paper_spec(a, precision=p)) for p in ("fp32", "bf16"))
             for a in ATTACKS]
    return pairs + [tuple(ligs(model, x, y, LIGSSpec(precision=p)).mean for p in ("fp32", "bf16"))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device")
    p.add_argument("--per-class", type=int, default=100)
    p.add_argument("--only", nargs="*")
    p.add_argument("--dataset", default="cifar10-jpeg", help="the test images (auto: the best present)")
    args = p.parse_args()
    device = resolve_device(args.device)
    entries = [e for e in list_checkpoints() if e.source == "zoo" and e.dataset == "cifar10-jpeg"
               and e.group != LANDSCAPE_GROUP and (not args.only or e.name in args.only)]
    data = load_dataset(args.dataset)
    xs, ys = data.split("test")
    keep = balanced_subset(ys, args.per_class)
    x, y = to_float(xs[keep]), ys[keep]
    print(f"{len(x)} {data.name} test images, {describe_device(device)}, torch {torch.__version__}")
    print("| model | " + " | ".join(f"{a} fp32 / bf16" for a in ATTACKS) + " | LIGS fp32 / bf16 | largest attack "
          "difference (points) |\n|---|" + "---|" * (len(ATTACKS) + 2))
    worst = 0.0
    for entry in entries:
        model = load_checkpoint(entry.path).model.to(device)
        pairs = differences(model, x, y)
        largest = max(abs(a - b) for a, b in pairs[:-1])
        worst = max(worst, largest)
        cells = [f"{a:.1f} / {b:.1f}" for a, b in pairs[:-1]] + [f"{pairs[-1][0]:.4f} / {pairs[-1][1]:.4f}"]
        print(f"| {entry.name} | " + " | ".join(cells) + f" | {largest:.1f} |", flush=True)
    print(f"largest difference over {len(entries)} models: {worst:.1f} points")


if __name__ == "__main__":
    main()
