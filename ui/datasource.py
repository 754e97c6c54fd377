"""What the pages say about datasets missing here, and getting CIFAR-10 where no real dataset is on disk.

Every model in the catalog is listed on every page, whatever the sidebar's data source; which dataset its
results are read on is :mod:`core.planning`'s policy. A result that is neither cached nor computable here (its
dataset is not on disk) is named, with how to get it (:func:`how_to_get`).
"""
from __future__ import annotations

import streamlit as st

from core.catalog import CatalogEntry
from core.data import DataError, available_datasets, download_cifar10, evaluation_datasets
from core.data.sources import SAME_IMAGES, data_root
from core.planning import present
from ui import render, state

SWITCH_KEY = "_switch_dataset"  # a data source to select on the next run (set by Get CIFAR-10)


def how_to_get(name: str) -> str:
    """What to do when ``name`` is not on disk, in one sentence."""
    if SAME_IMAGES.get(name) == "cifar10":
        return ("press **Get CIFAR-10** in the sidebar (or run `python -m core data get cifar10`): new results on "
                f"these models then use genuine CIFAR-10, or set `NORMSCOPE_CIFAR10_JPEG` to the {name} copy's folder")
    return f"put it under `NORMSCOPE_DATA` ({data_root()}) and reload"


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
