"""Sec. 3.2 and App. A at CPU scale, as markdown: ``python scripts/corruption_table.py [--per-class 100]``.

For each of the zoo's BN / no-BN pairs (``core.zoo.CORRUPTION_PAIRS``): the corruption sweep (every provided
CIFAR-10-C corruption x 5 severities, seed 0), the Fourier heat map (Yin et al.'s eps 4) and the spectrum of
the paper's l2-PGD perturbations, computed through the cache (what is cached is read), then printed:
per model the clean error, the mean corruption error, the mean error per corruption family and for
contrast / fog, the heat map's mean error at high and low frequencies, and the perturbations' high-frequency
energy share. ``--export`` then writes the cache's results of these models for shipping (with
``scripts/precompute.py --export-only`` for the rest).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.cache import ResultCache  # noqa: E402
from core.catalog import list_checkpoints, zoo_results  # noqa: E402
from core.corruptions import CORRUPTIONS, corruption_sweep  # noqa: E402
from core.experiments import DEFAULT_PER_CLASS, EvalData, RunContext  # noqa: E402
from core.frequency import (FourierConfig, FourierHeatmap, SpectrumConfig, fourier_heatmap,  # noqa: E402
                            perturbation_spectrum)
from core.progress import ConsoleProgress  # noqa: E402
from core.zoo import CORRUPTION_PAIRS  # noqa: E402

FAMILIES = ("noise", "blur", "weather", "digital")
LOW = 4  # |u|, |v| < 4 of 32: the heat map's low-frequency block


def heatmap_split(result: FourierHeatmap) -> tuple[float, float]:
    """The heat map's mean error over the low-frequency block and over the rest."""
    error, f = torch.tensor(result.error), torch.tensor(result.frequencies).abs()
    low = (f.view(-1, 1) < LOW) & (f.view(1, -1) < LOW)
    return error[low].mean().item(), error[~low].mean().item()


def row(entry, data: EvalData, run: RunContext) -> list[str]:
    sweep = corruption_sweep(entry, data=data, run=run)
    heat = fourier_heatmap(entry, FourierConfig(data=data), run)
    spectrum = perturbation_spectrum(entry, SpectrumConfig(data=data), run)
    per = sweep["per_corruption"]
    family = {f: sum(per[n] for n, c in CORRUPTIONS.items() if c.family == f) /
              sum(c.family == f for c in CORRUPTIONS.values()) for f in FAMILIES}
    low, high = heatmap_split(heat)
    pct = [100 * v for v in (sweep["clean_error"], sweep["mean_corruption_error"], *family.values(),
                             per["contrast"], per["fog"], low, high)]
    return [entry.name, entry.norm, *(f"{v:.1f}" for v in pct), f"{spectrum.high_frequency_share:.3f}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-class", type=int, default=DEFAULT_PER_CLASS)
    parser.add_argument("--cache", default=None)
    parser.add_argument("--export", default=None, help="write these models' corruption and Fourier results here")
    args = parser.parse_args(argv)
    cache = ResultCache(args.cache)
    cache.seed(zoo_results())
    by_name = {e.name: e for e in list_checkpoints(args.cache) if e.source == "zoo"}
    run = RunContext(cache, progress=ConsoleProgress())
    header = ["model", "norm", "clean err", "mCE", *(f"{f} err" for f in FAMILIES), "contrast err", "fog err",
              "Fourier err low", "Fourier err high", "PGD-l2 HF share"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for pair in CORRUPTION_PAIRS:
        for name in pair:
            entry = by_name[name]
            lines.append("| " + " | ".join(row(entry, EvalData(entry.dataset, per_class=args.per_class), run)) + " |")
            print(lines[-1], file=sys.stderr, flush=True)
    print("\n".join(lines))
    if args.export:
        shas = {by_name[n].sha256 for pair in CORRUPTION_PAIRS for n in pair}
        prefixes = ("corruption:", "fourier_heatmap:", "perturbation_spectrum:")
        print(f"exported {cache.export(args.export, prefixes, checkpoints=shas)} results", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
