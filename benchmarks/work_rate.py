"""How long a public server's work limit lasts: image passes per second (one image through the model, forward and
backward; ``core.experiments.WORK_UNIT``) of a PGD-linf attack on each reference model, and the seconds that
``max_work_per_request`` (default 20,000) takes on it at that rate.

    .venv/bin/python benchmarks/work_rate.py [--models NAME ...] [--n 200] [--steps 10] [--limit 20000]

Sizes the default limit (core/serving.py; BENCHMARKS.md, "Public server"): the slowest model decides how long one
request can hold a computation slot.
"""
from __future__ import annotations

import argparse
import time

import torch

from _bench import ROOT  # puts the repository on sys.path

from core.attacks import paper_spec
from core.catalog import entries_in
from core.checkpoints import load_checkpoint
from core.data import balanced_subset, load_dataset, to_float
from core.device import describe_device
from core.metrics import adversarial_examples
from core.serving import ServingPolicy

DEFAULT_MODELS = ("builtin-vgg11-bn", "cifar10jpeg-vgg11-bn", "cifar10jpeg-vgg16-bn", "cifar10jpeg-resnet18-bn",
                  "cifar10jpeg-resnext29-bn", "cifar10jpeg-densenet_bc-bn", "cifar10jpeg-wrn16_4-bn")


def passes_per_second(path: str, n: int, steps: int) -> tuple[float, float]:
    """(image passes per second, seconds) of PGD-linf with ``steps`` steps on ``n`` balanced test images."""
    checkpoint = load_checkpoint(path)
    x, y = load_dataset(checkpoint.dataset).split("test")
    keep = balanced_subset(y, n // checkpoint.spec.num_classes)
    x, y = to_float(x[keep]), y[keep]
    spec = paper_spec("pgd_linf", steps=steps)
    start = time.perf_counter()
    adversarial_examples(checkpoint.model.eval(), x, y, spec, checkpoint.spec.num_classes)
    seconds = time.perf_counter() - start
    return len(y) * spec.passes / seconds, seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--limit", type=int, default=ServingPolicy().max_work_per_request)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    paths = {e.name: e.path for e in entries_in(ROOT / "checkpoints", "zoo")}
    print(f"device: {describe_device()}; PGD-linf {args.steps} steps on {args.n} images; limit {args.limit:,}")
    print("| model | params (M) | image passes / s | limit takes (s) |\n|---|---|---|---|")
    for name in args.models:
        if name not in paths:
            print(f"| {name} | not in the zoo | | |")
            continue
        rate, _ = passes_per_second(paths[name], args.n, args.steps)
        params = sum(t.numel() for t in load_checkpoint(paths[name]).model.parameters()) / 1e6
        print(f"| {name} | {params:.2f} | {rate:,.0f} | {args.limit / rate:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
