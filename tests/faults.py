"""The fault corpus: bad checkpoints a visitor or a script may hand NormScope, each with the words its one clear
error message must contain. Built from a good checkpoint by :func:`checkpoint_faults`, so the corpus follows the
format (the files are a few hundred kB; the oversized one is sparse). tests/test_faults.py feeds every fault to
the command line and to the app."""
from __future__ import annotations

import io
import json
import os
import pickle
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from core.checkpoints import MAX_CHECKPOINT_BYTES

MARKER = "pwned"  # the file a malicious pickle would create if it ever ran


class Evil:
    """Unpickling this creates a marker file: a checkpoint that runs code when loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _header(path: Path) -> dict:
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(size)).get("__metadata__", {})


def _resave(source: Path, out: Path, tensors: dict | None = None, change=lambda meta: meta) -> Path:
    """``source``'s tensors (or ``tensors``) under its embedded metadata as ``change`` rewrites it, sha256 dropped
    so that the check under test, not the hash, is the one that fires."""
    meta = json.loads(_header(source)["normscope"])
    meta.pop("sha256", None)
    save_file(tensors if tensors is not None else load_file(source), str(out), {"normscope": json.dumps(change(meta))})
    return out


def _with_model(meta: dict, **model) -> dict:
    return {**meta, "model": {**meta["model"], **model}}


def checkpoint_faults(good: Path, other_arch: Path, folder: Path) -> dict[str, tuple[Path, str]]:
    """fault -> (file, the words its error names). ``good``: a NormScope vgg11 checkpoint; ``other_arch``: one of
    another architecture (its weights under ``good``'s architecture are the wrong-architecture fault)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = good.read_bytes()
    tensors = load_file(good)
    nan = {k: torch.full_like(v, float("nan")) if k.endswith("weight") and v.ndim > 1 else v for k, v in tensors.items()}
    buffer = io.BytesIO()
    pickle.dump(Evil(folder / MARKER), buffer)
    files = {
        "truncated": ("truncated.safetensors", data[: len(data) // 2], "not a valid safetensors"),
        "empty": ("empty.safetensors", b"", "empty"),
        "empty-torch": ("empty.pt", b"", "empty"),
        "not-a-checkpoint": ("notes.pt", b"hello, world", "not a checkpoint"),
        "malicious-pickle": ("evil.pt", buffer.getvalue(), "never run"),
    }
    corpus = {name: (_write(folder / file, content), words) for name, (file, content, words) in files.items()}
    arch = json.loads(_header(good)["normscope"])["model"]["arch"]
    corpus["wrong-architecture"] = (_resave(other_arch, folder / "wrong-arch.safetensors",
                                            change=lambda m: _with_model(m, arch=arch, width=1.0)), f"fit {arch}")
    corpus["unknown-architecture"] = (_resave(good, folder / "unknown-arch.safetensors",
                                              change=lambda m: _with_model(m, arch="transformer9000")),
                                      "unknown architecture")
    corpus["nan-weights"] = (_resave(good, folder / "nan.safetensors", tensors=nan), "NaN")
    oversized = folder / "oversized.safetensors"
    with open(oversized, "wb") as f:
        f.truncate(MAX_CHECKPOINT_BYTES + 1)  # sparse: no disk used
    corpus["oversized"] = (oversized, "exceeds")
    return corpus


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


TRAVERSAL_NAMES = ["../../../etc/passwd.safetensors", "..\\..\\evil.safetensors", "/abs/olute.safetensors",
                   "con\x1btrol.safetensors", ".hidden.safetensors", "a" * 300 + ".safetensors"]


def sparse_size(path: Path) -> int:
    return os.stat(path).st_blocks * 512
