"""Checkpoints: safetensors weights + JSON metadata; loading never executes code.

A checkpoint ``NAME`` is ``NAME.safetensors`` (the metadata JSON is also embedded in its header, so
one uploaded file is complete) plus ``NAME.json`` beside it. ``.pt``/``.pth`` state dicts load with
``torch.load(weights_only=True)`` only. Without metadata the architecture is inferred from the
state dict's keys and shapes, in NormScope's, torchvision's or a published repository's layout
(:mod:`core.models.layouts`); what cannot be inferred is named in the error. The input normalization
(mean/std) is read from the metadata or from mean/std buffers in the state dict (RobustBench's ``mu`` /
``sigma``, MadryLab's ``normalizer.new_mean`` / ``new_std``); where the file records neither, it is never
guessed: :class:`NormalizationUnknown` asks for it, since a wrong one silently changes every number.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import math
import os
import pickle
import pickletools
import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from core._version import CODE_VERSION
from core.errors import ParameterError
from core.io import atomic_write
from core.models import (CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD, ModelSpec, NormScopeModel,
                         build_from_spec)
from core.models.infer import registry_spec
from core.models.layouts import NATIVE, Layout, read_layout

FORMAT = "normscope-checkpoint/1"
MAX_CHECKPOINT_BYTES = 512 * 2 ** 20
SUFFIXES = (".safetensors", ".pt", ".pth")  # a saved checkpoint's name; loading reads the content (file_format)


class CheckpointError(ParameterError):
    """A checkpoint cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class InputNormalization:
    """The per-channel ``(x - mean) / std`` on [0, 1] pixels that a model was trained behind (R, G, B).

    It becomes the model's first layer, so attacks work in pixel space; a wrong one shifts every accuracy and
    robustness number without any error, which is why a file that does not record it is asked about.
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __post_init__(self) -> None:
        mean, std = tuple(float(v) for v in self.mean), tuple(float(v) for v in self.std)
        if len(mean) != 3 or len(std) != 3:
            raise ParameterError(f"mean and std need 3 values each (R, G, B), got {len(mean)} and {len(std)}")
        if not all(math.isfinite(v) for v in mean + std) or min(std) <= 0:
            raise ParameterError(f"mean must be finite and std positive, got mean {mean}, std {std}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    def matches(self, other: InputNormalization, tol: float = 1e-3) -> bool:
        """Equal up to rounding (files store 0.2471 or 0.24703225 for the same CIFAR-10 std)."""
        return all(abs(a - b) <= tol for a, b in zip(self.mean + self.std, other.mean + other.std))

    def __str__(self) -> str:
        return f"mean ({', '.join(f'{v:.4g}' for v in self.mean)}), std ({', '.join(f'{v:.4g}' for v in self.std)})"


INPUT_NORMALIZATIONS = {  # the choices offered where a file does not record its normalization
    "cifar10": InputNormalization(CIFAR10_MEAN, CIFAR10_STD),
    "cifar10-kuangliu": InputNormalization(CIFAR10_MEAN, (0.2023, 0.1994, 0.2010)),  # kuangliu's and MadryLab's
    "imagenet": InputNormalization(IMAGENET_MEAN, IMAGENET_STD),
    "none": InputNormalization((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}
# mean/std buffers that checkpoints carry inside the model: NormScope's own, RobustBench's, MadryLab robustness'
NORMALIZATION_BUFFERS = (("normalize.mean", "normalize.std"), ("mu", "sigma"),
                         ("normalizer.new_mean", "normalizer.new_std"))


class NormalizationUnknown(CheckpointError):
    """The file records no input normalization: the caller must say which (never assumed)."""

    def __init__(self, filename: str, layout: Layout) -> None:
        self.layout = layout
        choices = "; ".join(f"{k}: {v}" for k, v in INPUT_NORMALIZATIONS.items())
        hint = f" ({layout.hint})" if layout.hint else ""
        super().__init__(f"{filename}: the file does not record the input normalization (mean/std) its model was "
                         "trained behind, and a wrong one silently changes every number, so it is not guessed. Its "
                         f"keys read as {layout.source}{hint}. Say which, e.g. {choices} "
                         "(command line: --mean R G B --std R G B)")


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


def too_large(size: int) -> str:
    return f"{size:,} bytes exceeds the limit of {MAX_CHECKPOINT_BYTES:,} bytes ({MAX_CHECKPOINT_BYTES / 2**20:g} MiB)"


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
    state, embedded = parse_weights(data, filename)
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


def published_layout(state: dict[str, torch.Tensor], filename: str) -> Layout:
    try:
        return read_layout(state)
    except ParameterError as e:
        raise CheckpointError(f"{filename}: {e}") from e


def with_batchnorm_counters(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], int]:
    """The state dict with the ``num_batches_tracked`` counter that BatchNorm layers saved before PyTorch 0.4.1
    lack (0, as torch's own loading of such files fills it), and how many were filled."""
    layers = [k.removesuffix(".running_var") for k in state if k.endswith(".running_var")]
    missing = [f"{layer}.num_batches_tracked" for layer in layers if f"{layer}.num_batches_tracked" not in state]
    return {**state, **{k: torch.tensor(0) for k in missing}}, len(missing)


def with_normalization(model: NormScopeModel, norm: InputNormalization) -> NormScopeModel:
    """Set the model's input normalization layer and the spec that records it."""
    model.spec = replace(model.spec, mean=norm.mean, std=norm.std)
    model.normalize.mean.copy_(torch.tensor(norm.mean).view_as(model.normalize.mean))
    model.normalize.std.copy_(torch.tensor(norm.std).view_as(model.normalize.std))
    return model


def split_normalization(state: dict[str, torch.Tensor],
                        filename: str) -> tuple[dict[str, torch.Tensor], InputNormalization | None]:
    """The state dict without its mean/std buffers, and the normalization they hold (None: none found)."""
    for mean_key, std_key in NORMALIZATION_BUFFERS:
        if mean_key in state and std_key in state:
            mean, std = (state[k].flatten().tolist() for k in (mean_key, std_key))
            try:
                found = InputNormalization(tuple(mean * 3 if len(mean) == 1 else mean),
                                           tuple(std * 3 if len(std) == 1 else std))
            except ParameterError as e:
                raise CheckpointError(f"{filename}: its {mean_key}/{std_key} buffers are no input normalization: "
                                      f"{e}") from e
            return {k: v for k, v in state.items() if k not in (mean_key, std_key)}, found
    return state, None


def resolve_normalization(found: InputNormalization | None, given: InputNormalization | None, filename: str,
                          layout: Layout) -> InputNormalization:
    """What the file records, else what the caller gives; a given one that contradicts the file is an error."""
    if found is not None and given is not None and not given.matches(found):
        raise CheckpointError(f"{filename}: the file records the input normalization {found}, not the given "
                              f"{given}; leave mean/std unset to use the file's")
    if found is None and given is None:
        raise NormalizationUnknown(filename, layout)
    return found or given  # type: ignore[return-value]


def parse_weights(data: bytes, filename: str) -> tuple[dict[str, torch.Tensor], dict]:
    """A flat state dict and any embedded metadata, from safetensors or a weights-only torch file, told apart by
    their first bytes whatever the file's name (``.th``, ``.pth.tar``, ``.ckpt``, ``.bin``, none)."""
    kind = file_format(data)
    if kind == "safetensors":
        return _parse_safetensors(data, filename)
    if kind == TORCH_TAR:
        raise CheckpointError(f"{filename}: a torch.save file in the tar format of PyTorch before 0.1.10, which torch "
                              "loads only by running its pickles (never done here). " + RESAVE)
    if kind is None:
        raise CheckpointError(f"{filename}: not a checkpoint: neither safetensors nor a torch.save file (zip or "
                              f"legacy pickle); it starts with {data[:8]!r}")
    return _parse_torch(data, filename), {}


TORCH_ZIP, TORCH_LEGACY, TORCH_TAR = "torch.save (zip)", "torch.save (legacy, before PyTorch 1.6)", "torch.save (tar)"


def file_format(data: bytes) -> str | None:
    """Which format ``data`` is in, from its first bytes: safetensors, a torch.save zip, a legacy torch.save
    pickle, or the tar of PyTorch < 0.1.10; None if none of them."""
    if data.startswith(b"PK\x03\x04"):
        return TORCH_ZIP
    if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return TORCH_LEGACY  # a pickle (PROTO 2-5); torch.load checks that it starts with torch's magic number
    if data[257:262] == b"ustar":
        return TORCH_TAR
    header = int.from_bytes(data[:8], "little") if len(data) >= 9 else 0
    if 2 <= header <= len(data) - 8 and data[8:9] == b"{":
        return "safetensors"
    return None


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
    for key in WRAPPERS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{filename}: expected a state dict of tensors, got {type(obj).__name__}")
    return strip_prefixes(obj)


# where training scripts put the state dict: kuangliu's {'net': ..., 'acc': ..., 'epoch': ...}, MadryLab's and
# many trainers' {'model': ..., 'optimizer': ..., 'epoch': ...} (the optimizer's state is not read), akamaster's and
# PyTorch Lightning's {'state_dict': ...}, {'model_state_dict': ...}
WRAPPERS = ("state_dict", "model", "model_state_dict", "net")
# the attribute a training module keeps its network in (Lightning: self.model / self.net), prefixed to every key
MODULE_PREFIXES = ("model.", "net.")


def strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys without DataParallel's ``module.`` or torch.compile's ``_orig_mod.``; of a MadryLab robustness model
    (``model.*``, ``normalizer.*`` and the attacker's copy ``attacker.*``), the model's keys and normalizer; of a
    Lightning module, its network's keys (``model.*`` or ``net.*``)."""
    state = {re.sub(r"^(module\.|_orig_mod\.)", "", k): v for k, v in state.items()}
    if any(k.startswith("attacker.") for k in state):
        state = {k: v for k, v in state.items() if not k.startswith("attacker.")}
    for prefix in MODULE_PREFIXES:
        if state and all(k.startswith((prefix, "normalizer.")) for k in state):
            state = {k.removeprefix(prefix): v for k, v in state.items()}
    return state


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
    except (ParameterError, TypeError) as e:
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


def infer_spec(state: dict[str, torch.Tensor], layout: Layout = NATIVE) -> ModelSpec:
    """The architecture from keys (already mapped by ``layout``) and shapes, or an error naming what is
    ambiguous or unknown."""
    try:
        return layout.spec(state) or registry_spec(state)
    except ParameterError as e:
        raise CheckpointError(f"no metadata, and {e}") from e
