"""Paired comparisons of settings from their runs' per-sample outcomes (:meth:`Lab.pooled`), seeds pooled.

Runs of two settings at the same seed share each sample's label and noise, so sample (seed, index) of one is
paired with the same sample of the other. The bootstrap resamples the indices within each seed (to its size),
jointly for every run a statistic reads. FID is the mean over seeds of each seed's FID, as the tables report it
(a resample's duplicates bias each FID upwards, in both arms alike); robustness, precision and the gap are means
of per-sample terms. Recall, density and coverage are left out: their k-NN radii among the samples collapse on a
resample's duplicates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

import numpy as np

from ..evaluation import metrics
from .harness import Lab
from .statistics import crossing, mcnemar, paired_bootstrap

Outcomes = dict[str, np.ndarray]
Score = Callable[[Outcomes, np.ndarray], float]


def robustness(outcomes: Outcomes, indices: np.ndarray) -> float:
    """The bank's mean top-1 (%) on the samples ``indices``."""
    return 100.0 * float(outcomes["bank_correct"][indices].mean())


def precision(outcomes: Outcomes, indices: np.ndarray) -> float:
    """The fraction of the samples ``indices`` inside the reference manifold."""
    return float(outcomes["in_reference"][indices].mean())


def gap(outcomes: Outcomes, indices: np.ndarray) -> float:
    """The guide's top-1 minus the bank's mean top-1 (points) on the samples ``indices``."""
    return 100.0 * float(outcomes["guide_correct"][indices].mean() - outcomes["bank_correct"][indices].mean())


def fid(reference: tuple[np.ndarray, np.ndarray]) -> Score:
    """FID against ``reference`` (mean, covariance): the mean over seeds of each seed's samples' FID."""

    def score(outcomes: Outcomes, indices: np.ndarray) -> float:
        seeds = outcomes["seed"][indices]
        return float(np.mean([metrics.frechet_distance(
            *metrics.feature_statistics(outcomes["pool"][indices[seeds == s]]), *reference)
            for s in np.unique(seeds)]))

    return score


def scores(lab: Lab, guided: bool = False) -> dict[str, Score]:
    """FID, precision and robustness on ``lab``'s networks; with ``guided``, the gap too."""
    chosen = {"fid": fid(lab.reference_stats["pool"]), "precision": precision, "robustness": robustness}
    return {**chosen, "gap": gap} if guided else chosen


def bank_majority(outcomes: Outcomes) -> np.ndarray:
    """Per sample: most of the bank reads its label."""
    return outcomes["bank_correct"].mean(axis=1) > 0.5


def check_paired(*runs: Outcomes) -> None:
    """ValueError unless the runs have the same samples' seeds and labels."""
    for run in runs[1:]:
        for key in ("seed", "labels"):
            if not np.array_equal(run[key], runs[0][key]):
                raise ValueError(f"unpaired runs: their samples' {key} differ")


def compare(a: Outcomes, b: Outcomes, chosen: dict[str, Score], num_draws: int = 1000) -> dict:
    """Each score of ``a`` minus ``b`` with its 95 % paired interval, and McNemar's test on whether most of
    the bank reads each sample's label (``mcnemar``: ``only_a``, ``only_b``, ``p_value``)."""
    check_paired(a, b)
    out = {name: asdict(paired_bootstrap(lambda i, s=score: s(a, i) - s(b, i), len(a["labels"]), num_draws,
                                         strata=a["seed"]))
           for name, score in chosen.items()}
    return {**out, "mcnemar": mcnemar(bank_majority(a), bank_majority(b))}


def at_matched(sweep: list[Outcomes], reference: Outcomes, match: Score, chosen: dict[str, Score],
               num_draws: int = 1000) -> dict:
    """Each score of ``sweep`` (runs in scale order) where its ``match`` first reaches ``reference``'s
    (linear between the two runs that cross it, :func:`crossing`), minus ``reference``'s, with 95 % paired
    intervals; ``reached``: the fraction of the resamples in which the sweep reaches that level (the others
    are left out of the intervals; the estimate is NaN when the samples themselves do not reach it)."""
    check_paired(reference, *sweep)
    levels: dict[bytes, tuple[list[float], float]] = {}  # every draw's match values, shared by the scores

    def matched(indices: np.ndarray) -> tuple[list[float], float]:
        key = indices.tobytes()
        if key not in levels:
            levels[key] = [match(r, indices) for r in sweep], match(reference, indices)
        return levels[key]

    def statistic(score: Score, indices: np.ndarray) -> float:
        xs, level = matched(indices)
        return crossing(xs, [score(r, indices) for r in sweep], level) - score(reference, indices)

    out = {name: asdict(paired_bootstrap(lambda i, s=score: statistic(s, i), len(reference["labels"]), num_draws,
                                         strata=reference["seed"]))
           for name, score in chosen.items()}
    full = np.arange(len(reference["labels"])).tobytes()
    out["reached"] = float(np.mean([np.isfinite(crossing(xs, xs, level)) for key, (xs, level) in levels.items()
                                    if key != full]))
    return out


def interval_text(value: dict, digits: int = 2) -> str:
    """``estimate [low, high]`` of an :class:`~.statistics.Interval`'s dict; "not reached" for a NaN estimate."""
    if not np.isfinite(value["estimate"]):
        return "not reached"
    return f"{value['estimate']:+.{digits}f} [{value['low']:+.{digits}f}, {value['high']:+.{digits}f}]"


def mcnemar_text(result: dict) -> str:
    """``only_a / only_b (p = ...)`` of :func:`~.statistics.mcnemar`'s result."""
    return f"{result['only_a']} / {result['only_b']} (p = {result['p_value']:.2g})"
