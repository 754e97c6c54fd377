"""core.stats against hand computations: Wilson's formula, McNemar's exact test on a 2x2 table, and the bootstrap's
invariants."""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.stats import (Estimate, mcnemar_exact, outcomes, paired_difference, seed_interval, unpaired_difference,
                        wilson_interval)

Z = 1.959963984540054  # the standard normal's 97.5 % quantile


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    """Wilson (1927): (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)."""
    p = k / n
    centre, half = p + Z ** 2 / (2 * n), Z * math.sqrt(p * (1 - p) / n + Z ** 2 / (4 * n ** 2))
    return (centre - half) / (1 + Z ** 2 / n), (centre + half) / (1 + Z ** 2 / n)


@pytest.mark.parametrize("k, n", [(35, 100), (336, 1000), (0, 10), (10, 10), (1, 3)])
def test_wilson_interval_is_the_formula(k, n):
    assert wilson_interval(k, n) == pytest.approx(wilson_by_hand(k, n), abs=1e-12)


def test_mcnemar_exact_is_the_binomial_tail_of_the_discordant_images():
    # 2x2 table: both right 50, only a right 7, only b right 2, both wrong 41
    a = np.r_[np.ones(50), np.ones(7), np.zeros(2), np.zeros(41)].astype(bool)
    b = np.r_[np.ones(50), np.zeros(7), np.ones(2), np.zeros(41)].astype(bool)
    by_hand = 2 * sum(math.comb(9, i) for i in range(3)) / 2 ** 9  # two-sided: 2 P(X <= 2), X ~ Bin(9, 1/2)
    assert mcnemar_exact(a, b) == pytest.approx(by_hand) == pytest.approx(92 / 512)
    assert mcnemar_exact(a, a) == 1.0  # no discordant image: no evidence either way


def test_a_paired_difference_covers_its_value_and_is_a_point_where_nothing_varies():
    rng = np.random.default_rng(1)
    a, b = rng.random(500) < 0.6, rng.random(500) < 0.3
    d = paired_difference(a, b)
    assert d.value == pytest.approx(a.mean() - b.mean()) and d.low < d.value < d.high
    assert d.excludes_zero() == 1
    same = paired_difference(np.ones(100), np.zeros(100))
    assert (same.value, same.low, same.high) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="same images"):
        paired_difference(np.ones(3), np.ones(4))


def test_pairing_narrows_the_interval_of_two_correlated_classifiers():
    rng = np.random.default_rng(2)
    a = rng.random(1000) < 0.5
    b = a.copy()
    b[rng.choice(1000, 30, replace=False)] ^= True  # b differs from a on 30 images
    paired, unpaired = paired_difference(a, b), unpaired_difference(a, b)
    assert paired.high - paired.low < (unpaired.high - unpaired.low) / 2


def test_outcomes_rebuild_a_rate():
    assert outcomes(0.351, 1000).sum() == 351 and len(outcomes(0.351, 1000)) == 1000


def test_seed_interval_is_a_t_interval_and_unknown_for_one_seed():
    values = [0.80, 0.82, 0.78]
    mean, sd = np.mean(values), np.std(values, ddof=1)
    half = 4.302652729911275 * sd / math.sqrt(3)  # t(0.975, 2 degrees of freedom)
    got = seed_interval(values)
    assert (got.low, got.high) == pytest.approx((mean - half, mean + half))
    one = seed_interval([0.8])
    assert math.isnan(one.low) and one.excludes_zero() == 0


def test_scaling_by_a_negative_factor_swaps_the_ends():
    assert Estimate(0.1, 0.05, 0.2).scaled(-1) == Estimate(-0.1, -0.2, -0.05)
