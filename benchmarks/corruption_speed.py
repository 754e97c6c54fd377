"""Corruption sweep and Fourier heat map wall times for one zoo model (issue targets: a sweep of all corruptions x 5
severities x 1,000 images under a minute once the corrupted images are made; a heat map in minutes).

    .venv/bin/python benchmarks/corruption_speed.py [--checkpoint PATH] [--per-class 100] [--fourier-per-class 100]

Runs in a fresh temporary cache: the first sweep makes the corrupted image sets (once per image set and seed,
shared by every model), the second reads them, as a second model's sweep does; then the 31 x 31 heat map.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.cache import ResultCache  # noqa: E402
from core.checkpoints import load_checkpoint  # noqa: E402
from core.corruptions import CORRUPTIONS, SEVERITIES, corruption_sweep  # noqa: E402
from core.device import describe_device, resolve_device  # noqa: E402
from core.experiments import EvalData, RunContext  # noqa: E402
from core.frequency import FourierConfig, fourier_heatmap, half_plane  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "cifar10jpeg-vgg11-bn.safetensors"))
    p.add_argument("--per-class", type=int, default=100)
    p.add_argument("--fourier-per-class", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    checkpoint, device = load_checkpoint(args.checkpoint), resolve_device(args.device)
    with tempfile.TemporaryDirectory() as folder:
        os.environ["NORMSCOPE_CACHE"] = folder  # the corrupted image sets live beside the results
        data = EvalData(checkpoint.dataset, per_class=args.per_class)
        times = {}
        for attempt in ("images made", "images cached"):
            run = RunContext(ResultCache(Path(folder) / attempt), device)
            start = time.perf_counter()
            sweep = corruption_sweep(checkpoint, data=data, run=run)
            times[f"sweep, {attempt}"] = time.perf_counter() - start
        start = time.perf_counter()
        heat = fourier_heatmap(checkpoint, FourierConfig(data=EvalData(checkpoint.dataset,
                               per_class=args.fourier_per_class)), run)
        times["Fourier heat map"] = time.perf_counter() - start
    print(f"model {checkpoint.name} ({checkpoint.dataset}), {describe_device(device)}, {args.threads} threads; "
          f"sweep: {len(CORRUPTIONS)} corruptions x {len(SEVERITIES)} severities x {sweep['n']} images; heat map: "
          f"{len(half_plane(32))} bases measured (31 x 31 shown) x {heat.n} images")
    print("| run | seconds |\n|---|---|")
    for name, seconds in times.items():
        print(f"| {name} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
