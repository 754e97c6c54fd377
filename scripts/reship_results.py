"""After retraining zoo models: recompute every shipped result of theirs on the new weights, and replace them.

    python scripts/reship_results.py builtin-vgg11-none builtin-vgg11-bn [--results checkpoints/results.json.xz]

Each shipped result records its experiment (the key's prefix) and config; the same experiment and config run on
the model's current file (found in the zoo by name), and the old weights' entries leave the file, so the shipped
set stays the same views, now of the weights that ship.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.cache import ResultCache  # noqa: E402
from core.catalog import list_checkpoints, zoo_results  # noqa: E402
from core.config import config_from_dict  # noqa: E402
from core.experiments import RunContext, get_experiment  # noqa: E402
from core.io import read_json, write_json  # noqa: E402
from core.progress import ConsoleProgress  # noqa: E402


def recompute(entries: dict, names: set[str], cache: ResultCache) -> dict:
    """The entries of the named models, recomputed on their current zoo files: new key -> result."""
    zoo = {e.name: e for e in list_checkpoints() if e.source == "zoo"}
    run, fresh = RunContext(cache, progress=ConsoleProgress()), {}
    for key, result in entries.items():
        name = result["checkpoint"]["name"]
        if name in names:
            experiment = get_experiment(key.split(":")[0])
            config = config_from_dict(experiment.config_type, result["config"])
            print(f"{name}: {experiment.name}")
            fresh[experiment.key(zoo[name], config)] = experiment(zoo[name], config, run)
    return fresh


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="+", help="zoo model names whose weights changed")
    parser.add_argument("--results", default=str(zoo_results()))
    args = parser.parse_args(argv)
    path, names = Path(args.results), set(args.names)
    entries = read_json(path)
    with tempfile.TemporaryDirectory() as tmp:
        fresh = recompute(entries, names, ResultCache(tmp))
    kept = {k: v for k, v in entries.items() if v["checkpoint"]["name"] not in names}
    write_json(path, kept | fresh)
    print(f"{len(entries) - len(kept)} results of {len(names)} models replaced by {len(fresh)}; {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
