"""Overview: the paper's claim and live headline numbers (BN vs no normalization) from the zoo."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.attacks import paper_spec
from core.cache import MISSING
from core.catalog import CatalogEntry
from core.experiments import DEFAULT_PER_CLASS, EvalData
from core.robustness import LIGSConfig, RobustnessConfig, headline, ligs_report, robustness
from ui import catalog, compute, datasource, navigation, render

st.title("NormScope")
st.markdown(
    "**Benz, Zhang & Kweon (ICCV 2021):** batch normalization makes a network lean on *non-robust features* — "
    "small, high-frequency patterns that predict the label — so BN models are **less robust** to adversarial "
    "attacks at similar clean accuracy, and their loss is **less locally linear** (lower LIGS). "
    "Adversarial examples from models *without* BN also transfer better.")

dataset = catalog.featured()  # the zoo's training data, whatever the data source: a first start shows the findings
entries = catalog.entries(dataset)


def row(entry: CatalogEntry, data: EvalData) -> dict:
    """The checkpoint's last-epoch probes, and its paper-setting results where the cache has them (never computed)."""
    lookup = compute.context(cached_only=True)
    rob = robustness(entry, RobustnessConfig(paper_spec("pgd_l2"), data), lookup)
    lig = ligs_report(entry, LIGSConfig(data=data), lookup)
    probes = entry.final_metrics
    return {"model": entry.label, "arch": entry.arch, "norm": entry.norm, "dataset": entry.dataset,
            "adversarially trained": "yes" if entry.adversarial else "", "clean acc": probes.get("test_accuracy"),
            "l2-PGD acc (probe)": probes.get("robust_accuracy"), "LIGS (probe)": probes.get("ligs"),
            "l2-PGD acc (20 steps)": None if rob is MISSING else rob["robust_accuracy"],
            "LIGS (cached)": None if lig is MISSING else lig["ligs"]}


def show_headline(summary: dict | None) -> None:
    """BN vs norm-free means over the zoo's architecture pairs, one metric card each."""
    if summary is None:
        st.info("Headline numbers need a BN and a norm-free model of the same architecture on this data source.")
        return
    for col, (metric, means) in zip(st.columns(len(summary["metrics"])), summary["metrics"].items()):
        bn, none = means["bn"], means["none"]
        col.metric(f"{metric}: BN", f"{bn:.3f}", f"{bn - none:+.3f} vs no norm ({none:.3f})", border=True)
    st.caption(f"Means over the zoo's standard-trained BN / norm-free pairs on **{dataset}** "
               f"({', '.join(summary['archs'])}); probes from each checkpoint's last "
               f"epoch (l2-PGD eps 0.25, 10 steps; LIGS Gaussian 0.01). Cached columns: paper settings, "
               f"{DEFAULT_PER_CLASS} test images per class, when precomputed.")


if not entries:
    st.info("No checkpoints yet: upload one or train one on the Models page.")
else:
    st.subheader(f"Headline: BN vs no normalization on {dataset}")
    show_headline(headline(entries))
    with render.user_errors("Cannot read a checkpoint"):
        table = pd.DataFrame([row(e, EvalData(dataset)) for e in entries])
        render.table(table, f"overview-{dataset}", "overview", column_config={
            c: st.column_config.NumberColumn(format="%.3f") for c in table.columns if table[c].dtype.kind == "f"})
        render.dataset_caption({dataset})
        datasource.note_missing(entries)
others = sorted({e.dataset for e in catalog.entries()} - {dataset})
if others:
    st.caption(f"Also in the catalog: models trained on {', '.join(others)}; every page lists them.")

st.subheader("Explore")
cols = st.columns(3)
for i, page in enumerate(p for p in navigation.PAGES if not p.default):
    cols[i % 3].page_link(navigation.st_page(page.url_path), label=page.link, icon=page.icon)
