"""The built-in demo's margin: how much more the BN model follows the non-robust cue, over seeds and kernels.

    python scripts/conflict_margin.py [--seeds 0 1 2 3 4] [--arch vgg11] [--no-mkldnn] [--out FILE.jsonl]
    ATEN_CPU_CAPABILITY=default python scripts/conflict_margin.py ...      # another ATen kernel path

Trains the ``tiny`` preset (BN and norm-free) once per seed on the built-in data and prints, per seed, the share
of the conflict split each model labels by the non-robust cue (y+1), and the BN - none margin; then the median
and the smallest margin. Each line records the kernel path it ran on (ATen CPU capability, oneDNN on/off), so
runs under several paths can be pooled into one table (README, "The built-in dataset").
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core.data import load_dataset  # noqa: E402
from core.features import SeedSpread  # noqa: E402
from core.train import preset, train  # noqa: E402


def kernel_path() -> str:
    """The CPU kernels this process runs: ATen's vector capability and whether oneDNN convolutions are on."""
    onednn = "on" if torch.backends.mkldnn.enabled else "off"
    return f"{torch.backends.cpu.get_cpu_capability().lower()}, oneDNN {onednn}"


def follows_non_robust(arch: str, norm: str, seed: int, out: Path) -> float:
    """The trained model's share of the conflict split labelled by the non-robust cue (the last epoch's probe)."""
    meta = train(preset("tiny", arch=arch, norm=norm, seed=seed), out / f"{norm}-{seed}", dataset=load_dataset("builtin"))
    return meta["history"][-1]["conflict_non_robust"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--arch", default="vgg11")
    parser.add_argument("--no-mkldnn", action="store_true", help="ATen's own convolutions instead of oneDNN's")
    parser.add_argument("--out", default=None, help="append one JSON line per seed to this file")
    args = parser.parse_args(argv)
    torch.backends.mkldnn.enabled = not args.no_mkldnn
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            shares = {n: follows_non_robust(args.arch, n, seed, Path(tmp)) for n in ("bn", "none")}
            runs.append({"arch": args.arch, "seed": seed, "kernels": kernel_path(), **shares,
                         "margin": shares["bn"] - shares["none"]})
            print(json.dumps(runs[-1]), flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(runs[-1]) + "\n")
    print(SeedSpread(runs).summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
