"""Check that the zoo's fp16 storage evaluates like the fp32 training output (issue: zoo, within 0.2 points).

    python scripts/fp16_check.py cifar10jpeg-vgg11-bn [more names]

Needs the fp32 run in ``runs/zoo/`` (left by scripts/build_zoo.py). Compares clean accuracy on the
whole test split and PGD-l2 (eps 0.25, 20 steps) accuracy on the balanced 1000-image subset.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.attacks import paper_spec  # noqa: E402
from core.checkpoints import load_checkpoint  # noqa: E402
from core.data import balanced_subset, load_dataset, to_float  # noqa: E402
from core.metrics import accuracy, robust_accuracy  # noqa: E402


def main(names: list[str]) -> None:
    print("| model | clean fp32 | clean fp16 | PGD-l2 fp32 | PGD-l2 fp16 | max difference (points) |")
    print("|---|---|---|---|---|---|")
    for name in names:
        fp32, fp16 = (load_checkpoint(p / f"{name}.safetensors") for p in (ROOT / "runs" / "zoo", ROOT / "checkpoints"))
        x, y = load_dataset(fp16.dataset).split("test")
        keep = balanced_subset(y, 100)
        xs, ys = to_float(x[keep]), y[keep]
        clean = [accuracy(c.model, to_float(x), y) for c in (fp32, fp16)]
        robust = [robust_accuracy(c.model, xs, ys, paper_spec("pgd_l2")) for c in (fp32, fp16)]
        diff = 100 * max(abs(clean[0] - clean[1]), abs(robust[0] - robust[1]))
        print(f"| {name} | {100 * clean[0]:.2f} | {100 * clean[1]:.2f} | {100 * robust[0]:.1f} | "
              f"{100 * robust[1]:.1f} | {diff:.2f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
