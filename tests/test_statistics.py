"""guided_diffusion.experiments.statistics: paired intervals that cover, McNemar, matched comparisons."""

import numpy as np
import pytest

from guided_diffusion.experiments.statistics import (
    crossing,
    difference_of_proportions,
    interpolate,
    matched_difference,
    mcnemar,
    paired_bootstrap,
    paired_half_sampling,
)


def test_the_paired_interval_covers_a_known_difference_and_is_narrower_than_unpaired():
    rng = np.random.default_rng(0)
    shared = rng.normal(size=2000)  # what two arms share through their common noise
    a, b = shared + 0.1 + 0.1 * rng.normal(size=2000), shared + 0.1 * rng.normal(size=2000)
    paired = paired_bootstrap(lambda i: a[i].mean() - b[i].mean(), 2000, 500)
    assert paired.low < 0.1 < paired.high and paired.excludes_zero()
    unpaired = paired_bootstrap(lambda i: a[i].mean() - b[rng.integers(0, 2000, 2000)].mean(), 2000, 200)
    assert (paired.high - paired.low) < (unpaired.high - unpaired.low) / 3


def test_half_samples_give_a_means_bootstrap_interval_and_draw_half_of_each_seed_without_duplicates():
    rng = np.random.default_rng(3)
    shared = rng.normal(size=1200)
    a, b = shared + 0.1 + 0.2 * rng.normal(size=1200), shared + 0.2 * rng.normal(size=1200)
    strata = np.repeat(np.arange(3), 400)
    seen = []

    def statistic(i: np.ndarray) -> float:
        seen.append(i)
        return a[i].mean() - b[i].mean()

    half = paired_half_sampling(statistic, 1200, 300, strata=strata)
    bootstrap = paired_bootstrap(lambda i: a[i].mean() - b[i].mean(), 1200, 1000, strata=strata)
    assert half.estimate == pytest.approx(bootstrap.estimate) and half.low < 0.1 < half.high
    assert (half.high - half.low) == pytest.approx(bootstrap.high - bootstrap.low, rel=0.2)
    assert all(len(np.unique(i)) == 600 and np.bincount(strata[i]).tolist() == [200] * 3 for i in seen[1:])


def test_a_difference_of_proportions_in_points():
    a = np.array([1] * 60 + [0] * 40, dtype=bool)
    b = np.array([1] * 50 + [0] * 50, dtype=bool)
    interval = difference_of_proportions(a, b)
    assert interval.estimate == pytest.approx(10.0) and interval.low < 10 < interval.high
    with pytest.raises(ValueError, match="equal shapes"):
        difference_of_proportions(a, b[:10])


def test_mcnemar_counts_discordant_pairs():
    a = np.array([True] * 30 + [False] * 5 + [True] * 65)
    b = np.array([False] * 30 + [True] * 5 + [True] * 65)
    result = mcnemar(a, b)
    assert (result["only_a"], result["only_b"]) == (30, 5) and result["p_value"] < 1e-4
    assert mcnemar(a, a)["p_value"] == 1.0


def test_interpolation_along_a_sweep():
    assert interpolate([1.0, 2.0, 4.0], [10.0, 20.0, 40.0], 3.0) == pytest.approx(30.0)
    assert interpolate([4.0, 2.0, 1.0], [40.0, 20.0, 10.0], 1.5) == pytest.approx(15.0)  # decreasing sweep
    assert np.isnan(interpolate([1.0, 2.0], [1.0, 2.0], 5.0))
    assert interpolate([1.0, 3.0, 2.0], [1.0, 3.0, 9.0], 2.0) == pytest.approx(2.0)  # up to the first turn


def test_matched_difference_compares_at_the_same_level_not_the_nearest_point():
    """Arm B reaches each fidelity with 5 points more diversity; their grids never meet at the same fidelity."""
    rng = np.random.default_rng(1)
    n = 400
    noise = rng.normal(size=n)

    def run(fidelity: float, diversity: float) -> dict:
        return {"fidelity": fidelity + 0.01 * noise, "diversity": diversity + 0.01 * noise}

    sweep_a = [run(f, 100 - f) for f in (50, 70, 90)]
    sweep_b = [run(f, 105 - f) for f in (60, 80, 95)]

    def mean_of(key):
        return lambda r, i: float(r[key][i].mean())

    interval = matched_difference(sweep_a, sweep_b, mean_of("fidelity"), mean_of("diversity"), 75.0, num_draws=100)
    assert interval.estimate == pytest.approx(-5.0, abs=0.01) and interval.high < 0


def test_crossing_takes_the_first_segment_that_reaches_the_level():
    assert crossing([1.0, 2.0, 4.0], [10.0, 20.0, 40.0], 3.0) == pytest.approx(30.0)
    # a turn before the level: interpolate stops at it, crossing goes on to the segment that reaches it
    assert np.isnan(interpolate([0.85, 0.97, 0.23, 0.07], [30.0, 62.0, 89.0, 98.0], 0.09))
    assert crossing([0.85, 0.97, 0.23, 0.07], [30.0, 62.0, 89.0, 98.0], 0.09) == pytest.approx(89 + 9 * 14 / 16)
    assert crossing([1.0, 3.0, 1.0], [0.0, 2.0, 4.0], 2.0) == pytest.approx(1.0)  # the first of two crossings
    assert np.isnan(crossing([1.0, 2.0], [1.0, 2.0], 5.0))


def test_a_stratified_bootstrap_resamples_each_stratum_to_its_size():
    strata = np.repeat([0, 1, 2], [5, 10, 20])
    counts = []

    def statistic(indices: np.ndarray) -> float:
        counts.append(np.bincount(strata[indices], minlength=3).tolist())
        return float(indices.mean())

    paired_bootstrap(statistic, len(strata), 50, strata=strata)
    assert all(c == [5, 10, 20] for c in counts)
