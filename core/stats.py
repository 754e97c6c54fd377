"""Uncertainty of the numbers NormScope shows, from scipy (no hand-written statistics):

* :func:`wilson_interval`: a 95 % Wilson score interval of an accuracy (``scipy.stats.binomtest``);
* :func:`paired_difference`: the mean per-image difference of two models on the same images, with a BCa bootstrap
  interval (``scipy.stats.bootstrap``, resampling images);
* :func:`unpaired_difference`: the same for outcomes not matched image by image (counts only, or other images);
* :func:`mcnemar_exact`: McNemar's exact test on the discordant images of two classifiers (``binomtest``);
* :func:`seed_interval`: the mean over training seeds with a t-interval (``scipy.stats.t``).

Every bootstrap draws from a fixed seed, so a result shown twice is the same number.
"""
from __future__ import annotations

import functools

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import stats

from core.errors import ParameterError

LEVEL = 0.95
RESAMPLES = 2000  # the CI's ends move by well under 0.5 points between bootstrap seeds at n = 1000
SEED = 0


@dataclass(frozen=True)
class Estimate:
    """A number and its interval at :data:`LEVEL` (``low == high == value`` where the data cannot vary)."""

    value: float
    low: float
    high: float

    def excludes_zero(self) -> int:
        """+1 where the interval lies above 0, -1 where below, 0 where it contains 0 (or is unknown: NaN)."""
        return 1 if self.low > 0 else -1 if self.high < 0 else 0

    def scaled(self, factor: float) -> "Estimate":
        """The estimate times ``factor`` (a negative factor swaps the ends)."""
        ends = sorted((self.low * factor, self.high * factor))
        return Estimate(self.value * factor, ends[0], ends[1])

    def to_dict(self) -> dict:
        return {"value": self.value, "ci": [self.low, self.high]}


@functools.lru_cache(maxsize=2 ** 16)
def wilson_interval(correct: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """The Wilson score interval of ``correct`` successes in ``n`` trials (kept per process: scipy's takes ~1 ms, and
    a page draws hundreds of the same few)."""
    ci = stats.binomtest(int(correct), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def accuracy_estimate(correct: int, n: int) -> Estimate:
    low, high = wilson_interval(correct, n)
    return Estimate(correct / n, low, high)


def bootstrap_estimate(samples: tuple[np.ndarray, ...], statistic: Callable, paired: bool) -> Estimate:
    """``statistic(*samples)`` with its BCa bootstrap interval; a point interval where no resample can differ."""
    value = float(statistic(*samples))
    if all(np.ptp(s) == 0 for s in samples):
        return Estimate(value, value, value)
    result = stats.bootstrap(samples, statistic, paired=paired, confidence_level=LEVEL, n_resamples=RESAMPLES,
                             method="BCa", vectorized=True, rng=np.random.default_rng(SEED))
    ci = result.confidence_interval
    return Estimate(value, float(ci.low), float(ci.high))


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def paired_difference(a: Sequence[float], b: Sequence[float]) -> Estimate:
    """mean(a) - mean(b) over the same images (``a[i]``, ``b[i]``: image i), images resampled together."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ParameterError(f"a paired comparison needs the same images on both sides, got {len(a)} and {len(b)}")
    return bootstrap_estimate((a, b), _mean_difference, paired=True)


def unpaired_difference(a: Sequence[float], b: Sequence[float]) -> Estimate:
    """mean(a) - mean(b), each side resampled on its own."""
    return bootstrap_estimate((np.asarray(a, dtype=float), np.asarray(b, dtype=float)), _mean_difference,
                              paired=False)


def outcomes(rate: float, n: int) -> np.ndarray:
    """The 0/1 outcomes behind a rate over ``n`` trials (their order does not matter to an unpaired bootstrap)."""
    hits = int(round(rate * n))
    return np.r_[np.ones(hits), np.zeros(n - hits)]


def mcnemar_exact(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> float:
    """Two-sided p-value of McNemar's exact test: among the images exactly one of the two gets right, is each
    equally likely to be the one? 1.0 where none is discordant."""
    a, b = np.asarray(a_correct, dtype=bool), np.asarray(b_correct, dtype=bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    return 1.0 if only_a + only_b == 0 else float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def seed_interval(values: Sequence[float]) -> Estimate:
    """The mean over seeds and its t-interval; NaN ends for a single seed (no spread to estimate from)."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return Estimate(mean, float("nan"), float("nan"))
    if np.ptp(x) == 0:
        return Estimate(mean, mean, mean)
    low, high = stats.t.interval(LEVEL, len(x) - 1, loc=mean, scale=stats.sem(x))
    return Estimate(mean, float(low), float(high))
