"""The checkpoint catalog for pages: listing (cheap, refreshed every few seconds) and loading (shared)."""
from __future__ import annotations

import streamlit as st

from core.cache import default_cache_dir
from core.catalog import CatalogEntry, entries_in, list_checkpoints
from core.checkpoints import Checkpoint
from core.experiments import Subject, load_verified
from ui import serving


@st.cache_resource(ttl=5, show_spinner=False)
def _entries(root: str, shared_uploads: bool) -> tuple[CatalogEntry, ...]:
    """Shared, not copied, by every run of every session (entries are frozen; unpickling a copy of ~50 of them on
    each run was 8 % of a loaded server's time)."""
    return tuple(list_checkpoints(root, uploads=None if shared_uploads else ()))


def entries(dataset: str | None = None) -> list[CatalogEntry]:
    """Zoo + uploaded + trained checkpoints; new files (a finished job, another session's upload) show within 5 s.
    On a public server the uploads are this session's own (listed on every run: they are few)."""
    private = serving.session_uploads()
    found = _entries(str(default_cache_dir()), shared_uploads=not serving.public())
    if private is not None:
        found = found + tuple(entries_in(private, "upload"))
    return [e for e in found if dataset is None or e.dataset == dataset]


@st.cache_resource(max_entries=32, show_spinner="Loading checkpoint…")
def _load(path: str, sha256: str) -> Checkpoint:
    checkpoint = load_verified(path, sha256)
    # Frozen parameters make the shared model stateless under attacks in concurrent sessions:
    # attack_mode then has nothing to toggle, and only input gradients are ever taken.
    for p in checkpoint.model.parameters():
        p.requires_grad_(False)
    return checkpoint


def load(subject: Subject) -> Checkpoint:
    """The checkpoint of a catalog entry (or any experiment subject), loaded once per (path, sha256) and
    shared by every session."""
    return subject if isinstance(subject, Checkpoint) else _load(str(subject.path), subject.sha256)


def by_label(dataset: str | None = None) -> dict[str, CatalogEntry]:
    return {e.label: e for e in entries(dataset)}


def grouped(first: str) -> list[CatalogEntry]:
    """Every checkpoint, grouped by the dataset it was trained on: ``first``'s group first, then by name."""
    return sorted(entries(), key=lambda e: (e.dataset != first, e.dataset))


def refresh() -> None:
    """Forget the listing, so a just-stored checkpoint shows at once in this session."""
    _entries.clear()
