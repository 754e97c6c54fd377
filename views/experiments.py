"""Any experiment: every registered experiment on the models picked, every field of its config a widget, its
result's values in a table (the dashboard's ``python -m core run``): an experiment is here once it is declared."""
from __future__ import annotations

import streamlit as st

from core.config import configure
from core.experiments import Evaluation, offered, on_dataset
from ui import compute, figures, render, serving, state, widgets

st.title("Any experiment")
st.markdown("Every experiment NormScope computes (`python -m core list experiments`), on the models you pick, with "
            "every setting of its config; its defaults are the paper's. The other pages lay the paper's experiments "
            "out in figures; here each one is as it is declared: its result's values in a table, every field of it "
            "below." + (" On this public server, the experiments that train a model are off." if serving.public() else ""))
dataset, experiments = state.dataset(), offered(serving.public())
names = sorted(experiments)
name = st.selectbox("Experiment", names, index=names.index("ligs"), key="any_experiment",
                    format_func=lambda n: f"{n}: {experiments[n].description}")
experiment = experiments[name]
models = widgets.model_picker("any_models", dataset, limit=2)
config = None
with st.expander("Settings", expanded=True), render.user_errors("Cannot use these settings"):
    settings = widgets.config_form(experiment.config_type, f"any_{name}")
    config = on_dataset(configure(experiment.config_type, settings), dataset)

if models and config is not None:
    results = compute.gather({e.label: Evaluation.of(e, experiment, config) for e in models}, f"any_run_{name}",
                             f"{name} results")
    if results:
        measured = {model: result.measured() for model, result in results.items()}
        render.table(figures.measured_table(measured), f"{name}-{dataset}", "any_results")
        # Drawn once opened: a result's per-image fields are thousands of values.
        with st.expander("Every field of each result", key="any_fields_open", on_change="rerun") as every_field:
            if every_field.open:
                st.json(measured, expanded=1)
        render.dataset_caption({r.dataset for r in results.values() if r.dataset})
