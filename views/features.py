"""Non-robust features: feature datasets (App. C, F), their cross-evaluation (Tables A3 / A4), training on them
(Fig. A4, 6, A5), the feature gallery and the built-in data's conflict split as the fast offline demo."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.data import class_names
from core.experiments import Evaluation
from core.features import (KINDS, PAPER_NORMS, PAPER_TABLES, PRESETS, FeatureDataset, RelianceConfig,
                           conflict_reliance_report, cross_table, feature_config, feature_dataset,
                           preview_images, seed_spread, table_kind, trend_requests, zoo_cross_requests)
from ui import catalog, compute, figures, render, state

WIDTH = 96

st.title("Non-robust features")
st.markdown("""Following Ilyas et al. (2019), a model's features are turned into a dataset and another model is
trained on it (App. C, F). **D_R / D_NR** (Eq. A2): an image x' of another class is moved until its penultimate
activations match those of x, and labelled with x's class: from an adversarially trained model the result carries
robust features (D_R), from a standard one also non-robust ones (D_NR). **D_rand / D_det**: targeted adversarial
examples labelled with their target, so only non-robust features connect image and label. **D_conflict**: D_det's
attack started from D_R images, so the robust features say y and the non-robust ones y + 1. The paper finds that
features extracted from models *without* normalization transfer best (Table A3, IN worst), and that a model trained
on D_conflict first follows the robust features, then the non-robust ones (Fig. 6).""")
zoo = {e.name: e for e in catalog.entries() if e.source == "zoo"}


def reliance_demo() -> None:
    """The built-in data's conflict split: per model, the share labelled by each cue (offline, seconds)."""
    models = [e for e in catalog.entries() if e.dataset == "builtin"]
    results = compute.gather({e.label: Evaluation.of(e, conflict_reliance_report, RelianceConfig()) for e in models},
                             "nrf_reliance_run", "reliance measures")
    rows = [{"model": m, "norm": next(e.norm for e in models if e.label == m), "cue": cue,
             "share of the conflict split": share} for m, r in results.items()
            for cue, share in (("robust (class y)", r.robust), ("non-robust (class y + 1)", r.non_robust))]
    if rows:
        frame = pd.DataFrame(rows)
        fig = render.built(figures.grouped_bars, frame, "model", "share of the conflict split", "cue",
                           "Built-in data, conflict split: which cue each model follows", intervals=False)
        render.chart(fig, frame, "nrf-reliance-builtin", "nrf_reliance")
        render.dataset_caption({"builtin"})
    spread_chart()


def spread_chart() -> None:
    """The same measurement over training seeds and CPU kernel paths: how far one number can be trusted."""
    spread = seed_spread()
    if spread is None:
        st.caption("No seed-spread measurement ships with this zoo (`scripts/conflict_margin.py` makes one).")
        return
    frame = pd.DataFrame([{"model": f"VGG11 {norm_label(n)} (tiny preset)", "follows the non-robust cue": r[n],
                           "seed": r["seed"], "CPU kernels": r["kernels"]} for r in spread.runs for n in ("bn", "none")])
    fig = render.built(figures.strip, frame, "model", "follows the non-robust cue", "CPU kernels", ("seed",),
                       "Retrained from scratch: every seed and CPU kernel path measured")
    render.chart(fig, frame, "nrf-reliance-spread", "nrf_spread")
    st.caption(spread.summary() + ". The zoo's pair above is one of these runs' recipes at seed 0.")


def cross_heatmap(table: str) -> None:
    """One of Tables A3 / A4 from the zoo, next to the paper's."""
    sources, norms, requests = zoo_cross_requests(zoo, table)
    if not sources:
        st.info(f"The zoo has none of the {table} VGG11 source models on this machine.")
        return
    results = compute.gather(requests, f"nrf_cross_{table}_run", "cross-evaluation cells")
    matrix = cross_table(sources, norms, PAPER_NORMS, requests, results)
    ours = pd.DataFrame(matrix.accuracy, index=[norm_label(n) for n in norms],
                        columns=[norm_label(n) for n in PAPER_NORMS])
    paper = pd.DataFrame([PAPER_TABLES[table][n] for n in PAPER_NORMS], index=ours.columns, columns=ours.columns)
    left, right = st.columns(2)
    with left:
        heatmap(ours, f"CPU scale (VGG11 w0.25, {table_kind(table)})", f"nrf_{table}_ours")
    with right:
        heatmap(paper, f"Paper, Table {'A4' if table == 'robust' else 'A3'} (VGG16)", f"nrf_{table}_paper")
    if matrix.missing:
        st.caption(f"{len(matrix.missing)} cell(s) not computed yet.")


def norm_label(norm: str) -> str:
    return "None" if norm == "none" else norm.upper()


def heatmap(frame: pd.DataFrame, title: str, key: str) -> None:
    """Accuracy cells; "-" on the diagonal (not trained, as in the paper), "?" where not computed yet."""
    text = [["-" if s == t else "?" if pd.isna(v) else f"{v:.1f}" for t, v in row.items()]
            for s, row in frame.iterrows()]
    fig = render.built(figures.percent_heatmap, frame, title, text,
                       labels=dict(x="target", y="source", color="accuracy %"))
    render.chart(fig, frame.reset_index(names="source"), f"{key}-{title}", key)


def trends() -> None:
    """Fig. A4 (accuracy, robust accuracy, LIGS on D_R / D_NR / D_rand) and Fig. 6 / A5 (the conflict curves)."""
    results = compute.gather(trend_requests(zoo), "nrf_trend_run", "training runs")
    rows = [{"dataset": kind, **h} for kind, r in results.items() for h in r.history]
    if not rows:
        return
    frame = pd.DataFrame(rows)
    cols = st.columns(3)
    for col, (metric, label) in zip(cols, (("test_accuracy", "Test accuracy"), ("robust_accuracy", "PGD-l2 accuracy"),
                                           ("ligs", "LIGS"))):
        with col:
            shown = frame[frame["dataset"].isin(("D_R", "D_NR", "D_rand"))].dropna(subset=[metric])
            fig = render.built(figures.lines, shown, "epoch", metric, "dataset", label)
            render.chart(fig, shown[["dataset", "epoch", metric]], f"nrf-trend-{metric}", f"nrf_trend_{metric}")
    conflict = frame[frame["dataset"].isin(("D_det", "D_conflict"))].dropna(subset=["conflict_robust"])
    if not conflict.empty:
        long = conflict.melt(id_vars=["dataset", "epoch"], value_vars=["conflict_robust", "conflict_non_robust"],
                             var_name="label", value_name="share")
        long["label"] = long["label"].map({"conflict_robust": "y (robust features)",
                                           "conflict_non_robust": "t = y + 1 (non-robust features)"})
        fig = render.built(figures.lines, long, "epoch", "share", "label",
                           "Held-out D_det / D_conflict images: labelled by which features (Fig. 6, A5)",
                           y_range=figures.SHARE, dash="dataset")
        render.chart(fig, long, "nrf-conflict-curves", "nrf_conflict")


def dataset_results() -> dict[str, FeatureDataset]:
    """Every cached feature dataset of the zoo's sources (metadata, sanity figures, preview images)."""
    found = {}
    for table in ("standard", "robust"):
        sources, _, _ = zoo_cross_requests(zoo, table)
        kind = table_kind(table)
        found |= {f"{kind} from {s.name}": Evaluation.of(s, feature_dataset, feature_config(kind, "cpu"))
                  for s in sources}
    found |= {f"{kind} from {r.name}": Evaluation.of(r, feature_dataset, r.config.features)
              for kind, r in trend_requests(zoo).items()}
    return compute.gather(found, "nrf_sets_run", "feature datasets")


def sanity_table(sets: dict[str, FeatureDataset]) -> None:
    rows = [{"dataset": name, "kind": r.kind, "preset": r.config.preset, "images": r.images,
             "feature distance / start (mean)": r.sanity.get("relative_distance_mean"),
             "(std)": r.sanity.get("relative_distance_std"),
             "source predicts the target": r.sanity.get("target_rate")} for name, r in sets.items()]
    render.table(pd.DataFrame(rows), "feature-datasets-sanity", "nrf_sanity", column_config={
        "images": st.column_config.NumberColumn(format="%d"),
        **{c: st.column_config.NumberColumn(format="%.3f") for c in list(rows[0])[4:]}})
    st.caption("Eq. A2 datasets: the penultimate-layer distance to x at the end, relative to where x' started "
               "(0 = matched). Adversarial kinds: the share the source model classifies as the target label.")


def gallery(sets: dict[str, FeatureDataset]) -> None:
    """x, x' and the extracted image (with the change from x' amplified) for the chosen datasets."""
    chosen = st.multiselect("Datasets", list(sets), default=list(sets)[:3], key="nrf_gallery_sets")
    index = st.slider("Image (one per class)", 0, 9, 0, key="nrf_gallery_index")
    for name in chosen:
        preview = sets[name].preview
        images = preview_images(preview)
        x, start, extracted, change = (images[k] for k in ("x", "start", "extracted", "change"))
        if index >= len(x):
            continue
        names = class_names(sets[name].source_dataset)
        cols = st.columns(5)
        cols[0].markdown(f"**{name}**  \nlabel: {names[preview['targets'][index]]}")
        cols[1].image(render.zoomed(x[index]), caption=f"x ({names[preview['labels'][index]]})", width=WIDTH)
        cols[2].image(render.zoomed(start[index]), caption="x' (start)", width=WIDTH)
        cols[3].image(render.zoomed(extracted[index]), caption="extracted", width=WIDTH)
        cols[4].image(render.zoomed(change[index]), caption="change, amplified", width=WIDTH)


st.header("Fast demo: the built-in data's conflict split")
st.markdown("The built-in dataset's `conflict` split pairs the robust cue of class y with the non-robust cue of "
            "class y + 1: the share a model labels y measures its reliance on robust features.")
reliance_demo()
st.header("Cross-evaluation (Tables A3 / A4)")
st.markdown("Rows: the model the features were extracted from; columns: the normalization of the model trained on "
            "them; cells: its accuracy (%) on the real test set. The diagonal is not trained, as in the paper.")
with render.user_errors("Cannot build the cross-evaluation"):
    for table, title in (("standard", "Standard sources (D_NR, Table A3)"),
                         ("robust", "Robust sources (D_R, Table A4)")):
        st.subheader(title)
        cross_heatmap(table)
st.header("Training on feature datasets (Fig. A4, 6, A5)")
with render.user_errors("Cannot show the training runs"):
    trends()
st.header("The datasets")
with render.user_errors("Cannot show the feature datasets"):
    sets = dataset_results()
    if sets:
        sanity_table(sets)
        st.subheader("Feature gallery")
        gallery(sets)
st.caption(f"Kinds: {', '.join(KINDS)}; presets: {', '.join(PRESETS)} (paper: 50k images, Eq. A2 with 1000 steps; "
           f"cpu: 2000 images, 100 steps). Extract from any model with `python -m core features extract`. "
           f"Data: {state.dataset()} is the sidebar's source; these results are on each source model's own dataset.")
