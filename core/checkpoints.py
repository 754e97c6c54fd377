"""Checkpoints: safetensors weights + JSON metadata; loading never executes code.

A checkpoint ``NAME`` is ``NAME.safetensors`` (the metadata JSON is also embedded in its header, so
one uploaded file is complete) plus ``NAME.json`` beside it. ``.pt``/``.pth`` state dicts load with
``torch.load(weights_only=True)`` only. Without metadata the architecture is inferred from the
state dict's keys and shapes; what cannot be inferred is named in the error.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import pickle
import pickletools
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from core._version import CODE_VERSION
from core.models import ModelSpec, NormScopeModel, build_from_spec
from core.models.infer import infer_model_spec

FORMAT = "normscope-checkpoint/1"
MAX_CHECKPOINT_BYTES = 512 * 2 ** 20
SUFFIXES = (".safetensors", ".pt", ".pth")


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message says why and what to do."""


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


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


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


def load_checkpoint(path: str | os.PathLike, spec: ModelSpec | None = None, name: str | None = None) -> Checkpoint:
    """Load and validate a checkpoint file; ``spec`` overrides the stored or inferred architecture."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if path.stat().st_size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{path}: {path.stat().st_size / 2**20:.0f} MiB exceeds the "
                              f"{MAX_CHECKPOINT_BYTES / 2**20:.0f} MiB limit")
    meta = read_sidecar(path)
    return load_checkpoint_bytes(path.read_bytes(), path.name, spec, meta, name or path.stem, path)


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
                          name: str | None = None, path: Path | None = None) -> Checkpoint:
    """Load a checkpoint from bytes (an upload); ``filename``'s suffix picks the format."""
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{filename}: {len(data) / 2**20:.0f} MiB exceeds the "
                              f"{MAX_CHECKPOINT_BYTES / 2**20:.0f} MiB limit")
    if not data:
        raise CheckpointError(f"{filename}: the file is empty (an interrupted download or copy?)")
    digest = sha256_bytes(data)
    state, embedded = parse_weights(data, filename)
    meta = {**embedded, **(meta or {})}
    if meta.get("sha256") not in (None, digest):
        raise CheckpointError(f"{filename}: weights do not match the sha256 in their metadata "
                              "(the file was modified, or the .json belongs to another checkpoint)")
    spec = spec or (ModelSpec.from_dict(meta["model"]) if "model" in meta else infer_spec(state))
    model = model_from_state(state, spec, filename)
    return Checkpoint(name or Path(filename).stem, model, {**meta, "sha256": digest}, digest, path)


def parse_weights(data: bytes, filename: str) -> tuple[dict[str, torch.Tensor], dict]:
    """A flat state dict and any embedded metadata, from safetensors or a weights-only torch file."""
    suffix = Path(filename).suffix.lower()
    if suffix == ".safetensors":
        return _parse_safetensors(data, filename)
    if suffix in (".pt", ".pth"):
        return _parse_torch(data, filename), {}
    raise CheckpointError(f"{filename}: unsupported file type {suffix!r}; use .safetensors, .pt or .pth")


def _parse_safetensors(data: bytes, filename: str) -> tuple[dict[str, torch.Tensor], dict]:
    try:
        state = load_safetensors_bytes(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + header_len]).get("__metadata__") or {}
        embedded = json.loads(header["normscope"]) if "normscope" in header else {}
    except (SafetensorError, ValueError, KeyError, OSError) as e:
        raise CheckpointError(f"{filename}: not a valid safetensors file ({e}); was it truncated?") from e
    return state, embedded if isinstance(embedded, dict) else {}


def _parse_torch(data: bytes, filename: str) -> dict[str, torch.Tensor]:
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols; the error below says it all
            warnings.simplefilter("ignore")
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{filename}: refused: {refused_content(str(e), data)}. Only a plain state dict of "
                              f"tensors is accepted; code inside a checkpoint is never run. {RESAVE}") from e
    # torch's weights-only unpickler raises many types on malformed input (a bare KeyError for a bad memo)
    except (RuntimeError, EOFError, ValueError, OSError, AttributeError, TypeError,
            KeyError, IndexError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{filename}: unreadable as a weights-only state dict ({error_summary(e)}); "
                              "code inside a checkpoint is never run. Was it truncated?") from e
    for key in ("state_dict", "model", "model_state_dict", "net"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{filename}: expected a state dict of tensors, got {type(obj).__name__}")
    return {re.sub(r"^(module\.|_orig_mod\.)", "", k): v for k, v in obj.items()}


RESAVE = ("To use it, re-save just its weights where the model was made: torch.save(model.state_dict(), path) "
          "(a plain dict of tensors) or safetensors.torch.save_file(model.state_dict(), path)")


def refused_content(message: str, data: bytes) -> str:
    """What the weights-only unpickler refused, from its message. Torch's own text is never passed on:
    it advises ``weights_only=False`` or allow-listing the global, either of which would run the file's code."""
    found = re.search(r"GLOBAL ([A-Za-z_][\w.]{0,200})", message)
    names = [found.group(1)] if found else pickled_globals(data)
    if names:
        return f"it would import {', '.join(names[:3])} (classes or functions, not tensors)"
    found = re.search(r"Unsupported operand (\d+)", message)
    if found:
        return f"it uses pickle opcode {found.group(1)}, which weights-only loading does not allow"
    return "it holds objects other than tensors"


def pickled_globals(data: bytes) -> list[str]:
    """Names a plain (non-zip) pickle would import; pickletools only parses opcodes, it imports nothing."""
    names: list[str] = []
    strings: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(io.BytesIO(data)):
            if op.name == "GLOBAL":
                names.append(arg.replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:  # module and name were pushed just before
                names.append(".".join(strings[-2:]))
            elif isinstance(arg, str):
                strings.append(arg)
    except ValueError:  # not a plain pickle (a torch zip file) or cut short: report what was seen
        pass
    return [n for n in names if re.fullmatch(r"[A-Za-z_][\w.]{0,200}", n)]


def error_summary(e: Exception) -> str:
    """The error's type and short text, unless the text carries torch's unsafe loading advice."""
    text = str(e)[:200]
    return type(e).__name__ if "weights_only" in text or not text else f"{type(e).__name__}: {text}"


def model_from_state(state: dict[str, torch.Tensor], spec: ModelSpec, filename: str) -> NormScopeModel:
    """Build ``spec`` and load ``state`` into it strictly, after checking every value is finite."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{filename}: NaN or infinite values in {len(bad)} tensors, e.g. {bad[:3]}")
    try:
        model = build_from_spec(spec)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{filename}: cannot build {spec.arch}/{spec.norm}: {e}") from e
    target = model.state_dict()
    state = {**{k: v for k, v in target.items() if k.startswith("normalize.")}, **align_keys(state, target)}
    check_compatible(state, target, filename, spec)
    model.load_state_dict({k: v.to(target[k].dtype) for k, v in state.items()})
    return model.eval()


def align_keys(state: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a bare backbone state dict (ours or torchvision's) onto the wrapped model's keys."""
    if any(k.startswith("backbone.") for k in state):
        return state
    prefix = "backbone.net." if any(k.startswith("backbone.net.") for k in target) else "backbone."
    return {prefix + k: v for k, v in state.items()}


def check_compatible(state: dict, target: dict, filename: str, spec: ModelSpec) -> None:
    missing = sorted(set(target) - set(state))
    unexpected = sorted(set(state) - set(target))
    wrong = [f"{k}: {tuple(state[k].shape)} vs {tuple(target[k].shape)}"
             for k in target if k in state and state[k].shape != target[k].shape]
    if missing or unexpected or wrong:
        parts = [f"{len(missing)} missing keys (e.g. {missing[:3]})" if missing else "",
                 f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})" if unexpected else "",
                 f"{len(wrong)} shape mismatches (e.g. {wrong[:2]})" if wrong else ""]
        raise CheckpointError(f"{filename}: does not fit {spec.arch} (norm={spec.norm}, width={spec.width}, "
                              f"classes={spec.num_classes}): " + "; ".join(p for p in parts if p))


def infer_spec(state: dict[str, torch.Tensor]) -> ModelSpec:
    """Guess the architecture from keys and shapes, or raise naming what is ambiguous or unknown."""
    try:
        return infer_model_spec(state)
    except ValueError as e:
        raise CheckpointError(f"no metadata, and {e}") from e
