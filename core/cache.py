"""Result cache: diskcache under a configurable directory, safe across processes.

A key is the experiment's registered name (see :mod:`core.experiments`) + :data:`CODE_VERSION` + the
checkpoint's sha256 + a frozen dataclass of every parameter; it is hashed to a fixed-length string. Values are stored as JSON text,
so a cached value never executes code when read, and a corrupt or unreadable entry is dropped and
recomputed instead of raising.
"""
from __future__ import annotations

import hashlib
import json
import lzma
import os
import sqlite3
from pathlib import Path
from typing import Any, Final

import diskcache

from core._version import CODE_VERSION
from core.config import config_dict
from core.errors import NormScopeError
from core.io import read_json, write_json

DEFAULT_SIZE_LIMIT = 2 ** 30  # bytes; diskcache evicts least-recently-stored entries beyond it
GENERATION = "generation"  # a counter every store moves on: what is shown from the cache is current while it holds
LEGACY_GENERATION = "__generation__"  # where it was kept up to 2026-12-05: among the results, so it could be evicted


def default_cache_dir() -> Path:
    return Path(os.environ.get("NORMSCOPE_CACHE") or Path.home() / ".cache" / "normscope")


class CacheWriteError(NormScopeError, OSError):
    """A result could not be stored (a full disk, a read-only folder): it was computed, but is not kept."""


class Missing:
    """The type of :data:`MISSING`: what a lookup returns for a result that is not cached."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = Missing()


def make_key(name: str, checkpoint_sha: str, config: Any) -> str:
    payload = json.dumps([name, CODE_VERSION, checkpoint_sha, config_dict(config)], sort_keys=True)
    return f"{name}:{hashlib.sha256(payload.encode()).hexdigest()}"


class ResultCache:
    """A small, documented wrapper around :class:`diskcache.Cache` for JSON-able results."""

    def __init__(self, directory: str | os.PathLike | None = None, size_limit: int = DEFAULT_SIZE_LIMIT) -> None:
        self.directory = Path(directory or default_cache_dir()) / "results"
        self._cache = diskcache.Cache(str(self.directory), size_limit=size_limit)
        # Apart from the results and never evicted: a counter that restarted could match a view built before.
        self._counters = diskcache.Cache(str(self.directory.with_name("results-counters")), eviction_policy="none")

    def get(self, key: str) -> Any:
        """The cached value, or :data:`MISSING` on a miss or an unreadable entry (which is then deleted)."""
        try:
            text = self._cache.get(key)
            return MISSING if text is None else json.loads(text)
        except (ValueError, TypeError, OSError, EOFError, diskcache.Timeout):
            self._cache.delete(key, retry=True)
            return MISSING

    def set(self, key: str, value: Any) -> None:
        """Store ``value``; on a write that fails (a full disk) nothing half-written stays under ``key`` and
        :class:`CacheWriteError` says where and why."""
        self._store({key: value})

    def _store(self, entries: dict[str, Any]) -> None:
        """Store every entry in one transaction, then move the generation on by their count."""
        try:
            with self._cache.transact(retry=True):  # one SQLite transaction, not one per entry
                for key, value in entries.items():
                    self._cache.set(key, json.dumps(value), retry=True)
            self._counters.incr(GENERATION, len(entries), retry=True)
        except (OSError, sqlite3.Error) as e:
            for key in entries:
                self._forget(key)
            raise CacheWriteError(f"cannot store a result in the cache at {self.directory} ({e}: is the disk full or "
                                  "the folder read-only?); it was computed but not kept") from None

    def _forget(self, key: str) -> None:
        try:
            self._cache.delete(key, retry=True)
        except (OSError, sqlite3.Error):  # the entry never landed: SQLite rolled the write back
            pass

    def export(self, path: str | os.PathLike, prefixes: tuple[str, ...] = ("",),
               checkpoints: set[str] | None = None) -> int:
        """Write the entries whose key starts with one of ``prefixes`` (and, if given, whose provenance
        names one of the ``checkpoints`` sha256s) to a JSON file; returns the count."""
        entries = {k: self.get(k) for k in self._cache.iterkeys()
                   if isinstance(k, str) and k.startswith(prefixes) and k != LEGACY_GENERATION}
        entries = {k: v for k, v in entries.items() if v is not MISSING and (
            checkpoints is None or (v.get("checkpoint") or {}).get("sha256") in checkpoints)}
        write_json(path, entries)
        return len(entries)

    def seed(self, path: str | os.PathLike) -> int:
        """Add the entries of an exported file that this cache lacks (shipped precomputed results).

        Keys embed the code version and checkpoint hash, so entries from an older code version or
        for other weights are never hit; an unreadable file seeds nothing.
        """
        try:
            entries = read_json(path)
        except (OSError, ValueError, lzma.LZMAError):
            return 0
        missing = {k: v for k, v in entries.items() if k not in self._cache}  # a key's presence: nothing read
        if missing:
            self._store(missing)
        return len(missing)

    @property
    def generation(self) -> int:
        """How many stores this cache has seen (every process's): a view built from its results is current while
        this holds, so a server shares one build across sessions without re-reading the results."""
        return self._counters.get(GENERATION, 0, retry=True)

    def volume(self) -> int:
        """Bytes on disk."""
        return self._cache.volume()

    def __len__(self) -> int:
        """The results stored (an earlier version's generation counter is not one)."""
        return len(self._cache) - (LEGACY_GENERATION in self._cache)

    def clear(self) -> int:
        """Drop every result; the generation moves on (it never returns to a value a view was built at)."""
        legacy = LEGACY_GENERATION in self._cache
        count = self._cache.clear(retry=True) - legacy
        self._counters.incr(GENERATION, retry=True)
        return count

    def close(self) -> None:
        self._cache.close()
        self._counters.close()
