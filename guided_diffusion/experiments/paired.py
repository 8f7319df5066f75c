"""Paired comparisons of settings from their runs' per-sample outcomes (:meth:`Lab.pooled`), seeds pooled.

Runs of two settings at the same seed share each sample's label and noise, so sample (seed, index) of one is
paired with the same sample of the other. The bootstrap resamples the indices within each seed (to its size),
jointly for every run a statistic reads. FID is the mean over seeds of each seed's FID, as the tables report it
(a resample's duplicates bias each FID upwards, in both arms alike); robustness, precision and the gap are means
of per-sample terms. Recall (the mean over seeds of each seed's recall) reads k-NN radii among the samples, which
collapse on a resample's duplicates: its interval comes from paired half-samples without replacement (half of each
seed's samples; statistics.paired_half_sampling) instead. Density and coverage are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from functools import partial

import numpy as np
import torch

from ..evaluation import metrics
from .harness import Lab
from .statistics import Interval, crossing, mcnemar, paired_bootstrap, paired_half_sampling

Outcomes = dict[str, np.ndarray]
Score = Callable[[Outcomes, np.ndarray], float]
HALF_SAMPLED = frozenset({"recall", "recall_label_free"})  # intervals from half-samples, not the bootstrap


def robustness(outcomes: Outcomes, indices: np.ndarray) -> float:
    """The bank's mean top-1 (%) on the samples ``indices``."""
    return 100.0 * float(outcomes["bank_correct"][indices].mean())


def precision(outcomes: Outcomes, indices: np.ndarray, key: str = "in_reference") -> float:
    """The fraction of the samples ``indices`` inside the reference manifold (``key``: of which feature space)."""
    return float(outcomes[key][indices].mean())


def gap(outcomes: Outcomes, indices: np.ndarray) -> float:
    """The guide's top-1 minus the bank's mean top-1 (points) on the samples ``indices``."""
    return 100.0 * float(outcomes["guide_correct"][indices].mean() - outcomes["bank_correct"][indices].mean())


def fid(reference: tuple[np.ndarray, np.ndarray], key: str = "pool") -> Score:
    """FID against ``reference`` (mean, covariance) of the features ``key``: the mean over seeds of each seed's
    samples' FID."""

    def score(outcomes: Outcomes, indices: np.ndarray) -> float:
        seeds = outcomes["seed"][indices]
        return float(np.mean([metrics.frechet_distance(
            *metrics.feature_statistics(outcomes[key][indices[seeds == s]]), *reference)
            for s in np.unique(seeds)]))

    return score


SORTED_RUNS = 8  # runs whose sample-to-reference distances a recall score keeps (80 MB each at 1,000 x 10,000)


def recall(reference: np.ndarray, nhood_size: int = 3, key: str = "pool") -> Score:
    """Recall against the ``reference`` features (the samples' ``key``): the mean over seeds of each seed's
    samples' (the share of the references within some sample's k-NN radius among that seed's samples, as
    metrics.precision_recall).

    The distances from each of a run's samples to every reference are computed and sorted once (for the last
    :data:`SORTED_RUNS` runs scored), so that a subset of the samples costs its own radii and the pairs they
    cover, not a distance matrix to all the references: the same values, about 8x faster on 10,000 references."""
    ref = torch.as_tensor(reference, dtype=torch.float32)
    kept: dict[int, tuple[np.ndarray, torch.Tensor, np.ndarray]] = {}  # id -> (features, distances, references)

    def by_distance(features: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """Per sample: its squared distances to the references in ascending order, and those references."""
        if id(features) not in kept:
            if len(kept) >= SORTED_RUNS:
                kept.pop(next(iter(kept)))
            d = metrics.squared_distances(ref, torch.as_tensor(features, dtype=torch.float32)).T.contiguous()
            values, order = d.sort(dim=1)
            kept[id(features)] = (features, values, order.int().numpy())  # kept, so that its id stays its own
        return kept[id(features)][1:]

    def score(outcomes: Outcomes, indices: np.ndarray) -> float:
        features = outcomes[key]
        values, order = by_distance(features)
        seeds = outcomes["seed"][indices]
        recalls = []
        for s in np.unique(seeds):
            chosen = indices[seeds == s]
            radii = torch.full((len(features),), -torch.inf)
            radii[chosen] = metrics.manifold_radii(features[chosen], nhood_size)
            counts = torch.searchsorted(values, radii[:, None], right=True)[:, 0].numpy()  # references within
            rows = np.repeat(np.arange(len(features)), counts)
            columns = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
            covered = np.zeros(len(ref), dtype=bool)
            covered[order[rows, columns]] = True
            recalls.append(float(covered.mean()))
        return float(np.mean(recalls))

    return score


def scores(lab: Lab, guided: bool = False) -> dict[str, Score]:
    """FID, precision, recall and robustness on ``lab``'s networks; with ``guided``, the gap too; with a
    label-free feature network, FID, precision and recall in its space too (``*_label_free``)."""
    chosen = {"fid": fid(lab.reference_stats["pool"]), "precision": precision, "recall": recall(lab.reference["pool"]),
              "robustness": robustness}
    if lab.label_free is not None:
        key = "pool_label_free"
        chosen.update(fid_label_free=fid(lab.label_free.statistics, key),
                      precision_label_free=partial(precision, key="in_reference_label_free"),
                      recall_label_free=recall(lab.label_free.reference, key=key))
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


def interval(name: str, statistic: Callable[[np.ndarray], float], seeds: np.ndarray, num_draws: int) -> Interval:
    """The 95 % paired interval of the score ``name`` from ``num_draws`` resamples within each seed: half-samples
    without replacement for :data:`HALF_SAMPLED`, the bootstrap's otherwise."""
    if name in HALF_SAMPLED:
        return paired_half_sampling(statistic, len(seeds), num_draws, strata=seeds)
    return paired_bootstrap(statistic, len(seeds), num_draws, strata=seeds)


def compare(a: Outcomes, b: Outcomes, chosen: dict[str, Score], num_draws: int = 1000) -> dict:
    """Each score of ``a`` minus ``b`` with its 95 % paired interval, and McNemar's test on whether most of
    the bank reads each sample's label (``mcnemar``: ``only_a``, ``only_b``, ``p_value``)."""
    check_paired(a, b)
    out = {name: asdict(interval(name, lambda i, s=score: s(a, i) - s(b, i), a["seed"], num_draws))
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

    out = {name: asdict(interval(name, lambda i, s=score: statistic(s, i), reference["seed"], num_draws))
           for name, score in chosen.items()}
    full = np.arange(len(reference["labels"])).tobytes()
    out["reached"] = float(np.mean([np.isfinite(crossing(xs, xs, level)) for key, (xs, level) in levels.items()
                                    if key != full and len(key) == len(full)]))  # the bootstrap's resamples
    return out


def interval_text(value: dict, digits: int = 2) -> str:
    """``estimate [low, high]`` of an :class:`~.statistics.Interval`'s dict; "not reached" for a NaN estimate."""
    if not np.isfinite(value["estimate"]):
        return "not reached"
    return f"{value['estimate']:+.{digits}f} [{value['low']:+.{digits}f}, {value['high']:+.{digits}f}]"


def mcnemar_text(result: dict) -> str:
    """``only_a / only_b (p = ...)`` of :func:`~.statistics.mcnemar`'s result."""
    return f"{result['only_a']} / {result['only_b']} (p = {result['p_value']:.2g})"


INTERVAL_COLUMNS = (("FID", "fid", 3), ("Prec", "precision", 3), ("Rec", "recall", 3),
                    ("Robustness (points)", "robustness", 1))
LABEL_FREE_COLUMNS = (("FID (label-free)", "fid_label_free", 3), ("Rec (label-free)", "recall_label_free", 3))


def interval_rows(rows: dict[str, dict], columns: tuple[tuple[str, str, int], ...] = INTERVAL_COLUMNS) -> str:
    """Markdown rows of :func:`compare`'s results by name: each of ``columns`` (title, score, digits), then
    McNemar."""
    return "\n".join(f"| {name} | " + " | ".join(interval_text(r[key], digits) for _, key, digits in columns)
                     + f" | {mcnemar_text(r['mcnemar'])} |" for name, r in rows.items())


def interval_head(first: str, columns: tuple[tuple[str, str, int], ...] = INTERVAL_COLUMNS) -> str:
    """The header of :func:`interval_rows`'s table, its first column named ``first``."""
    titles = [first, *(title for title, _, _ in columns), "McNemar (bank majority)"]
    return "| " + " | ".join(titles) + " |\n" + "|---" * len(titles) + "|"
