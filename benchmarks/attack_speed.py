"""PGD-20 throughput, NormScope core vs torchattacks, on the same model, batch, data and device.

    .venv/bin/pip install --no-deps --target .bench-libs torchattacks==3.5.1 scipy
    PYTHONPATH=.bench-libs .venv/bin/python benchmarks/attack_speed.py [--checkpoint PATH] [--n 500]
        [--precision fp32 bf16] [--batch N] [--device cuda]

torchattacks pins an old ``requests`` that conflicts with streamlit's, so it lives in its own
``--target`` folder, outside the project's environment. Both run without random start, so their
adversarial accuracies must agree (within 0.5 points); runs alternate and the best of ``--repeats``
is reported, so background load affects both sides alike. ``--precision bf16`` times core's bf16 autocast
against torchattacks in fp32 (its only mode); the batch defaults to core's choice for the device
(``core.metrics.ATTACK_BATCH``), and torchattacks gets the same.
"""
from __future__ import annotations

import time

import torch

from _bench import bench_parser, load_bench  # puts the repository on sys.path

from core.attacks import AttackSpec, build_attack
from core.device import describe_device
from core.metrics import accuracy, attack_batch


def timed(attack, x: torch.Tensor, y: torch.Tensor, batch: int) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    adv = torch.cat([attack(x[i:i + batch], y[i:i + batch]) for i in range(0, len(x), batch)])
    if x.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, adv


def compare(model, x, y, norm: str, eps: float, batch: int, repeats: int, precision: str) -> dict:
    import torchattacks

    alpha = 2.5 * eps / 20
    ours = build_attack(model, AttackSpec(f"pgd_{norm}", eps, 20, precision=precision))
    cls = torchattacks.PGDL2 if norm == "l2" else torchattacks.PGD
    theirs = cls(model, eps=eps, alpha=alpha, steps=20, random_start=False)
    best = {"core": float("inf"), "torchattacks": float("inf")}
    for _ in range(repeats):
        for name, attack in (("core", ours), ("torchattacks", theirs)):
            seconds, adv = timed(attack, x, y, batch)
            best[name] = min(best[name], seconds)
            acc = accuracy(model, adv, y)
            best[f"{name}_acc"] = acc
    return {"attack": f"PGD-{norm} eps={eps:.4g} ({precision})", "core_ips": len(x) / best["core"],
            "torchattacks_ips": len(x) / best["torchattacks"], "ratio": best["torchattacks"] / best["core"],
            "core_acc": best["core_acc"], "torchattacks_acc": best["torchattacks_acc"]}


def main() -> None:
    p = bench_parser(__doc__, n=500)
    p.add_argument("--batch", type=int, help="images per batch (default: core's for the device)")
    p.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16"], help="core's precisions")
    args = p.parse_args()
    bench = load_bench(args)
    ckpt, model, x, y, device = bench.checkpoint, bench.model, bench.x, bench.y, bench.device
    batch = attack_batch(model, args.batch)
    print(f"model {ckpt.name} ({ckpt.dataset}, width {ckpt.spec.width}), n={len(x)}, batch={batch}, "
          f"device {describe_device(device)}, torch {torch.__version__}")
    print("| attack | core img/s | torchattacks img/s | ratio (core/ta) | core adv acc | ta adv acc |")
    print("|---|---|---|---|---|---|")
    for precision in args.precision:
        for norm, eps in (("l2", 0.25), ("linf", 1 / 255)):
            r = compare(model, x, y, norm, eps, batch, args.repeats, precision)
            print(f"| {r['attack']} | {r['core_ips']:.0f} | {r['torchattacks_ips']:.0f} | {r['ratio']:.2f} | "
                  f"{100 * r['core_acc']:.1f} | {100 * r['torchattacks_acc']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
