"""Adversarial gallery: the same images attacked on several models, side by side (BN vs no BN)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.attacks import ATTACKS, WHITE_BOX
from core.data import class_names
from core.experiments import EvalData, Evaluation
from core.gallery import DEFAULT_ATTACK, GalleryConfig, gallery_grid, gallery_report
from core.images import decode_images, png_bytes
from ui import compute, render, state, widgets

WIDTH = 128  # one display width for every image, so clean and adversarial line up
MAX_MODELS = 4  # two columns per model: more would not fit a screen

st.title("Adversarial gallery")
st.markdown("Clean image, adversarial image and the perturbation (amplified to full range: grey = 0), with the "
            "true label, prediction and confidence. The same images on every model.")
dataset = state.dataset()
models = widgets.model_picker("gal_models", dataset, limit=2, most=MAX_MODELS)
c1, c2 = st.columns([1, 2])
name = c1.selectbox("Attack", WHITE_BOX, index=WHITE_BOX.index(DEFAULT_ATTACK), key="gal_attack",
                    format_func=lambda n: ATTACKS[n].title)
with c2:
    spec = widgets.attack_spec_input(name, "gal")
per_class = GalleryConfig.data.per_class  # the gallery's default: one image of each class
data = EvalData(dataset, per_class=int(st.number_input("Images per class", 1, 5, per_class, key="gal_per_class")))
shown = int(st.slider("Images shown", 1, 30, 6, key="gal_shown"))


def header(results: dict) -> None:
    cols = st.columns(1 + 2 * len(results))
    cols[0].markdown("**clean**")
    for j, label in enumerate(results):
        cols[1 + 2 * j].markdown(f"**{label}**<br>adversarial", unsafe_allow_html=True)
        cols[2 + 2 * j].markdown(f"**{label}**<br>perturbation", unsafe_allow_html=True)


def render_row(i: int, results: dict, images: dict, names: list[str]) -> None:
    """One image: clean (true label), then per model the adversarial image and its perturbation."""
    first = next(iter(results.values()))
    cols = st.columns(1 + 2 * len(results))
    y = first.labels[i]
    cols[0].image(render.zoomed(images["clean"][i]), caption=f"true: {names[y]}", width=WIDTH)
    for j, (label, r) in enumerate(results.items()):
        mark = "✓" if r.adv_pred[i] == y else "✗"
        cols[1 + 2 * j].image(render.zoomed(images[label, "adversarial"][i]), width=WIDTH,
                              caption=f"{mark} {names[r.adv_pred[i]]} ({r.adv_conf[i]:.2f})")
        cols[2 + 2 * j].image(render.zoomed(images[label, "perturbation"][i]), width=WIDTH,
                              caption=f"δ ×{0.5 / max(r.linf[i], 1e-12):.0f} · clean pred {names[r.clean_pred[i]]} "
                                      f"({r.clean_conf[i]:.2f})")


def decoded(results: dict) -> dict:
    """Every image array once (decoding per cell would repeat it for every row)."""
    images = {"clean": decode_images(next(iter(results.values())).clean)}
    return images | {(m, kind): decode_images(getattr(r, kind)) for m, r in results.items()
                     for kind in ("adversarial", "perturbation")}


def predictions(results: dict, names: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{"model": m, "image": i, "dataset": r.dataset, "true": names[y],
                          "clean pred": names[r.clean_pred[i]], "clean conf": r.clean_conf[i],
                          "adv pred": names[r.adv_pred[i]], "adv conf": r.adv_conf[i], "linf": r.linf[i]}
                         for m, r in results.items() for i, y in enumerate(r.labels)])


if models:
    requests = {e.label: Evaluation.of(e, gallery_report, GalleryConfig(spec, data)) for e in models}
    results = compute.gather(requests, "gal_run", "galleries", source_first=True)
    shown_on = sorted({r.dataset for r in results.values()})
    if len(shown_on) > 1:
        st.info(f"These models were evaluated on different images ({', '.join(shown_on)}): pick models trained on "
                "one dataset to see the same images side by side.")
    elif len(results) == len(models):
        names = class_names(shown_on[0])
        st.caption(f"{spec.label}. Columns: clean, then per model: adversarial (✓ still correct / ✗ fooled) "
                   "and its amplified perturbation.")
        header(results)
        images = decoded(results)
        for i in range(min(shown, len(next(iter(results.values())).labels))):
            render_row(i, results, images, names)
        st.download_button("Download PNG", png_bytes(gallery_grid(results, shown)), key="gal_png",
                           file_name=f"{render.slug(f'gallery-{name}-{shown_on[0]}')}.png", mime="image/png",
                           icon=":material/download:")
        render.table(predictions(results, names), f"gallery-{name}-{shown_on[0]}", "gal_preds")
        render.dataset_caption({r.dataset for r in results.values()})
