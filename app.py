"""NormScope dashboard: Benz, Zhang & Kweon (ICCV 2021), "Batch Normalization Increases Adversarial
Vulnerability and Decreases Adversarial Transferability: A Non-Robust Feature Perspective".

Run: ``streamlit run app.py``. This entry point draws the shared sidebar (data source, device,
cache, demo mode) and routes to the pages listed in ``ui/navigation.py``, one file each in ``views/``
(not ``pages/``: see there why); pages compute only through ``core``.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.data import available_datasets
from core.device import describe_device
from ui import datasource, navigation, serving, state

# The tab's icon, served by this server: a ":material/...:" page icon makes the browser fetch its picture from
# fonts.gstatic.com (Streamlit's frontend builds that URL), which an offline demo cannot reach. This one is the
# "biotech" glyph of the Material Symbols font Streamlit ships, drawn at 64 px.
FAVICON = Path(__file__).parent / "ui" / "favicon.png"

# Larger type in the main area only: the sidebar keeps its size so page names are not cut off.
DEMO_CSS = """<style>
[data-testid="stMain"] { font-size: 22px; }
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p,
[data-testid="stMain"] [data-testid="stMarkdownContainer"] li,
[data-testid="stMain"] [data-testid="stWidgetLabel"] p { font-size: 1.3rem; }
[data-testid="stMain"] [data-testid="stCaptionContainer"] { font-size: 1.1rem; }
[data-testid="stMetricValue"] { font-size: 3rem; }
h1 { font-size: 3.2rem !important; } h2 { font-size: 2.4rem !important; } h3 { font-size: 1.9rem !important; }
</style>"""


def sidebar() -> None:
    options = available_datasets()
    datasource.switch_if_asked()
    if st.session_state.get(state.DATASET_KEY) not in options:  # first run, or a data source that went away
        wanted = st.query_params.get("dataset")  # ?dataset=builtin: a link (or a talk's bookmark) picks the data
        st.session_state[state.DATASET_KEY] = wanted if wanted in options else state.default_dataset(options)
    st.sidebar.selectbox("Data source", options, key=state.DATASET_KEY,
                         help="The test images new computations and the galleries use. Every model is listed "
                              "whatever is picked, with its precomputed results; a model trained on other images "
                              "is evaluated on its own dataset.")
    if not serving.public():  # a visitor of a public server does not fill its disk
        datasource.get_cifar10_action()
    st.sidebar.toggle("Demo mode", key=state.DEMO_KEY, help="Larger fonts; precomputed results only.")
    st.sidebar.caption(f"Device: {describe_device()}")
    cache = state.cache()
    st.sidebar.caption(f"Result cache: {cache.volume() / 2**20:.1f} MiB, {len(cache)} entries")
    if serving.public():
        st.sidebar.caption("Public demo server: precomputed results, small computations; no training or clearing.")
    elif st.sidebar.button("Clear result cache", key="clear_cache", disabled=state.demo_mode()):
        cache.clear()
        st.cache_data.clear()
        st.sidebar.success("Cache cleared.")


st.set_page_config(page_title="NormScope", page_icon=str(FAVICON), layout="wide")
serving.apply_client_options()
page = st.navigation(list(navigation.build().values()))
sidebar()
if state.demo_mode():
    st.markdown(DEMO_CSS, unsafe_allow_html=True)
page.run()
