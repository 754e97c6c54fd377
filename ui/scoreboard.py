"""The findings scoreboard as tables and a figure: pure functions of :func:`core.findings.scoreboard`'s plain data
(no Streamlit), so the Overview page only lays them out and tests check them directly."""
from __future__ import annotations

from collections import Counter

import pandas as pd
import plotly.graph_objects as go
from pandas.io.formats.style import Styler

from core.findings import effect_text, row_note

# Each verdict's colour: Streamlit's badge colour name, and a table cell's background (text, not emoji, carries the
# verdict: a browser without an emoji font showed empty boxes).
BADGES = {"holds": ("green", "#d4edda"), "reversed": ("red", "#f8d7da"), "mixed": ("orange", "#ffe8cc"),
          "inconclusive": ("gray", "#eeeeee"), "not measured": ("gray", "")}


def badge(verdict: str) -> str:
    """A verdict as Streamlit markdown (a coloured badge)."""
    return f":{BADGES[verdict][0]}-badge[{verdict}]"


def verdict_colours(table: pd.DataFrame) -> Styler:
    """``table`` with its verdict column's cells coloured by verdict."""
    return table.style.map(lambda v: f"background-color: {BADGES[v][1]}" if BADGES.get(v, ("", ""))[1] else "",
                           subset=[c for c in ("verdict",) if c in table.columns])


def strongest(finding: dict) -> dict | None:
    """The measured row whose interval lies furthest from 0 in the direction of the finding's verdict (the one a
    reader checks first); None where nothing is measured."""
    measured = [r for r in finding["rows"] if r["effect"] is not None]
    if not measured:
        return None
    sign = -1 if finding["verdict"] == "reversed" else 1
    return max(measured, key=lambda r: min(sign * r["effect"]["ci"][0], sign * r["effect"]["ci"][1]))


def scoreboard_table(board: list[dict]) -> pd.DataFrame:
    """One row per finding: verdict, how its rows came out, the clearest effect with its pair, where to look."""
    records = []
    for f in board:
        counts = Counter(r["verdict"] for r in f["rows"])
        best = strongest(f)
        records.append({"#": f["number"], "claim": f["claim"], "paper": f["source"], "verdict": f["verdict"],
                        "rows": ", ".join(f"{counts[v]} {v}" for v in BADGES if counts[v]),
                        "clearest effect (points, 95 % CI)": effect_text(best) if best else "",
                        "on": f"{best['measure']}: {best['pair']}" if best else (f["rows"][0]["note"] if f["rows"]
                                                                                   else "")})
    return pd.DataFrame(records)


def rows_table(finding: dict) -> pd.DataFrame:
    """A finding's rows: pair, measure, effect and interval in points, p, n, seeds, matched clean accuracies."""
    return pd.DataFrame([{
        "pair": r["pair"], "measure": r["measure"], "verdict": r["verdict"], "effect": effect_text(r),
        "p (McNemar)": "" if r["p_value"] is None else f"{r['p_value']:.2g}", "n": r["n"], "seeds": r["seeds"],
        "clean acc": "" if r["clean"] is None else f"{100 * r['clean'][0]:.1f} vs {100 * r['clean'][1]:.1f}",
        "matched": {True: "yes", False: "no", None: ""}[r["matched"]],
        "note": row_note(r)}
        for r in finding["rows"]])


def forest_figure(finding: dict) -> go.Figure | None:
    """Each measured row's effect (points) with its 95 % interval as an error bar, 0 marked: right of the line is
    the paper's direction. None where no row is measured."""
    measured = [r for r in finding["rows"] if r["effect"] is not None]
    if not measured:
        return None
    value = [100 * r["effect"]["value"] for r in measured]
    low = [100 * r["effect"]["ci"][0] for r in measured]
    high = [100 * r["effect"]["ci"][1] for r in measured]
    labels = [f"{r['pair']} · {r['measure']}" for r in measured]
    colours = [BADGES[r["verdict"]][0] for r in measured]
    fig = go.Figure(go.Scatter(x=value, y=labels, mode="markers", marker=dict(color=colours, size=9),
                               error_x=dict(type="data", symmetric=False, array=[h - v for h, v in zip(high, value)],
                                            arrayminus=[v - lo for v, lo in zip(value, low)])))
    fig.add_vline(x=0, line_dash="dash", line_color="gray")
    fig.update_layout(title=f"{finding['number']}. {finding['claim']}", height=120 + 28 * len(measured),
                      xaxis_title="effect in the paper's direction (points, 95 % CI)", showlegend=False)
    fig.update_yaxes(autorange="reversed")
    return fig
