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

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.attacks import AttackSpec, build_attack  # noqa: E402
from core.checkpoints import load_checkpoint  # noqa: E402
from core.data import balanced_subset, load_dataset, to_float  # noqa: E402
from core.device import describe_device, resolve_device  # noqa: E402
from core.metrics import accuracy  # noqa: E402

DEFAULT = Path(__file__).resolve().parents[1] / "checkpoints" / "cifar10jpeg-vgg11-bn.safetensors"
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
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(DEFAULT))
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    ckpt = load_checkpoint(args.checkpoint)
    model = ckpt.model.to(device).eval()
    xs, ys = load_dataset(ckpt.dataset).split("test")
    keep = balanced_subset(ys, args.n // ckpt.spec.num_classes)
    x, y = to_float(xs[keep]).to(device), ys[keep].to(device)
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
