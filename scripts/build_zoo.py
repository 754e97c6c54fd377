"""Rebuild the reference zoo: ``python scripts/build_zoo.py [--preset cpu|gpu] [--device cuda] [--workers 2]
[--only NAME ...] [--threads N] [--ray local|auto|ray://host:port] [--park]``.

Trains each entry of the preset's plan (``core.zoo.PLANS``: ``cpu``, the shipped CPU-scale zoo; ``gpu``, the
full-width paper-scale pairs) that is not finished yet into ``runs/zoo/`` (resumable after a kill), exports an
fp16 copy (and its epoch snapshots) to ``checkpoints/``, and rewrites ``checkpoints/zoo.json``. Logs go to
``runs/zoo/<name>.log``. On a GPU, one worker trains at a time (``--workers 1`` is implied).

Runs that outlive a session (``--preset evidence``: hours each on a CPU) survive a change of machine through the
repository: ``--park`` copies each unfinished run's resume state (weights, optimizer, epoch and history, written
after every finished epoch) to ``checkpoints/in-progress/`` for a commit, and a later run of this script on any
machine resumes from there when ``runs/zoo/`` has no newer state. A run shipped to ``checkpoints/`` is not trained
again.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.catalog import zoo_dir  # noqa: E402
from core.checkpoints import load_checkpoint, save_checkpoint  # noqa: E402
from core.device import resolve_device  # noqa: E402
from core.cluster import ClusterError, connect, map_on_cluster, ray_address  # noqa: E402
from core.train import read_epoch, state_path  # noqa: E402
from core.zoo import EVIDENCE_GROUP, GPU_GROUP, INDEX, PLANS, plan_entry, train_entry  # noqa: E402

RUNS = ROOT / "runs" / "zoo"
PARKED = ROOT / "checkpoints" / "in-progress"
SHIP_LIMIT = 25 * 2 ** 20  # bytes per weights file in the repository


def train_one(name: str, threads: int, device: str | None = None) -> str:
    if (zoo_dir() / f"{name}.safetensors").is_file() and not (RUNS / f"{name}.safetensors").is_file():
        print(f"{name}: shipped already in {zoo_dir()}; not trained again", flush=True)
        return name
    unpark(name)
    train_entry(name, RUNS, threads, device)
    export(name)
    (PARKED / state_path(Path(name)).name).unlink(missing_ok=True)
    return name


def unpark(name: str) -> None:
    """Resume from the parked state where it is further on than the local one (a new machine has none)."""
    parked, local = PARKED / state_path(Path(name)).name, state_path(RUNS / name)
    if parked.is_file() and read_epoch(parked) > (read_epoch(local) if local.is_file() else -1):
        shutil.copyfile(parked, local)
        print(f"{name}: resuming from the parked state, epoch {read_epoch(parked)}", flush=True)


def park(names: list[str]) -> None:
    """Copy each unfinished run's resume state into the repository (``PARKED``), for the next session to resume."""
    PARKED.mkdir(parents=True, exist_ok=True)
    for name in names:
        local = state_path(RUNS / name)
        if local.is_file():
            shutil.copyfile(local, PARKED / local.name)
            print(f"{name}: parked at epoch {read_epoch(local)} in {PARKED}", flush=True)


def export(name: str) -> None:
    """fp16 copy of the finished run (and, at CPU scale, its snapshots) into the shipped zoo. Full-width runs
    keep their snapshots in runs/zoo/ (tens of MB each), and so do the evidence runs (one per epoch: only those the
board uses are shipped); a file over the shipping limit is reported."""
    ckpt = load_checkpoint(RUNS / f"{name}.safetensors")
    meta = {k: v for k, v in ckpt.meta.items() if k not in ("sha256", "format", "name")}
    save_checkpoint(ckpt.model, zoo_dir() / name, {**meta, "fp32_sha256": ckpt.sha256}, dtype=torch.float16)
    size = (zoo_dir() / f"{name}.safetensors").stat().st_size
    if size > SHIP_LIMIT:
        print(f"{name}: {size / 2 ** 20:.1f} MB of fp16 weights, over the {SHIP_LIMIT >> 20} MB shipping limit: "
              "ship its metadata and results only", flush=True)
    snaps = RUNS / "snapshots" / name
    if snaps.is_dir() and plan_entry(name).group not in (GPU_GROUP, EVIDENCE_GROUP):
        shutil.copytree(snaps, zoo_dir() / "snapshots" / name, dirs_exist_ok=True)


def write_index() -> None:
    models = []
    for entry in [e for plan in PLANS.values() for e in plan]:
        side = zoo_dir() / f"{entry.name}.json"
        if not side.is_file():
            continue
        meta = json.loads(side.read_text())
        models.append({"name": entry.name, "file": f"{entry.name}.safetensors", "group": entry.group,
                       "arch": meta["model"]["arch"], "norm": meta["model"]["norm"], "width": meta["model"]["width"],
                       "dataset": meta["dataset"], "preset": entry.config.preset,
                       "adversarial": entry.config.adversarial is not None,
                       "epochs": meta["epochs_completed"], "final_metrics": meta["final_metrics"]})
    (zoo_dir() / INDEX).write_text(json.dumps({"models": models}, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu", choices=list(PLANS), help="which plan (default: cpu)")
    parser.add_argument("--device", help="cuda or cpu (default: cuda if available)")
    parser.add_argument("--workers", type=int, default=2, help="parallel CPU runs (a GPU runs one at a time)")
    parser.add_argument("--only", nargs="*", help="entry names (default: the whole plan)")
    parser.add_argument("--threads", type=int, help="CPU threads per run (default: the machine's, over --workers)")
    parser.add_argument("--park", action="store_true",
                        help="copy the unfinished runs' resume states to checkpoints/in-progress/ and stop")
    parser.add_argument("--ray", default=ray_address(), metavar="ADDRESS",
                        help="train on a Ray cluster: local, auto or ray://host:port (default: NORMSCOPE_RAY_ADDRESS; "
                             "none: this machine's processes). The workers must see this checkout's runs/zoo/ folder")
    args = parser.parse_args()
    names = args.only or [e.name for e in PLANS[args.preset]]
    RUNS.mkdir(parents=True, exist_ok=True)
    if args.park:
        park(names)
        return
    if args.ray:
        try:
            on_cluster(names, args)
        except ClusterError as e:
            raise SystemExit(f"error: {e}") from None
        return
    device = resolve_device(args.device)
    if device.type == "cuda":
        for name in names:
            train_one(name, torch.get_num_threads(), str(device))
            print(f"{time.strftime('%H:%M:%S')} finished {name}", flush=True)
            write_index()
        return
    threads = args.threads or max(1, torch.get_num_threads() // args.workers)
    with ProcessPoolExecutor(args.workers) as pool:
        for done in pool.map(train_one, names, [threads] * len(names)):
            print(f"{time.strftime('%H:%M:%S')} finished {done}", flush=True)
            write_index()


def on_cluster(names: list[str], args: argparse.Namespace) -> None:
    """Each entry one Ray task (one GPU with --device cuda, else one CPU thread; ``local``: an instance of
    --workers CPUs here), retried where its worker dies and resumed from its last epoch; exported here as each
    finishes, so the zoo's files are written by this process only."""
    connect(args.ray, cpus=args.workers if args.ray == "local" else None)
    gpus = 1 if args.device == "cuda" else 0
    for done in map_on_cluster(train_entry, names, args.ray, gpus=gpus, extra_args=(RUNS, 1, args.device)):
        export(done)
        print(f"{time.strftime('%H:%M:%S')} finished {done} (on the cluster)", flush=True)
        write_index()


if __name__ == "__main__":
    main()
