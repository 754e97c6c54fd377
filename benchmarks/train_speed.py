"""Training throughput of a CPU-preset model and the per-epoch probe overhead (issue: training).

    .venv/bin/python benchmarks/train_speed.py [--arch vgg11] [--norm bn] [--images 5000] [--threads 2]

Trains ``--images`` images (one partial epoch) with the ``cpu`` preset, then times one probe
(clean accuracy, 10-step l2-PGD and LIGS on 100 test images per class), and reports the probe's
cost relative to a full 50,000-image epoch.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data import balanced_subset, load_dataset, to_float  # noqa: E402
from core.device import describe_device, resolve_device  # noqa: E402
from core.progress import null_progress  # noqa: E402
from core.train import new_state, preset, probe, train_epoch  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="vgg11")
    p.add_argument("--norm", default="bn")
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dataset", default="auto")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset)
    config = replace(preset("cpu", arch=args.arch, norm=args.norm, dataset=data.name), epochs=1)
    state = new_state(config, data, resolve_device(None))
    x, y = data.split("train")
    start = time.perf_counter()
    train_epoch(state, config, x[:args.images], y[:args.images], null_progress)
    train_ips = args.images / (time.perf_counter() - start)
    xt, yt = data.split("test")
    keep = balanced_subset(yt, config.probe_per_class, data.num_classes)
    start = time.perf_counter()
    probe(state.model, config, to_float(xt[keep]), yt[keep], null_progress)
    probe_s = time.perf_counter() - start
    epoch_s = 50000 / train_ips
    print(f"{args.arch}/{args.norm} width {config.width} on {data.name}, batch {config.batch_size}, "
          f"{describe_device()}")
    print(f"training: {train_ips:.0f} images/s ({epoch_s:.0f} s per 50,000-image epoch)")
    print(f"probe (1000 images: clean + 10-step PGD-l2 + LIGS): {probe_s:.1f} s = "
          f"{100 * probe_s / epoch_s:.0f} % of an epoch")


if __name__ == "__main__":
    main()
