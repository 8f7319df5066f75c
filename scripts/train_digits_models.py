"""Retrain every shipped digit model with the project's own training scripts (make digits-models).

    python scripts/train_digits_models.py                      # all models, one after another
    python scripts/train_digits_models.py --only cadm,classifier --jobs 2

Prepares the digits (scripts/prepare_digits.py), runs image_train.py / classifier_train.py
with the flags below and fixed seeds, then stores each final checkpoint (the EMA weights
of the diffusion models) as a float16 state dict in guided_diffusion/models/digits/<name>.pt
with <name>.json beside it: flags, training command, steps, seconds, the training data's
sha256 and the held-out metrics (guided_diffusion.shipped.held_out_metrics).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from guided_diffusion import script_util as su
from guided_diffusion.digits import write_digits
from guided_diffusion.feature_extractors import load_classifier
from guided_diffusion.shards import read_npz
from guided_diffusion.shipped import MODELS_DIR, default_job_channel_gap, held_out_metrics

ROOT = Path(__file__).resolve().parents[1]
DIFFUSION = dict(image_size=16, num_channels=32, num_res_blocks=2, channel_mult="1,2,2", attention_resolutions="8,4",
                 num_head_channels=32, learn_sigma=True, diffusion_steps=1000, noise_schedule="cosine",
                 use_scale_shift_norm=True, resblock_updown=True, dropout=0.1)
# Constant learning rate, three EMAs and a checkpoint every 2000 steps; the shipped weights are the one of them
# chosen by measurement (SHIPPED_WEIGHTS: the samples' channel gap, held-out MSE; results/digits/colour_cast.md).
DIFFUSION_TRAINING = dict(lr=3e-4, batch_size=64, ema_rate="0.999,0.9995,0.9999", max_steps=8000,
                          save_interval=2000, log_interval=500, random_flip=False)
NOISE = dict(diffusion_steps=1000, noise_schedule="cosine", learn_sigma=True)
CLASSIFIER_TRAINING = dict(batch_size=64, lr=1e-3, anneal_lr=True, random_flip=False, log_interval=500,
                           num_classes=10, image_size=16)


def classifier(iterations: int, seed: int, noised: bool, **arch) -> dict:
    return dict(script="classifier_train", kind="classifier", steps=iterations,
                flags={**NOISE, **CLASSIFIER_TRAINING, **arch, "noised": noised, "iterations": iterations,
                       "save_interval": iterations, "random_crop": not noised, "seed": seed})


GUIDE = dict(classifier_width=32, classifier_depth=2, classifier_channel_mult="1,2,2",
             classifier_attention_resolutions="8,4", classifier_pool="attention")
SHIPPED_WEIGHTS = {"adm": ("ema_0.999", 8000), "cadm": ("ema_0.999", 8000)}  # which checkpoint is shipped

MODELS = {
    # the paper's ADM (unconditional) and CADM (class-conditional, with a null class for classifier-free guidance)
    "adm": dict(script="image_train", kind="diffusion", steps=SHIPPED_WEIGHTS["adm"][1],
                weights=SHIPPED_WEIGHTS["adm"][0],
                flags={**DIFFUSION, **DIFFUSION_TRAINING, "class_cond": False, "seed": 0}),
    "cadm": dict(script="image_train", kind="diffusion", steps=SHIPPED_WEIGHTS["cadm"][1],
                 weights=SHIPPED_WEIGHTS["cadm"][0],
                 flags={**DIFFUSION, **DIFFUSION_TRAINING, "class_cond": True, "num_classes": 10,
                        "label_dropout": 0.1, "seed": 0}),
    # the noise-aware guidance classifier
    "classifier": classifier(4000, 0, True, **GUIDE),
    # a weak guide, for the adversarial regime (benchmarks/digits_adversarial.py): the same network and schedule,
    # trained on clean images only, so that its gradient on noisy images is not a class's (the design search,
    # results/digits/adversarial/designs.md)
    "classifier_weak": classifier(4000, 0, False, **GUIDE),
    # evaluation only: the feature network for FID/sFID/IS/precision/recall and the robustness bank
    "features": classifier(2000, 10, False, classifier_width=32, classifier_depth=2, classifier_channel_mult="1,2",
                           classifier_attention_resolutions="8", classifier_pool="adaptive"),
    "bank1": classifier(1500, 1, False, classifier_width=32, classifier_depth=1, classifier_channel_mult="1,2",
                        classifier_attention_resolutions="", classifier_pool="adaptive"),
    "bank2": classifier(1500, 2, False, classifier_width=32, classifier_depth=1, classifier_channel_mult="1,2,2",
                        classifier_attention_resolutions="4", classifier_pool="attention"),
    "bank3": classifier(1500, 3, False, classifier_width=32, classifier_depth=1, classifier_channel_mult="1,2",
                        classifier_attention_resolutions="", classifier_pool="spatial"),
    "bank4": classifier(1500, 4, False, classifier_width=32, classifier_depth=2, classifier_channel_mult="1,2",
                        classifier_attention_resolutions="", classifier_pool="adaptive",
                        classifier_use_scale_shift_norm=False),
    "bank5": classifier(1500, 5, False, classifier_width=32, classifier_depth=1, classifier_channel_mult="1,2,2",
                        classifier_attention_resolutions="8", classifier_pool="attention",
                        classifier_resblock_updown=False),
}
# the main job's defaults with each diffusion model (scales from results/digits: where guidance does all the
# conditioning (ADM) scale 4 keeps 95 % of ProG's samples recognisable to the bank; CADM needs little)
SAMPLE_FLAGS = {"adm": dict(timestep_respacing="100", num_samples=64, batch_size=64, classifier_scale=4.0,
                            classifier_path="digits/classifier"),
                "cadm": dict(timestep_respacing="100", num_samples=64, batch_size=64, classifier_scale=1.0,
                             classifier_path="digits/classifier")}


def command(spec: dict, data_dir: Path) -> list[str]:
    """The training command of a model spec (an entry of MODELS)."""
    flags = {"data_dir": data_dir / "train", **spec["flags"]}
    return [sys.executable, f"scripts/{spec['script']}.py", *[str(a) for k, v in flags.items() for a in (f"--{k}", v)]]


def train(name: str, spec: dict, work_dir: Path, data_dir: Path, threads: int) -> float:
    """Run a spec's training into ``work_dir/name``; returns the seconds it took."""
    log_dir = work_dir / name
    env = {**os.environ, "OPENAI_LOGDIR": str(log_dir), "OPENAI_LOG_FORMAT": "log,csv",
           "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    with open(work_dir / f"{name}.out", "w") as out:
        subprocess.run(command(spec, data_dir), cwd=ROOT, env=env, check=True, stdout=out, stderr=subprocess.STDOUT)
    return time.perf_counter() - start


def package(name: str, work_dir: Path, data_dir: Path, seconds: float, data_hashes: dict, out_dir: Path) -> dict:
    spec = MODELS[name]
    steps, flags = spec["steps"], spec["flags"]
    if spec["kind"] == "diffusion":
        source = work_dir / name / f"{spec['weights']}_{steps:06d}.pt"
        build = {**su.model_and_diffusion_defaults(), **{k: v for k, v in flags.items()
                                                         if k in su.model_and_diffusion_defaults()}}
        net, diffusion = su.create_model_and_diffusion(**build)
    else:
        source = work_dir / name / f"model{steps:06d}.pt"
        build = {**su.classifier_and_diffusion_defaults(), **{k: v for k, v in flags.items()
                                                               if k in su.classifier_and_diffusion_defaults()}}
        net, diffusion = su.create_classifier_and_diffusion(**build)
    state = torch.load(source, map_location="cpu", weights_only=True)
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(half, out_dir / f"{name}.pt")
    net.load_state_dict(half)  # what is shipped, in float32
    test = read_npz(data_dir / "test.npz")
    manifest = {
        "name": f"digits/{name}",
        "kind": spec["kind"],
        "flags": {k: v for k, v in build.items() if k != "timestep_respacing"},
        "training": {"command": " ".join(str(c) for c in command(spec, Path("data/digits"))[1:]),
                     "made_by": "python scripts/train_digits_models.py", "steps": steps, "seconds": round(seconds),
                     "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}",
                     "data": "scikit-learn digits, scripts/prepare_digits.py (16x16, 300 held out, seed 0)",
                     "train_npz_sha256": data_hashes["train"]},
        "held_out": held_out_metrics(spec["kind"], net, diffusion, test["arr_0"], test["arr_1"],
                                     noised=flags.get("noised", True)),
        "num_params": sum(v.numel() for v in half.values()),
        "weights": "float16 state dict",
    }
    if spec["kind"] == "diffusion":
        manifest["sample_flags"] = SAMPLE_FLAGS[name]
        manifest["weights"] += f" ({spec['weights']} at step {steps})"
        gap = default_job_channel_gap(net, manifest, load_classifier(str(out_dir / "classifier.pt"))[0])
        manifest["default_job_channel_gap"] = {"mean": float(gap.mean()), "share_above_5": float((gap > 5).mean()),
                                               "samples": len(gap)}
    (out_dir / f"{name}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS))
    parser.add_argument("--work_dir", default="runs/digits_models", help="training logs and checkpoints")
    parser.add_argument("--out_dir", default=str(MODELS_DIR / "digits"))
    parser.add_argument("--jobs", type=int, default=1, help="models trained at once (threads split between them)")
    parser.add_argument("--package_only", action="store_true", help="skip training; package existing checkpoints")
    parser.add_argument("--seconds", default="", help="with --package_only, training seconds of models not shipped "
                        "before: name=seconds,...")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - set(MODELS)
    if unknown:
        raise ValueError(f"unknown models {sorted(unknown)}; known: {', '.join(MODELS)}")
    work_dir, out_dir = Path(args.work_dir).resolve(), Path(args.out_dir)
    data_dir = work_dir / "data"
    hashes = write_digits(data_dir)
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    seconds = {n: 0.0 for n in names}
    seconds.update({k: float(v) for k, v in (item.split("=") for item in args.seconds.split(",") if item)})
    if not args.package_only:
        with ThreadPoolExecutor(args.jobs) as pool:
            seconds = dict(zip(names, pool.map(lambda n: train(n, MODELS[n], work_dir, data_dir, threads), names),
                               strict=True))
    for name in sorted(names, key=lambda n: MODELS[n]["kind"] == "diffusion"):  # the guide first: the diffusion
        previous = out_dir / f"{name}.json"                                       # models' channel gap uses it
        if args.package_only and previous.is_file() and not seconds[name]:
            seconds[name] = json.loads(previous.read_text())["training"]["seconds"]
        manifest = package(name, work_dir, data_dir, seconds[name], hashes, out_dir)
        print(f"digits/{name}: {manifest['num_params']} parameters, {seconds[name]:.0f} s, "
              f"held out {manifest['held_out']}")


if __name__ == "__main__":
    su.run_main(main)
