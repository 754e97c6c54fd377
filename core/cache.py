"""Result cache: diskcache under a configurable directory, safe across processes.

A key is the function's qualified name + :data:`CODE_VERSION` + the checkpoint's sha256 + a frozen
dataclass of every parameter; it is hashed to a fixed-length string. Values are stored as JSON text,
so a cached value never executes code when read, and a corrupt or unreadable entry is dropped and
recomputed instead of raising.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import diskcache

from core._version import CODE_VERSION

DEFAULT_SIZE_LIMIT = 2 ** 30  # bytes; diskcache evicts least-recently-stored entries beyond it


def default_cache_dir() -> Path:
    return Path(os.environ.get("NORMSCOPE_CACHE") or Path.home() / ".cache" / "normscope")


def config_dict(config: Any) -> Any:
    """A JSON-ready form of a (nested) frozen dataclass config."""
    if dataclasses.is_dataclass(config):
        return {"__type__": type(config).__qualname__, **{
            f.name: config_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}}
    if isinstance(config, (list, tuple)):
        return [config_dict(v) for v in config]
    return config


def make_key(function: str, checkpoint_sha: str, config: Any) -> str:
    payload = json.dumps([function, CODE_VERSION, checkpoint_sha, config_dict(config)], sort_keys=True)
    return f"{function}:{hashlib.sha256(payload.encode()).hexdigest()}"


class ResultCache:
    """A small, documented wrapper around :class:`diskcache.Cache` for JSON-able results."""

    def __init__(self, directory: str | os.PathLike | None = None, size_limit: int = DEFAULT_SIZE_LIMIT) -> None:
        self.directory = Path(directory or default_cache_dir()) / "results"
        self._cache = diskcache.Cache(str(self.directory), size_limit=size_limit)

    def get(self, key: str) -> Any | None:
        """The cached value, or None on a miss or an unreadable entry (which is then deleted)."""
        try:
            text = self._cache.get(key)
            return None if text is None else json.loads(text)
        except (ValueError, TypeError, OSError, EOFError, diskcache.Timeout):
            self._cache.delete(key, retry=True)
            return None

    def set(self, key: str, value: Any) -> None:
        self._cache.set(key, json.dumps(value), retry=True)

    def get_or_compute(self, function: str, checkpoint_sha: str, config: Any, compute: Callable[[], Any]) -> Any:
        """Return the cached result for (function, checkpoint, config), computing and storing it on a miss."""
        key = make_key(function, checkpoint_sha, config)
        value = self.get(key)
        if value is None:
            value = compute()
            self.set(key, value)
        return value

    def contains(self, function: str, checkpoint_sha: str, config: Any) -> bool:
        return self.get(make_key(function, checkpoint_sha, config)) is not None

    def export(self, path: str | os.PathLike, prefixes: tuple[str, ...] = ("",),
               checkpoints: set[str] | None = None) -> int:
        """Write the entries whose key starts with one of ``prefixes`` (and, if given, whose provenance
        names one of the ``checkpoints`` sha256s) to a JSON file; returns the count."""
        entries = {k: self.get(k) for k in self._cache.iterkeys() if isinstance(k, str) and k.startswith(prefixes)}
        entries = {k: v for k, v in entries.items() if v is not None and (
            checkpoints is None or (v.get("checkpoint") or {}).get("sha256") in checkpoints)}
        Path(path).write_text(json.dumps(entries, separators=(",", ":")))
        return len(entries)

    def seed(self, path: str | os.PathLike) -> int:
        """Add the entries of an exported file that this cache lacks (shipped precomputed results).

        Keys embed the code version and checkpoint hash, so entries from an older code version or
        for other weights are never hit; an unreadable file seeds nothing.
        """
        try:
            entries = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return 0
        missing = {k: v for k, v in entries.items() if self._cache.get(k) is None}
        for key, value in missing.items():
            self.set(key, value)
        return len(missing)

    def volume(self) -> int:
        """Bytes on disk."""
        return self._cache.volume()

    def __len__(self) -> int:
        return len(self._cache)

    def clear(self) -> int:
        return self._cache.clear(retry=True)

    def close(self) -> None:
        self._cache.close()
