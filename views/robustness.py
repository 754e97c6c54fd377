"""Robustness: clean and robust accuracy per model and attack (Table 1, A6), and eps sweeps."""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from core.attacks import ATTACKS, WHITE_BOX, AttackSpec, paper_spec
from core.experiments import EvalData, Evaluation
from core.robustness import SWEEP_EPS, RobustnessConfig, robustness
from ui import compute, render, state, widgets

st.title("Robustness")
st.markdown("""Robust accuracy under white-box attacks, at the paper's settings by default:
- PGD-l2 eps 0.25 and PGD-linf eps 1/255, 20 steps of 2.5·eps/steps; CW: the same PGD on the CW margin loss (Table 1)
- FGSM, linf eps 4/255 (Table A6)

The paper's claim: BN models score **lower** under PGD and CW, but **higher** under single-step FGSM.""")
dataset = state.dataset()
models = widgets.model_picker("rob_models", dataset)
specs = widgets.attacks_input("rob")
data = EvalData(dataset, per_class=widgets.per_class_input("rob_per_class"))


def request(entry, spec: AttackSpec) -> Evaluation:
    return Evaluation.of(entry, robustness, RobustnessConfig(spec, data))


def column(spec: AttackSpec) -> str:
    """A compact column name: 'PGD-linf 1/255 (20)', steps only for iterative attacks."""
    steps = f" ({spec.steps})" if spec.entry.iterative else ""
    return f"{spec.entry.title} {widgets.format_eps(spec.eps, spec.entry.threat)}{steps}"


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
    results = compute.gather({(e.label, s): request(e, s) for e in models for s in specs}, "rob_run", "evaluations")
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
    name = c1.selectbox("Attack", WHITE_BOX, index=WHITE_BOX.index("pgd_l2"), key="sweep_attack",
                        format_func=lambda n: ATTACKS[n].title)
    base = next((s for s in specs if s.name == name), paper_spec(name))
    threat = ATTACKS[name].threat
    text = c2.text_input("eps values (comma separated; 2/255 allowed)",
                         ", ".join(widgets.format_eps(e, threat) for e in SWEEP_EPS[threat]), key=f"sweep_eps_{name}")
    eps = []
    with render.user_errors("Bad eps list"):
        eps = widgets.parse_floats(text)
    if eps:
        points = compute.gather({(e.label, x): request(e, base.with_eps(x)) for e in models for x in eps},
                                "sweep_run", "curve points")
        complete = [e.label for e in models if all((e.label, x) in points for x in eps)]  # a curve shows whole
        rows = [{"model": m, "eps": p["eps"], "robust accuracy": p["robust_accuracy"], "dataset": p["dataset"]}
                for (m, _), p in points.items() if m in complete]
        if rows:
            sweep = pd.DataFrame(rows).sort_values(["model", "eps"])
            fig = px.line(sweep, x="eps", y="robust accuracy", color="model", markers=True,
                          title=f"{ATTACKS[name].title} ({base.steps} steps) on {data.dataset}")
            fig.update_yaxes(range=[0, 1])
            render.chart(fig, sweep, f"sweep-{name}-{dataset}", "sweep")
