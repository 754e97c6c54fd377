"""Checkpoints: safetensors weights + JSON metadata; loading never executes code.

A checkpoint ``NAME`` is ``NAME.safetensors`` (the metadata JSON is also embedded in its header, so
one uploaded file is complete) plus ``NAME.json`` beside it. ``.pt``/``.pth`` state dicts load with
``torch.load(weights_only=True)`` only. Without metadata the architecture is inferred from the
state dict's keys and shapes, in NormScope's, torchvision's or a published repository's layout
(:mod:`core.models.layouts`); what cannot be inferred is named in the error. The input normalization
(mean/std) is read from the metadata or from mean/std buffers in the state dict (RobustBench's ``mu`` /
``sigma``, MadryLab's ``normalizer.new_mean`` / ``new_std``); where the file records neither, it is never
guessed: :class:`NormalizationUnknown` asks for it, since a wrong one silently changes every number.

Modules: :mod:`~core.checkpoints.formats` (which format a file is in, the flat state dict inside it),
:mod:`~core.checkpoints.safety` (what a refused pickle would have imported, without importing it),
:mod:`~core.checkpoints.normalization` (the input mean/std: recorded, found in buffers, or asked for) and
:mod:`~core.checkpoints.fitting` (the architecture a state dict fits, and loading it strictly).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save as save_safetensors_bytes

from core._version import CODE_VERSION
from core.checkpoints.fitting import infer_spec, model_from_state, published_layout, with_batchnorm_counters
from core.checkpoints.formats import MB, TORCH_LEGACY, TORCH_TAR, TORCH_ZIP, file_format, parse_weights
from core.checkpoints.normalization import (INPUT_NORMALIZATIONS, InputNormalization, NormalizationUnknown,
                                            resolve_normalization, split_normalization, with_normalization)
from core.errors import CheckpointError
from core.io import atomic_write
from core.models import ModelSpec, NormScopeModel, model_entry
from core.models.layouts import NATIVE

__all__ = ["FORMAT", "MAX_CHECKPOINT_BYTES", "MB", "SUFFIXES", "Checkpoint", "CheckpointError", "INPUT_NORMALIZATIONS",
           "InputNormalization", "NormalizationUnknown", "TORCH_LEGACY", "TORCH_TAR", "TORCH_ZIP", "checkpoint_stem",
           "file_format", "infer_spec", "load_checkpoint", "load_checkpoint_bytes", "read_sidecar", "save_checkpoint",
           "sha256_bytes", "too_large", "weights_file"]

FORMAT = "normscope-checkpoint/1"
# In MB (10^6 bytes), the unit Streamlit's browser side counts ``server.maxUploadSize`` in (its server counts MiB,
# a looser bound): the browser refuses above the very byte NormScope does (ui/serving/policy.py upload_limit_mb).
MAX_CHECKPOINT_BYTES = 512 * MB
SUFFIXES = (".safetensors", ".pt", ".pth")  # a saved checkpoint's name; loading reads the content (file_format)


@dataclass
class Checkpoint:
    """A validated checkpoint: its model (CPU, eval mode), metadata and the sha256 of its weight bytes."""

    name: str
    model: NormScopeModel
    meta: dict
    sha256: str
    path: Path | None = None

    @property
    def spec(self) -> ModelSpec:
        return self.model.spec

    @property
    def dataset(self) -> str:
        return self.meta.get("dataset", "unknown")

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    @property
    def history(self) -> list[dict]:
        return self.meta.get("history", [])

    def describe(self) -> dict:
        """What a reader is told of this checkpoint (``python -m core info``): its model, data, training and, for a
        file without NormScope's metadata, how it was read."""
        return {"name": self.name, "sha256": self.sha256, "model": self.spec.to_dict(),
                "family": model_entry(self.spec.arch).family,
                "parameters": sum(p.numel() for p in self.model.parameters()), "dataset": self.dataset,
                "train_config": self.meta.get("train_config"),
                "final_metrics": self.meta.get("final_metrics"), "epochs": len(self.history), "history": self.history,
                "metadata_code_version": self.meta.get("code_version"),
                "loaded": {k: self.meta[k] for k in LOADED if k in self.meta}}


LOADED = ("file_format", "layout", "input_normalization", "legacy_batchnorm")  # how a file without metadata was read


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checkpoint_stem(path: str | os.PathLike) -> Path:
    """The checkpoint's name without a known suffix: ``runs/m.safetensors`` and ``runs/m`` name one checkpoint,
    ``runs/model_v1.5`` keeps its ".5"."""
    path = Path(path)
    return path.with_suffix("") if path.suffix in SUFFIXES + (".json",) else path


def weights_file(path: str | os.PathLike) -> Path:
    """The ``.safetensors`` file that :func:`save_checkpoint` writes for ``path``."""
    stem = checkpoint_stem(path)
    return stem.with_name(stem.name + ".safetensors")


def save_checkpoint(model: NormScopeModel, path: str | os.PathLike, meta: dict | None = None,
                    dtype: torch.dtype = torch.float32) -> dict:
    """Save ``path.safetensors`` + ``path.json``; floating weights stored in ``dtype``. Returns the metadata."""
    stem = checkpoint_stem(path)
    tensors = {k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous()
               for k, v in model.state_dict().items()}
    meta = {**(meta or {}), "format": FORMAT, "name": stem.name, "model": model.spec.to_dict(),
            "code_version": CODE_VERSION, "storage_dtype": str(dtype).removeprefix("torch."),
            "saved_at": (meta or {}).get("saved_at") or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    data = save_safetensors_bytes(tensors, metadata={"normscope": json.dumps(meta)})
    meta["sha256"] = sha256_bytes(data)
    # appended, not with_suffix: "model_v1.5" is a name, not "model_v1" with suffix ".5"
    atomic_write(weights_file(stem), data)
    atomic_write(stem.with_name(stem.name + ".json"), json.dumps(meta, indent=1).encode())
    return meta


def load_checkpoint(path: str | os.PathLike, spec: ModelSpec | None = None, name: str | None = None,
                    normalization: InputNormalization | None = None) -> Checkpoint:
    """Load and validate a checkpoint file; ``spec`` overrides the stored or inferred architecture and
    ``normalization`` serves where the file records none (see :func:`load_checkpoint_bytes`)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if path.stat().st_size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{path}: {too_large(path.stat().st_size)}")
    meta = read_sidecar(path)
    return load_checkpoint_bytes(path.read_bytes(), path.name, spec, meta, name or path.stem, path, normalization)


def too_large(size: int, limit: int | None = None) -> str:
    limit = MAX_CHECKPOINT_BYTES if limit is None else limit
    return f"{size:,} bytes exceeds the limit of {limit:,} bytes ({limit / MB:g} MB)"


def read_sidecar(path: Path) -> dict:
    side = path.with_suffix(".json")
    if not side.is_file():
        return {}
    try:
        meta = json.loads(side.read_text())
    except (ValueError, OSError) as e:
        raise CheckpointError(f"{side}: metadata is not valid JSON ({e})") from e
    if not isinstance(meta, dict):
        raise CheckpointError(f"{side}: metadata must be a JSON object")
    return meta


def load_checkpoint_bytes(data: bytes, filename: str, spec: ModelSpec | None = None, meta: dict | None = None,
                          name: str | None = None, path: Path | None = None,
                          normalization: InputNormalization | None = None) -> Checkpoint:
    """Load a checkpoint from bytes (an upload); its first bytes tell the format (:func:`file_format`).

    The input normalization comes from the metadata or the state dict's mean/std buffers; ``normalization`` is
    used where the file records none (it must agree where the file does), else :class:`NormalizationUnknown`.
    """
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{filename}: {too_large(len(data))}")
    if not data:
        raise CheckpointError(f"{filename}: the file is empty (an interrupted download or copy?)")
    digest = sha256_bytes(data)
    state, embedded = parse_weights(data, filename, MAX_CHECKPOINT_BYTES)
    meta = {**embedded, **(meta or {})}
    if meta.get("sha256") not in (None, digest):
        raise CheckpointError(f"{filename}: weights do not match the sha256 in their metadata "
                              "(the file was modified, or the .json belongs to another checkpoint)")
    recorded = ModelSpec.from_dict(meta["model"]) if "model" in meta else None
    layout = NATIVE if recorded else published_layout(state, filename)
    state, buffers = split_normalization(layout.apply(state), filename)
    state, counters = with_batchnorm_counters(state)
    spec = spec or recorded or infer_spec(state, layout)
    model = model_from_state(state, spec, filename)  # a file that cannot load fails before any question is asked
    found = InputNormalization(recorded.mean, recorded.std) if recorded else buffers
    with_normalization(model, resolve_normalization(found, normalization, filename, layout))
    provenance = {} if recorded else {"layout": layout.source, "file_format": file_format(data),
                                      "input_normalization": "from the file" if found else "given by the user"}
    if counters:
        provenance["legacy_batchnorm"] = (f"{counters} BatchNorm layers saved before PyTorch 0.4.1, without "
                                          "num_batches_tracked: filled with 0 (eval mode does not read it)")
    return Checkpoint(name or Path(filename).stem, model, {**meta, **provenance, "sha256": digest}, digest, path)
