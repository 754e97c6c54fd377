"""Feature extraction (Eq. A2) throughput beside targeted PGD-l2's on the same model, images and device.

    .venv/bin/python benchmarks/feature_speed.py [--checkpoint PATH] [--n 250] [--steps 100] [--device cuda]

Both loops are one forward and one backward pass per image and iteration (Eq. A2 through the penultimate
layer, PGD through the whole model), so their image-iterations per second should match: a ratio well below 1
means the extraction loop wastes work. Runs alternate and the best of ``--repeats`` counts, so background load
affects both alike. The wall time of the CPU preset's full cross-evaluation is what
``scripts/build_features.py`` prints per table ("standard done in ... s").
"""
from __future__ import annotations

import time

import torch

from _bench import bench_parser, load_bench  # puts the repository on sys.path

from core.attacks import AttackSpec
from core.device import describe_device
from core.features import match_features, other_class_partners
from core.metrics import adversarial_examples


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    p = bench_parser(__doc__, n=250, repeats=3)
    p.add_argument("--steps", type=int, default=100)  # the cpu preset's Eq. A2 iterations
    args = p.parse_args()
    bench = load_bench(args, split="train")
    ckpt, model, x, y, device = bench.checkpoint, bench.model, bench.x, bench.y, bench.device
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
