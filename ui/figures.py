"""The dashboard's charts as pure functions: plain data (a DataFrame, lists, arrays) in, a Plotly figure out.

No Streamlit here: pages lay the figures out through :func:`ui.render.chart` (which adds the PNG and CSV downloads)
and :func:`ui.render.built` (which makes a figure once per server for equal inputs); tests call these directly.
Accuracy frames come with their Wilson intervals (:func:`ui.intervals.with_wilson`) where they have error bars.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from core.models import NORMS
from ui.intervals import error_bars

SHARE = [0, 1]  # the y range of every chart of accuracies, success rates and shares
NORM_COLOURS = dict(zip((*NORMS, "fixup"), qualitative.Plotly))  # one colour per normalization, as in Fig. A7
# App. I's measures: (name, title, lower and upper column of the band over step sizes)
LANDSCAPE_MEASURES = (("loss", "Loss variation", "loss_min", "loss_max"),
                      ("grad_change", "Gradient change (l2)", "grad_change_min", "grad_change_max"),
                      ("beta", "β-smoothness", "beta", "beta"))


def grouped_bars(frame: pd.DataFrame, x: str, y: str, colour: str, title: str, intervals: bool = True,
                 y_range: Sequence[float] | None = SHARE) -> go.Figure:
    """Bars of ``y`` per ``x``, one per ``colour`` side by side (with the frame's Wilson error bars)."""
    fig = px.bar(frame, x=x, y=y, color=colour, barmode="group", title=title,
                 **(error_bars(frame) if intervals else {}))
    return fig.update_yaxes(range=y_range) if y_range is not None else fig


def lines(frame: pd.DataFrame, x: str, y: str, colour: str, title: str, intervals: bool = False,
          y_range: Sequence[float] | None = None, dash: str | None = None, x_title: str | None = None) -> go.Figure:
    """``y`` over ``x``, a line with markers per ``colour`` (with the frame's Wilson error bars)."""
    fig = px.line(frame, x=x, y=y, color=colour, line_dash=dash, markers=True, title=title,
                  **(error_bars(frame) if intervals else {}))
    if x_title is not None:
        fig.update_xaxes(title_text=x_title)
    return fig.update_yaxes(range=y_range) if y_range is not None else fig


def probes_over_training(frame: pd.DataFrame, metrics: Sequence[str], title: str) -> go.Figure:
    """Fig. 1 / A2: one panel per probe (``metric`` column, in ``metrics``' order), a line per model."""
    fig = px.line(frame, x="epoch", y="value", color="model", facet_col="metric", markers=True,
                  facet_col_spacing=0.06, **error_bars(frame), category_orders={"metric": list(metrics)}, title=title)
    fig.update_yaxes(matches=None, showticklabels=True)
    return fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))


def percent_heatmap(frame: pd.DataFrame, title: str, text: list[list[str]] | None = None,
                    labels: dict | None = None) -> go.Figure:
    """A matrix of percentages (rows x columns of ``frame``) on a 0-100 scale, each cell labelled by ``text`` (or
    its value)."""
    fig = px.imshow(frame.astype(float), zmin=0, zmax=100, color_continuous_scale="Viridis", aspect="auto",
                    title=title, labels=labels or {}, text_auto=".0f" if text is None else False)
    return fig if text is None else fig.update_traces(text=text, texttemplate="%{text}")


def violins(frame: pd.DataFrame, x: str, y: str, title: str) -> go.Figure:
    """The distribution of ``y`` per ``x`` (a box inside each violin)."""
    fig = px.violin(frame, x=x, y=y, color=x, box=True, points=False, title=title)
    return fig.update_layout(showlegend=False)


def strip(frame: pd.DataFrame, x: str, y: str, colour: str, hover: Sequence[str], title: str) -> go.Figure:
    """Every measurement a point, per ``x``."""
    fig = px.strip(frame, x=x, y=y, color=colour, hover_data=list(hover), title=title)
    return fig.update_yaxes(range=SHARE)


def facets(maps: dict[str, np.ndarray], title: str, z_max: float | None = None) -> go.Figure:
    """Square maps of equal shape side by side on one colour scale, frequencies centred (Fourier heat maps and
    spectra)."""
    labels, stack = list(maps), np.stack([np.asarray(m, dtype=float) for m in maps.values()])
    axis = frequency_axis(stack.shape[1])
    fig = px.imshow(stack, facet_col=0, facet_col_wrap=min(4, len(labels)), x=axis, y=axis, zmin=0,
                    zmax=z_max or float(stack.max()), color_continuous_scale="Viridis", title=title)
    return fig.for_each_annotation(lambda a: a.update(text=labels[int(a.text.split("=")[1])]))


def frequency_axis(size: int) -> list[int]:
    half = size // 2
    return list(range(-half, size - half))


def facets_frame(maps: dict[str, np.ndarray]) -> pd.DataFrame:
    """The data behind :func:`facets`: one row per model and frequency."""
    axis = frequency_axis(len(next(iter(maps.values()))))
    return pd.DataFrame([{"model": m, "u": u, "v": v, "value": float(grid[i][j])} for m, grid in maps.items()
                         for i, u in enumerate(axis) for j, v in enumerate(axis)])


def rgba(colour: str, alpha: float) -> str:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha})"


def model_colours(frame: pd.DataFrame) -> dict[str, str]:
    """One colour per normalization, as Fig. A7; one per model where two models share a normalization
    (shortcut on / off, ResNet20 and ResNet56)."""
    norms = frame.drop_duplicates("model").set_index("model")["norm"]
    if norms.is_unique:
        return {m: NORM_COLOURS.get(n, "#444444") for m, n in norms.items()}
    return {m: qualitative.Plotly[i % len(qualitative.Plotly)] for i, m in enumerate(norms.index)}


def landscape_bands(frame: pd.DataFrame) -> go.Figure:
    """App. I: the three measures over training steps, min-max bands over the step sizes, a colour per
    normalization (``frame``: a row per model and measured step)."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=[title for _, title, _, _ in LANDSCAPE_MEASURES],
                        horizontal_spacing=0.07)
    colours = model_colours(frame)
    for model, d in frame.groupby("model", sort=False):
        for col, (_, _, low, high) in enumerate(LANDSCAPE_MEASURES, start=1):
            if low != high:
                fig.add_trace(go.Scatter(x=[*d["step"], *reversed(d["step"].tolist())],
                                         y=[*d[high], *reversed(d[low].tolist())], fill="toself",
                                         fillcolor=rgba(colours[model], 0.35), line=dict(width=0), name=model,
                                         legendgroup=model, showlegend=col == 1, hoverinfo="skip"), row=1, col=col)
            fig.add_trace(go.Scatter(x=d["step"], y=d[high], mode="lines", line=dict(color=colours[model], width=1),
                                     name=model, legendgroup=model, showlegend=False), row=1, col=col)
    fig.update_xaxes(title_text="training step")
    return fig.update_layout(title=f"Optimization landscape on {', '.join(frame['dataset'].unique())}", height=380)


def loss_surface_3d(title: str, loss: list[list[float]], coords: list[float], axes: Sequence[str],
                    zrange: tuple[float, float]) -> go.Figure:
    """The loss on a plane of input space as a surface (``loss[row][column]``: second axis, first axis)."""
    fig = go.Figure(go.Surface(z=loss, x=coords, y=coords, cmin=zrange[0], cmax=zrange[1], colorscale="Viridis",
                               colorbar=dict(title="loss")))
    return fig.update_layout(title=title, height=460, scene=dict(
        xaxis_title=axes[0], yaxis_title=axes[1], zaxis_title="loss", zaxis=dict(range=list(zrange)),
        aspectmode="cube", camera=dict(eye=dict(x=1.6, y=-1.6, z=1.1))))


def loss_plane(loss: list[list[float]], pred: list[list[int]], coords: list[float], axes: Sequence[str],
               zrange: tuple[float, float], names: Sequence[str]) -> go.Figure:
    """Loss contours and predicted-class regions on the plane, the image at the centre (x)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["loss", "predicted class"], horizontal_spacing=0.12)
    fig.add_trace(go.Contour(z=loss, x=coords, y=coords, zmin=zrange[0], zmax=zrange[1], colorscale="Viridis",
                             showscale=False), row=1, col=1)
    k = len(names)
    palette = [qualitative.Dark24[c % 24] for c in range(k)]
    scale = [[edge / k, palette[c]] for c in range(k) for edge in (c, c + 1)]
    fig.add_trace(go.Heatmap(z=pred, x=coords, y=coords, zmin=-0.5, zmax=k - 0.5, colorscale=scale, showscale=False,
                             customdata=[[names[p] for p in row] for row in pred],
                             hovertemplate="%{customdata}<extra></extra>"), row=1, col=2)
    for c in sorted({p for row in pred for p in row}):  # a legend entry per class on the plane
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=names[c],
                                 marker=dict(symbol="square", size=10, color=palette[c])), row=1, col=2)
    for col in (1, 2):
        fig.add_trace(go.Scatter(x=[0], y=[0], mode="markers", marker=dict(symbol="x", size=10, color="white"),
                                 showlegend=False, hoverinfo="skip"), row=1, col=col)
    fig.update_xaxes(title_text=axes[0])
    fig.update_yaxes(title_text=axes[1], col=1)
    return fig.update_layout(height=330)


def measured_table(measured: dict[str, dict]) -> pd.DataFrame:
    """A row per model of its result's single values (numbers, text, flags); its lists and tables are left out."""
    return pd.DataFrame([{"model": model, **{k: v for k, v in fields.items()
                                             if v is None or isinstance(v, (bool, int, float, str))}}
                         for model, fields in measured.items()])
