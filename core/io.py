"""Files that readers never see half-written, even with several writers at once; and array reads that several
threads may make at once (see :data:`NUMPY_READS`).

Every write goes to a temporary file that only its writer names (``tempfile.mkstemp`` in the target's folder, so
the rename stays on one file system) and is then renamed over the target. Two sessions of one server (threads of
one process) or two processes writing the same target each rename their own complete file; the last one wins.
"""
from __future__ import annotations

import json
import lzma
import os
import re
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import numpy as np

from core.errors import ParameterError

FILE_MODE = 0o644  # mkstemp's 0600 would hide a shared cache's files from the server's other users
# CPython 3.11 (seen on 3.11.7) can raise a spurious "SystemError: AST constructor recursion depth mismatch" when two
# threads parse at once (python/cpython#106905). numpy parses every .npy header with ast.literal_eval, so two
# sessions of one server reading arrays at once failed (tests/test_io.py). Every array core reads is read under it.
NUMPY_READS = threading.RLock()


# A name that may become one path component: letters, digits and ._@+-, not starting with a dot (no "..", no
# separators, no hidden files); what every stored id, preset and file stem a visitor can reach must match.
NAME_CHARS = "A-Za-z0-9_.@+-"
SAFE_NAME = re.compile(rf"[A-Za-z0-9_@+-][{NAME_CHARS}]{{0,199}}")


class UnsafePath(ParameterError):
    """A name or path that would leave the folder it belongs in; the message is the same whether it exists or not."""


def safe_name(name: str, what: str) -> str:
    """``name`` if it can be one path component (:data:`SAFE_NAME`), else :class:`UnsafePath` naming ``what``."""
    if not (isinstance(name, str) and SAFE_NAME.fullmatch(name)):
        raise UnsafePath(f"{what} {str(name)[:80]!r} is not a plain name (letters, digits and . _ @ + - only)")
    return name


def plain_name(text: str) -> str:
    """``text`` with every character :data:`SAFE_NAME` does not take as ``-`` (a file's stem made part of an id)."""
    return re.sub(f"[^{NAME_CHARS}]", "-", text)


def inside(root: str | os.PathLike, *parts: str) -> Path:
    """``root / parts`` resolved (symbolic links followed) and refused unless it stays within ``root``: checked
    from the names alone, before any file is opened, so a refusal never tells whether the target exists."""
    base = Path(root).expanduser().resolve()
    path = base.joinpath(*parts).resolve()
    if not path.is_relative_to(base):
        raise UnsafePath(f"{Path(*parts)} is outside {base.name}/")
    return path


@contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file object whose content replaces ``path`` once the block ends without an exception; on an
    exception the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_writer`."""
    with atomic_writer(path) as f:
        f.write(data)


def read_npz(path: str | os.PathLike, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays ``names`` (default: every one) of an ``.npz`` file, read whole and never unpickled."""
    with NUMPY_READS, np.load(path, allow_pickle=False) as z:
        return {name: z[name] for name in (z.files if names is None else names)}


def read_npy(path: str | os.PathLike, mmap: bool = False) -> np.ndarray:
    """An ``.npy`` array (memory-mapped read-only with ``mmap``), never unpickled."""
    with NUMPY_READS:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def read_json(path: str | os.PathLike):
    """A JSON file, xz-compressed where its name ends in ``.xz`` (the shipped results: a fifth of the bytes)."""
    raw = Path(path).read_bytes()
    return json.loads(lzma.decompress(raw) if str(path).endswith(".xz") else raw)


def write_json(path: str | os.PathLike, obj) -> None:
    """``obj`` as compact JSON, atomically; xz-compressed where the name ends in ``.xz``."""
    data = json.dumps(obj, separators=(",", ":")).encode()
    atomic_write(path, lzma.compress(data) if str(path).endswith(".xz") else data)
