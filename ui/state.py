"""Session-wide settings the sidebar sets (data source, demo mode), the datasets they default to, and the shared
result cache."""
from __future__ import annotations

import streamlit as st

from core.cache import ResultCache, default_cache_dir
from core.catalog import shipped_seeds
from core.data import available_datasets, resolve_name
from core.data.sources import SAME_IMAGES
from ui import catalog

DATASET_KEY, DEMO_KEY = "dataset", "demo_mode"


@st.cache_resource(show_spinner=False)
def _cache(directory: str) -> ResultCache:
    """The cache, seeded once per process with the zoo's shipped precomputed results, so the first
    start shows the paper's tables offline without computing."""
    cache = ResultCache(directory)
    for shipped in shipped_seeds():
        cache.seed(shipped)
    return cache


def cache() -> ResultCache:
    """One diskcache handle per cache directory, shared by every session (diskcache is process- and thread-safe)."""
    return _cache(str(default_cache_dir()))


def default_dataset(options: list[str]) -> str:
    """CIFAR-10 (genuine or JPEG copy) when found and some checkpoint was trained on its images, else the
    built-in set."""
    best = resolve_name("auto")
    has_models = SAME_IMAGES.get(best, best) in {SAME_IMAGES.get(e.dataset, e.dataset) for e in catalog.entries()}
    return best if best in options and has_models else "builtin"


def dataset() -> str:
    """The data source chosen in the sidebar: what new computations and the galleries use (every model is
    listed whatever it is; see ui/datasource.py)."""
    return st.session_state.get(DATASET_KEY) or default_dataset(available_datasets())


def featured() -> str:
    """The training dataset pages preselect models of (see :func:`featured_dataset`)."""
    entries = catalog.entries()
    return featured_dataset([e.dataset for e in entries if e.source == "zoo"] or [e.dataset for e in entries],
                            dataset())


def featured_dataset(trained_on: list[str], source: str) -> str:
    """The training dataset whose models pages preselect and the Overview summarizes: the data source's own (or
    one of the same images) when some model was trained on it, unless that is the built-in toy set and models of
    real data exist, so that a first start without data shows the paper's findings on the zoo."""
    same = [d for d in trained_on if d == source or SAME_IMAGES.get(d, d) == SAME_IMAGES.get(source, source)]
    real = [d for d in trained_on if d not in ("builtin", "unknown")]
    if same and source != "builtin":
        return max(same, key=lambda d: (d == source, trained_on.count(d)))
    return max(real, key=trained_on.count) if real else source


def demo_mode() -> bool:
    """Demo mode: bigger fonts and precomputed results only (pages never compute)."""
    return bool(st.session_state.get(DEMO_KEY, False))
