"""Corruptions & frequency: accuracy under the CIFAR-10-C corruptions (Sec. 3.2) and the Fourier view (App. A)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.attacks import paper_spec
from core.corruptions import CORRUPTIONS, SEVERITIES, CorruptionConfig, corruption_cell, corruption_gallery
from core.corruptions.evaluation import IMAGE_SOURCES
from core.data import class_names
from core.experiments import EvalData, Evaluation
from core.frequency import YIN_EPS, FourierConfig, SpectrumConfig, fourier_heatmap, perturbation_spectrum
from core.zoo import CORRUPTION_PAIRS
from ui import compute, figures, render, state, widgets
from ui.intervals import with_wilson

SOURCES = {"generated": "made here (CIFAR-10-C parameters, seed 0)", "cifar10c": "the published CIFAR-10-C arrays"}

st.title("Corruptions & frequency")
st.markdown("""Noise corrupts mostly the high-frequency, **non-robust** features; contrast and fog mostly the
low-frequency, robust ones. If BN makes a model rely more on non-robust features, it should lose **more** under noise
and **less** under contrast and fog than the same model without BN (Sec. 3.2), and its sensitivity should sit at
higher frequencies in the Fourier heat map of Yin et al. 2019 (App. A). The corruptions are CIFAR-10-C's, at its
parameters; motion blur, snow, frost, elastic transform and spatter are not made here (they need ImageMagick,
photographs or OpenCV's warps) but are read from the published arrays when you have them.""")
dataset = state.dataset()
models = widgets.model_picker("cor_models", dataset, limit=4, preferred=CORRUPTION_PAIRS[1])
c1, c2, c3 = st.columns([3, 2, 2])
chosen = c1.multiselect("Corruptions", list(CORRUPTIONS), default=list(CORRUPTIONS), key="cor_names",
                        format_func=lambda n: CORRUPTIONS[n].title)
severities = c2.multiselect("Severities", SEVERITIES, default=list(SEVERITIES), key="cor_severities")
source = c3.selectbox("Corrupted images", IMAGE_SOURCES, key="cor_source", format_func=SOURCES.get)
data = EvalData(dataset, per_class=widgets.per_class_input("cor_per_class"))


def cell_frame(cells: dict, models: list) -> pd.DataFrame:
    norms = {e.label: e.norm for e in models}
    return pd.DataFrame([{"model": m, "norm": norms[m], "corruption": CORRUPTIONS[c].title, "family":
                          CORRUPTIONS[c].family, "severity": s, "error": 1 - r.accuracy,
                          "clean error": 1 - r.clean_accuracy, "n": r.n, "dataset": r.dataset}
                         for (m, c, s), r in cells.items()])


def corruption_charts(frame: pd.DataFrame) -> None:
    """Grouped bars per corruption at one severity (or their mean), a model x corruption heatmap, a summary."""
    shown = st.select_slider("Severity shown", ["mean", *sorted(frame["severity"].unique())], key="cor_shown")
    at = frame if shown == "mean" else frame[frame["severity"] == shown]
    if shown == "mean":  # one mean over severities of the same images: no binomial interval
        bars = at.groupby(["model", "corruption"], as_index=False, sort=False)["error"].mean()
    else:
        bars = with_wilson(at[["model", "corruption", "error", "n"]], "error")
    fig = render.built(figures.grouped_bars, bars, "corruption", "error", "model",
                       f"Error under each corruption (severity {shown}"
                       + (")" if shown == "mean" else "; bars: 95 % Wilson intervals)"), intervals=shown != "mean")
    render.chart(fig, bars, f"corruptions-bars-{shown}-{dataset}", "cor_bars")
    grid = frame.groupby(["model", "corruption"], sort=False)["error"].mean().unstack()
    fig = render.built(figures.percent_heatmap, 100 * grid, "Mean error over the chosen severities (%)")
    render.chart(fig, grid.reset_index(), f"corruptions-heatmap-{dataset}", "cor_heatmap")
    summary = frame.groupby(["model", "norm"], as_index=False, sort=False).agg(
        clean_error=("clean error", "first"), mean_corruption_error=("error", "mean"))
    for family in ("noise", "blur", "weather", "digital"):
        errors = frame[frame["family"] == family].groupby("model", sort=False)["error"].mean()
        summary[f"{family} error"] = summary["model"].map(errors)
    render.table(summary, f"corruptions-summary-{dataset}", "cor_summary", column_config={
        c: st.column_config.NumberColumn(format="%.3f") for c in summary.columns[2:]})
    render.dataset_caption(set(frame["dataset"]))


@st.cache_data(show_spinner=False, max_entries=32)
def shared_gallery(data: EvalData, index: int, names: tuple[str, ...], severities: tuple[int, ...]) -> dict:
    """:func:`corruption_gallery`, made once per server for every session (70 corruptions of an image cost ~0.6 s)."""
    return corruption_gallery(data, index, names, severities)


def gallery() -> None:
    """One test image under every chosen corruption and severity."""
    index = int(st.number_input("Image", 0, len(class_names(dataset)) * data.per_class - 1, 0, key="cor_image"))
    with render.user_errors("Cannot show the image"):
        images = shared_gallery(data, index, tuple(chosen), tuple(sorted(severities)))
        st.image(render.zoomed(images["clean"]), width=96,
                 caption=f"clean: {class_names(dataset)[images['label']]}")
        for name in chosen:
            cols = st.columns(len(severities) + 1)
            cols[0].markdown(f"**{CORRUPTIONS[name].title}**")
            for col, s in zip(cols[1:], sorted(severities)):
                col.image(render.zoomed(images[name, s]), caption=f"severity {s}", width=96)


def facets(maps: dict[str, list], title: str, name: str, key: str, z_max: float | None = None) -> None:
    """Maps of equal shape side by side on one colour scale, frequencies centred."""
    maps = {m: np.asarray(grid, dtype=float) for m, grid in maps.items()}
    render.chart(render.built(figures.facets, maps, title, z_max), figures.facets_frame(maps), name, key)


if models and chosen and severities:
    st.subheader("Accuracy under corruptions")
    requests = {(e.label, c, s): Evaluation.of(e, corruption_cell, CorruptionConfig(c, s, data, 0, source))
                for e in models for c in chosen for s in severities}
    cells = compute.gather(requests, "cor_run", "corruption cells")
    if cells:
        corruption_charts(cell_frame(cells, models))
    st.subheader("The corruptions")
    gallery()

if models:
    st.subheader("Fourier heat maps (App. A)")
    st.markdown("Error rate when the image is moved along one 2-D Fourier basis image (every channel, random sign), "
                "at l2 norm ε per channel; the centre is the lowest frequency. One colour scale for all models.")
    eps = float(st.number_input("ε (l2 per channel)", 0.1, 32.0, YIN_EPS, step=0.5, key="cor_fourier_eps"))
    heat = compute.gather({e.label: Evaluation.of(e, fourier_heatmap, FourierConfig(eps, data)) for e in models},
                          "cor_fourier_run", "Fourier heat maps")
    if heat:
        facets({m: r.error for m, r in heat.items()}, f"Error rate under Fourier perturbations (ε {eps:g})",
               f"fourier-heatmap-{eps:g}-{dataset}", "cor_fourier", z_max=1.0)
    st.subheader("Where adversarial perturbations put their energy")
    spec = paper_spec("pgd_l2")
    spectra = compute.gather({e.label: Evaluation.of(e, perturbation_spectrum, SpectrumConfig(spec, data))
                              for e in models}, "cor_spectrum_run", "perturbation spectra")
    if spectra:
        facets({m: np.log10(np.asarray(r.spectrum) + 1e-6) for m, r in spectra.items()},
               f"log10 |FFT| of the {spec.label} perturbations", f"perturbation-spectrum-{dataset}", "cor_spectrum")
        st.caption("Share of the perturbations' energy above a quarter of the sampling rate: " + ", ".join(
            f"**{m}** {r.high_frequency_share:.3f}" for m, r in spectra.items()))
