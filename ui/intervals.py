"""95 % Wilson intervals beside accuracies in tables and as error bars in charts (:func:`core.stats.wilson_interval`).

Every share shown (an accuracy, an attack's success rate) is a count out of ``n`` test images; its interval says how
far the number could move on another draw of that many images.
"""
from __future__ import annotations

import pandas as pd

from core.stats import wilson_interval

LOW, HIGH, TEXT = "CI below", "CI above", "95 % CI"  # error-bar lengths (plotly's error_y_minus / error_y), and text


def interval_text(share: float, n: int) -> str:
    """``share [low, high]``: a share of ``n`` images and its 95 % Wilson interval."""
    low, high = wilson_interval(round(share * n), n)
    return f"{share:.3f} [{low:.3f}, {high:.3f}]"


def with_wilson(frame: pd.DataFrame, value: str, n: str = "n") -> pd.DataFrame:
    """``frame`` with its ``value`` column's Wilson interval: the error bars' lengths and ``value [low, high]``."""
    bounds = [wilson_interval(round(v * k), k) if pd.notna(v) and k else (float("nan"),) * 2
              for v, k in zip(frame[value], frame[n])]
    low = pd.Series([b[0] for b in bounds], index=frame.index)
    high = pd.Series([b[1] for b in bounds], index=frame.index)
    text = [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" if pd.notna(lo) else "" for v, lo, hi in zip(frame[value], low, high)]
    return frame.assign(**{LOW: frame[value] - low, HIGH: high - frame[value], TEXT: text})


def error_bars(frame: pd.DataFrame) -> dict:
    """Plotly express arguments drawing a :func:`with_wilson` frame's intervals."""
    return {"error_y": HIGH, "error_y_minus": LOW}
