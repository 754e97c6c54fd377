"""Transferability: adversarial examples crafted on source models, their success on target models (Sec. 7,
Table 4 / A8), over the source's training epochs (Fig. 9) and as images."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.attacks import ATTACKS
from core.catalog import snapshots
from core.data import class_names
from core.experiments import EvalData
from core.transfer import (TRANSFER_ATTACKS, TransferMatrix, assembled, examples_request, matrix_requests,
                           transferred_gallery)
from core.zoo import TRANSFER_SOURCES, TRANSFER_TARGETS
from ui import compute, figures, render, state, widgets
from ui.intervals import TEXT, with_wilson

WIDTH = 128  # one display width, so the clean and adversarial images line up

st.title("Transferability")
st.markdown("""Adversarial examples are crafted white-box on each **source** and shown to every **target**. A cell
is the attack success rate: the share of the images the target classifies correctly when clean that it gets wrong
after the attack (\\* = white-box, the source itself). The paper finds that examples from models **without BN
transfer better** (Table 4, A8) and that a source's transferability first rises, then falls over training (Fig. 9).
Budget: linf 8/255, 10 steps of eps/10; the supplement does not state the CIFAR-10 budget, so this common setting
is an assumption.""")
dataset = state.dataset()
sources = widgets.model_picker("tr_sources", dataset, limit=2, label="Sources", preferred=TRANSFER_SOURCES)
targets = widgets.model_picker("tr_targets", dataset, limit=6, label="Targets", preferred=TRANSFER_TARGETS)
c1, c2 = st.columns([1, 2])
name = c1.selectbox("Attack", TRANSFER_ATTACKS, key="tr_attack",
                    format_func=lambda n: f"{ATTACKS[n].title}: {ATTACKS[n].description}")
with c2:
    spec = widgets.attack_spec_input(name, "tr")
data = EvalData(dataset, per_class=widgets.per_class_input("tr_per_class"))


def matrix_of(sources: list, targets: list, key: str, what: str) -> TransferMatrix:
    """The matrix's cached cells (computing the rest on request: each after its source's examples), all read on
    one dataset (see core/planning.py)."""
    work = compute.plan(matrix_requests(sources, targets, spec, data), together=True, subjects=sources)
    cells = compute.settle(work, key, what) if work is not None else {}
    return assembled(sources, targets, spec, work.data(data) if work is not None else data, cells)


def matrix_frame(matrix: TransferMatrix) -> pd.DataFrame:
    """Sources x targets (success rate), BN rows beside their norm-free twins as in Table A8, and the row average."""
    rows = [{"source": s, "norm": sources[i].norm, **{t: matrix.value(i, j) for j, t in enumerate(matrix.targets)},
             "Avg": matrix.row_average(i)} for i, s in enumerate(matrix.sources)]
    order = sorted(range(len(rows)), key=lambda i: (sources[i].arch, sources[i].norm != "bn", rows[i]["source"]))
    return pd.DataFrame([rows[i] for i in order])


def interval_frame(matrix: TransferMatrix) -> pd.DataFrame:
    """Each computed cell's success rate with its 95 % Wilson interval, out of the images the target gets right."""
    rows = [{"source": s, "target": t, "success rate": matrix.value(i, j), "n": matrix.value(i, j, "n")}
            for i, s in enumerate(matrix.sources) for j, t in enumerate(matrix.targets)
            if matrix.value(i, j) is not None]
    return with_wilson(pd.DataFrame(rows), "success rate")


def heatmap(matrix: TransferMatrix) -> None:
    frame = matrix_frame(matrix).set_index("source").drop(columns="norm")
    marks = {(matrix.sources[i], matrix.targets[j]) for i, j in matrix.white_box}
    text = [[("-" if pd.isna(v) else f"{100 * v:.1f}") + ("*" if (s, t) in marks else "") for t, v in row.items()]
            for s, row in frame.iterrows()]
    fig = render.built(figures.percent_heatmap, 100 * frame.astype(float),
                       f"{spec.label} on {matrix.data.dataset}: success rate (%)", text)
    render.chart(fig, frame.reset_index(), f"transfer-{name}-{dataset}", "tr_heatmap")


def gallery(matrix: TransferMatrix, shown: int) -> None:
    """The clean image, the source's adversarial image, and what each target predicts on it."""
    source = st.selectbox("Source", matrix.sources, key="tr_gallery_source")
    entry = sources[matrix.sources.index(source)]
    # The shipped results hold the matrix, not the images (4 MB per source and attack): those compute on request.
    if not compute.gather({source: examples_request(entry, spec, matrix.data)}, "tr_gal_run", "example sets",
                          source_first=True):
        return
    images = transferred_gallery(entry, matrix, shown, compute.context(cached_only=True))
    names = class_names(matrix.data.dataset)
    for k, y in enumerate(images["labels"]):
        cols = st.columns([1, 1, 3])
        cols[0].image(render.zoomed(images["clean"][k]), caption=f"clean: {names[y]}", width=WIDTH)
        cols[1].image(render.zoomed(images["adversarial"][k]), width=WIDTH,
                      caption=f"{source}: {names[images['source_pred'][k]]}")
        cols[2].markdown("  \n".join(f"{'✗' if p[k] != y else '✓'} **{t}**: {names[p[k]]}"
                                      for t, p in images["target_pred"].items()))


if sources and targets:
    with render.user_errors("Cannot build the transfer matrix"):
        matrix = matrix_of(sources, targets, "tr_run", "transfer results")
        if matrix.missing < len(matrix.cells):
            st.subheader("Transfer matrix (Table 4 / A8)")
            heatmap(matrix)
            frame = matrix_frame(matrix)
            render.table(frame, f"transfer-table-{name}-{dataset}", "tr_table", column_config={
                c: st.column_config.NumberColumn(format="%.3f") for c in frame.columns[2:]})
            with st.expander("95 % intervals of every cell (Wilson, out of the n images the target gets right)"):
                cis = interval_frame(matrix)
                render.table(cis.pivot(index="source", columns="target", values=TEXT).reset_index(),
                             f"transfer-intervals-{name}-{dataset}", "tr_ci")
            render.dataset_caption({matrix.data.dataset})
            st.subheader("Transferred examples")
            gallery(matrix, int(st.slider("Images shown", 1, 20, 5, key="tr_shown")))

st.subheader("Over the source's training (Fig. 9)")
with_snapshots = [e for e in sources if snapshots(e)]
if not with_snapshots:
    st.info("None of the chosen sources has epoch snapshots; the zoo's ResNet18 pair has them.")
elif targets:
    with render.user_errors("Cannot measure transferability over training"):
        epochs = {e.name: snapshots(e) for e in with_snapshots}
        flat = [s for snaps in epochs.values() for s in snaps]
        matrix = matrix_of(flat, targets, "tr_epochs_run", "snapshot results")
        rows = [{"source": name_, "epoch": len(s.history),
                 "success rate": matrix.row_average(flat.index(s), black_box_only=True)}
                for name_, snaps in epochs.items() for s in snaps]
        curve = pd.DataFrame(rows).dropna()
        if not curve.empty:
            fig = render.built(figures.lines, curve, "epoch", "success rate", "source",
                               f"Mean success rate on the {len(targets)} targets, per source epoch ({spec.label})",
                               y_range=figures.SHARE)
            render.chart(fig, curve, f"transfer-epochs-{name}-{dataset}", "tr_epochs")
