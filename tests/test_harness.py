"""guided_diffusion.experiments.harness: settings, the main job on a testbed's networks, the run cache, the
per-sample outcomes."""

import json
from dataclasses import asdict, replace

import numpy as np
import pytest

from guided_diffusion.evaluation import metrics
from guided_diffusion.experiments import paired
from guided_diffusion.experiments.harness import (
    LABEL_FREE_METRICS,
    LABEL_FREE_OUTCOMES,
    OUTCOMES,
    Config,
    Lab,
    LabelFree,
    summary,
)
from guided_diffusion.experiments.report import provenance
from guided_diffusion.testbeds.digits import DIGITS


def test_reuse_takes_only_the_named_samplers_and_precisions_runs(tmp_path):
    ddpm, solver = Config("adm", "vanilla", 4.0, sampler="ddpm", steps=3), Config("adm", "vanilla", 4.0,
                                                                                   sampler="dpmpp_2m", steps=3)
    ddpm_bf16 = Config("adm", "vanilla", 4.0, sampler="ddpm", steps=3, precision="bf16")
    earlier = tmp_path / "results.json"
    earlier.write_text(json.dumps({"runs": [{"config": asdict(c), "seed": 1, "fid": f, "seconds": 2.0}
                                            for c, f in ((ddpm, 0.5), (solver, 9.0), (ddpm_bf16, 0.6))]}))
    lab = Lab.__new__(Lab)  # reuse touches only the cache: no models needed
    lab.cache = {}
    assert lab.reuse(earlier, ("ddpm",)) == 2
    assert lab.cache == {(ddpm, 1): {"fid": 0.5, "seconds": 2.0}, (ddpm_bf16, 1): {"fid": 0.6, "seconds": 2.0}}
    lab.cache = {}
    assert lab.reuse(earlier, ("ddpm", "dpmpp_2m"), ("fp32",)) == 2
    assert set(lab.cache) == {(ddpm, 1), (solver, 1)}


class Fixed:
    """A stand-in network whose ``extract`` returns fixed outputs, whatever the images."""

    def __init__(self, **outputs):
        self.outputs = outputs

    def extract(self, images):
        return self.outputs

    extract_in_batches = extract


@pytest.mark.parametrize("label_free", [False, True])
def test_per_sample_outcomes_give_back_the_runs_scores(label_free):
    rng = np.random.default_rng(0)
    n, dim, classes = 60, 6, 3
    labels = np.arange(n) % classes
    lab = Lab.__new__(Lab)  # evaluate reads only the networks' outputs and the reference: stand-ins
    lab.reference = {"pool": rng.normal(size=(300, dim)).astype(np.float32)}
    lab.train_labels = np.arange(300) % classes
    lab.reference_stats = {k: metrics.feature_statistics(lab.reference["pool"]) for k in ("pool", "spatial")}
    lab.reference_radii = metrics.manifold_radii(lab.reference["pool"], 3)
    lab.density_radii = metrics.manifold_radii(lab.reference["pool"], 5)
    pool = (rng.normal(size=(n, dim)) + 0.3).astype(np.float32)
    lab.features = Fixed(pool=pool, spatial=pool, softmax=rng.dirichlet(np.ones(classes), n))
    lab.bank = Fixed(**{f"b{k}": np.where(rng.random((n, 1)) < 0.7, labels[:, None], (labels[:, None] + 1) % classes)
                        for k in range(5)})
    guide = np.where(rng.random(n) < 0.9, labels, (labels + 1) % classes)
    lab._extractors = {"guide": Fixed(logits=np.eye(classes)[guide])}
    lab.label_free = None
    if label_free:  # a second feature space, its reference features and samples' features of another size
        reference = rng.normal(size=(300, 4)).astype(np.float32)
        lab.label_free = LabelFree(Fixed(pool=(rng.normal(size=(n, 4)) - 0.2).astype(np.float32)), reference,
                                   metrics.feature_statistics(reference), metrics.manifold_radii(reference, 3))
    config = Config("adm", "vanilla", 2.0, classifier="guide")
    lab.outcomes = {(config, 0): {}}
    scores = lab.evaluate(np.zeros((n, 8, 8, 3)), labels, "guide", outcomes=lab.outcomes[(config, 0)])
    pooled = lab.pooled(config, [0])
    everything = np.arange(n)
    assert sorted(pooled) == sorted((*OUTCOMES, *(LABEL_FREE_OUTCOMES if label_free else ()), "seed"))
    assert all((key in scores) == label_free for key in LABEL_FREE_METRICS)
    chosen = paired.scores(lab, guided=True)
    assert all(chosen[key](pooled, everything) == pytest.approx(value) for key, value in scores.items()
               if key in chosen)
    assert set(chosen) == {"fid", "precision", "recall", "robustness", "gap", *(LABEL_FREE_METRICS * label_free)}
    assert paired.robustness(pooled, everything) == pytest.approx(scores["robustness"])
    assert paired.gap(pooled, everything) == pytest.approx(scores["gap"])
    assert paired.precision(pooled, everything) == pytest.approx(scores["precision"])
    assert paired.fid(lab.reference_stats["pool"])(pooled, everything) == pytest.approx(scores["fid"])
    assert paired.recall(lab.reference["pool"])(pooled, everything) == pytest.approx(scores["recall"])


def stand_in_lab(store, num_samples=6):
    """A Lab whose sampling and scoring are stand-ins that count their calls (run's bookkeeping only)."""
    lab = Lab.__new__(Lab)
    lab.testbed = DIGITS
    lab.train_labels = np.arange(30) % 10
    lab.num_samples, lab.steps, lab.batch_size, lab.store = num_samples, 3, 6, store
    lab.cache, lab.outcomes, lab.kept, lab.taken = {}, {}, {}, 0
    lab.calls = 0

    def sample(config, seed):
        lab.calls += 1
        rng = np.random.default_rng(seed)
        return {"images": rng.integers(0, 255, (num_samples, 4, 4, 3), dtype=np.uint8),
                "labels": np.arange(num_samples) % 10}

    def evaluate(images, labels, guide=None, keep=None, outcomes=None):
        outcomes.update(labels=labels, pool=images.reshape(len(images), -1)[:, :5].astype(np.float32),
                        bank_correct=np.ones((len(images), 2), dtype=bool))
        if keep is not None:
            keep["guide_top1"] = labels
        return {"fid": float(images.mean()), "recall": 0.5, "robustness": 100.0, "gap": 0.0, "guide_top1": 100.0}

    lab.sample, lab.evaluate = sample, evaluate
    return lab


def test_a_stored_run_is_taken_instead_of_sampled_again(tmp_path):
    config = Config("adm", "vanilla", 2.0, steps=3)
    first = stand_in_lab(tmp_path / "store")
    scores = first.run(config, 1)
    assert first.calls == 1 and len(list((tmp_path / "store").glob("*.npz"))) == 1
    (tmp_path / "store" / "torn.partial").write_bytes(b"\0")  # a write cut short: never read

    again = stand_in_lab(tmp_path / "store")  # a later session
    assert again.run(config, 1) == scores and again.calls == 0
    assert all(np.array_equal(again.outcomes[(again.resolved(config), 1)][k], v)
               for k, v in first.outcomes[(first.resolved(config), 1)].items())
    again.run(config, 1, keep=True)  # the images were stored too
    assert again.calls == 0 and again.kept[(again.resolved(config), 1)]["images"].shape == (6, 4, 4, 3)
    assert again.taken == 1  # read twice (scores, then images), one run taken

    for other, changed in ((stand_in_lab(tmp_path / "store"), Config("adm", "prog", 2.0, steps=3)),
                           (stand_in_lab(tmp_path / "store", num_samples=8), config)):
        other.run(changed, 1)
        assert other.calls == 1  # another setting or sample count is another file
    assert stand_in_lab(tmp_path / "store").stored(config, 2) != first.stored(config, 1)
    # a setting's own step or sample count names its file; 0 (the lab's count) is the same run as the count itself
    assert len({first.stored(replace(config, steps=n), 1) for n in (2, 3, 5)}) == 3
    assert len({first.stored(replace(config, samples=n), 1) for n in (4, 6, 8)}) == 3
    assert first.stored(replace(config, steps=0), 1) == first.stored(config, 1)
    assert first.stored(replace(config, samples=6), 1) == first.stored(config, 1)
    assert stand_in_lab(None).stored(config, 1) is None


def test_a_report_says_which_runs_came_from_the_store():
    raw = {"seconds": 120.0, "machine": "a CPU", "runs": [{"seconds": 60.0}, {"seconds": 240.0}]}
    assert "taken from" not in provenance({**raw, "taken_from_store": 0})
    text = provenance({**raw, "taken_from_store": 1})
    assert text.startswith("in 2.0 minutes on a CPU") and "1 of its 2 runs were taken from `--store`" in text
    assert "every run took 5.0 minutes" in text


def test_summary_has_every_score_the_runs_have(tmp_path):
    lab = stand_in_lab(tmp_path / "store")
    config = Config("adm", "vanilla", 2.0, steps=3)
    for seed, fid in ((1, 2.0), (2, 4.0)):
        lab.cache[(lab.resolved(config), seed)] = {"fid": fid, "fid_label_free": 10.0 * fid, "gap": 1.0}
    assert summary(lab, config, [1, 2]) == {"fid": (3.0, 1.0), "fid_label_free": (30.0, 10.0), "gap": (1.0, 0.0)}
