"""Paired statistics for comparing sampling arms.

Two arms sampled with the same seed share each sample's label and noise (sample i of both starts from the
same x_T), so their difference is measured pair by pair: a bootstrap that resamples sample indices jointly
for both arms (and for every scale of a sweep) keeps that pairing, and McNemar's test compares paired
correct/incorrect outcomes. Statistics that a resample's duplicates break (recall's k-NN radii among the
samples) get paired half-samples drawn without replacement instead. A comparison "at matched quality" interpolates each
arm's sweep to the same value of the matching metric instead of taking the nearest grid points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval."""

    estimate: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def _percentile_interval(estimate: float, draws: np.ndarray, confidence: float) -> Interval:
    draws = draws[np.isfinite(draws)]
    tail = 100 * (1 - confidence) / 2
    if len(draws) == 0:
        return Interval(estimate, np.nan, np.nan)
    return Interval(float(estimate), float(np.percentile(draws, tail)), float(np.percentile(draws, 100 - tail)))


def paired_bootstrap(statistic: Callable[[np.ndarray], float], n: int, num_draws: int = 1000,
                     confidence: float = 0.95, seed: int = 0, strata: np.ndarray | None = None) -> Interval:
    """``statistic(indices)`` on all ``n`` sample indices, with a percentile interval from ``num_draws``
    resamplings of the indices (with replacement), the same indices for every arm the statistic reads;
    with ``strata`` (a label per index, e.g. its seed) each stratum is resampled to its own size."""
    rng = np.random.default_rng(seed)
    groups = [] if strata is None else [np.flatnonzero(strata == s) for s in np.unique(strata)]

    def resample() -> np.ndarray:
        if strata is None:
            return rng.integers(0, n, n)
        return np.concatenate([rng.choice(g, len(g)) for g in groups])

    estimate = statistic(np.arange(n))
    draws = np.array([statistic(resample()) for _ in range(num_draws)])
    return _percentile_interval(estimate, draws, confidence)


def paired_half_sampling(statistic: Callable[[np.ndarray], float], n: int, num_draws: int = 1000,
                         confidence: float = 0.95, seed: int = 0, strata: np.ndarray | None = None) -> Interval:
    """``statistic(indices)`` on all ``n`` sample indices, with an interval from ``num_draws`` half-samples drawn
    without replacement (half of each stratum), the same indices for every arm the statistic reads: the estimate
    plus the percentiles of the half-samples' values around their mean. A half-sample without replacement varies
    as much as the full sample does (finite-population factor 1/2 times twice the variance), and it has no
    duplicates, which break statistics on k-NN radii among the samples (recall)."""
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if strata is None else [np.flatnonzero(strata == s) for s in np.unique(strata)]
    estimate = statistic(np.arange(n))
    draws = np.array([statistic(np.sort(np.concatenate([rng.choice(g, len(g) // 2, replace=False) for g in groups])))
                      for _ in range(num_draws)])
    draws = draws[np.isfinite(draws)]
    return _percentile_interval(estimate, estimate + draws - draws.mean() if len(draws) else draws, confidence)


def difference_of_proportions(a: np.ndarray, b: np.ndarray, num_draws: int = 2000, confidence: float = 0.95,
                              seed: int = 0) -> Interval:
    """Paired difference ``mean(a) - mean(b)`` of two boolean outcomes per sample (in points: x 100)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes need equal shapes, got {a.shape} and {b.shape}")
    return paired_bootstrap(lambda i: 100.0 * (a[i].mean() - b[i].mean()), len(a), num_draws, confidence, seed)


def mcnemar(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """McNemar's exact test for paired correct / incorrect outcomes: ``only_a`` and ``only_b`` (the discordant
    pairs) and the two-sided p-value of the binomial test that they are equally likely."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    discordant = only_a + only_b
    p = 1.0 if discordant == 0 else float(stats.binomtest(only_a, discordant, 0.5).pvalue)
    return {"only_a": only_a, "only_b": only_b, "p_value": p}


def interpolate(xs: Sequence[float], ys: Sequence[float], at: float) -> float:
    """``y`` at ``x = at`` along the piecewise-linear curve through a sweep's points (``xs`` monotone in
    the sweep's order); NaN when ``at`` is outside the range the sweep covers."""
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if not (np.all(np.diff(xs) >= 0) or np.all(np.diff(xs) <= 0)):
        xs, ys = _monotone(xs, ys)
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    if not xs[0] <= at <= xs[-1]:
        return float("nan")
    return float(np.interp(at, xs, ys))


def crossing(xs: Sequence[float], ys: Sequence[float], at: float) -> float:
    """``y`` where a sweep (in scale order) first reaches ``x = at``, linear on the segment that crosses it;
    NaN when no segment does. Unlike :func:`interpolate`, a turn before the crossing does not hide it."""
    for x0, x1, y0, y1 in zip(xs[:-1], xs[1:], ys[:-1], ys[1:], strict=True):
        if min(x0, x1) <= at <= max(x0, x1):
            return float(y0) if x1 == x0 else float(y0 + (y1 - y0) * (at - x0) / (x1 - x0))
    return float("nan")


def _monotone(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points of a sweep up to where its matching metric stops moving one way (the first turn)."""
    direction = np.sign(xs[-1] - xs[0]) or 1.0
    keep = [0]
    for i in range(1, len(xs)):
        if (xs[i] - xs[keep[-1]]) * direction <= 0:
            break
        keep.append(i)
    return xs[keep], ys[keep]


def matched_difference(sweep_a: Sequence[dict[str, np.ndarray]], sweep_b: Sequence[dict[str, np.ndarray]],
                       match: Callable[[dict[str, np.ndarray], np.ndarray], float],
                       compare: Callable[[dict[str, np.ndarray], np.ndarray], float], level: float,
                       num_draws: int = 300, confidence: float = 0.95, seed: int = 0) -> Interval:
    """``compare`` of arm A minus arm B where each arm's sweep (its runs in scale order, each a dict of
    per-sample arrays of equal length n, paired across runs and arms) reaches ``match = level``, by linear
    interpolation along the sweep; the interval resamples the sample indices of every run together."""
    n = len(next(iter(sweep_a[0].values())))

    def statistic(indices: np.ndarray) -> float:
        at = []
        for sweep in (sweep_a, sweep_b):
            xs = [match(run, indices) for run in sweep]
            ys = [compare(run, indices) for run in sweep]
            at.append(interpolate(xs, ys, level))
        return at[0] - at[1]

    return paired_bootstrap(statistic, n, num_draws, confidence, seed)
