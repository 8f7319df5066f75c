"""Benchmark of the evaluation suite: Inception feature extraction and precision/recall.

    python benchmarks/bench_metrics.py                         # CPU-sized defaults
    python benchmarks/bench_metrics.py --sizes 10000,50000     # the issue's sizes

Prints images/s of FID-Inception feature extraction (random weights; speed
does not depend on them) and the seconds of precision/recall on N x 2048
random features for ``guided_diffusion.evaluation.metrics.precision_recall`` (torch, row
blocks, on the GPU when present) and a straightforward numpy implementation
(float32 distance rows in blocks of 10,000, ``np.partition`` radii, like the
ADM evaluator), measured side by side in one run, with their ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from guided_diffusion.evaluation import metrics
from guided_diffusion.evaluation.feature_extractors import InceptionExtractor, InceptionV3TF


def numpy_precision_recall(ref: np.ndarray, sample: np.ndarray, k: int = 3, rows: int = 10000) -> tuple[float, float]:
    """Plain numpy k-NN precision/recall (the baseline)."""

    def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d = (a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None, :]
        return np.maximum(d, 0)

    def radii(x: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [np.partition(distances(x[i : i + rows], x), k, axis=1)[:, k] for i in range(0, len(x), rows)]
        )

    r_ref, r_sample = radii(ref), radii(sample)
    sample_in = np.zeros(len(sample), dtype=bool)
    ref_in = np.zeros(len(ref), dtype=bool)
    for i in range(0, len(ref), rows):
        d = distances(ref[i : i + rows], sample)
        ref_in[i : i + rows] = (d <= r_sample[None, :]).any(1)
        sample_in |= (d <= r_ref[i : i + rows, None]).any(0)
    return float(sample_in.mean()), float(ref_in.mean())


def timed(fn, *args, sync: bool = False, **kwargs):
    """``(fn(*args, **kwargs), seconds)``, waiting for the GPU when ``sync``."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    if sync:
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def bench_extraction(device: torch.device, num_images: int, image_size: int, batch_size: int) -> float:
    extractor = InceptionExtractor(InceptionV3TF(), device)
    images = np.random.RandomState(0).randint(0, 256, (num_images, image_size, image_size, 3)).astype(np.uint8)
    extractor.extract(images[:batch_size])  # warm-up
    _, seconds = timed(
        lambda: [extractor.extract(images[i : i + batch_size]) for i in range(0, num_images, batch_size)],
        sync=device.type == "cuda",
    )
    return num_images / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="2000,5000", help="comma-separated N for N x dim features")
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--extract-images", type=int, default=32)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--skip-numpy-above", type=int, default=60000, help="no numpy baseline above this N")
    args = p.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}, numpy {np.__version__}")

    rate = bench_extraction(device, args.extract_images, args.image_size, args.batch_size)
    print(
        f"Inception extraction: {rate:.1f} images/s "
        f"({args.extract_images} images {args.image_size}x{args.image_size}, batch {args.batch_size}, float32)"
    )

    print(f"\nprecision/recall, k=3, N ref = N sample, dim {args.dim}")
    print(f"{'N':>7} | {'torch s':>8} | {'numpy s':>8} | {'numpy/torch':>11} | same result")
    rng = np.random.RandomState(0)
    for n in (int(s) for s in args.sizes.split(",")):
        ref = rng.standard_normal((n, args.dim)).astype(np.float32)
        sample = rng.standard_normal((n, args.dim)).astype(np.float32)
        ours, t_torch = timed(metrics.precision_recall, ref, sample, 3, device=device, sync=device.type == "cuda")
        if n <= args.skip_numpy_above:
            base, t_numpy = timed(numpy_precision_recall, ref, sample, 3)
            same = np.allclose(ours, base, atol=2 / n)  # float32 ties may flip a point or two
            print(f"{n:>7} | {t_torch:>8.2f} | {t_numpy:>8.2f} | {t_numpy / t_torch:>11.2f} | {same} {ours}")
        else:
            print(f"{n:>7} | {t_torch:>8.2f} | {'-':>8} | {'-':>11} | {ours}")


if __name__ == "__main__":
    main()
