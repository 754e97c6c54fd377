"""Reliance on robust vs non-robust cues, measured on the built-in dataset's ``conflict`` split.

    python scripts/conflict_reliance.py [checkpoint ...]     (default: the zoo's builtin models)

Each conflict image carries the robust cue of its label y and the non-robust cue of y+1; the
fraction of predictions equal to y measures reliance on robust features, equal to y+1 on non-robust ones.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.checkpoints import load_checkpoint  # noqa: E402
from core.data import load_dataset, to_float  # noqa: E402
from core.catalog import zoo_dir  # noqa: E402
from core.metrics import conflict_reliance  # noqa: E402


def main(paths: list[str]) -> None:
    x, y = load_dataset("builtin").split("conflict")
    x = to_float(x)
    print("| model | follows robust cue (y) | follows non-robust cue (y+1) |")
    print("|---|---|---|")
    for path in paths or sorted(str(p) for p in zoo_dir().glob("builtin-*.safetensors")):
        ckpt = load_checkpoint(path)
        shares = conflict_reliance(ckpt.model, x, y)
        print(f"| {ckpt.name} | {100 * shares.robust:.1f} % | {100 * shares.non_robust:.1f} % |")


if __name__ == "__main__":
    main(sys.argv[1:])
