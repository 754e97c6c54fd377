"""ui.figures: the charts as pure functions of plain data, checked without Streamlit; ui.render.built makes each once."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ui import figures
from ui.intervals import HIGH, LOW, with_wilson


def accuracy_frame() -> pd.DataFrame:
    frame = pd.DataFrame({"model": ["bn", "none", "bn", "none"], "attack": ["pgd", "pgd", "fgsm", "fgsm"],
                          "robust accuracy": [0.2, 0.4, 0.5, 0.3], "n": [100, 100, 100, 100]})
    return with_wilson(frame, "robust accuracy")


def test_grouped_bars_draw_each_models_wilson_interval():
    frame = accuracy_frame()
    fig = figures.grouped_bars(frame, "attack", "robust accuracy", "model", "t")
    bn = next(t for t in fig.data if t.name == "bn")
    assert list(bn.y) == [0.2, 0.5] and list(bn.error_y.array) == pytest.approx(frame[HIGH][frame.model == "bn"])
    assert list(bn.error_y.arrayminus) == pytest.approx(frame[LOW][frame.model == "bn"])
    assert fig.layout.yaxis.range == (0, 1) and fig.layout.barmode == "group"
    plain = figures.grouped_bars(frame, "attack", "robust accuracy", "model", "t", intervals=False, y_range=None)
    assert plain.data[0].error_y.array is None and plain.layout.yaxis.range is None


def test_percent_heatmap_labels_each_cell():
    frame = pd.DataFrame([[50.0, None], [12.5, 80.0]], index=["a", "b"], columns=["x", "y"])
    text = [["50.0", "?"], ["12.5", "80.0"]]
    fig = figures.percent_heatmap(frame, "t", text)
    assert [list(row) for row in fig.data[0].text] == text and fig.data[0].texttemplate == "%{text}"
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0, 100)


def test_facets_name_each_map_and_their_frame_holds_every_value():
    maps = {"bn": np.arange(9.0).reshape(3, 3), "none": np.ones((3, 3))}
    fig = figures.facets(maps, "t")
    assert sorted(a.text for a in fig.layout.annotations) == ["bn", "none"]
    frame = figures.facets_frame(maps)
    assert len(frame) == 18 and figures.frequency_axis(3) == [-1, 0, 1]
    assert frame.query("model == 'bn' and u == 1 and v == -1")["value"].item() == 6.0


def test_landscape_bands_colour_each_normalization_and_legend_each_model_once():
    rows = [{"model": m, "norm": n, "dataset": "builtin", "step": s, "loss_min": 1.0, "loss_max": 2.0,
             "grad_change_min": 0.1, "grad_change_max": 0.2, "beta": 3.0} for m, n in (("a", "bn"), ("b", "none"))
            for s in (10, 20)]
    fig = figures.landscape_bands(pd.DataFrame(rows))
    legend = [t.name for t in fig.data if t.showlegend]
    assert legend == ["a", "b"]
    assert figures.model_colours(pd.DataFrame(rows)) == {"a": figures.NORM_COLOURS["bn"],
                                                         "b": figures.NORM_COLOURS["none"]}


def test_loss_plane_has_a_legend_entry_per_class_on_the_plane():
    pred = [[0, 0, 2], [0, 2, 2], [2, 2, 2]]
    fig = figures.loss_plane([[1.0] * 3] * 3, pred, [-1.0, 0.0, 1.0], ["gradient", "random"], (0.0, 2.0),
                             ["cat", "dog", "ship"])
    assert [t.name for t in fig.data if t.type == "scatter" and t.name] == ["cat", "ship"]


def test_a_built_figure_is_made_once_for_equal_inputs():
    from ui import render

    calls = []

    def counted(frame: pd.DataFrame, title: str):
        calls.append(title)
        return figures.lines(frame, "epoch", "value", "model", title)

    frame = pd.DataFrame({"epoch": [1, 2], "value": [0.1, 0.2], "model": ["a", "a"]})
    first = render.built(counted, frame, "once")
    again = render.built(counted, frame.copy(), "once")
    assert calls == ["once"] and first is again  # shared: made once
    render.built(counted, frame.assign(value=[0.3, 0.4]), "once")
    assert len(calls) == 2


def test_measured_table_keeps_each_results_single_values():
    table = figures.measured_table({"a": {"n": 3, "ligs": 0.5, "kind": "uniform", "per_sample": [0.1, 0.2],
                                          "zero_gradient": None},
                                    "b": {"n": 3, "ligs": 0.7, "kind": "uniform", "per_sample": [0.3, 0.4],
                                          "zero_gradient": 0.0}})
    assert list(table.columns) == ["model", "n", "ligs", "kind", "zero_gradient"]
    assert list(table["ligs"]) == [0.5, 0.7] and table["zero_gradient"].isna().tolist() == [True, False]
