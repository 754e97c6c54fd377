"""Rendering helpers: progress bars bound to core's callback, charts and tables with CSV downloads, errors."""
from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from pandas.io.formats.style import Styler
import streamlit as st

from core.errors import NormScopeError
from core.io import UnsafePath
from core.progress import Progress
from ui.serving.access import log_access

USER_ERRORS = NormScopeError  # bad input, missing data, a limit, a full disk (core.errors); bugs propagate
ZOOM = 4  # 32 px images are drawn 4x larger, nearest neighbour, so pixels stay visible


def zoomed(image: np.ndarray, factor: int = ZOOM) -> np.ndarray:
    """An ``[H, W, 3]`` image ``factor`` times larger, nearest neighbour."""
    return image.repeat(factor, 0).repeat(factor, 1)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def progress_bar(text: str = "Working…") -> Progress:
    """A st.progress bar as a core progress callback."""
    bar = st.progress(0.0, text=text)
    return lambda fraction, message="": bar.progress(min(max(float(fraction), 0.0), 1.0), text=message or text)


def csv_button(df: pd.DataFrame, name: str, key: str) -> None:
    st.download_button("Download CSV", df.to_csv(index=False).encode(), file_name=f"{slug(name)}.csv",
                       mime="text/csv", key=key, icon=":material/download:")


def table(df: pd.DataFrame, name: str, key: str, style: Callable[[pd.DataFrame], Styler] | None = None,
          **kwargs) -> None:
    """A dataframe (drawn through ``style`` where given: colours only) with a CSV download of exactly what is shown."""
    st.dataframe(style(df) if style else df, hide_index=True, key=f"{key}_table", **kwargs)
    csv_button(df, name, f"{key}_csv")


@st.cache_resource(show_spinner=False, max_entries=512)
def _built(name: str, args: tuple, kwargs: dict, _build: Callable[..., go.Figure | None]) -> go.Figure | None:
    fig = _build(*args, **kwargs)
    return None if fig is None else fig.update_layout(margin=dict(t=50, b=10), legend_title_text="")


def built(build: Callable[..., go.Figure | None], *args, **kwargs) -> go.Figure | None:
    """``build(*args, **kwargs)``, a figure of :mod:`ui.figures` in the dashboard's layout, made once per server for
    equal inputs and shared by every session, so never changed after (Plotly Express takes 30-100 ms a figure, a copy
    10 ms, and a page has up to ten)."""
    return _built(f"{build.__module__}.{build.__qualname__}", args, kwargs, build)


def chart(fig: go.Figure, df: pd.DataFrame, name: str, key: str) -> None:
    """A figure made by :func:`built` (PNG via its toolbar's camera) and a CSV of the data behind it."""
    st.plotly_chart(fig, key=f"{key}_chart", config={"toImageButtonOptions": {"format": "png", "filename": slug(name)}})
    csv_button(df, name, f"{key}_csv")


@contextmanager
def user_errors(what: str) -> Iterator[None]:
    """Show a bad file or bad parameter as a readable st.error instead of a traceback."""
    try:
        yield
    except USER_ERRORS as e:
        if isinstance(e, UnsafePath):  # someone tried a path: the operator hears of it (limits log their own)
            log_access("path refused", what=what, reason=str(e))
        st.error(f"{what}: {e}")


def not_precomputed(missing: int) -> None:
    st.warning(f"Demo mode: {missing} result(s) not precomputed for these settings "
               "(run `python scripts/precompute.py`, or leave demo mode to compute them).")


def dataset_caption(datasets: set[str]) -> None:
    """Name the data every result on the page came from (never a nicer name than the real one)."""
    st.caption("Evaluated on: " + ", ".join(f"**{d}**" for d in sorted(datasets)))
