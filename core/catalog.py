"""The checkpoint catalog: the reference zoo, uploaded checkpoints and checkpoints trained by jobs.

Every model selector lists :func:`list_checkpoints`. Uploads are validated by
:func:`core.checkpoints.load_checkpoint_bytes` and stored content-addressed (by the sha256 of the
uploaded bytes) as safetensors + JSON under ``<cache dir>/uploads/``, so an upload made in one
browser session appears in every other one, and uploading the same file twice stores it once.
Listing reads only the small JSON sidecars; weights load when a page needs them.
"""
from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

from core.cache import default_cache_dir
from core.checkpoints import (Checkpoint, CheckpointError, InputNormalization, load_checkpoint, load_checkpoint_bytes,
                              read_sidecar, save_checkpoint, sha256_bytes)
from core.data import DATASETS
from core.models import ModelSpec

SOURCES = ("zoo", "upload", "trained", "snapshot")
SHIPPED_ZOO = Path(__file__).resolve().parents[1] / "checkpoints"
RESULTS_SEED = "results.json.xz"  # the zoo's precomputed results (xz JSON), beside its checkpoints (ResultCache.seed)
ESTIMATES_SEED = "findings-estimates.json"  # the findings scoreboard's interval estimates of those results
ZOO_INDEX = "zoo.json"  # the zoo's index (scripts/build_zoo.py): each model's file and comparison group
STORING = threading.Lock()
_SAVED_KEYS = ("format", "name", "model", "code_version", "storage_dtype", "saved_at", "sha256")


@dataclass(frozen=True)
class CatalogEntry:
    """One checkpoint as the catalog lists it (from its JSON sidecar; no weights loaded)."""

    name: str
    path: str  # the .safetensors file
    source: str  # "zoo", "upload" or "trained"
    dataset: str
    arch: str
    norm: str
    width: float
    sha256: str
    num_classes: int = 10
    final_metrics: dict = field(default_factory=dict, compare=False, hash=False)
    history: tuple = field(default=(), compare=False, hash=False)
    preset: str = ""
    group: str = ""  # a zoo model's comparison group (core.zoo.ZooEntry.group, from the zoo's index); else ""
    seed: int = 0  # its training seed (TrainConfig.seed; 0 where the file does not say)
    probe_images: int = 0  # test images behind each epoch's accuracy probes in ``history`` (0: not recorded)

    @property
    def adversarial(self) -> bool:
        """Adversarially trained (by one of the ``*_adv`` training presets)."""
        return self.preset.endswith("_adv")

    @property
    def label(self) -> str:
        """Unique in the catalog: zoo names are; uploads and trained runs add a short hash."""
        return self.name if self.source == "zoo" else f"{self.name} ({self.source} {self.sha256[:6]})"


def uploads_dir(root: Path | None = None) -> Path:
    return Path(root or default_cache_dir()) / "uploads"


def trained_dir(root: Path | None = None) -> Path:
    return Path(root or default_cache_dir()) / "trained"


def entry_from_file(path: Path, source: str) -> CatalogEntry | None:
    """The catalog entry of ``path`` (.safetensors), or None when it has no readable sidecar."""
    try:
        meta = read_sidecar(path)
    except CheckpointError:  # an unreadable sidecar is skipped, not fatal to the listing
        return None
    if "model" not in meta or "sha256" not in meta:
        return None
    model = meta["model"]
    name = Path(meta["original_filename"]).stem if "original_filename" in meta else meta.get("name", path.stem)
    return CatalogEntry(name=name, path=str(path), source=source,
                        dataset=meta.get("dataset", "unknown"), arch=model.get("arch", "?"),
                        norm=model.get("norm", "?"), width=float(model.get("width", 1.0)), sha256=meta["sha256"],
                        num_classes=int(model.get("num_classes", 10)),
                        final_metrics=meta.get("final_metrics", {}), history=tuple(meta.get("history", [])),
                        preset=meta.get("train_config", {}).get("preset", ""),
                        seed=int(meta.get("train_config", {}).get("seed", 0)),
                        probe_images=probe_images(meta))


def probe_images(meta: dict) -> int:
    """How many test images each epoch's probe read: ``probe_per_class`` of every class (0 without a training
    config, e.g. an upload)."""
    config = meta.get("train_config") or {}
    per_class = config.get("probe_per_class", 100 if config else 0)  # TrainConfig's default
    return int(per_class) * int(meta.get("model", {}).get("num_classes", 10))


def zoo_dir() -> Path:
    """The reference zoo's folder: ``NORMSCOPE_ZOO`` if set (a mounted volume, or a test's own zoo), else checkpoints/."""
    return Path(os.environ.get("NORMSCOPE_ZOO") or SHIPPED_ZOO)


def zoo_results() -> Path:
    """The zoo's shipped precomputed results (seeded into every new cache)."""
    return zoo_dir() / RESULTS_SEED


def shipped_seeds() -> list[Path]:
    """What a new cache is seeded with: the zoo's results, and the scoreboard's estimates made from them."""
    return [zoo_results(), zoo_dir() / ESTIMATES_SEED]


def zoo_groups(folder: Path) -> dict[str, str]:
    """File name -> comparison group, from the zoo's index in ``folder``; {} without a readable index (a zoo
    without one, e.g. a test's, lists its models all the same, in no group)."""
    try:
        models = json.loads((folder / ZOO_INDEX).read_text())["models"]
        return {m["file"]: m["group"] for m in models}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def list_checkpoints(root: Path | None = None, zoo: Path | None = None, dataset: str | None = None,
                     uploads: Sequence[Path] | None = None) -> list[CatalogEntry]:
    """Zoo, uploaded and trained checkpoints (in that order), optionally only those of ``dataset``. ``uploads``:
    the folders of uploads to list (default: ``root``'s shared one; a public server lists only the session's)."""
    zoo = zoo or zoo_dir()
    upload_folders = [uploads_dir(root)] if uploads is None else list(uploads)
    folders = [(zoo, "zoo"), *((folder, "upload") for folder in upload_folders), (trained_dir(root), "trained")]
    entries = [e for folder, source in folders for e in entries_in(folder, source)]
    groups = zoo_groups(zoo)
    return [replace(e, group=groups.get(Path(e.path).name, "")) if e.source == "zoo" else e
            for e in entries if dataset is None or e.dataset == dataset]


def find_checkpoint(name: str, normalization: InputNormalization | None = None) -> Checkpoint:
    """A checkpoint file, else the catalog's checkpoint of that name or label (the zoo's ``cifar10jpeg-vgg11-bn``)."""
    if Path(name).is_file():
        return load_checkpoint(name, normalization=normalization)
    found = [e for e in list_checkpoints() if name in (e.name, e.label)]
    if not found:
        raise CheckpointError(f"{name}: no such file, and no checkpoint of that name in the catalog")
    return load_checkpoint(found[0].path, normalization=normalization)


def entries_in(folder: Path, source: str) -> list[CatalogEntry]:
    """The readable checkpoints of one folder, by file name."""
    return [e for p in sorted(folder.glob("*.safetensors")) if (e := entry_from_file(p, source)) is not None]


def safe_stem(filename: str) -> str:
    """A file-system-safe, dot-free stem (dots would confuse suffix handling)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", Path(filename).stem)[:60] or "checkpoint"


def store_upload(data: bytes, filename: str, spec: ModelSpec | None = None, dataset: str | None = None,
                 root: Path | None = None, fallback_dataset: str = "unknown",
                 normalization: InputNormalization | None = None) -> CatalogEntry:
    """Validate an uploaded checkpoint and store it under the uploads folder; returns its entry.

    Raises :class:`core.checkpoints.CheckpointError` (a ``ValueError``) for every unusable file, and its
    ``NormalizationUnknown`` where the file records no input normalization and ``normalization`` is None.
    ``dataset`` records what the model was trained on; when None, the file's embedded metadata
    says, else ``fallback_dataset``. What a file says is a label only: where it is not one of the named datasets
    (:data:`core.data.DATASETS`: an ``npz:`` path, a feature dataset of another machine) the upload is recorded as
    trained on ``fallback_dataset`` and the file's word kept as ``declared_dataset``, so no file names a path that
    is read. An identical file uploaded again keeps its first record (and is not asked about again).
    """
    out = uploads_dir(root) / f"{sha256_bytes(data)[:16]}-{safe_stem(filename)}"
    weights = out.with_suffix(".safetensors")
    if not weights.is_file():
        checkpoint = load_checkpoint_bytes(data, filename, spec, normalization=normalization)
        meta = {k: v for k, v in checkpoint.meta.items() if k not in _SAVED_KEYS}
        meta |= trained_on(dataset or checkpoint.meta.get("dataset", fallback_dataset), fallback_dataset)
        meta |= {"source": "upload", "original_filename": filename, "upload_sha256": checkpoint.sha256}
        with STORING:  # the first of two sessions storing one file at once writes it; else their weights and
            if not weights.is_file():  # sidecars (each with its own save time) would interleave
                save_checkpoint(checkpoint.model, out, meta)
    entry = entry_from_file(weights, "upload")
    assert entry is not None  # just written by save_checkpoint, which always writes model and sha256
    return entry


def trained_on(declared: object, fallback: str) -> dict[str, object]:
    """An upload's ``dataset`` metadata: a named dataset as it is; anything else kept only as ``declared_dataset``."""
    if declared in DATASETS or declared == fallback:
        return {"dataset": declared}
    return {"dataset": fallback, "declared_dataset": str(declared)[:200]}


def snapshots(entry: CatalogEntry) -> list[CatalogEntry]:
    """The weights saved every few epochs while ``entry`` trained (``snapshots/<name>/`` beside it), oldest
    first; each is named ``<name> @ epoch N``."""
    folder = Path(entry.path).parent / "snapshots" / Path(entry.path).stem
    found = [entry_from_file(p, "snapshot") for p in sorted(folder.glob("*.safetensors"))]
    return [replace(e, name=f"{entry.name} @ epoch {len(e.history)}") for e in found if e is not None]
