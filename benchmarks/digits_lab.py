"""What the digits experiments share: sampling settings, the shipped models loaded once, scoring.

A :class:`Config` is one sampling setting (model, guidance, scale, schedule, guidance classifier,
sampler, steps, precision); :class:`Lab` samples it with the main job's library code
(guided_diffusion.guided_sampling; sample i of a seed is class i mod 10, with its own noise) and
scores it with the evaluator's code on the digit feature network (digits/features: FID, sFID, IS,
precision, recall, density, coverage, per-class recall, against the 1,497 training images), the
robustness bank (digits/bank1-5: mean top-1 accuracy against the conditioning labels) and, for
classifier guidance, the guidance classifier's own top-1 on the final samples and the gap to the
bank (evaluations/robustness.py --guide). Runs are cached by setting and seed.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from guided_diffusion import metrics
from guided_diffusion import script_util as su
from guided_diffusion.checkpoints import load_checkpoint
from guided_diffusion.digits import load_digits_split
from guided_diffusion.feature_extractors import ClassifierExtractor, load_classifier
from guided_diffusion.guided_sampling import GuidancePlan, build_guidance, sample_batch
from guided_diffusion.information_degree import gamma_per_step, uniform_relevance
from guided_diffusion.precision import accelerate
from guided_diffusion.relevance import (
    CLASS_DESCRIPTIONS_DIR,
    classifier_confusion,
    create_encoder,
    load_descriptions,
    load_relevance,
    relevance_from_confusion,
    relevance_from_descriptions,
    shipped_relevance,
)
from guided_diffusion.robustness import adversarial_gap, bank_top1, build_bank, robustness
from guided_diffusion.sampling import respacing_for
from guided_diffusion.seeding import SampleNoise, sample_labels
from guided_diffusion.shipped import manifest

ROOT = Path(__file__).resolve().parents[1]
BANK = [f"digits/bank{i}" for i in range(1, 6)]
METRICS = ("fid", "sfid", "inception_score", "precision", "recall", "density", "coverage", "per_class_recall",
           "robustness")
GUIDE_METRICS = ("guide_top1", "gap", "fooled_fraction")


@dataclass(frozen=True)
class Config:
    """One sampling setting; ``relevance`` names where s_T comes from (see Lab.relevance)."""

    model: str  # adm | cadm
    guidance: str  # none | vanilla | prog | uniform_ls | ls | eds | prog_eds | cfg
    scale: float = 1.0
    gamma: float = 0.04
    reference_steps: int | None = 250  # gamma stated for this many steps (None: per actual step)
    relevance: str = "text"
    ls_eps: float = 0.1
    classifier: str = "digits/classifier"  # the guidance classifier: a shipped name or X.pt (with X.json)
    sampler: str = "ddpm"  # ddpm | ddim | dpmpp_2m | dpmpp_2m_sde
    steps: int = 0  # 0: the lab's step count
    precision: str = "fp32"
    spacing: str = ""  # "": uniform in time (ADM's respacing; the solvers' from T - T/N); "logsnr": in log-SNR

    def label(self) -> str:
        name = {"adm": "ADM", "cadm": "CADM"}[self.model]
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
        return " + ".join(parts) + f" (s={self.scale:g})"

    @property
    def guided_by_classifier(self) -> bool:
        return self.guidance not in ("none", "cfg")


class Lab:
    """Models, reference features and relevance matrices, loaded once; each run cached by setting and seed."""

    def __init__(self, num_samples: int, steps: int, batch_size: int, device: torch.device):
        self.num_samples, self.steps, self.batch_size, self.device = num_samples, steps, batch_size, device
        self.models = {}
        for name in ("adm", "cadm"):
            flags = {**su.model_and_diffusion_defaults(), **manifest(f"digits/{name}")["flags"]}
            model, _ = su.create_model_and_diffusion(**flags)
            load_checkpoint(model, f"digits/{name}")
            self.models[name] = (model.to(device).eval(), flags)
        self._diffusions: dict[tuple, object] = {}
        self._classifiers: dict[str, torch.nn.Module] = {}
        self._extractors: dict[str, ClassifierExtractor] = {}
        _, self.noise_process = su.create_classifier_and_diffusion(
            **{**su.classifier_and_diffusion_defaults(), **manifest("digits/classifier")["flags"]})
        self.features = ClassifierExtractor(*load_classifier("digits/features"), device)
        self.bank = build_bank(BANK, device=device)
        split = load_digits_split()
        self.train_images, self.train_labels = split["train"]
        self.reference = self.features.extract(self.train_images)
        self.reference_stats = {k: metrics.feature_statistics(self.reference[k]) for k in ("pool", "spatial")}
        self._relevance: dict[str, np.ndarray] = {}
        self._encoder = None  # the MiniLM text encoder, loaded on first use
        self.cache: dict[tuple, dict] = {}
        self.kept: dict[tuple, dict[str, np.ndarray]] = {}  # samples and predictions of runs asked to keep them

    # ------------------------------------------------------------------ models

    def classifier(self, name: str) -> torch.nn.Module:
        """A guidance classifier by shipped name (``digits/classifier``) or ``X.pt`` with ``X.json`` (float32)."""
        if name not in self._classifiers:
            self._classifiers[name] = load_classifier(name)[0].to(self.device).eval()
        return self._classifiers[name]

    def guide_extractor(self, name: str) -> ClassifierExtractor:
        """The guidance classifier at t = 0 on final samples, as evaluations/robustness.py --guide scores it."""
        if name not in self._extractors:
            self._extractors[name] = ClassifierExtractor(self.classifier(name), 16, self.device)
        return self._extractors[name]

    def diffusion(self, model: str, respacing: str):
        key = (model, respacing)
        if key not in self._diffusions:
            flags = {**self.models[model][1], "timestep_respacing": respacing}
            self._diffusions[key] = su.create_model_and_diffusion(**flags)[1]
        return self._diffusions[key]

    def relevance(self, source: str) -> np.ndarray:
        """``text`` (shipped MiniLM matrix, the paper's shaping), ``text_top{k}``, ``text_T{temperature}``,
        ``confusion`` (the shipped guidance classifier's confusion profiles on the training images)."""
        if source not in self._relevance:
            if source == "text":
                matrix = load_relevance(shipped_relevance("digits"), 10)
            elif source.startswith("text_"):
                option = source[len("text_"):]
                shaping = {"top_k": int(option[3:])} if option.startswith("top") else {"temperature": float(option[1:])}
                if self._encoder is None:
                    self._encoder = create_encoder("minilm")
                matrix = relevance_from_descriptions(load_descriptions(CLASS_DESCRIPTIONS_DIR / "digits.json"),
                                                     self._encoder, **shaping)
            elif source == "confusion":
                x = torch.from_numpy(self.train_images).permute(0, 3, 1, 2).float() / 127.5 - 1
                confusion = classifier_confusion(self.classifier("digits/classifier"), self.noise_process, x,
                                                 torch.from_numpy(self.train_labels), 10,
                                                 np.linspace(0, 999, 10).round().astype(int).tolist())
                matrix = relevance_from_confusion(confusion)
            else:
                raise ValueError(f"unknown relevance source {source!r}")
            self._relevance[source] = matrix
        return self._relevance[source]

    def steps_of(self, config: Config) -> int:
        return config.steps or self.steps

    def plan(self, config: Config) -> GuidancePlan:
        steps = self.steps_of(config)
        if config.guidance in ("prog", "prog_eds"):
            gamma = gamma_per_step(config.gamma, steps, config.reference_steps)
            return GuidancePlan(config.guidance, self.relevance(config.relevance), gamma)
        if config.guidance in ("uniform_ls", "ls"):
            gamma = 0.0 if config.guidance == "ls" else gamma_per_step(config.gamma, steps, config.reference_steps)
            return GuidancePlan(config.guidance, uniform_relevance(10, config.ls_eps), gamma)
        return GuidancePlan(config.guidance, np.eye(10), 1.0)

    # ------------------------------------------------------------ sampling

    def sample(self, config: Config, seed: int, trajectory: int = 0, indices: range | None = None) -> dict:
        """Samples of ``config`` at ``seed`` (``images``, ``labels``; with ``trajectory = k`` also ``trajectory_x0``
        and ``information_degree`` of the first k of them); ``indices`` picks sample indices (default: all)."""
        model, flags = self.models[config.model]
        plan = self.plan(config)
        classifier = self.classifier(config.classifier) if config.guided_by_classifier else None
        if config.precision != "fp32":  # as the main job: a bf16 torso under autocast (on copies: shared models)
            model = accelerate(copy.deepcopy(model), config.precision, cast_weights=True)
            if classifier is not None:
                classifier = accelerate(copy.deepcopy(classifier), config.precision, cast_weights=True)
        denoiser, cond_fn = build_guidance(plan, model, classifier, config.scale, flags["class_cond"])
        indices = indices if indices is not None else range(self.num_samples)
        parts = []
        for start in range(indices.start, indices.stop, self.batch_size):
            batch = range(start, min(start + self.batch_size, indices.stop))
            respacing = respacing_for(config.sampler, f"{config.spacing}{self.steps_of(config)}")
            parts.append(sample_batch(self.diffusion(config.model, respacing), denoiser,
                                      cond_fn, plan,
                                      sample_labels("balanced", seed, batch, 10),
                                      SampleNoise(seed, batch, (3, 16, 16), self.device), sampler=config.sampler,
                                      trajectory=max(0, min(indices.start + trajectory, batch.stop) - batch.start)))
        out = {k: np.concatenate([p[k] for p in parts]) for k in ("images", "labels")}
        if trajectory:
            for key in ("trajectory_x0", "information_degree"):
                out[key] = np.concatenate([p[key] for p in parts if key in p], axis=1)
        return out

    def evaluate(self, images: np.ndarray, labels: np.ndarray, guide: str | None = None,
                 keep: dict | None = None) -> dict[str, float]:
        features = self.features.extract(images)
        result = {
            "fid": metrics.frechet_distance(*metrics.feature_statistics(features["pool"]),
                                            *self.reference_stats["pool"]),
            "sfid": metrics.frechet_distance(*metrics.feature_statistics(features["spatial"]),
                                             *self.reference_stats["spatial"]),
            "inception_score": metrics.inception_score(features["softmax"], split_size=len(images)),
        }
        result["precision"], result["recall"] = metrics.precision_recall(self.reference["pool"], features["pool"], 3)
        result["density"], result["coverage"] = metrics.density_coverage(self.reference["pool"], features["pool"])
        result["per_class_recall"] = metrics.per_class_recall(self.reference["pool"], self.train_labels,
                                                              features["pool"], labels, 3)
        bank = self.bank.extract(images)
        result["robustness"] = robustness(bank, labels)["robustness"]
        if guide:
            ranked = self.guide_ranking(images, guide)
            result.update({k: v for k, v in adversarial_gap(bank, ranked, labels).items() if k in GUIDE_METRICS})
            if keep is not None:
                keep.update(guide_top1=ranked[:, 0], bank_top1=bank_top1(bank))
        return {k: float(v) for k, v in result.items()}

    def guide_ranking(self, images: np.ndarray, guide: str) -> np.ndarray:
        """The guide's top-5 classes on ``images`` (t = 0), best first."""
        logits = self.guide_extractor(guide).extract(images)["logits"]
        return np.argsort(-logits, axis=1, kind="stable")[:, :5]

    def verdicts(self, images: np.ndarray, guide: str) -> dict[str, np.ndarray]:
        """What the guide (``guide_top1``) and each bank member (``bank_top1``, members x N) read."""
        return {"guide_top1": self.guide_ranking(images, guide)[:, 0],
                "bank_top1": bank_top1(self.bank.extract(images))}

    def run(self, config: Config, seed: int, keep: bool = False) -> dict[str, float]:
        """The scores of ``config`` at ``seed`` (cached); ``keep`` also keeps its images and predictions."""
        key = (config, seed)
        if key not in self.cache or (keep and key not in self.kept):
            start = time.perf_counter()
            out = self.sample(config, seed)
            kept = {"images": out["images"], "labels": out["labels"]} if keep else None
            result = self.evaluate(out["images"], out["labels"],
                                   config.classifier if config.guided_by_classifier else None, kept)
            result["seconds"] = time.perf_counter() - start
            self.cache[key] = result
            if keep:
                self.kept[key] = kept
            extra = (f"  guide {result['guide_top1']:5.1f}  gap {result['gap']:+5.1f}" if "gap" in result else "")
            print(f"  {config.label():<44} {Path(config.classifier).stem:<16} {config.sampler}-{self.steps_of(config)} "
                  f"{config.precision} seed {seed}: FID {result['fid']:7.2f}  recall {result['recall']:.3f}  "
                  f"robustness {result['robustness']:5.1f}{extra}  ({result['seconds']:.0f} s)", flush=True)
        return self.cache[key]

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
                "num_samples": self.num_samples, "steps": self.steps, **extra,
                "runs": [{"config": asdict(c), "seed": s, **r} for (c, s), r in self.cache.items()]}


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def summary(lab: Lab, config: Config, seeds: list[int], keys=METRICS) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation over ``seeds`` of each metric (those the runs have)."""
    runs = [lab.run(config, s) for s in seeds]
    return {k: (float(np.mean([r[k] for r in runs])), float(np.std([r[k] for r in runs])))
            for k in (*keys, *GUIDE_METRICS) if k in runs[0]}


def fmt(value: tuple[float, float], digits: int = 2) -> str:
    return f"{value[0]:.{digits}f} ± {value[1]:.{digits}f}"


COLUMNS = [("FID", "fid", 2), ("sFID", "sfid", 2), ("IS", "inception_score", 2), ("Prec", "precision", 3),
           ("Rec", "recall", 3), ("Density", "density", 3), ("Coverage", "coverage", 3),
           ("Per-class rec.", "per_class_recall", 3), ("Robustness", "robustness", 1)]


def table(rows: list[tuple[str, dict]], columns=COLUMNS) -> str:
    lines = ["| setting | " + " | ".join(c[0] for c in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, values in rows:
        lines.append(f"| {name} | " + " | ".join(fmt(values[key], d) if key in values else "-"
                                                   for _, key, d in columns) + " |")
    return "\n".join(lines)


def write_json(path: Path, raw: dict) -> None:
    path.write_text(json.dumps(raw, indent=1) + "\n")


def subplots(rows: int, cols: int, figsize: tuple[float, float]):
    """``(fig, axes)`` on matplotlib's file backend, ``axes`` always 2-d."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(rows, cols, figsize=figsize, squeeze=False)


def save_figure(fig, path: Path, dpi: int = 100) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def lab_parser(description: str, out: str, batch_size: int, quick: tuple[int, int, str] | None = None,
               full: tuple[int, int, str] | None = None) -> argparse.ArgumentParser:
    """The flags every digits experiment takes: --seeds, --batch_size, --out (under results/digits), --device;
    given the (samples, steps, scales) of a quick and a full sweep, also --quick, --num_samples, --steps and
    --scales, whose defaults depend on --quick (:func:`sweep_lab` reads them)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=batch_size)
    parser.add_argument("--out", default=str(ROOT / "results" / "digits" / out))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    if quick and full:
        parser.add_argument("--quick", action="store_true", help=f"{quick[0]} samples, {quick[1]} steps, scales "
                            f"{quick[2]}: 2 CPU cores")
        parser.add_argument("--num_samples", type=int, default=None, help=f"per run (quick {quick[0]}, full {full[0]})")
        parser.add_argument("--steps", type=int, default=None,
                            help=f"respaced DDPM steps (quick {quick[1]}, full {full[1]})")
        parser.add_argument("--scales", default=None, help=f"guidance scales (quick {quick[2]}, full {full[2]})")
        parser.set_defaults(sweep_defaults=(quick, full))
    return parser


def sweep_lab(args: argparse.Namespace) -> tuple[Lab, list[int], list[float]]:
    """The :class:`Lab`, seeds and scales of the flags of :func:`lab_parser` with a sweep."""
    samples, steps, scales = args.sweep_defaults[0 if args.quick else 1]
    torch.manual_seed(0)
    lab = Lab(args.num_samples or samples, args.steps or steps, args.batch_size, torch.device(args.device))
    return lab, list(range(args.seeds)), [float(s) for s in (args.scales or scales).split(",")]
