"""guided_diffusion.experiments.harness: settings, the main job on a testbed's networks, the run cache, the
per-sample outcomes."""

import json
from dataclasses import asdict

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
)


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
