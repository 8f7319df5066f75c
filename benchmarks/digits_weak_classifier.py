"""Which guidance classifier makes vanilla guidance adversarial on the digits? The design search.

    python benchmarks/digits_weak_classifier.py      # every design: ~75 min training, ~25 min sampling (1 core)
    python benchmarks/digits_weak_classifier.py --designs clean,small --scales 16,64

Trains each candidate design with the project's own scripts/classifier_train.py (the flags of
scripts/train_digits_models.py, changed one at a time: fewer parameters, fewer steps, a narrower
noise range, no noise, weight decay), then guides the shipped digits/adm with it (vanilla
guidance, the main job's defaults: 100 DDPM steps, balanced classes, seed 0) at each scale and
scores the final samples: the guide's own top-1 agreement with the labels, the independent
bank's (digits/bank1-5, robustness), and the gap. The shipped digits/classifier is the
reference. Writes results/digits/adversarial/designs.md and designs.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import torch

from guided_diffusion.evaluation.held_out import accuracy
from guided_diffusion.experiments.harness import Config, Lab
from guided_diffusion.experiments.report import write_json
from guided_diffusion.sampling.samplers import from_uint8_nhwc
from guided_diffusion.testbeds.digits import DIGITS, MODELS, classifier, load_digits_split, write_digits
from guided_diffusion.testbeds.training import train

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = MODELS["classifier"]["flags"]
ARCH = {k: SHIPPED[k] for k in ("classifier_width", "classifier_depth", "classifier_channel_mult",
                                "classifier_attention_resolutions", "classifier_pool")}
SMALL = dict(classifier_width=32, classifier_depth=1, classifier_channel_mult="1,2",
             classifier_attention_resolutions="", classifier_pool="adaptive")


def spec(iterations: int, noised: bool = True, schedule_sampler: str = "uniform", weight_decay: float = 0.0,
         anneal_lr: bool = True, **arch) -> dict:
    made = classifier(iterations, 0, noised, **{**ARCH, **arch})
    made["flags"].update(schedule_sampler=schedule_sampler, weight_decay=weight_decay, anneal_lr=anneal_lr)
    return made


DESIGNS = {
    "small": ("fewer parameters: one block per level, two levels, no attention", spec(4000, **SMALL)),
    "steps_300": ("fewer steps: 300 instead of 4000 (learning rate annealed over them)", spec(300)),
    "early_1000": ("early stopping: the first 1000 of 4000 steps (learning rate not yet annealed)",
                   spec(1000, anneal_lr=False)),
    "narrow_noise": ("a narrower noise range: t < 300 only", spec(4000, schedule_sampler="uniform_below_300")),
    "clean": ("no noise: clean images only (t = 0)", spec(4000, noised=False)),
    "weight_decay": ("weight decay 0.5 (AdamW)", spec(4000, weight_decay=0.5)),
}


def train_design(name: str, work_dir: Path, data_dir: Path, threads: int) -> tuple[Path, float]:
    """Train a design (unless done) and leave ``work_dir/name.pt`` with its flags in ``name.json``."""
    made = DESIGNS[name][1]
    target = work_dir / f"{name}.pt"
    seconds = 0.0
    if not target.is_file():
        seconds = train(name, made, work_dir, data_dir, threads)
        shutil.copy(work_dir / name / f"model{made['steps']:06d}.pt", target)
        (work_dir / f"{name}.json").write_text(json.dumps({"flags": made["flags"], "seconds": seconds}) + "\n")
    return target, json.loads((work_dir / f"{name}.json").read_text()).get("seconds", seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--designs", default=",".join(DESIGNS))
    parser.add_argument("--scales", default="4,16,64")
    parser.add_argument("--num_samples", type=int, default=100)
    parser.add_argument("--steps", type=int, default=100, help="respaced DDPM steps (the main job's default)")
    parser.add_argument("--work_dir", default=str(ROOT / "runs" / "weak_designs"))
    parser.add_argument("--jobs", type=int, default=2, help="designs trained at once")
    parser.add_argument("--out", default=str(ROOT / "results" / "digits" / "adversarial"))
    parser.add_argument("--train_only", action="store_true", help="train the designs, do not sample")
    args = parser.parse_args()
    names = [n for n in args.designs.split(",") if n]
    scales = [float(s) for s in args.scales.split(",")]
    work_dir = Path(args.work_dir).resolve()
    data_dir = work_dir / "data"
    write_digits(data_dir)
    started = time.perf_counter()
    threads = max(1, torch.get_num_threads() // args.jobs)
    with ThreadPoolExecutor(args.jobs) as pool:
        trained = dict(zip(names, pool.map(lambda n: train_design(n, work_dir, data_dir, threads), names),
                           strict=True))
    if args.train_only:
        return
    lab = Lab(DIGITS, args.num_samples, args.steps, args.num_samples, torch.device("cpu"))
    rows = []
    for name, path, what, seconds in ([("shipped", "digits/classifier", "the shipped digits/classifier", None)]
                                      + [(n, str(trained[n][0]), DESIGNS[n][0], trained[n][1]) for n in names]):
        held_out = held_out_accuracy(lab, path)
        runs = {s: lab.run(replace(Config("adm", "vanilla", s), classifier=path), 0) for s in scales}
        best = max(scales, key=lambda s: runs[s]["gap"])
        rows.append({"design": name, "what": what, "classifier": path, "train_seconds": seconds,
                     "held_out": held_out, "runs": {str(s): runs[s] for s in scales}, "best_scale": best})
    elapsed = time.perf_counter() - started
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/digits_weak_classifier.py " + " ".join(sys.argv[1:])
    write_json(out / "designs.json", {"command": command, "seconds": elapsed, "scales": scales,
                                      "num_samples": args.num_samples, "steps": args.steps, "designs": rows})
    lines = ["# Weak guidance classifiers: the design search\n",
             f"Generated by `{command}` in {elapsed / 60:.1f} minutes. Vanilla guidance of `digits/adm` with each "
             f"candidate classifier, {args.num_samples} balanced samples, {args.steps} DDPM steps, seed 0. "
             "`guide`: the guidance classifier's top-1 agreement with the labels on the final samples (t = 0); "
             "`bank`: the mean top-1 of digits/bank1-5 (robustness); `gap` = guide - bank, in points. Held-out "
             "accuracy of the classifier on the 300 held-out digits, clean and noised to t = 500.\n",
             "| design | what | held-out (clean / t=500) | " + " | ".join(
                 f"s={s:g}: guide / bank / gap" for s in scales) + " |",
             "|---|---|---|" + "---|" * len(scales)]
    for row in rows:
        cells = [f"{r['guide_top1']:.0f} / {r['robustness']:.1f} / **{r['gap']:+.1f}**" for r in row["runs"].values()]
        lines.append(f"| {row['design']} | {row['what']} | {row['held_out']['t0']:.1f} / {row['held_out']['t500']:.1f} "
                     f"| " + " | ".join(cells) + " |")
    (out / "designs.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


@torch.no_grad()
def held_out_accuracy(lab: Lab, path: str) -> dict[str, float]:
    images, labels = load_digits_split()["test"]
    x = from_uint8_nhwc(images)
    y = torch.from_numpy(labels).long()
    net = lab.classifier(path).cpu()
    return {f"t{t}": 100.0 * accuracy(net, lab.noise_process, x, y, t) for t in (0, 500)}


if __name__ == "__main__":
    main()
