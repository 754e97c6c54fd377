"""APGD-CE, NormScope core vs torchattacks 3.5.1, on the same model, images, batch and device.

    .venv/bin/pip install --no-deps --target .bench-libs torchattacks==3.5.1 scipy
    PYTHONPATH=.bench-libs .venv/bin/python benchmarks/apgd_speed.py [--checkpoint PATH] [--n 200]

Both sides run AutoAttack's APGD-CE (100 steps, one restart, rho 0.75) from the same random start (both
draw it on the CPU from seed 0 for the images still correctly classified), so their adversarial accuracies
must agree (within 0.5 points). Runs alternate and the best of ``--repeats`` is reported, so background
load affects both sides alike; the CPU seconds each side used (``time.process_time``, all threads) are
reported too, as a ratio that background load on a shared machine disturbs much less than wall-clock
throughput. Budgets: AutoAttack's standard (linf 8/255, l2 0.5) and the paper's (linf 1/255, l2 0.25), where
robust accuracy is far from 0 and the two attacks are really compared.
"""
from __future__ import annotations

import time

import torch

from _bench import bench_parser, load_bench  # puts the repository on sys.path

from core.attacks import AttackSpec, build_attack
from core.device import describe_device
from core.metrics import accuracy

BUDGETS = (("linf", 8 / 255), ("l2", 0.5), ("linf", 1 / 255), ("l2", 0.25))


def timed(attack, x: torch.Tensor, y: torch.Tensor, batch: int) -> tuple[float, float, torch.Tensor]:
    """Wall-clock and CPU seconds of attacking ``x`` batch by batch, and the adversarial images."""
    start, cpu = time.perf_counter(), time.process_time()
    adv = torch.cat([attack(x[i:i + batch], y[i:i + batch]) for i in range(0, len(x), batch)])
    if x.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu, adv


def compare(model, x, y, threat: str, eps: float, steps: int, batch: int, repeats: int) -> dict:
    import torchattacks

    ours = build_attack(model, AttackSpec(f"apgd_ce_{threat}", eps, steps))
    theirs = torchattacks.APGD(model, norm={"linf": "Linf", "l2": "L2"}[threat], eps=eps, steps=steps,
                               n_restarts=1, seed=0, loss="ce", rho=0.75)
    best = {k: float("inf") for k in ("core", "torchattacks", "core_cpu", "torchattacks_cpu")}
    for _ in range(repeats):
        for name, attack in (("core", ours), ("torchattacks", theirs)):
            seconds, cpu, adv = timed(attack, x, y, batch)
            best[name], best[f"{name}_cpu"] = min(best[name], seconds), min(best[f"{name}_cpu"], cpu)
            best[f"{name}_acc"] = accuracy(model, adv, y)
    return {"attack": f"APGD-CE-{threat} eps={eps:.4g}", "core_ips": len(x) / best["core"],
            "torchattacks_ips": len(x) / best["torchattacks"], "ratio": best["torchattacks"] / best["core"],
            "cpu_ratio": best["torchattacks_cpu"] / best["core_cpu"],
            "core_acc": best["core_acc"], "torchattacks_acc": best["torchattacks_acc"]}


def main() -> None:
    p = bench_parser(__doc__, n=200, repeats=2)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch", type=int, default=250)
    args = p.parse_args()
    bench = load_bench(args)
    ckpt, model, x, y, device = bench.checkpoint, bench.model, bench.x, bench.y, bench.device
    print(f"model {ckpt.name} ({ckpt.dataset}), n={len(x)}, batch={args.batch}, {args.steps} steps, "
          f"device {describe_device(device)}, clean acc {100 * accuracy(model, x, y):.1f} %")
    print("| attack | core img/s | torchattacks img/s | ratio (core/ta) | CPU-time ratio (ta/core) | core adv acc | "
          "ta adv acc |")
    print("|---|---|---|---|---|---|---|")
    for threat, eps in BUDGETS:
        r = compare(model, x, y, threat, eps, args.steps, args.batch, args.repeats)
        print(f"| {r['attack']} | {r['core_ips']:.1f} | {r['torchattacks_ips']:.1f} | {r['ratio']:.2f} | "
              f"{r['cpu_ratio']:.2f} | {100 * r['core_acc']:.1f} | {100 * r['torchattacks_acc']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
