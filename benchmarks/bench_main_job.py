"""Wall time per sample of the main job against ADM's classifier_sample.py, on the same tiny model.

Both scripts run as subprocesses with the same model, classifier, flags and vanilla
guidance, alternately and in an order swapped every repeat (so drifts in machine load and
order effects hit both alike); the main job also writes its shards, merges them and draws
its grid, and draws per-sample noise. The median over repeats is reported, with the ratio.

    python benchmarks/bench_main_job.py
    python benchmarks/bench_main_job.py --num_samples 256 --batch_size 64 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from guided_diffusion import script_util as su

ROOT = Path(__file__).resolve().parents[1]
MODEL = dict(image_size=32, num_channels=64, num_res_blocks=1, channel_mult="1,2,2", attention_resolutions="16,8",
             num_head_channels=32, class_cond=True, learn_sigma=True, num_classes=10)
CLASSIFIER = dict(image_size=32, classifier_width=64, classifier_depth=1, classifier_channel_mult="1,2,2",
                  classifier_attention_resolutions="16,8", num_classes=10)


def flags(values: dict) -> list[str]:
    return [str(a) for k, v in values.items() for a in (f"--{k}", v)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_samples", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        model, _ = su.create_model_and_diffusion(**{**su.model_and_diffusion_defaults(), **MODEL})
        classifier = su.create_classifier(**{**su.classifier_defaults(), **CLASSIFIER})
        torch.save(model.state_dict(), tmp / "model.pt")
        torch.save(classifier.state_dict(), tmp / "classifier.pt")
        common = flags({**MODEL, **CLASSIFIER, "model_path": tmp / "model.pt", "classifier_path": tmp / "classifier.pt",
                        "num_samples": args.num_samples, "batch_size": args.batch_size,
                        "timestep_respacing": args.steps})
        commands = {
            "classifier_sample.py": ["scripts/classifier_sample.py", *common],
            "prog_classifier_sample.py --guidance vanilla": ["scripts/prog_classifier_sample.py", *common,
                                                            "--guidance", "vanilla"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        names = list(commands)
        for r in range(args.repeats):
            for name in names[r % 2:] + names[:r % 2]:  # each script goes first in every other repeat
                command = commands[name]
                env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_LOGDIR": str(tmp / f"out{r}_{len(times[name])}"
                                                                                  f"_{name.split('.')[0]}")}
                start = time.perf_counter()
                subprocess.run([sys.executable, *command], cwd=ROOT, env=env, check=True, capture_output=True)
                times[name].append(time.perf_counter() - start)
    print(f"torch={torch.__version__} threads={torch.get_num_threads()} samples={args.num_samples} "
          f"batch={args.batch_size} steps={args.steps} repeats={args.repeats} (median wall time, whole process)")
    base = statistics.median(times["classifier_sample.py"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<48} {median:8.2f} s  {1000 * median / args.num_samples:8.1f} ms/sample  "
              f"ratio {median / base:.3f}")


if __name__ == "__main__":
    main()
