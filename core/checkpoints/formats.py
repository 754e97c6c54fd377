"""Reading weights from a file's bytes: which format it is in (its first bytes, whatever its name), and the flat
state dict inside it, unwrapped from the training scripts' containers; a torch file loads weights-only, never
running its code (:mod:`core.checkpoints.safety` says what a refused one would have imported)."""
from __future__ import annotations

import io
import json
import pickle
import re
import warnings
import zipfile
from math import prod

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes

from core.checkpoints.safety import RESAVE, error_summary, refused_content
from core.errors import CheckpointError


def parse_weights(data: bytes, filename: str, limit: int) -> tuple[dict[str, torch.Tensor], dict]:
    """A flat state dict and any embedded metadata, from safetensors or a weights-only torch file, told apart by
    their first bytes whatever the file's name (``.th``, ``.pth.tar``, ``.ckpt``, ``.bin``, none); a file claiming
    more than ``limit`` bytes decoded is refused before anything is decoded (:func:`check_decoded_size`)."""
    kind = file_format(data)
    check_decoded_size(data, kind, filename, limit)
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


MB = 10 ** 6  # the upload limit's unit (core.checkpoints.MAX_CHECKPOINT_BYTES says why not MiB)


def check_decoded_size(data: bytes, kind: str | None, filename: str, limit: int) -> None:
    """Refuse a file whose tensors would take more than ``limit`` bytes once decoded, from the sizes it claims,
    before anything is decoded: a torch.save zip's uncompressed entry sizes (a 1 MB zip of deflated zeros claims
    1 GiB, which torch.load allocates and fills) and a safetensors header's tensors. A legacy pickle's storages are
    read from the file itself, so its own size bounds them (checked before this)."""
    if kind == TORCH_ZIP and (claimed := zip_claim(data, filename)) > limit:
        raise CheckpointError(f"{filename}: a torch.save zip whose entries claim {claimed / MB:,.1f} MB "
                              f"uncompressed, over the {limit / MB:g} MB limit (nothing was decompressed)")
    if kind == "safetensors" and (claimed := safetensors_claim(data, filename)) > limit:
        raise CheckpointError(f"{filename}: a safetensors file whose header claims {claimed / MB:,.1f} MB of "
                              f"tensors, over the {limit / MB:g} MB limit (nothing was read)")


def zip_claim(data: bytes, filename: str) -> int:
    """The summed uncompressed sizes a zip's central directory records: what reading every entry allocates
    (torch's reader sizes each buffer by it and stops a stream that would overrun it)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as e:
        raise CheckpointError(f"{filename}: unreadable as a torch.save zip ({e}); code inside a checkpoint is never "
                              "run. Was it truncated?") from e


# bytes per element of each safetensors dtype torch reads (safetensors.torch's table)
SAFETENSORS_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                           "BOOL": 1, "F8_E4M3": 1, "F8_E4M3FNUZ": 1, "F8_E5M2": 1, "F8_E5M2FNUZ": 1, "C64": 8,
                           "U64": 8, "U32": 4, "U16": 2}


def safetensors_claim(data: bytes, filename: str) -> int:
    """The summed sizes (elements x dtype size) of the tensors a safetensors header lists, read from the header
    alone; a tensor whose data_offsets fall outside the file is refused (the header lies, or the file was cut)."""
    length = int.from_bytes(data[:8], "little")
    body = len(data) - 8 - length  # the bytes after the header, which data_offsets index
    try:
        header = json.loads(data[8:8 + length])
        tensors = {k: v for k, v in header.items() if k != "__metadata__"}
        claimed = 0
        for name, info in tensors.items():
            start, end = info["data_offsets"]
            shape = [int(n) for n in info["shape"]]
            if not 0 <= start <= end <= body or min(shape, default=0) < 0:
                raise ValueError(f"tensor {name!r} at bytes {start}-{end} of {body}, shape {shape}")
            size = SAFETENSORS_DTYPE_BYTES.get(info["dtype"])
            claimed += prod(shape) * size if size else end - start  # an unknown dtype: the reader names it
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{filename}: not a valid safetensors file (its header: {e}); was it truncated?") from e
    return claimed


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
