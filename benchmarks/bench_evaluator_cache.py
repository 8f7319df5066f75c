"""Benchmark of the evaluator's reference-feature cache: the first evaluation against a reference batch
(its features extracted and cached) and a second one against the same reference (read from the cache).

    python benchmarks/bench_evaluator_cache.py      # CPU-sized: 10,000 reference images, digits/features
    python benchmarks/bench_evaluator_cache.py --feature_extractor inception --image_size 64 \\
        --sample_images 50000                       # a reproduction row's sizes, on a GPU with the Inception weights

Writes a reference and a sample batch of random images (the time does not depend on them) to a temporary
folder, then times ``python evaluations/evaluator.py REF SAMPLES`` twice with one fresh cache folder, side by
side in one run, and prints both times and their ratio. Each run is a whole process (imports and network
loading included), as each row of a reproduction is; the second still extracts the samples.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def write_batches(folder: Path, ref_images: int, sample_images: int, image_size: int) -> tuple[Path, Path]:
    """``ref.npz`` and ``sample.npz`` of random uint8 images with labels, in ``folder``."""
    rng = np.random.default_rng(0)
    paths = []
    for name, n in (("ref", ref_images), ("sample", sample_images)):
        paths.append(folder / f"{name}.npz")
        images = rng.integers(0, 256, (n, image_size, image_size, 3), dtype=np.uint8)
        np.savez(paths[-1], images, rng.integers(0, 10, n))
    return paths[0], paths[1]


def evaluator_command(ref: Path, sample: Path, feature_extractor: str, cache: Path, batch_size: int,
                      out: Path) -> list[str]:
    """The evaluator's command line, with the given cache folder and results written to ``out``."""
    return [sys.executable, str(ROOT / "evaluations" / "evaluator.py"), str(ref), str(sample),
            "--feature_extractor", feature_extractor, "--batch_size", str(batch_size), "--cache_dir", str(cache),
            "--json", str(out)]


def timed_run(command: list[str]) -> tuple[float, dict]:
    """Seconds of one evaluator process and its JSON results."""
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr}")
    return seconds, json.loads(Path(command[-1]).read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref_images", type=int, default=10000, help="reference batch size (ADM's: 10,000)")
    p.add_argument("--sample_images", type=int, default=10000)
    p.add_argument("--image_size", type=int, default=16)
    p.add_argument("--feature_extractor", default="classifier:digits/features")
    p.add_argument("--batch_size", type=int, default=256)
    args = p.parse_args()

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {device}; torch {torch.__version__}; --feature_extractor {args.feature_extractor}; "
          f"reference {args.ref_images} and samples {args.sample_images} images of "
          f"{args.image_size}x{args.image_size}; --batch_size {args.batch_size}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ref, sample = write_batches(folder, args.ref_images, args.sample_images, args.image_size)
        runs = []
        for name in ("first", "cached"):
            command = evaluator_command(ref, sample, args.feature_extractor, folder / "cache", args.batch_size,
                                        folder / f"{name}.json")
            runs.append(timed_run(command))
        (first, first_result), (cached, cached_result) = runs
    if first_result["ref_features_cached"] or not cached_result["ref_features_cached"]:
        raise RuntimeError("the second run did not read the reference features from the cache")
    same = all(first_result[k] == cached_result[k] for k in ("fid", "sfid", "precision", "recall"))
    print(f"first run (reference extracted and cached): {first:8.1f} s")
    print(f"cached run (reference read from the cache): {cached:8.1f} s")
    print(f"ratio: {first / cached:.2f}x; results identical: {same}")


if __name__ == "__main__":
    main()
