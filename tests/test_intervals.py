"""The intervals drawn beside accuracies (ui/intervals.py) against the Wilson score formula written out by hand."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from ui.intervals import HIGH, LOW, TEXT, with_wilson

Z = 1.959963984540054  # the standard normal's 97.5 % quantile


def wilson_by_hand(correct: int, n: int) -> tuple[float, float]:
    """Wilson (1927): (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)."""
    p = correct / n
    centre, half = p + Z * Z / (2 * n), Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return (centre - half) / (1 + Z * Z / n), (centre + half) / (1 + Z * Z / n)


def test_error_bars_and_text_are_the_wilson_interval():
    frame = with_wilson(pd.DataFrame({"acc": [0.35, 0.0, 1.0, None], "n": [1000, 50, 20, 10]}), "acc")
    for row, (correct, n) in zip(frame.itertuples(index=False), [(350, 1000), (0, 50), (20, 20)]):
        low, high = wilson_by_hand(correct, n)
        assert getattr(row, "acc") - row[2] == pytest.approx(low, abs=1e-9)
        assert getattr(row, "acc") + row[3] == pytest.approx(high, abs=1e-9)
    assert frame[TEXT][0] == "0.350 [0.321, 0.380]" and frame[LOW][1] == 0 and frame[HIGH][2] == 0
    assert frame[TEXT][3] == "" and math.isnan(frame[LOW][3])  # not computed: no interval
