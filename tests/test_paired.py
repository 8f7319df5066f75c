"""guided_diffusion.experiments.paired: paired differences over pooled seeds, at the same scale and at matched FID."""

import numpy as np
import pytest

from guided_diffusion.evaluation import metrics
from guided_diffusion.experiments import paired

SEEDS, N, DIM = 3, 200, 4


def outcomes(rng: np.random.Generator, shared: np.ndarray, mean: np.ndarray, correct: float) -> dict:
    """An arm's pooled outcomes: features ``shared + mean`` plus its own noise, ``correct`` of the bank right."""
    pool = shared + mean + 0.3 * rng.normal(size=shared.shape)
    labels = np.tile(np.arange(N) % 10, SEEDS)
    bank = rng.random((SEEDS * N, 5)) < correct
    return {"labels": labels, "pool": pool, "in_reference": bank[:, 0], "bank_correct": bank,
            "guide_correct": bank.all(axis=1), "seed": np.repeat(np.arange(SEEDS), N)}


def test_the_paired_fid_difference_covers_the_truth_and_is_each_seeds_fid_averaged():
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(SEEDS * N, DIM))  # what both arms share through their noise
    mean_a, mean_b = np.array([0.5, 0, 0, 0]), np.array([0.2, 0, 0, 0])
    a, b = outcomes(rng, shared, mean_a, 0.9), outcomes(rng, shared, mean_b, 0.8)
    reference = (np.zeros(DIM), np.eye(DIM))  # the same covariance for both arms: the truth is |m_a|^2 - |m_b|^2
    fid = paired.fid(reference)
    result = paired.compare(a, b, {"fid": fid, "robustness": paired.robustness}, num_draws=200)
    truth = mean_a @ mean_a - mean_b @ mean_b
    assert result["fid"]["low"] < truth < result["fid"]["high"] and result["fid"]["low"] > 0
    by_seed = [metrics.frechet_distance(*metrics.feature_statistics(a["pool"][a["seed"] == s]), *reference)
               for s in range(SEEDS)]
    assert fid(a, np.arange(SEEDS * N)) == pytest.approx(np.mean(by_seed))
    assert result["robustness"]["low"] < 10 < result["robustness"]["high"]
    majority_a, majority_b = paired.bank_majority(a), paired.bank_majority(b)
    assert result["mcnemar"]["only_a"] == int((majority_a & ~majority_b).sum())


def test_the_paired_recall_interval_has_the_width_of_the_differences_spread_over_independent_draws():
    """Recall's k-NN radii among the samples: half-samples over pooled seeds give an interval whose width matches
    the spread of the recall difference between two paired arms over 60 independent replications (the bootstrap's
    duplicates shrink it and move it off the estimate)."""
    rng = np.random.default_rng(4)
    reference = rng.normal(size=(400, DIM))
    recall = paired.recall(reference)

    def arms() -> tuple[dict, dict]:
        shared = rng.normal(size=(SEEDS * N, DIM))
        return (outcomes(rng, shared, np.zeros(DIM), 0.5),
                outcomes(rng, 0.6 * shared, np.zeros(DIM), 0.5))  # b: narrower, so lower recall

    differences = [recall(a, np.arange(SEEDS * N)) - recall(b, np.arange(SEEDS * N)) for a, b in
                   (arms() for _ in range(60))]
    a, b = arms()
    result = paired.compare(a, b, {"recall": recall}, num_draws=200)["recall"]
    half_width = (result["high"] - result["low"]) / 2
    assert result["low"] > 0
    assert 0.75 < half_width / (1.96 * np.std(differences)) < 1.3
    assert abs((result["low"] + result["high"]) / 2 - result["estimate"]) < 0.25 * half_width
    by_seed = [metrics.precision_recall(reference, a["pool"][a["seed"] == s], 3)[1] for s in range(SEEDS)]
    assert recall(a, np.arange(SEEDS * N)) == pytest.approx(np.mean(by_seed))


def test_unpaired_runs_are_refused():
    rng = np.random.default_rng(1)
    shared = rng.normal(size=(SEEDS * N, DIM))
    a, b = outcomes(rng, shared, np.zeros(DIM), 0.5), outcomes(rng, shared, np.zeros(DIM), 0.5)
    b["labels"] = np.roll(b["labels"], 1)
    with pytest.raises(ValueError, match="labels differ"):
        paired.compare(a, b, {"robustness": paired.robustness}, num_draws=10)


def test_at_matched_interpolates_the_sweep_to_the_references_level_past_a_turn():
    """The sweep's fidelity turns before it reaches the reference's (2.5); there, its score is 5 above."""
    rng = np.random.default_rng(2)
    noise = rng.normal(size=SEEDS * N)
    seed, labels = np.repeat(np.arange(SEEDS), N), np.zeros(SEEDS * N, dtype=int)

    def run(x: float, y: float) -> dict:
        return {"x": x + 0.01 * noise, "y": y + 0.01 * noise, "seed": seed, "labels": labels}

    def mean_of(key):
        return lambda r, i: float(r[key][i].mean())

    sweep = [run(1.0, 10.0), run(0.5, 5.0), run(3.0, 30.0), run(5.0, 50.0)]
    result = paired.at_matched(sweep, run(2.5, 20.0), mean_of("x"), {"y": mean_of("y")}, num_draws=100)
    assert result["y"]["estimate"] == pytest.approx(5.0, abs=0.05) and result["y"]["low"] > 0
    assert result["reached"] == 1.0
    unreached = paired.at_matched(sweep, run(9.0, 10.0), mean_of("x"), {"y": mean_of("y")}, num_draws=20)
    assert np.isnan(unreached["y"]["estimate"]) and unreached["reached"] == 0.0


def test_recall_from_the_sorted_distances_equals_the_direct_computation_on_any_subset(monkeypatch):
    """The score keeps each run's sorted distances to the references; on subsets of the samples (half-samples,
    a bootstrap's duplicates, runs beyond what it keeps) it gives exactly metrics' k-NN recall of that subset."""
    monkeypatch.setattr(paired, "SORTED_RUNS", 2)
    rng = np.random.default_rng(3)
    reference = rng.normal(size=(500, DIM)).astype(np.float32)
    recall = paired.recall(reference)

    def direct(run: dict, indices: np.ndarray) -> float:
        seeds = run["seed"][indices]
        return float(np.mean([metrics.precision_recall(reference, run["pool"][indices[seeds == s]], 3)[1]
                              for s in np.unique(seeds)]))

    runs = [outcomes(rng, rng.normal(size=(SEEDS * N, DIM)), np.zeros(DIM), 0.9) for _ in range(3)]
    for run in runs + runs[:1]:  # the first again, after it was dropped
        run["pool"] = run["pool"].astype(np.float32)
        for indices in (np.arange(SEEDS * N), np.sort(rng.choice(SEEDS * N, SEEDS * N // 2, replace=False)),
                        np.sort(rng.integers(0, SEEDS * N, SEEDS * N))):
            assert recall(run, indices) == direct(run, indices)
