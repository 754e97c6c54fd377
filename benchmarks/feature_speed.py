"""Feature extraction (Eq. A2) throughput beside targeted PGD-l2's on the same model, images and device.

    .venv/bin/python benchmarks/feature_speed.py [--checkpoint PATH] [--n 250] [--steps 100] [--device cuda]

Both loops are one forward and one backward pass per image and iteration (Eq. A2 through the penultimate
layer, PGD through the whole model), so their image-iterations per second should match: a ratio well below 1
means the extraction loop wastes work. Runs alternate and the best of ``--repeats`` counts, so background load
affects both alike. The wall time of the CPU preset's full cross-evaluation is what
``scripts/build_features.py`` prints per table ("standard done in ... s").
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.attacks import AttackSpec  # noqa: E402
from core.checkpoints import load_checkpoint  # noqa: E402
from core.data import balanced_subset, load_dataset, to_float  # noqa: E402
from core.device import describe_device, resolve_device  # noqa: E402
from core.features import match_features, other_class_partners  # noqa: E402
from core.metrics import adversarial_examples  # noqa: E402

DEFAULT = Path(__file__).resolve().parents[1] / "checkpoints" / "cifar10jpeg-vgg11-bn.safetensors"


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(DEFAULT))
    p.add_argument("--n", type=int, default=250)
    p.add_argument("--steps", type=int, default=100)  # the cpu preset's Eq. A2 iterations
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    ckpt = load_checkpoint(args.checkpoint)
    model = ckpt.model.to(device).eval()
    xs, ys = load_dataset(ckpt.dataset).split("train")
    keep = balanced_subset(ys, args.n // ckpt.spec.num_classes)
    x, y = to_float(xs[keep]).to(device), ys[keep].to(device)
    start = x[other_class_partners(y.cpu(), 0).to(device)]
    spec = AttackSpec("pgd_l2", 0.5, args.steps, 0.1, target="next")
    loops = {"Eq. A2 extraction": lambda: match_features(model, x, start, args.steps, 0.1),
             "targeted PGD-l2": lambda: adversarial_examples(model, x, y, spec, batch_size=len(x))}
    best = dict.fromkeys(loops, float("inf"))
    for _ in range(args.repeats):
        for name, fn in loops.items():
            best[name] = min(best[name], seconds(fn))
    print(f"model {ckpt.name} ({ckpt.dataset}), n={len(x)}, {args.steps} iterations, {describe_device(device)}, "
          f"{args.threads} threads")
    print("| loop | image-iterations/s |\n|---|---|")
    for name, s in best.items():
        print(f"| {name} | {len(x) * args.steps / s:.0f} |")
    print(f"ratio extraction / PGD: {best['targeted PGD-l2'] / best['Eq. A2 extraction']:.2f}")


if __name__ == "__main__":
    main()
