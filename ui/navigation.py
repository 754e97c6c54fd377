"""The dashboard's pages, defined once: app.py routes with them, the Overview links to them, and the tests,
the render benchmark and ``scripts/screenshots.sh`` iterate over them.

The page files live in ``views/``, not ``pages/``. Streamlit (1.67) treats a ``pages/`` folder next to the
main script as a v1 multipage app until some session has called ``st.navigation`` (the class-wide flag
``PagesManager.uses_pages_directory``), so a fresh server's first visitor of a deep link such as ``/models``
got that page's file run on its own: the folder's file names as navigation and none of app.py's sidebar.
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from streamlit.navigation.page import StreamlitPage

PAGES_KEY = "_navigation_pages"  # session state: this run's st.Page objects, by url path


@dataclass(frozen=True)
class PageDef:
    """One dashboard page as plain data; ``file`` is relative to the repository root."""

    file: str
    title: str
    icon: str
    url_path: str  # also the page's name in tests and benchmarks
    link: str  # the Overview's link text
    default: bool = False  # served at the app's root URL

    @property
    def route(self) -> str:
        """The URL path under the app's root: "" for the default page."""
        return "" if self.default else self.url_path


PAGES = (
    PageDef("views/overview.py", "Overview", ":material/home:", "overview", "Overview", default=True),
    PageDef("views/models.py", "Models", ":material/model_training:", "models", "Models: zoo, upload, train"),
    PageDef("views/robustness.py", "Robustness", ":material/shield:", "robustness", "Robustness table (Table 1)"),
    PageDef("views/training.py", "Training dynamics", ":material/show_chart:", "training",
            "Training dynamics (Fig. 1)"),
    PageDef("views/ligs.py", "LIGS explorer", ":material/blur_on:", "ligs", "LIGS explorer"),
    PageDef("views/gallery.py", "Adversarial gallery", ":material/image:", "gallery", "Adversarial gallery"),
    PageDef("views/transfer.py", "Transferability", ":material/swap_horiz:", "transfer",
            "Transferability (Table A8, Fig. 9)"),
    PageDef("views/landscape.py", "Loss landscape", ":material/landscape:", "landscape",
            "Loss landscape (App. I, input space)"),
    PageDef("views/features.py", "Non-robust features", ":material/join_inner:", "features",
            "Non-robust features (Tables A3-A5, Fig. 6)"),
    PageDef("views/corruptions.py", "Corruptions & frequency", ":material/grain:", "corruptions",
            "Corruptions & frequency (Sec. 3.2, App. A)"),
    PageDef("views/experiments.py", "Any experiment", ":material/science:", "experiments",
            "Any experiment (each one as declared, every setting)"),
)


def page_def(url_path: str) -> PageDef:
    """The page whose url path is ``url_path``; KeyError if there is none."""
    return {p.url_path: p for p in PAGES}[url_path]


def build() -> dict[str, StreamlitPage]:
    """This run's ``st.Page`` objects by url path (app.py, once per run); kept for ``st_page``.

    Built per run and per session because ``st.navigation`` marks the objects it is given.
    """
    pages = {p.url_path: st.Page(p.file, title=p.title, icon=p.icon, url_path=p.url_path, default=p.default)
             for p in PAGES}
    st.session_state[PAGES_KEY] = pages
    return pages


def st_page(url_path: str) -> StreamlitPage:
    """The ``st.Page`` that app.py built this run for ``url_path``, for ``st.page_link``."""
    return st.session_state[PAGES_KEY][url_path]
