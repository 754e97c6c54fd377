"""LIGS explorer: Local Input Gradient Similarity per model, its per-sample distribution and per-class means."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.data import class_names
from core.experiments import EvalData, Evaluation
from core.robustness import LIGSConfig, ligs_report
from ui import compute, figures, render, state, widgets

st.title("LIGS explorer")
st.latex(r"\mathrm{LIGS} = \mathbb{E}_{(x, y)}\, \cos\big(\nabla_x L(x, y),\ \nabla_x L(x + \nu, y)\big)")
st.markdown("How similar the input gradient stays under a small perturbation ν. High LIGS = locally linear loss "
            "= reliance on robust features. The paper finds **lower LIGS with BN** (Sec. 4; ν Gaussian, std 0.01; "
            "Fig. A1 for the other kinds).")
dataset = state.dataset()
models = widgets.model_picker("ligs_models", dataset)
spec = widgets.ligs_input("ligs")
data = EvalData(dataset, per_class=widgets.per_class_input("ligs_per_class"))


if models:
    results = compute.gather({e.label: Evaluation.of(e, ligs_report, LIGSConfig(spec, data)) for e in models},
                             "ligs_run", "LIGS evaluations")
    if results:
        summary = pd.DataFrame([{"model": m, "norm": next(e.norm for e in models if e.label == m),
                                 "dataset": r.dataset, "kind": r.kind, "size": r.size, "n": r.n,
                                 "LIGS": r.ligs, "logit similarity": r.logit_similarity}
                                for m, r in results.items()])
        render.table(summary, f"ligs-{spec.kind}-{dataset}", "ligs_summary")
        names = {m: class_names(r.dataset) for m, r in results.items()}
        samples = pd.DataFrame([{"model": m, "class": names[m][y] if y < len(names[m]) else str(y), "LIGS": v}
                                for m, r in results.items() for v, y in zip(r.per_sample, r.labels)])
        left, right = st.columns(2)
        with left:
            fig = render.built(figures.violins, samples, "model", "LIGS",
                               f"Per-sample LIGS ({spec.kind}, size {spec.size:g})")
            render.chart(fig, samples, f"ligs-samples-{spec.kind}-{dataset}", "ligs_violin")
        with right:
            per_class = samples.groupby(["model", "class"], as_index=False)["LIGS"].mean()
            fig = render.built(figures.grouped_bars, per_class, "class", "LIGS", "model", "Mean LIGS per class",
                               intervals=False, y_range=None)
            render.chart(fig, per_class, f"ligs-per-class-{spec.kind}-{dataset}", "ligs_class")
        render.dataset_caption(set(summary["dataset"]))
