"""Training dynamics: clean accuracy, robust accuracy and LIGS over epochs (Fig. 1 / A2), from checkpoint histories."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.catalog import CatalogEntry
from ui import figures, render, state, widgets
from ui.intervals import with_wilson

METRICS = {"test_accuracy": "clean accuracy", "robust_accuracy": "robust accuracy (l2-PGD)", "ligs": "LIGS"}
ACCURACIES = ("test_accuracy", "robust_accuracy")  # shares of the probe's images: binomial intervals

st.title("Training dynamics")
st.markdown("The paper (Fig. 1, A2): a model learns robust features first and non-robust ones later, so robust "
            "accuracy and LIGS **fall** as training goes on while clean accuracy rises — faster and further with BN. "
            "Each checkpoint recorded these probes every epoch (l2-PGD eps 0.25, 10 steps; LIGS Gaussian 0.01).")
dataset = state.dataset()
models = widgets.model_picker("dyn_models", dataset, limit=8)


def history_frame(entries: list[CatalogEntry]) -> pd.DataFrame:
    """One row per (model, epoch, metric) from the recorded histories."""
    rows = [{"model": e.label, "norm": e.norm, "dataset": e.dataset, "epoch": h["epoch"], "metric": METRICS[k],
             "value": h[k], "n": e.probe_images if k in ACCURACIES else 0}
            for e in entries for h in e.history for k in METRICS if h.get(k) is not None]
    frame = pd.DataFrame(rows, columns=["model", "norm", "dataset", "epoch", "metric", "value", "n"])
    return with_wilson(frame, "value") if rows else frame  # LIGS (a mean, n = 0) gets no binomial interval


df = history_frame(models)
missing = [e.label for e in models if not e.history]
if missing:
    st.info("No per-epoch history recorded for: " + ", ".join(missing))
if not df.empty:
    fig = render.built(figures.probes_over_training, df, tuple(METRICS.values()),
                       f"Probes over training on {dataset} (accuracy bars: 95 % Wilson intervals)")
    render.chart(fig, df, f"training-dynamics-{dataset}", "dyn")
    render.dataset_caption(set(df["dataset"]))
