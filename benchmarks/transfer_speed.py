"""The zoo's transfer matrix (every Table A8 source x every target, one attack), cold and cached.

    .venv/bin/python benchmarks/transfer_speed.py [--attack ifgsm] [--per-class 100] [--threads 2] [--device cpu]

Cold: an empty temporary cache, so every source's examples and every cell are computed. Cached: the same
call again (lookups only). Added target: one more column on the warm cache, which costs that column alone.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.attacks import paper_spec  # noqa: E402
from core.cache import ResultCache  # noqa: E402
from core.catalog import list_checkpoints  # noqa: E402
from core.device import describe_device, resolve_device  # noqa: E402
from core.experiments import EvalData, RunContext  # noqa: E402
from core.transfer import transfer_matrix  # noqa: E402
from core.zoo import TRANSFER_SOURCES, TRANSFER_TARGETS  # noqa: E402


def timed(sources, targets, spec, data, run) -> tuple[float, object]:
    start = time.perf_counter()
    matrix = transfer_matrix(sources, targets, spec, data, run)
    return time.perf_counter() - start, matrix


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--attack", default="ifgsm")
    p.add_argument("--per-class", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    zoo = {e.name: e for e in list_checkpoints() if e.source == "zoo"}
    sources = [zoo[n] for n in TRANSFER_SOURCES if n in zoo]
    targets = [zoo[n] for n in TRANSFER_TARGETS if n in zoo]
    extra = next(e for n, e in zoo.items() if e.dataset == sources[0].dataset and n not in TRANSFER_TARGETS)
    spec, data = paper_spec(args.attack), EvalData(sources[0].dataset, per_class=args.per_class)
    with tempfile.TemporaryDirectory() as folder:
        run = RunContext(ResultCache(folder), device=args.device)
        cold, matrix = timed(sources, targets, spec, data, run)
        warm, again = timed(sources, targets, spec, data, run)
        column, _ = timed(sources, [*targets, extra], spec, data, run)
    assert again.table() == matrix.table()
    print(f"{len(sources)} sources x {len(targets)} targets, {spec.label}, {10 * args.per_class} images, "
          f"{describe_device(resolve_device(args.device))}")
    print(f"cold: {cold:.1f} s   cached: {warm:.3f} s   one added target ({extra.name}): {column:.1f} s")


if __name__ == "__main__":
    main()
