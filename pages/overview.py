"""Overview: the paper's claim and live headline numbers (BN vs no normalization) from the zoo."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.attacks import paper_spec
from core.experiments import EvalData, ligs_report, robustness
from core.metrics import LIGSSpec
from ui import catalog, render, state
from ui.widgets import DEFAULT_PER_CLASS

st.title("NormScope")
st.markdown(
    "**Benz, Zhang & Kweon (ICCV 2021):** batch normalization makes a network lean on *non-robust features* — "
    "small, high-frequency patterns that predict the label — so BN models are **less robust** to adversarial "
    "attacks at similar clean accuracy, and their loss is **less locally linear** (lower LIGS). "
    "Adversarial examples from models *without* BN also transfer better.")

dataset = state.dataset()
entries = catalog.entries(dataset)


def probe_rows() -> pd.DataFrame:
    """Final-epoch probes recorded in each checkpoint's metadata (l2-PGD eps 0.25, 10 steps; LIGS gaussian 0.01)."""
    return pd.DataFrame([{"model": e.label, "source": e.source, "arch": e.arch, "norm": e.norm, "dataset": e.dataset,
                          "adversarial": e.adversarial,
                          "clean acc": e.final_metrics.get("test_accuracy"),
                          "l2-PGD acc (probe)": e.final_metrics.get("robust_accuracy"),
                          "LIGS (probe)": e.final_metrics.get("ligs")} for e in entries])


def cached_rows() -> pd.DataFrame:
    """Paper-setting results already in the cache (20-step l2-PGD, LIGS), never computed here."""
    rows, data = [], EvalData(dataset, per_class=DEFAULT_PER_CLASS)
    for e in entries:
        ckpt = catalog.load(e)
        rob = robustness(ckpt, paper_spec("pgd_l2"), data, state.cache(), cached_only=True)
        lig = ligs_report(ckpt, LIGSSpec(), data, state.cache(), cached_only=True)
        rows.append({"model": e.label, "l2-PGD acc (20 steps)": rob["robust_accuracy"] if rob else None,
                     "LIGS (cached)": lig["ligs"] if lig else None})
    return pd.DataFrame(rows)


def paired(df: pd.DataFrame) -> pd.DataFrame:
    """The zoo's standard-trained BN and norm-free models of the architectures that have both, so that both
    means cover the same architectures (uploads, trained runs and adversarially trained models would skew them)."""
    df = df[(df["source"] == "zoo") & ~df["adversarial"] & df["norm"].isin(["bn", "none"])]
    both = df.groupby("arch")["norm"].nunique().loc[lambda n: n == 2].index
    return df[df["arch"].isin(both)]


def headline(df: pd.DataFrame) -> None:
    """BN vs norm-free means over architecture pairs."""
    df = paired(df)
    by_norm = df.groupby("norm")[["clean acc", "l2-PGD acc (probe)", "LIGS (probe)"]].mean()
    if not {"bn", "none"} <= set(by_norm.index):
        st.info("Headline numbers need a BN and a norm-free model of the same architecture on this data source.")
        return
    bn, none = by_norm.loc["bn"], by_norm.loc["none"]
    cols = st.columns(3)
    for col, metric in zip(cols, by_norm.columns):
        col.metric(f"{metric}: BN", f"{bn[metric]:.3f}", f"{bn[metric] - none[metric]:+.3f} vs no norm ({none[metric]:.3f})",
                   border=True)
    st.caption(f"Means over the zoo's standard-trained BN / norm-free pairs on **{dataset}** "
               f"({', '.join(sorted(df['arch'].unique()))}); probes from each checkpoint's last "
               f"epoch (l2-PGD eps 0.25, 10 steps; LIGS Gaussian 0.01). Cached columns: paper settings, "
               f"{DEFAULT_PER_CLASS} test images per class, when precomputed.")


if not entries:
    st.info(f"No checkpoints trained on **{dataset}** yet. Pick another data source in the sidebar.")
else:
    st.subheader(f"Headline: BN vs no normalization on {dataset}")
    headline(probe_rows())
    with render.user_errors("Cannot read a checkpoint"):
        table = probe_rows().merge(cached_rows(), on="model")
        render.table(table, f"overview-{dataset}", "overview", column_config={
            c: st.column_config.NumberColumn(format="%.3f") for c in table.columns if table[c].dtype.kind == "f"})
        render.dataset_caption({dataset})

st.subheader("Explore")
cols = st.columns(3)
links = [("pages/models.py", "Models: zoo, upload, train", ":material/model_training:"),
         ("pages/robustness.py", "Robustness table (Table 1)", ":material/shield:"),
         ("pages/training.py", "Training dynamics (Fig. 1)", ":material/show_chart:"),
         ("pages/ligs.py", "LIGS explorer", ":material/blur_on:"),
         ("pages/gallery.py", "Adversarial gallery", ":material/image:")]
for i, (page, label, icon) in enumerate(links):
    cols[i % 3].page_link(page, label=label, icon=icon)
