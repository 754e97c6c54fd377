"""Loss landscape: the optimization landscape over training (App. I, Fig. A7-A10) and the loss surface on a plane
of input space around one image, where LIGS's "locally linear" becomes visible."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.catalog import CatalogEntry
from core.data import class_names
from core.experiments import EvalData, Evaluation
from core.images import decode_images
from core.landscape import (LANDSCAPE_STEP_FACTORS, SUMMARY_MEASURES, comparison_members, landscape_phases,
                            landscape_records, landscape_summary)
from core.surface import (DEFAULT_RADIUS, PLANES, THREATS, LossSurface, LossSurfaceConfig, gradient_profile,
                          loss_surface)
from core.zoo import LANDSCAPE_COMPARISONS
from ui import catalog, compute, figures, render, state, widgets

st.title("Loss landscape")
dataset = state.dataset()

st.header("Optimization landscape over training (App. I)")
st.markdown(f"""After Santurkar et al. (2018): at a training step, move the weights along the batch gradient g by
step sizes η ({", ".join(f"{f:g}" for f in LANDSCAPE_STEP_FACTORS)} × the learning rate) and record the range of the
loss, the change of the gradient ‖∇L(w) − ∇L(w − ηg)‖₂ and the effective **β-smoothness** (the largest gradient
change per distance moved). Bands span the step sizes. The paper: on ResNet18 **only BN** gives a clearly more
predictive, stable gradient; shortcuts hardly matter; Fixup is less smooth than BN.""")


def has_landscape(entry: CatalogEntry) -> bool:
    return any(h.get("landscape") for h in entry.history)


def landscape_frame(entries: list[CatalogEntry]) -> pd.DataFrame:
    """One row per (model, measured step) from the recorded histories."""
    rows = [{"model": e.label, "norm": e.norm, "dataset": e.dataset, **r} for e in entries
            for r in landscape_records(list(e.history))]
    return pd.DataFrame(rows)


# recorded histories need no data: every dataset's runs
labels_with = tuple(e.label for e in catalog.by_label().values() if has_landscape(e))
comparisons = {title: members for title, names in LANDSCAPE_COMPARISONS.items()
               if len(members := comparison_members(names, labels_with)) >= 2}  # the zoo's App. I runs present
ANY = "Any models"


def pick_comparison() -> None:
    """A chosen comparison replaces the model selection with its models (the picker starts afresh from them, its
    default); "Any models" keeps the selection."""
    if st.session_state["ls_comparison"] in comparisons:
        st.session_state.pop("ls_train_models", None)


comparison = st.selectbox("Comparison", [*comparisons, ANY], key="ls_comparison", on_change=pick_comparison,
                          help="The paper's App. I comparisons, trained at CPU scale in the zoo (RESULTS.md)")
trained = widgets.model_picker("ls_train_models", dataset, limit=8, label="Models",
                               preferred=tuple(comparisons.get(comparison, labels_with)))
recorded = [e for e in trained if has_landscape(e)]
if trained and not recorded:
    st.info("None of the chosen models recorded the optimization landscape during training. Train one with it: on "
            "the **Models** page set *Landscape every k steps* above 0, or in Python "
            "`train(preset('cpu', arch='resnet18', norm='bn', landscape_every=20), out)` (`TrainConfig.landscape_every`"
            "; the command line's train option of the same name). It costs about one training step per step size "
            "at each measured step.")
if recorded:
    frame = landscape_frame(recorded)
    render.chart(render.built(figures.landscape_bands, frame), frame, f"optimization-landscape-{dataset}", "ls_bands")
    cost = pd.DataFrame([{"model": e.label, "norm": e.norm,
                          "landscape seconds": sum(h.get("landscape_seconds", 0) for h in e.history),
                          "training seconds": sum(h.get("train_seconds", 0) for h in e.history)} for e in recorded])
    st.caption("Cost of the measurement (included in the training time): " + "; ".join(
        f"{r['model']}: {r['landscape seconds']:.1f} s of {r['training seconds']:.1f} s" for _, r in cost.iterrows()))
    summary = pd.DataFrame([{"model": e.label, "norm": e.norm, "medians over": phase, **landscape_summary(records)}
                            for e in recorded for phase, records in
                            landscape_phases(landscape_records(list(e.history))).items()])
    render.table(summary.rename(columns={"steps": "measured steps", **SUMMARY_MEASURES}),
                 f"optimization-landscape-summary-{dataset}", "ls_summary")
    st.caption("Medians over the measured steps, of the whole run and of its last epoch. Gradient change / ‖g‖ is "
               "scale-free: a model stuck on a flat plateau (norm-free, Fixup: the first steps) has a small gradient, "
               "hence small changes, without a smoother landscape.")

st.header("Loss surface around an image")
st.markdown("""The cross-entropy on a plane of input space through one test image: spanned by the normalized input
gradient and a random direction orthogonal to it (or two random directions), each of unit norm in the threat model.
A locally linear loss (high **LIGS**) looks like a tilted plane; a non-linear one like a crumpled sheet. The paper
finds lower LIGS with BN (Sec. 4).""")
models = widgets.model_picker("ls_models", dataset, limit=2, most=2)
c1, c2, c3, c4, c5 = st.columns(5)
image = int(c1.number_input("Test image (index)", 0, 1_000_000, 0, key="ls_image"))
plane = c2.selectbox("Plane", PLANES, key="ls_plane")
threat = c3.selectbox("Threat model of the directions (their l_p ball)", THREATS, key="ls_threat")
radius = c4.number_input(f"Radius ({threat})", 1e-4, 64.0, DEFAULT_RADIUS[threat], format="%.4f",
                         key=f"ls_radius_{threat}", help="l2 1.0 / linf 8/255 by default; points are not clipped")
resolution = c5.slider("Points per axis", 5, 41, 21, step=2, key="ls_resolution")
config = LossSurfaceConfig(image, plane, threat, float(radius), resolution, data=EvalData(dataset, per_class=1))


def grid_frame(results: dict[str, LossSurface]) -> pd.DataFrame:
    """The grids as rows: model, the two coordinates, loss and predicted class."""
    rows = [{"model": m, r.axes[0]: a, r.axes[1]: b, "loss": r.loss[i][j], "predicted": r.pred[i][j]}
            for m, r in results.items() for i, b in enumerate(r.coords) for j, a in enumerate(r.coords)]
    return pd.DataFrame(rows)


def show_surfaces(results: dict[str, LossSurface]) -> None:
    first = next(iter(results.values()))
    known = class_names(first.dataset)
    names = [known[c] if c < len(known) else str(c) for c in range(max(e.num_classes for e in models))]
    losses = [v for r in results.values() for row in r.loss for v in row]
    zrange = (min(losses), max(losses))  # one colour scale for every model
    left, right = st.columns([1, 4])
    left.image(render.zoomed(decode_images(first.image)[0]), width=128,
               caption=f"image {first.image_index}: {names[first.label]}")
    right.markdown(f"Plane **{plane}**, radius {radius:g} in {threat}, {resolution}×{resolution} points; one colour "
                   f"scale for all models (loss {zrange[0] + 0:.3g} to {zrange[1]:.3g}). Drag a surface to rotate it.")
    for i, (col, (model, r)) in enumerate(zip(st.columns(len(results)), results.items())):
        with col:
            a, b, c = st.columns(3)
            a.metric("LIGS (this image)", f"{r.ligs:.3f}")
            b.metric("loss at the image", f"{r.centre_loss:.3g}")
            c.metric("predicted", names[r.centre_pred])
            frame = grid_frame({model: r})
            render.chart(render.built(figures.loss_surface_3d, model, r.loss, r.coords, r.axes, zrange), frame,
                         f"loss-surface-{model}-{image}", f"ls_surface_{i}")
            render.chart(render.built(figures.loss_plane, r.loss, r.pred, r.coords, r.axes, zrange, names), frame,
                         f"loss-plane-{model}-{image}", f"ls_plane_{i}")


if models:
    with render.user_errors("Cannot compute the loss surface"):
        surfaces = compute.gather({e.label: Evaluation.of(e, loss_surface, config) for e in models}, "ls_run",
                                  "loss surfaces")
        if surfaces:
            show_surfaces(surfaces)
            render.dataset_caption({r.dataset for r in surfaces.values()})

st.subheader("Loss along the gradient direction")
st.markdown("The middle row of each model's grid: the loss from the image along the plane's first direction (its own "
            "input gradient's, on the gradient-random plane), for several models on one plot.")
profiled = widgets.model_picker("ls_profile_models", dataset, limit=6, preferred=tuple(e.label for e in models))
if profiled:
    with render.user_errors("Cannot compute the loss profiles"):
        profiles = compute.gather({e.label: Evaluation.of(e, loss_surface, config) for e in profiled},
                                  "ls_profile_run", "loss surfaces")
        if profiles:
            rows = [{"model": m, "norm": e.norm, "step": t, "loss": v} for e in profiled
                    if (m := e.label) in profiles for t, v in zip(*gradient_profile(profiles[m]))]
            curve = pd.DataFrame(rows)
            axis = next(iter(profiles.values())).axes[0]
            fig = render.built(figures.lines, curve, "step", "loss", "model",
                               f"Loss along the {axis} direction ({threat}, image {image})",
                               x_title=f"step along the {axis} direction ({threat})")
            render.chart(fig, curve, f"loss-profile-{image}", "ls_profile")
