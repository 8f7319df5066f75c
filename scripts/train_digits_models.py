"""Retrain every shipped digit model with the project's own training scripts (make digits-models).

    python scripts/train_digits_models.py                      # all models, one after another
    python scripts/train_digits_models.py --only cadm,classifier --jobs 2

Prepares the digits (scripts/prepare_digits.py), runs image_train.py / classifier_train.py
with the flags below and fixed seeds, then stores each final checkpoint (the EMA weights
of the diffusion models) as a float16 state dict in guided_diffusion/models/digits/<name>.pt
with <name>.json beside it: flags, training command, steps, seconds, the training data's
sha256 and the held-out metrics (guided_diffusion.evaluation.held_out.held_out_metrics).
"""

import argparse
import json
import os
import platform
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from guided_diffusion import script_util as su
from guided_diffusion.cli import run_main
from guided_diffusion.evaluation.feature_extractors import load_classifier
from guided_diffusion.evaluation.held_out import default_job_channel_gap, held_out_metrics
from guided_diffusion.models import MODELS_DIR
from guided_diffusion.sampling.shards import read_npz
from guided_diffusion.testbeds.digits import MODELS, SAMPLE_FLAGS, write_digits
from guided_diffusion.testbeds.training import command, train


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
    run_main(main)
