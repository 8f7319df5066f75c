"""Training a testbed's shipped networks with the project's own training scripts (a checkout's
``scripts/``), from specs: ``{"script": "image_train" | "classifier_train", "kind", "steps", "flags"}``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout, whose scripts/ train


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
