"""The experiment harness: sampling settings run through the main job on a testbed, and scored.

A :class:`Config` is one sampling setting (model, guidance, scale, schedule, guidance classifier,
sampler, steps, precision); :class:`Lab` samples it with the main job
(:class:`~guided_diffusion.sampling.job.MainJob`, ``--classes balanced``: sample i of a seed is class
i mod C, with its own noise) and scores it with the evaluator's code on the testbed's feature network
(FID, sFID, IS, precision, recall, density, coverage, per-class recall, against the testbed's reference
images), its robustness bank (mean top-1 accuracy against the conditioning labels) and, for classifier
guidance, the guidance classifier's own top-1 on the final samples and the gap to the bank
(evaluations/robustness.py --guide). Networks are loaded once; runs are cached by setting and seed, each with
its per-sample outcomes (:data:`OUTCOMES`, for the paired statistics of :mod:`.paired`), and with a ``store``
folder also kept on disk, so that an experiment stopped midway (a session's end) resumes where it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .. import script_util as su
from ..checkpoints import load_checkpoint
from ..evaluation import metrics
from ..evaluation.autoencoder import AutoencoderExtractor, load_autoencoder
from ..evaluation.feature_extractors import ClassifierExtractor, load_classifier
from ..evaluation.robustness import adversarial_gap, bank_top1, build_bank, robustness
from ..models import manifest
from ..progressive.plan import RELEVANCE_GUIDANCES
from ..progressive.relevance import (
    CLASS_DESCRIPTIONS_DIR,
    classifier_confusion,
    create_encoder,
    entropy_matched_smoothing,
    load_descriptions,
    load_relevance,
    relevance_from_confusion,
    relevance_from_descriptions,
    shipped_relevance,
    shuffled_relevance,
)
from ..sampling.job import MainJob, job_args
from ..sampling.samplers import MODEL_FLAGS, from_uint8_nhwc
from ..testbeds.testbed import Testbed, first_of_each

METRICS = ("fid", "sfid", "inception_score", "precision", "recall", "density", "coverage", "per_class_recall",
           "robustness")
GUIDE_METRICS = ("guide_top1", "gap", "fooled_fraction")
# per sample: its label, its pooled features (FID's), inside the reference manifold (precision's term), each bank
# member's top-1 correct ([N, members]) and, for classifier guidance, the guide's top-1 correct
OUTCOMES = ("labels", "pool", "in_reference", "bank_correct", "guide_correct")
# with a label-free feature network: FID, precision and recall in its space too, and per sample its features
LABEL_FREE_METRICS = ("fid_label_free", "precision_label_free", "recall_label_free")
LABEL_FREE_OUTCOMES = ("pool_label_free", "in_reference_label_free")


@dataclass(frozen=True)
class Config:
    """One sampling setting; ``relevance`` names where s_T comes from (see Lab.relevance)."""

    model: str  # a key of the testbed's models: adm | cadm
    guidance: str  # none | vanilla | prog | uniform_ls | ls | eds | prog_eds | ramped | cfg
    scale: float = 1.0
    gamma: float = 0.04
    reference_steps: int | None = 250  # gamma stated for this many steps (None: per actual step)
    relevance: str = "text"
    ls_eps: float = 0.1
    classifier: str = ""  # the guidance classifier: a shipped name or X.pt (with X.json); "": the testbed's
    sampler: str = "ddpm"  # ddpm | ddim | dpmpp_2m | dpmpp_2m_sde
    steps: int = 0  # 0: the lab's step count
    precision: str = "fp32"
    spacing: str = ""  # "": uniform in time (ADM's respacing; the solvers' from T - T/N); "logsnr": in log-SNR
    samples: int = 0  # 0: the lab's sample count

    def label(self) -> str:
        name = self.model.upper()
        if self.guidance == "none":
            return name
        if self.guidance == "cfg":
            return f"{name} + classifier-free (w={self.scale:g})"
        parts = [f"{name}-G"]
        if "eds" in self.guidance:
            parts.append("EDS")
        if "prog" in self.guidance:
            parts.append("ProG")
        if self.guidance in ("uniform_ls", "ls"):
            parts.append("uniform LS" + (" (no schedule)" if self.guidance == "ls" else ""))
        if self.guidance == "ramped":
            parts.append("ramped scale")
        return " + ".join(parts) + f" (s={self.scale:g})"

    @property
    def guided_by_classifier(self) -> bool:
        return self.guidance not in ("none", "cfg")


class Lab:
    """A testbed's networks, reference features and relevance matrices, loaded once; each run cached by
    setting and seed."""

    def __init__(self, testbed: Testbed, num_samples: int, steps: int, batch_size: int, device: torch.device,
                 store: Path | None = None):
        self.testbed = testbed
        self.num_samples, self.steps, self.batch_size, self.device = num_samples, steps, batch_size, device
        self.store = Path(store) if store else None  # each run's file (Lab.stored), taken instead of sampling
        self.taken = 0  # runs taken from the store
        self.models = {}
        for key, name in testbed.models.items():
            flags = {**su.model_and_diffusion_defaults(), **manifest(name)["flags"]}
            model = su.create_model(**{k: flags[k] for k in MODEL_FLAGS})
            load_checkpoint(model, name)
            self.models[key] = model.to(device).eval()
        self._classifiers: dict[str, torch.nn.Module] = {}
        self._extractors: dict[str, ClassifierExtractor] = {}
        _, self.noise_process = su.create_classifier_and_diffusion(
            **{**su.classifier_and_diffusion_defaults(), **manifest(testbed.classifier)["flags"]})
        self.features = ClassifierExtractor(*load_classifier(testbed.features), device)
        self.bank = build_bank(list(testbed.bank), device=device)
        self.train_images, self.train_labels = testbed.reference()
        self.reference = self.features.extract_in_batches(self.train_images)
        self.reference_stats = {k: metrics.feature_statistics(self.reference[k]) for k in ("pool", "spatial")}
        self.reference_radii = metrics.manifold_radii(self.reference["pool"], 3)  # precision and recall's k
        self.density_radii = metrics.manifold_radii(self.reference["pool"], 5)  # density and coverage's
        self.label_free = None  # the label-free extractor, its reference features, statistics and radii
        if testbed.label_free:
            extractor = AutoencoderExtractor(load_autoencoder(testbed.label_free), device)
            pool = extractor.extract_in_batches(self.train_images)["pool"]
            self.label_free = LabelFree(extractor, pool, metrics.feature_statistics(pool),
                                        metrics.manifold_radii(pool, 3))
        self._relevance: dict[str, np.ndarray] = {}
        self._encoder = None  # the MiniLM text encoder, loaded on first use
        self.cache: dict[tuple, dict] = {}
        self.kept: dict[tuple, dict[str, np.ndarray]] = {}  # samples and predictions of runs asked to keep them
        self.outcomes: dict[tuple, dict[str, np.ndarray]] = {}  # per-sample outcomes of every run sampled here

    # ------------------------------------------------------------------ models

    def classifier(self, name: str) -> torch.nn.Module:
        """A guidance classifier by shipped name or ``X.pt`` with ``X.json`` (float32)."""
        if name not in self._classifiers:
            self._classifiers[name] = load_classifier(name)[0].to(self.device).eval()
        return self._classifiers[name]

    def guide_extractor(self, name: str) -> ClassifierExtractor:
        """The guidance classifier at t = 0 on final samples, as evaluations/robustness.py --guide scores it."""
        if name not in self._extractors:
            size = manifest(self.testbed.classifier)["flags"]["image_size"]
            self._extractors[name] = ClassifierExtractor(self.classifier(name), size, self.device)
        return self._extractors[name]

    def relevance(self, source: str) -> np.ndarray:
        """``text`` (the label set's shipped text matrix, the paper's shaping), ``text_top{k}``,
        ``text_T{temperature}``, ``confusion`` (the guidance classifier's confusion profiles on the reference
        images); the controls of ``text``: ``shuffled`` (each row's off-target entries permuted) and
        ``ls_matched`` (uniform off the condition, each row's entropy kept)."""
        if source not in self._relevance:
            classes = self.testbed.num_classes
            if source == "text":
                matrix = load_relevance(shipped_relevance(self.testbed.label_set), classes)
            elif source == "shuffled":
                matrix = shuffled_relevance(self.relevance("text"))
            elif source == "ls_matched":
                matrix = entropy_matched_smoothing(self.relevance("text"))
            elif source.startswith("text_"):
                option = source[len("text_"):]
                shaping = {"top_k": int(option[3:])} if option.startswith("top") else {"temperature": float(option[1:])}
                if self._encoder is None:
                    self._encoder = create_encoder("minilm")
                descriptions = load_descriptions(CLASS_DESCRIPTIONS_DIR / f"{self.testbed.label_set}.json")
                matrix = relevance_from_descriptions(descriptions, self._encoder, **shaping)
            elif source == "confusion":
                x = from_uint8_nhwc(self.train_images)
                confusion = classifier_confusion(self.classifier(self.testbed.classifier), self.noise_process, x,
                                                 torch.from_numpy(self.train_labels), classes,
                                                 np.linspace(0, 999, 10).round().astype(int).tolist())
                matrix = relevance_from_confusion(confusion)
            else:
                raise ValueError(f"unknown relevance source {source!r}")
            self._relevance[source] = matrix
        return self._relevance[source]

    def steps_of(self, config: Config) -> int:
        return config.steps or self.steps

    def resolved(self, config: Config) -> Config:
        """``config`` with its guidance classifier named (the testbed's when not given)."""
        return config if config.classifier else replace(config, classifier=self.testbed.classifier)

    # ------------------------------------------------------------ sampling

    def job(self, config: Config, seed: int) -> MainJob:
        """The main job of ``config`` at ``seed``, on the lab's networks."""
        config = self.resolved(config)
        scale = {"cfg_scale" if config.guidance == "cfg" else "classifier_scale": config.scale}
        args = job_args([], model_path=self.testbed.models[config.model], guidance=config.guidance,
                        gamma=config.gamma, gamma_reference_steps=config.reference_steps or 0, ls_eps=config.ls_eps,
                        classifier_path=config.classifier, sampler=config.sampler,
                        timestep_respacing=f"{config.spacing}{self.steps_of(config)}", precision=config.precision,
                        classes="balanced", seed=seed, num_samples=config.samples or self.num_samples,
                        batch_size=self.batch_size,
                        num_classes=self.testbed.num_classes, **scale)
        prog = config.guidance in RELEVANCE_GUIDANCES
        classifier = self.classifier(config.classifier) if config.guided_by_classifier else None
        return MainJob(args, relevance=self.relevance(config.relevance) if prog else None, device=self.device,
                       model=self.models[config.model], classifier=classifier).load()

    def sample(self, config: Config, seed: int, trajectory: int = 0, indices: range | None = None) -> dict:
        """Samples of ``config`` at ``seed`` (``images``, ``labels``; with ``trajectory = k`` also ``trajectory_x0``
        and ``information_degree`` of the first k of them); ``indices`` picks sample indices (default: all)."""
        return self.job(config, seed).sample(indices, trajectory)

    def evaluate(self, images: np.ndarray, labels: np.ndarray, guide: str | None = None,
                 keep: dict | None = None, outcomes: dict | None = None) -> dict[str, float]:
        """The scores of ``images``; ``keep`` gets the guide's and the bank's top-1, ``outcomes`` the
        :data:`OUTCOMES`."""
        features = self.features.extract_in_batches(images)
        result = {
            "fid": metrics.frechet_distance(*metrics.feature_statistics(features["pool"]),
                                            *self.reference_stats["pool"]),
            "sfid": metrics.frechet_distance(*metrics.feature_statistics(features["spatial"]),
                                             *self.reference_stats["spatial"]),
            "inception_score": metrics.inception_score(features["softmax"], split_size=len(images)),
        }
        result["precision"], result["recall"] = metrics.precision_recall(self.reference["pool"], features["pool"], 3,
                                                                         ref_radii=self.reference_radii)
        result["density"], result["coverage"] = metrics.density_coverage(self.reference["pool"], features["pool"],
                                                                         ref_radii=self.density_radii)
        result["per_class_recall"] = metrics.per_class_recall(self.reference["pool"], self.train_labels,
                                                              features["pool"], labels, 3)
        bank = self.bank.extract_in_batches(images)
        result["robustness"] = robustness(bank, labels)["robustness"]
        if outcomes is not None:
            outcomes.update(labels=labels, pool=features["pool"], in_reference=self.in_reference(features["pool"]),
                            bank_correct=(bank_top1(bank) == labels).T)
        if self.label_free is not None:
            pool = self.label_free.extractor.extract_in_batches(images)["pool"]
            result["fid_label_free"] = metrics.frechet_distance(*metrics.feature_statistics(pool),
                                                                *self.label_free.statistics)
            result["precision_label_free"], result["recall_label_free"] = metrics.precision_recall(
                self.label_free.reference, pool, 3, ref_radii=self.label_free.radii)
            if outcomes is not None:
                outcomes.update(pool_label_free=pool, in_reference_label_free=within(
                    self.label_free.reference, self.label_free.radii, pool))
        if guide:
            ranked = self.guide_ranking(images, guide)
            result.update({k: v for k, v in adversarial_gap(bank, ranked, labels).items() if k in GUIDE_METRICS})
            if keep is not None:
                keep.update(guide_top1=ranked[:, 0], bank_top1=bank_top1(bank))
            if outcomes is not None:
                outcomes["guide_correct"] = ranked[:, 0] == labels
        return {k: float(v) for k, v in result.items()}

    def held_in_scores(self) -> dict[str, float] | None:
        """The scores of real images the reference does not hold (the testbed's ``held_in``), balanced over the
        classes as a run's samples (at most as many), with the testbed's guide, and their count (``images``): what
        a model that reproduces the data reaches. None without ``held_in``."""
        if self.testbed.held_in is None:
            return None
        images, labels = self.testbed.held_in()
        classes = self.testbed.num_classes
        per_class = min(self.num_samples // classes, int(np.bincount(labels, minlength=classes).min()))
        chosen = first_of_each(labels, classes, per_class)
        scores = self.evaluate(images[chosen], labels[chosen], self.testbed.classifier)
        return {**scores, "images": float(len(chosen))}

    def in_reference(self, pool: np.ndarray) -> np.ndarray:
        """Per sample: within the k-NN radius (k = 3) of some reference, the term precision averages."""
        return within(self.reference["pool"], self.reference_radii, pool)

    def guide_ranking(self, images: np.ndarray, guide: str) -> np.ndarray:
        """The guide's top-5 classes on ``images`` (t = 0), best first."""
        logits = self.guide_extractor(guide).extract(images)["logits"]
        return np.argsort(-logits, axis=1, kind="stable")[:, :5]

    def verdicts(self, images: np.ndarray, guide: str) -> dict[str, np.ndarray]:
        """What the guide (``guide_top1``) and each bank member (``bank_top1``, members x N) read."""
        return {"guide_top1": self.guide_ranking(images, guide)[:, 0],
                "bank_top1": bank_top1(self.bank.extract_in_batches(images))}

    def stored(self, config: Config, seed: int) -> Path | None:
        """The store's file of ``config``'s run at ``seed`` (None without a store), named by everything its
        samples and scores depend on: the setting, the seed, the testbed and its reference, the counts."""
        if self.store is None:
            return None
        config = self.resolved(config)  # its own step and sample counts, else the lab's
        key = json.dumps({**asdict(config), "seed": seed, "testbed": self.testbed.name,
                          "reference": len(self.train_labels), "samples": config.samples or self.num_samples,
                          "steps": self.steps_of(config), "batch_size": self.batch_size}, sort_keys=True)
        return self.store / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"

    def run(self, config: Config, seed: int, keep: bool = False) -> dict[str, float]:
        """The scores of ``config`` at ``seed`` (cached, and stored with a store); ``keep`` also keeps its images
        and predictions."""
        config = self.resolved(config)
        key = (config, seed)
        if key not in self.cache or (keep and key not in self.kept):
            path = self.stored(config, seed)
            loaded = path is not None and path.is_file()
            if loaded:
                result, outcomes, kept = read_run(path)
                self.taken += key not in self.cache  # a run read again for its images counts once
            else:
                start = time.perf_counter()
                out = self.sample(config, seed)
                kept = {"images": out["images"], "labels": out["labels"]} if keep or path is not None else None
                outcomes = {}
                result = self.evaluate(out["images"], out["labels"],
                                       config.classifier if config.guided_by_classifier else None, kept, outcomes)
                result["seconds"] = time.perf_counter() - start
                if path is not None:
                    write_run(path, result, outcomes, kept)
            self.cache[key] = result
            self.outcomes[key] = outcomes
            if keep:
                self.kept[key] = kept
            extra = (f"  guide {result['guide_top1']:5.1f}  gap {result['gap']:+5.1f}" if "gap" in result else "")
            origin = f"stored: {path.name}" if loaded else f"{result['seconds']:.0f} s"
            print(f"  {config.label():<44} {Path(config.classifier).stem:<16} {config.sampler}-{self.steps_of(config)} "
                  f"{config.precision} seed {seed}: FID {result['fid']:7.2f}  recall {result['recall']:.3f}  "
                  f"robustness {result['robustness']:5.1f}{extra}  ({origin})", flush=True)
        return self.cache[key]

    def pooled(self, config: Config, seeds: list[int]) -> dict[str, np.ndarray]:
        """The :data:`OUTCOMES` of ``config``'s runs at ``seeds`` (sampled here), concatenated in seed order, with
        ``seed`` (each sample's seed): sample (seed, index) is paired with the same one of any other setting."""
        runs = [self.outcomes[(self.resolved(config), s)] for s in seeds]
        pooled = {k: np.concatenate([r[k] for r in runs]) for k in runs[0]}
        pooled["seed"] = np.repeat(seeds, [len(r["labels"]) for r in runs])
        return pooled

    def reuse(self, path: Path, samplers: tuple[str, ...], precisions: tuple[str, ...] = ("fp32", "bf16")) -> int:
        """Take the runs of an earlier results.json with one of ``samplers`` and ``precisions`` instead of
        sampling them again (a rerun after a change that leaves their code alone); returns how many."""
        runs = [r for r in json.loads(Path(path).read_text())["runs"]
                if r["config"]["sampler"] in samplers and r["config"].get("precision", "fp32") in precisions]
        for run in runs:
            self.cache[(Config(**run["config"]), run["seed"])] = {k: v for k, v in run.items()
                                                                  if k not in ("config", "seed")}
        return len(runs)

    def raw(self, command: str, elapsed: float, **extra) -> dict:
        """The run's record for results.json: command, machine, time, settings and every run's numbers."""
        return {"command": command, "machine": machine(self.device), "seconds": elapsed,
                "num_samples": self.num_samples, "steps": self.steps, "taken_from_store": self.taken, **extra,
                "runs": [{"config": asdict(c), "seed": s, **r} for (c, s), r in self.cache.items()]}


@dataclass(frozen=True)
class LabelFree:
    """A label-free feature network with the reference's features, their statistics and k-NN radii (k = 3)."""

    extractor: AutoencoderExtractor
    reference: np.ndarray
    statistics: tuple[np.ndarray, np.ndarray]
    radii: torch.Tensor


def write_run(path: Path, result: dict[str, float], outcomes: dict[str, np.ndarray],
              kept: dict[str, np.ndarray]) -> None:
    """A run's scores, per-sample outcomes and kept images and predictions in one .npz, written whole or not at
    all (renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with open(partial, "wb") as f:
        np.savez(f, scores=np.array(json.dumps(result)), **{f"outcome.{k}": v for k, v in outcomes.items()},
                 **{f"kept.{k}": v for k, v in kept.items()})
    os.replace(partial, path)


def read_run(path: Path) -> tuple[dict[str, float], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """What :func:`write_run` wrote: scores, outcomes, kept."""
    with np.load(path, allow_pickle=False) as npz:
        parts = {prefix: {k.split(".", 1)[1]: npz[k] for k in npz.files if k.startswith(f"{prefix}.")}
                 for prefix in ("outcome", "kept")}
        return json.loads(str(npz["scores"])), parts["outcome"], parts["kept"]


def within(reference: np.ndarray, radii: torch.Tensor, pool: np.ndarray) -> np.ndarray:
    """Per sample of ``pool``: within the k-NN radius of some reference, the term precision averages."""
    d = metrics.squared_distances(torch.as_tensor(reference, dtype=torch.float32),
                                  torch.as_tensor(pool, dtype=torch.float32))
    return (d <= radii[:, None]).any(dim=0).numpy()


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def summary(lab: Lab, config: Config, seeds: list[int], keys=METRICS) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation over ``seeds`` of each metric (those the runs have), the label-free space's and
    the guide's included."""
    runs = [lab.run(config, s) for s in seeds]
    return {k: (float(np.mean([r[k] for r in runs])), float(np.std([r[k] for r in runs])))
            for k in (*keys, *LABEL_FREE_METRICS, *GUIDE_METRICS) if k in runs[0]}
