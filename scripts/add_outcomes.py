"""Give the shipped results the per-image outcomes that results of this code store, and check them on the way.

    python scripts/add_outcomes.py [--results checkpoints/results.json.xz]

Results cached before the outcomes were stored lack them (their experiment's ``current`` test says so, and a
non-cached run computes them again). Recomputing a robustness result or a transfer cell means running its attack
again; the attack's own outcome is already stored per image (``robust_correct``, ``adv_pred``), so this adds only
what the attack did not need, each by the function the experiment itself calls:

* robustness: ``clean_correct`` (the model on the clean images) and ``zero_gradient`` (:func:`zero_gradient_mask`);
* transfer cell: the target's ``clean_correct`` and ``adv_correct`` (from the stored ``adv_pred``);
* corruption cell: computed again in full (classifying stored corrupted images is cheap).

Each added field must re-aggregate to the numbers already shipped, exactly (clean accuracy, success and error
rates, corrupted accuracy). A result whose images classify otherwise today (a borderline image on another CPU
kernel path than the one that made it) is computed again in full, attack included (a transfer cell: its source's
examples too), and named at the end. Progress is written every 50 results: a stopped run resumes.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.cache import MISSING, ResultCache  # noqa: E402
from core.catalog import CatalogEntry, list_checkpoints, snapshots, zoo_results  # noqa: E402
from core.checkpoints import load_checkpoint  # noqa: E402
from core.config import config_from_dict  # noqa: E402
from core.experiments import Experiment, RunContext, eval_tensors, get_experiment  # noqa: E402
from core.io import read_json, write_json  # noqa: E402
from core.metrics import attack_batch, predict, zero_gradient_mask  # noqa: E402
from core.transfer import TransferCell, transfer_examples  # noqa: E402


class Mismatch(Exception):
    """An added outcome that does not re-aggregate to the shipped number."""


def expect(name: str, stored, recomputed) -> None:
    if stored != recomputed:
        raise Mismatch(f"{name}: shipped {stored!r}, re-aggregated {recomputed!r}")


def subjects() -> dict[str, CatalogEntry]:
    """Every zoo checkpoint and epoch snapshot, by sha256."""
    zoo = [e for e in list_checkpoints() if e.source == "zoo"]
    return {e.sha256: e for e in zoo + [s for e in zoo for s in snapshots(e)]}


def robustness_outcomes(result: dict, model: torch.nn.Module, num_classes: int) -> dict:
    config = config_from_dict(get_experiment("robustness").config_type, result["config"])
    x, y = eval_tensors(config.data, num_classes)
    clean_correct = predict(model, x, attack_batch(model)) == y  # in the batches run_attack classifies them in
    expect("clean accuracy", result["clean_accuracy"], clean_correct.float().mean().item())
    zero = zero_gradient_mask(model, x, y, config.attack, num_classes).float().mean().item()
    return {**result, "clean_correct": clean_correct.tolist(), "zero_gradient": zero}


def transfer_outcomes(result: dict, model: torch.nn.Module, num_classes: int) -> dict:
    config = config_from_dict(get_experiment("transfer").config_type, result["config"])
    x, y = eval_tensors(config.data, num_classes)
    cell = TransferCell.of(result["source"], y, predict(model, x), torch.tensor(result["adv_pred"]))
    for key in ("n", "success_rate", "error_rate", "clean_accuracy"):
        expect(key, result[key], getattr(cell, key))
    return {**result, "clean_correct": cell.clean_correct, "adv_correct": cell.adv_correct}


def corruption_outcomes(result: dict, entry: CatalogEntry, cache: ResultCache) -> dict:
    experiment = get_experiment("corruption")
    config = config_from_dict(experiment.config_type, result["config"])
    fresh = experiment(entry, config, RunContext(cache))
    for name in ("n", "accuracy", "clean_accuracy"):
        expect(name, result[name], getattr(fresh, name))
    return fresh.to_dict()


def recomputed_in_full(kind: str, result: dict, entry: CatalogEntry, by_sha: dict, cache: ResultCache) -> dict:
    """The result computed again by its experiment (a transfer cell: its source's examples first)."""
    experiment, run = get_experiment(kind), RunContext(cache)
    config = config_from_dict(experiment.config_type, result["config"])
    if kind == "transfer":
        transfer_examples(by_sha[config.source], config.examples, run)
    return experiment(entry, config, run).to_dict()


def lacks_outcomes(experiment: Experiment, result: dict) -> bool:
    record = experiment.read(result)
    return record is MISSING or not experiment.current(record)


def upgraded(results: dict, cache: ResultCache, save: Callable[[dict], None]) -> dict[str, dict]:
    """The results that lacked outcomes, with them (each checked); keyed as before. ``save`` gets what is done so
    far every 50 results, so a stopped run resumes where it was."""
    by_sha, done, models, recomputed = subjects(), {}, {}, []
    stale = {k: r for k, r in sorted(results.items(), key=lambda item: item[1]["checkpoint"]["sha256"])
             if k.split(":")[0] in ("robustness", "transfer", "corruption")
             and lacks_outcomes(get_experiment(k.split(":")[0]), r)}
    for i, (key, result) in enumerate(stale.items()):
        kind, sha = key.split(":")[0], result["checkpoint"]["sha256"]
        entry = by_sha[sha]
        print(f"[{i + 1}/{len(stale)}] {entry.name}: {kind}", flush=True)
        try:
            if kind == "corruption":
                done[key] = corruption_outcomes(result, entry, cache)
            else:
                if sha not in models:
                    models = {sha: load_checkpoint(entry.path)}  # one model at a time (stale is sorted by model)
                model, classes = models[sha].model.eval(), models[sha].spec.num_classes
                done[key] = (robustness_outcomes if kind == "robustness" else transfer_outcomes)(result, model, classes)
        except Mismatch as error:
            print(f"  {error}: computed again in full, attack included", flush=True)
            done[key] = recomputed_in_full(kind, result, entry, by_sha, cache)
            recomputed.append(f"{entry.name} {kind} {key}")
        if (i + 1) % 50 == 0:
            save(done)
    print(f"{len(recomputed)} results computed again in full:" + "".join(f"\n  {r}" for r in recomputed))
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", default=str(zoo_results()))
    args = parser.parse_args(argv)
    path = Path(args.results)
    results = read_json(path)
    with tempfile.TemporaryDirectory() as tmp:
        cache = ResultCache(tmp)
        for key, result in results.items():
            cache.set(key, result)
        done = upgraded(results, cache, lambda part: write_json(path, results | part))
    write_json(path, results | done)
    print(f"{len(done)} of {len(results)} results given their per-image outcomes; {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
