"""Robustness: clean and robust accuracy per model and attack (Table 1, A6), the share of zero input gradients
beside each, an AutoAttack-style evaluation, and eps sweeps."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.attacks import ATTACKS, WHITE_BOX, AttackSpec, paper_spec
from core.experiments import EvalData, Evaluation
from core.metrics import MASKING_WARNING
from core.robustness import (SWEEP_EPS, AutoAttackConfig, RobustnessConfig, autoattack, autoattack_budgets,
                             robustness)
from ui import compute, figures, render, state, widgets
from ui.intervals import HIGH, LOW, TEXT, with_wilson

st.title("Robustness")
st.markdown("""Robust accuracy under white-box attacks, at the paper's settings by default:
- PGD-l2 eps 0.25 and PGD-linf eps 1/255, 20 steps of 2.5·eps/steps; CW: the same PGD on the CW margin loss (Table 1)
- FGSM, linf eps 4/255 (Table A6)

The paper's claim: BN models score **lower** under PGD and CW, but **higher** under single-step FGSM.

Beside every result: the share of images whose input gradient (of the attack's loss, at the clean image) is exactly
zero. A softmax saturated in fp32 gives FGSM and PGD nothing to follow, which reads as robustness; for a model of
unknown origin, check with the AutoAttack-style evaluation below.""")
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
        clean = next((r.clean_accuracy for r in got.values() if r), None)
        evaluated_on = ", ".join(sorted({r.dataset for r in got.values() if r})) or None
        rows.append({"model": e.label, "arch": e.arch, "norm": e.norm, "dataset": evaluated_on, "clean acc": clean,
                     **{label: r.robust_accuracy if r else None for label, r in got.items()}})
    return pd.DataFrame(rows)


def intervals(results: dict) -> pd.DataFrame:
    """Per model and attack: robust accuracy, its 95 % Wilson interval (as text, and as the bars' error lengths)."""
    rows = [{"model": e.label, "attack": column(s), "robust accuracy": r.robust_accuracy, "n": r.n,
             "dataset": r.dataset} for e in models for s in specs if (r := results.get((e.label, s))) is not None]
    return with_wilson(pd.DataFrame(rows), "robust accuracy") if rows else pd.DataFrame()


def share(value: float | None) -> str:
    """A zero-gradient share as text; results cached before it was measured (the shipped ones) lack it."""
    return "not measured" if value is None else f"{100 * value:.1f} %"


def zero_gradients(results: dict) -> pd.DataFrame:
    """Per model and attack of Table 1, the share of images whose input gradient is exactly zero at the start."""
    return pd.DataFrame([{"model": e.label, **{column(s): share(results[(e.label, s)].zero_gradient)
                                               for s in specs if (e.label, s) in results}} for e in models])


def autoattack_table(found: dict[str, dict], names: list[str]) -> pd.DataFrame:
    """Per model: clean accuracy, each attack's accuracy, the worst case per image (with its 95 % Wilson interval),
    and each zero-gradient share."""
    table = pd.DataFrame([{"model": m, "dataset": r.dataset, "clean acc": r.clean_accuracy,
                           **{ATTACKS[a].title: r.per_attack[a] for a in names},
                           "worst case": r.robust_accuracy,
                           **{f"{ATTACKS[a].title} zero grad.": share(r.zero_gradient[a]) for a in names},
                           "n": r.n} for m, r in found.items()])
    return with_wilson(table, "worst case").drop(columns=[LOW, HIGH]).rename(columns={TEXT: "worst case, 95 % CI"})


def warn_masking(shares: dict[str, float | None]) -> None:
    """A visible warning naming every (model, attack) whose share of zero gradients is above 1 %."""
    flagged = [f"{what} ({share(v)})" for what, v in shares.items() if v is not None and v > MASKING_WARNING]
    if flagged:
        st.warning(f"**Gradient masking?** More than {100 * MASKING_WARNING:.0f} % of the images have an exactly zero "
                   "input gradient where the attack starts: " + "; ".join(flagged) + ". A high robust accuracy there "
                   "may mean the attack had nothing to follow (e.g. a softmax saturated in fp32), not robustness. "
                   "Check with the AutoAttack-style evaluation: APGD-T's DLR loss does not saturate.",
                   icon=":material/warning:")


if models and specs:
    st.subheader("Robust accuracy (Table 1)")
    results = compute.gather({(e.label, s): request(e, s) for e in models for s in specs}, "rob_run", "evaluations")
    df = table1(results)
    render.table(df, f"robustness-{dataset}", "rob", column_config={
        c: st.column_config.NumberColumn(format="%.3f") for c in df.columns[4:]})
    if results:
        st.caption("Share of images with an exactly zero input gradient at the start of each attack:")
        render.table(zero_gradients(results), f"zero-gradients-{dataset}", "rob_zero")
        warn_masking({f"{m} under {column(s)}": r.zero_gradient for (m, s), r in results.items()})
    long = intervals(results)
    if not long.empty:
        with st.expander("95 % intervals of every robust accuracy (Wilson; the Overview compares pairs image by image)"):
            render.table(long.pivot(index="model", columns="attack", values=TEXT).reset_index(),
                         f"robustness-intervals-{dataset}", "rob_ci")
        fig = render.built(figures.grouped_bars, long, "attack", "robust accuracy", "model",
                           f"Robust accuracy on {', '.join(sorted(set(long['dataset'])))} ({data.per_class} images per "
                           "class; steps in parentheses; bars: 95 % Wilson intervals)")
        render.chart(fig, long, f"robustness-bars-{dataset}", "rob_bars")
    render.dataset_caption({r.dataset for r in results.values()} or {data.dataset})

st.subheader("Accuracy vs eps")
if models:
    c1, c2 = st.columns([1, 2])
    name = c1.selectbox("Attack", WHITE_BOX, index=WHITE_BOX.index("pgd_l2"), key="sweep_attack",
                        format_func=lambda n: ATTACKS[n].title)
    base = next((s for s in specs if s.name == name), paper_spec(name))
    threat = ATTACKS[name].threat
    text = c2.text_input("eps values (comma separated; 2/255 allowed)",
                         ", ".join(widgets.format_eps(e, threat) for e in SWEEP_EPS[threat]), key=f"sweep_eps_{name}")
    sweep_requests = {}
    with render.user_errors("Bad eps list"):
        sweep_requests = {(e.label, x): request(e, base.with_eps(x)) for e in models for x in widgets.parse_floats(text)}
    if sweep_requests:
        eps = sorted({x for _, x in sweep_requests})
        points = compute.gather(sweep_requests, "sweep_run", "curve points")
        complete = [e.label for e in models if all((e.label, x) in points for x in eps)]  # a curve shows whole
        rows = [{"model": m, "eps": p.eps, "robust accuracy": p.robust_accuracy, "n": p.n,
                 "dataset": p.dataset} for (m, _), p in points.items() if m in complete]
        if rows:
            sweep = with_wilson(pd.DataFrame(rows).sort_values(["model", "eps"]), "robust accuracy")
            fig = render.built(figures.lines, sweep, "eps", "robust accuracy", "model",
                               f"{ATTACKS[name].title} ({base.steps} steps) on "
                               f"{', '.join(sorted(set(sweep['dataset'])))} (bars: 95 % Wilson intervals)",
                               intervals=True, y_range=figures.SHARE)
            render.chart(fig, sweep, f"sweep-{name}-{dataset}", "sweep")


st.subheader("AutoAttack-style evaluation")
if models:
    with st.expander("APGD-CE and APGD-T, worst case per image: for models that may mask gradients"):
        st.markdown("""Croce & Hein (2020)'s parameter-free attacks, as AutoAttack runs them: **APGD-CE**
(cross-entropy) and **APGD-T** (targeted DLR loss, the 9 runner-up classes in turn), each from a random start with
step size 2·eps halving on its own (100 steps by default), one restart. An image counts as robust only if neither
attack breaks it. AutoAttack's FAB-T and Square are **not included**, so the numbers are an upper bound on
AutoAttack's. Budgets: AutoAttack's standard (linf 8/255, l2 0.5) or the paper's (linf 1/255, l2 0.25).""")
        c1, c2, c3 = st.columns(3)
        aa_threat = c1.selectbox("Threat model", ["linf", "l2"], key="aa_threat")
        budgets = autoattack_budgets(aa_threat)
        budget = c2.selectbox("Budget", list(budgets), key=f"aa_budget_{aa_threat}",
                              format_func=lambda b: f"{b}: {widgets.format_eps(budgets[b], aa_threat)}")
        aa_steps = int(c3.number_input("Steps per attack", 1, 1000, AutoAttackConfig.steps, key="aa_steps"))
        aa = AutoAttackConfig(aa_threat, budgets[budget], aa_steps, data=data)
        found = compute.gather({e.label: Evaluation.of(e, autoattack, aa) for e in models}, "aa_run",
                               "AutoAttack-style evaluations")
        if found:
            names = [s.name for s in aa.specs]
            table = autoattack_table(found, names)
            render.table(table, f"autoattack-{aa_threat}-{dataset}", "aa", column_config={
                c: st.column_config.NumberColumn(format="%.3f") for c in table.columns[2:4 + len(names)]})
            warn_masking({f"{m} under {ATTACKS[a].title}": r.zero_gradient[a] for m, r in found.items()
                          for a in names})
