"""Which dataset each model's results come from, and getting CIFAR-10 where no real dataset is on disk.

Every model in the catalog is listed on every page, whatever the sidebar's data source. A model's results are
looked up on the data source when it holds the model's images (genuine CIFAR-10 for the zoo trained on the JPEG
copy), else on its own training dataset, which is where the zoo's precomputed results are: a fresh clone with
no data shows them. The data source decides what is newly computed and which images the galleries show; a
result that is neither cached nor computable here (its dataset is not on disk) is named, with how to get it.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Hashable

import streamlit as st

from core.cache import MISSING
from core.catalog import CatalogEntry
from core.data import DataError, available_datasets, download_cifar10, evaluation_datasets
from core.data.sources import SAME_IMAGES, data_root
from core.experiments import EvalData, Evaluation, on_dataset
from core.experiments import data_of as config_data
from ui import compute, render, state

SWITCH_KEY = "_switch_dataset"  # a data source to select on the next run (set by Get CIFAR-10)


def present(name: str, on_disk: list[str] | None = None) -> bool:
    """Whether ``name`` loads on this machine now (a user's .npz file: whether the file is there; other
    ``kind:<id>`` names are assumed to, their loader saying otherwise)."""
    if ":" in name:
        return not name.startswith("npz:") or Path(name[4:]).expanduser().is_file()
    return name in (available_datasets() if on_disk is None else on_disk)


def how_to_get(name: str) -> str:
    """What to do when ``name`` is not on disk, in one sentence."""
    if SAME_IMAGES.get(name) == "cifar10":
        return ("press **Get CIFAR-10** in the sidebar (or run `python -m core data get cifar10`): new results on "
                f"these models then use genuine CIFAR-10, or set `NORMSCOPE_CIFAR10_JPEG` to the {name} copy's folder")
    return f"put it under `NORMSCOPE_DATA` ({data_root()}) and reload"


def on(request: Evaluation, dataset: str) -> Evaluation:
    """``request`` evaluated on ``dataset`` instead."""
    return replace(request, config=on_dataset(request.config, dataset))


def cached(request: Evaluation) -> bool:
    return request.run(compute.context(cached_only=True)) is not MISSING


def located(requests: dict[Hashable, Evaluation], together: bool = False, source_first: bool = False,
            warn: bool = True) -> dict[Hashable, Evaluation]:
    """The requests, each model's on one dataset: the first of :func:`evaluation_datasets` that holds all of
    its results, else the first on disk (``source_first``: that one at once, as galleries show the source's
    images), else its cached results only; what cannot be computed here is left out and named in a warning.
    ``together``: one dataset for all (a transfer matrix's cells need its sources' examples on the same images).
    """
    groups: dict[Hashable, dict] = {}
    for key, request in requests.items():
        groups.setdefault("all" if together else request.sha256, {})[key] = request
    on_disk, placed, lost = available_datasets(), {}, {}
    for group in groups.values():
        kept = place(group, on_disk, source_first)
        placed |= kept
        if len(kept) < len(group):
            first = next(iter(group.values()))
            lost[first.dataset] = lost.get(first.dataset, 0) + len(group) - len(kept)
    for dataset, count in lost.items() if warn else ():
        st.warning(f"{count} result(s) for models trained on **{dataset}** are not precomputed, and {dataset} is not "
                   f"on this machine, so they cannot be computed here: {how_to_get(dataset)}.")
    return {k: placed[k] for k in requests if k in placed}


def place(group: dict[Hashable, Evaluation], on_disk: list[str], source_first: bool) -> dict[Hashable, Evaluation]:
    """One model's (or one matrix's) requests on the dataset they are answered on; see :func:`located`."""
    first = next(iter(group.values()))
    data = config_data(first.config)
    if data is None:
        return group
    options = [(d, {k: on(r, d) for k, r in group.items()}) for d in evaluation_datasets(first.dataset, data.dataset)]
    computable = [o for d, o in options if present(d, on_disk)]
    if computable and (source_first or len(options) == 1):
        return computable[0]
    hits = [{k: r for k, r in o.items() if cached(r)} for _, o in options]
    complete = [o for (_, o), h in zip(options, hits) if len(h) == len(o)]
    if complete or computable:
        return (complete or computable)[0]
    return max(hits, key=len)  # nowhere to compute: what is cached, on the dataset holding the most


def data_of(requests: dict[Hashable, Evaluation], default: EvalData) -> EvalData:
    """The data the (``together``-located) requests use; ``default`` when there are none."""
    first = next(iter(requests.values()), None)
    return config_data(first.config) if first is not None else default


def note_missing(entries: list[CatalogEntry]) -> None:
    """Under a model picker: which chosen models' datasets are not on this machine, and what that means."""
    on_disk = available_datasets()
    for dataset in sorted({e.dataset for e in entries if e.dataset != "unknown"}):
        if not any(present(d, on_disk) for d in evaluation_datasets(dataset, state.dataset())):
            st.caption(f"**{dataset}** is not on this machine: its models show their precomputed results; to compute "
                       f"new ones, {how_to_get(dataset)}.")


def needs_cifar10() -> bool:
    """No real CIFAR-10 (genuine or the JPEG copy) on disk: the sidebar offers to get it."""
    return not {"cifar10", "cifar10-jpeg"} & set(available_datasets())


def switch_if_asked() -> None:
    """Before the sidebar's data source widget: select the dataset that Get CIFAR-10 just brought."""
    if SWITCH_KEY in st.session_state:
        st.session_state[state.DATASET_KEY] = st.session_state.pop(SWITCH_KEY)
        st.toast("CIFAR-10 is ready: new computations and the galleries use it.", icon=":material/check:")


def get_cifar10_action() -> None:
    """The sidebar's "Get CIFAR-10" button (where no real dataset is on disk): downloads torchvision's CIFAR-10
    into ``NORMSCOPE_DATA`` under a progress bar, md5-checked; offline or corrupt: a readable error."""
    if not needs_cifar10():
        return
    st.sidebar.caption("No CIFAR-10 on this machine: the zoo's precomputed results show; computing new ones on its "
                       "models needs the images.")
    if not st.sidebar.button("Get CIFAR-10", key="get_cifar10", icon=":material/download:",
                             disabled=state.demo_mode(), help=f"Download torchvision's CIFAR-10 (163 MiB, md5-checked) "
                                                              f"into {data_root()} (set NORMSCOPE_DATA to change it)"):
        return
    with st.sidebar:
        bar = render.progress_bar("Downloading CIFAR-10…")
        try:
            download_cifar10(progress=bar)
        except DataError as e:
            st.error(f"Cannot get CIFAR-10: {e}")
            return
    st.session_state[SWITCH_KEY] = "cifar10"
    st.rerun()
