"""ADM-compatible evaluator: Inception Score, FID, sFID, precision and recall.

    python evaluations/evaluator.py REF.npz SAMPLE.npz [--json out.json]

Prints the same five result lines as the ADM evaluator (``openai/guided-
diffusion``). ``arr_0`` of each ``.npz`` holds uint8 ``[N, H, W, 3]`` images;
a reference batch's ``mu``/``sigma``/``mu_s``/``sigma_s`` are used when
present (Inception features only). Images are streamed from the zip member in
batches; under ``torchrun`` or ``mpiexec`` each rank extracts a contiguous
shard and rank 0 gathers them in order and reports.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from guided_diffusion import dist_util
from guided_diffusion.cli import run_main
from guided_diffusion.evaluation.evaluator import (
    NpzImages,
    check_image_counts,
    evaluate,
    extra_metrics,
    extract_npz,
    fid_statistics,
)
from guided_diffusion.evaluation.feature_extractors import create_extractor


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ref_batch", help="reference .npz (arr_0 images; optional mu, sigma, mu_s, sigma_s)")
    p.add_argument("sample_batch", help="sample .npz (arr_0 images; optional arr_1 labels)")
    p.add_argument("--feature-extractor", default="inception", help="inception | classifier:PATH")
    p.add_argument("--inception-weights", default=None, help="path of pt_inception-2015-12-05-6726825d.pth")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--nhood-size", type=int, default=3, help="k of the k-NN precision/recall")
    p.add_argument("--split-size", type=int, default=5000, help="rows per Inception Score split")
    p.add_argument("--extra", action="store_true", help="also density, coverage, per-class recall")
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    p.add_argument("--device", default=None, help="default: cuda when available")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, float] | None:
    args = parse_args(argv)
    dist_util.setup_dist()
    rank = dist_util.get_rank()
    ref_images, sample_images = NpzImages(args.ref_batch), NpzImages(args.sample_batch)
    check_image_counts(ref_images, sample_images, args.nhood_size)
    device = torch.device(args.device) if args.device else None
    extractor = create_extractor(args.feature_extractor, device, args.inception_weights)

    log = print if rank == 0 else (lambda *a, **k: None)
    log("computing reference batch activations...")
    ref = extract_npz(args.ref_batch, extractor, args.batch_size, "reference", ("pool", "spatial"))
    log("computing sample batch activations...")
    sample = extract_npz(args.sample_batch, extractor, args.batch_size, "samples", ("pool", "spatial", "softmax"))
    if rank != 0:
        return None
    log("computing/reading reference batch statistics...")
    ref_stats = fid_statistics(args.ref_batch, ref, args.feature_extractor == "inception")
    sample_stats = fid_statistics(args.sample_batch, sample, use_stored=False)
    log("Computing evaluations...")
    result = evaluate(ref, sample, ref_stats, sample_stats, args.nhood_size, args.split_size, extractor.device)
    print("Inception Score:", result["inception_score"])
    print("FID:", result["fid"])
    print("sFID:", result["sfid"])
    print("Precision:", result["precision"])
    print("Recall:", result["recall"])
    if args.extra:
        result.update(extra_metrics(args.ref_batch, args.sample_batch, ref, sample, args.nhood_size, extractor.device))
        print("Density:", result["density"])
        print("Coverage:", result["coverage"])
        print("Per-class recall:", result["per_class_recall"])
    if args.json:
        info = {"ref_batch": args.ref_batch, "sample_batch": args.sample_batch,
                "feature_extractor": args.feature_extractor, "num_ref": len(ref_images),
                "num_samples": len(sample_images), "nhood_size": args.nhood_size}  # fmt: skip
        Path(args.json).write_text(json.dumps({**info, **result}, indent=2) + "\n")
    return result


if __name__ == "__main__":
    run_main(main)
