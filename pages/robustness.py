"""Robustness: clean and robust accuracy per model and attack (Table 1, A6), and eps sweeps."""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from core.attacks import ATTACKS, AttackSpec, paper_spec
from core.catalog import CatalogEntry
from core.experiments import EvalData, Evaluation, robustness, robustness_sweep
from ui import catalog, compute, render, state, widgets

SWEEPS = {"l2": "0, 0.125, 0.25, 0.5, 1", "linf": "0, 0.5/255, 1/255, 2/255, 4/255, 8/255"}

st.title("Robustness")
st.markdown("Robust accuracy under white-box attacks (paper: PGD-l2 eps 0.25 and PGD-linf eps 1/255, 20 steps, "
            "step 2.5·eps/steps; CW = the same PGD on the CW margin loss; FGSM linf 4/255). The paper's claim: "
            "BN models score **lower** under PGD and CW, but **higher** under single-step FGSM (Table A6).")
dataset = state.dataset()
models = widgets.model_picker("rob_models", dataset)
specs = widgets.attacks_input("rob")
data = EvalData(dataset, per_class=widgets.per_class_input("rob_per_class"))


def task(entry: CatalogEntry, spec: AttackSpec) -> compute.Task:
    return compute.Task(lambda cached_only, progress: robustness(catalog.load(entry), spec, data, state.cache(),
                                                                 progress, cached_only=cached_only),
                        (Evaluation(entry.path, attack=spec, data=data),))


def sweep_task(entry: CatalogEntry, spec: AttackSpec, eps: list[float]) -> compute.Task:
    def run(cached_only: bool, progress) -> list[dict] | None:
        points = robustness_sweep(catalog.load(entry), spec, eps, data, state.cache(), progress,
                                  cached_only=cached_only)
        return None if any(p is None for p in points) else points  # a curve counts only when complete
    return compute.Task(run, tuple(Evaluation(entry.path, attack=spec.with_eps(e), data=data) for e in eps))


def column(spec: AttackSpec) -> str:
    """A compact column name: 'PGD-linf 1/255 (20)'; linf budgets read in the paper's x/255 units."""
    eps = f"{spec.eps * 255:.3g}/255" if ATTACKS[spec.name].norm == "linf" else f"{spec.eps:.3g}"
    return f"{ATTACKS[spec.name].title} {eps}" + ("" if spec.name == "fgsm" else f" ({spec.steps})")


def table1(results: dict) -> pd.DataFrame:
    rows = []
    for e in models:
        got = {column(s): results.get((e.label, s)) for s in specs}
        clean = next((r["clean_accuracy"] for r in got.values() if r), None)
        rows.append({"model": e.label, "arch": e.arch, "norm": e.norm, "dataset": data.dataset, "clean acc": clean,
                     **{label: r["robust_accuracy"] if r else None for label, r in got.items()}})
    return pd.DataFrame(rows)


if models and specs:
    st.subheader("Robust accuracy (Table 1)")
    results = compute.gather({(e.label, s): task(e, s) for e in models for s in specs}, "rob_run", "evaluations")
    df = table1(results)
    render.table(df, f"robustness-{dataset}", "rob", column_config={
        c: st.column_config.NumberColumn(format="%.3f") for c in df.columns[4:]})
    long = df.melt(id_vars=["model", "norm"], value_vars=[column(s) for s in specs], var_name="attack",
                   value_name="robust accuracy").dropna()
    if not long.empty:
        fig = px.bar(long, x="attack", y="robust accuracy", color="model", barmode="group",
                     title=f"Robust accuracy on {data.dataset} ({data.per_class} images per class; "
                           "steps in parentheses)")
        fig.update_yaxes(range=[0, 1])
        render.chart(fig, long, f"robustness-bars-{dataset}", "rob_bars")
    render.dataset_caption({r["dataset"] for r in results.values()} or {data.dataset})

st.subheader("Accuracy vs eps")
if models:
    c1, c2 = st.columns([1, 2])
    name = c1.selectbox("Attack", list(ATTACKS)[:5], index=1, key="sweep_attack", format_func=lambda n: ATTACKS[n].title)
    base = next((s for s in specs if s.name == name), paper_spec(name))
    text = c2.text_input("eps values (comma separated; 2/255 allowed)", SWEEPS[ATTACKS[name].norm],
                         key=f"sweep_eps_{name}")
    eps = []
    with render.user_errors("Bad eps list"):
        eps = widgets.parse_floats(text)
    if eps:
        curves = compute.gather({e.label: sweep_task(e, base, eps) for e in models}, "sweep_run", "curves")
        rows = [{"model": m, "eps": p["eps"], "robust accuracy": p["robust_accuracy"], "dataset": p["dataset"]}
                for m, points in curves.items() for p in points]
        if rows:
            sweep = pd.DataFrame(rows)
            fig = px.line(sweep, x="eps", y="robust accuracy", color="model", markers=True,
                          title=f"{ATTACKS[name].title} ({base.steps} steps) on {data.dataset}")
            fig.update_yaxes(range=[0, 1])
            render.chart(fig, sweep, f"sweep-{name}-{dataset}", "sweep")
