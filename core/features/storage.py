"""Extracted feature datasets on disk: ``<cache>/features/<id>/`` (float16 images, labels, ``meta.json``), and
the ``features:<id>`` data source that reads them (registered with :mod:`core.data` on import)."""
from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.cache import default_cache_dir
from core.io import atomic_write, inside, read_npz
from core.data import DataError, Dataset, load_dataset, register_source
from core.features.config import HOLDOUT_KINDS


@dataclass
class Part:
    """One extracted batch: images in [0, 1], training labels, original labels and per-image sanity figures."""

    x: torch.Tensor
    labels: torch.Tensor
    original: torch.Tensor
    sanity: torch.Tensor  # relative feature distance (Eq. A2) or 1 if the source predicts the target (attacks)
    trace: list[float]



def features_dir() -> Path:
    """Where extracted datasets live: ``<cache>/features`` (``NORMSCOPE_CACHE`` moves it)."""
    return default_cache_dir() / "features"



def save_part(folder: Path, index: int, part: Part) -> None:
    buffer = _npz_bytes(x=part.x.half().numpy(), labels=part.labels.numpy(), original=part.original.numpy(),
                        sanity=part.sanity.numpy(), trace=np.asarray(part.trace, dtype=np.float64))
    atomic_write(folder / "parts" / f"part_{index:05d}.npz", buffer)


def load_part(path: Path) -> Part:
    z = read_npz(path)
    return Part(torch.from_numpy(z["x"]).float(), torch.from_numpy(z["labels"]),
                torch.from_numpy(z["original"]), torch.from_numpy(z["sanity"]), z["trace"].tolist())


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def write_dataset(folder: Path, parts: list[Part], meta: dict) -> None:
    """Join the parts into ``images.npz`` and write ``meta.json`` last: a folder with meta.json is complete."""
    labels, original = torch.cat([p.labels for p in parts]), torch.cat([p.original for p in parts])
    images = torch.cat([p.x for p in parts]).half()
    atomic_write(folder / "images.npz", _npz_bytes(x=images.numpy(), labels=labels.numpy(), original=original.numpy()))
    atomic_write(folder / "meta.json", json.dumps(meta, indent=1).encode())
    shutil.rmtree(folder / "parts", ignore_errors=True)


def dataset_folder(dataset: str) -> Path:
    """Where the extracted dataset ``dataset`` lives; refused where the id would lead out of the features folder."""
    return inside(features_dir(), dataset)


def read_meta(dataset: str) -> dict:
    path = dataset_folder(dataset) / "meta.json"
    if not path.is_file():
        raise DataError(f"no extracted feature dataset {dataset!r} under {features_dir()}; extract it first "
                        f"(`python -m core features extract ...` or the Non-robust features page)")
    return json.loads(path.read_text())


def load_feature_dataset(dataset: str) -> Dataset:
    """``features:<id>``: the extracted images as ``train`` (and ``conflict``), the source's real ``test`` split."""
    meta, folder = read_meta(dataset), dataset_folder(dataset)
    z = read_npz(folder / "images.npz", ("x", "labels", "original"))
    x, labels, original = (torch.from_numpy(z[k]) for k in ("x", "labels", "original"))
    origin = load_dataset(meta["source_dataset"])
    held = int(round(meta["config"]["holdout"] * len(x))) if meta["kind"] in HOLDOUT_KINDS else 0
    splits = {"train": (x[:len(x) - held], labels[:len(x) - held]), "test": origin.split("test")}
    if held:
        splits["conflict"] = (x[len(x) - held:], original[len(x) - held:])
    return Dataset(f"features:{dataset}", splits, origin.classes, origin.mean, origin.std,
                   description=f"{meta['kind']} extracted from {meta['source']['name']} ({meta['config']['preset']})",
                   source=str(folder), notes={"kind": meta["kind"], "preset": meta["config"]["preset"]})



def list_feature_datasets() -> list[dict]:
    """Every extracted dataset on this machine: id, kind, size, source, preset and sanity figures."""
    folder = features_dir()
    metas = [json.loads(p.read_text()) for p in sorted(folder.glob("*/meta.json"))] if folder.is_dir() else []
    return [{k: m[k] for k in ("id", "kind", "images", "source_dataset", "source", "sanity")} |
            {"preset": m["config"]["preset"]} for m in metas]


register_source("features:", load_feature_dataset)
