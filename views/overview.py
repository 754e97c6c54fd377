"""Overview: the paper's claim, and the findings scoreboard: does each finding hold on the zoo's comparable pairs,
by how much and how sure (core.findings); then the models behind it."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.attacks import paper_spec
from core.cache import MISSING
from core.catalog import CatalogEntry
from core.experiments import DEFAULT_PER_CLASS, EvalData
from core.findings import VERDICT_RULE, comparable_pairs, scoreboard
from core.robustness import LIGSConfig, RobustnessConfig, ligs_report, robustness
from core.zoo import LANDSCAPE_GROUP
from ui import catalog, compute, datasource, navigation, render, state
from ui.intervals import interval_text
from ui.scoreboard import badge, forest_figure, rows_table, scoreboard_table, verdict_colours

OWN_PAIR_FINDINGS = ("pgd", "ligs", "fgsm", "corruptions")  # what a pair of single models can be scored on
CAVEAT = ("Paper scale this is not: the zoo is CPU-sized (width 0.25-1, 6-24 epochs, on `cifar10-jpeg`, a lossy "
          "JPEG copy of CIFAR-10), so a verdict here is about these models. A row's interval covers the test images' "
          "sampling, not the seed-to-seed spread, except the rows marked \"N seeds\": the VGG11 and ResNet18 pairs "
          "retrained at other seeds, scored with a t-interval over the seeds.")

st.title("NormScope")
st.markdown(
    "**Benz, Zhang & Kweon (ICCV 2021):** batch normalization makes a network lean on *non-robust features* — "
    "small, high-frequency patterns that predict the label — so BN models are **less robust** to adversarial "
    "attacks at similar clean accuracy, and their loss is **less locally linear** (lower LIGS). "
    "Adversarial examples from models *without* BN also transfer better.")

def evidence(finding: dict) -> None:
    """A finding's rows: the forest plot of their effects and intervals, the table, and the page to see more."""
    figure, rows = render.built(forest_figure, finding), rows_table(finding)
    if figure is not None:
        render.chart(figure, rows, f"finding-{finding['key']}", f"finding_{finding['key']}")
    render.table(rows, f"finding-{finding['key']}-rows", f"finding_{finding['key']}_rows", style=verdict_colours)
    st.page_link(navigation.st_page(finding["page"]), label="The evidence, page by page",
                 icon=":material/arrow_forward:")


@st.cache_data(show_spinner=False, max_entries=16)
def shared_scoreboard(generation: int, models: tuple[tuple[str, str], ...],
                      _entries: list[CatalogEntry]) -> list[dict]:
    """:func:`scoreboard` built once per server for every session on the same models (their labels and sha256s),
    while the cache's ``generation`` says no result was stored since (reading and pairing them costs ~1 s)."""
    return scoreboard(state.cache(), entries=_entries)


entries = catalog.entries()
st.subheader("Does each finding hold here?")
board = []
with render.user_errors("Cannot score the findings"):
    board = shared_scoreboard(state.cache().generation, tuple((e.label, e.sha256) for e in entries), entries)
if board:
    render.table(scoreboard_table(board), "findings-scoreboard", "findings", style=verdict_colours,
                 column_config={"claim": st.column_config.TextColumn(width="large")})
    st.caption(VERDICT_RULE + " " + CAVEAT)
    for finding in board:
        # Drawn once opened: nine plots and styled tables cost ~0.3 s of every visit, most of the page's time.
        with st.expander(f"{finding['number']}. {finding['claim']} ({finding['source']}) {badge(finding['verdict'])}",
                         key=f"finding_{finding['key']}_open", on_change="rerun") as details:
            if details.open:
                evidence(finding)
    with st.expander("Score another pair: your uploads, IN / LN / GN, any two models with cached results"):
        labels = [e.label for e in entries]
        c1, c2 = st.columns(2)
        treated = c1.selectbox("Normalized model (the paper's BN side)", labels, index=None, key="own_treated")
        control = c2.selectbox("Model to compare it with (the norm-free side)", labels, index=None, key="own_control")
        if treated and control:
            with render.user_errors("Cannot compare them"):
                own = scoreboard(state.cache(), keys=OWN_PAIR_FINDINGS, pair=(treated, control), entries=entries)
                render.table(pd.concat([rows_table(f) for f in own], ignore_index=True), "findings-own-pair", "own_pair",
                             style=verdict_colours)


def row(entry: CatalogEntry, data: EvalData) -> dict:
    """The checkpoint's last-epoch probes, and its paper-setting results where the cache has them (never computed)."""
    lookup = compute.context(cached_only=True)
    rob = robustness(entry, RobustnessConfig(paper_spec("pgd_l2"), data), lookup)
    lig = ligs_report(entry, LIGSConfig(data=data), lookup)
    probes = entry.final_metrics
    return {"model": entry.label, "arch": entry.arch, "norm": entry.norm, "dataset": entry.dataset,
            "adversarially trained": "yes" if entry.adversarial else "", "clean acc": probes.get("test_accuracy"),
            "l2-PGD acc (probe)": probes.get("robust_accuracy"), "LIGS (probe)": probes.get("ligs"),
            "l2-PGD acc (20 steps)": None if rob is MISSING else rob.robust_accuracy,
            "l2-PGD acc, 95 % CI": "" if rob is MISSING else interval_text(rob.robust_accuracy, rob.n),
            "LIGS (cached)": None if lig is MISSING else lig.ligs}


def models_table(models: list[CatalogEntry], name: str, key: str) -> None:
    table = pd.DataFrame([row(e, EvalData(e.dataset, per_class=DEFAULT_PER_CLASS)) for e in models])
    render.table(table, name, key, column_config={
        c: st.column_config.NumberColumn(format="%.3f") for c in table.columns if table[c].dtype.kind == "f"})


paired = {e for p in comparable_pairs(entries) for e in (p.treated, p.control)}
if not entries:
    st.info("No checkpoints yet: upload one or train one on the Models page.")
else:
    st.subheader("The models behind the scoreboard")
    st.caption("The zoo's standard-trained BN models and their norm-free (or Fixup) counterparts: same architecture, "
               f"same training data. Cached columns: paper settings, {DEFAULT_PER_CLASS} test images per class.")
    with render.user_errors("Cannot read a checkpoint"):
        models_table([e for e in entries if e in paired], "overview-pairs", "overview")
        render.dataset_caption({e.dataset for e in paired} or {state.featured()})
        datasource.note_missing([e for e in entries if e in paired])
        others = [e for e in entries if e not in paired]
        if others:
            landscape = sum(e.group == LANDSCAPE_GROUP for e in others)
            with st.expander(f"Other models ({len(others)}: {landscape} App. I landscape runs, adversarially trained "
                             "models, other normalizations, transfer targets, uploads)", key="overview_others_open",
                             on_change="rerun") as listed:
                if listed.open:
                    models_table(others, "overview-other-models", "overview_others")

st.subheader("Explore")
cols = st.columns(3)
for i, page in enumerate(p for p in navigation.PAGES if not p.default):
    cols[i % 3].page_link(navigation.st_page(page.url_path), label=page.link, icon=page.icon)
