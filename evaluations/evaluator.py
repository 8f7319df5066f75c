"""ADM-compatible evaluator: Inception Score, FID, sFID, precision and recall.

    python evaluations/evaluator.py REF SAMPLES [--json out.json]

Prints the same five result lines as the ADM evaluator (``openai/guided-
diffusion``). REF and SAMPLES are each an ``.npz`` (``arr_0``: uint8
``[N, H, W, 3]`` images; ``arr_1``: labels) or a folder of PNG / JPEG images
(no labels). A reference ``.npz``'s ``mu``/``sigma``/``mu_s``/``sigma_s`` are
used when present (Inception features only). The reference batch's features
are cached (keyed by its content and the feature network), so that the next
evaluation against it skips them; ``--no_cache`` turns that off. Images are
read in batches; under ``torchrun``, ``mpiexec`` or ``srun`` each rank extracts
a contiguous shard and rank 0 gathers them in order and reports.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from guided_diffusion import dist_util
from guided_diffusion.cli import ScriptParser, run_main
from guided_diffusion.evaluation.evaluator import (
    check_image_counts,
    evaluate,
    extra_metrics,
    extract,
    feature_cache_dir,
    fid_statistics,
    open_images,
    reference_features,
)
from guided_diffusion.evaluation.feature_extractors import create_extractor
from guided_diffusion.flags import str2bool

BATCH = ".npz (arr_0 images{}) or a folder of PNG/JPEG images"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ScriptParser(description=__doc__)
    p.add_argument("ref_batch", help="reference batch: " + BATCH.format("; optional mu, sigma, mu_s, sigma_s"))
    p.add_argument("sample_batch", help="sample batch: " + BATCH.format("; optional arr_1 labels"))
    p.add_argument("--feature_extractor", "--feature-extractor", default="inception",
                   help="inception | classifier:PATH")
    p.add_argument("--inception_weights", "--inception-weights", default=None,
                   help="path of pt_inception-2015-12-05-6726825d.pth")
    p.add_argument("--batch_size", "--batch-size", type=int, default=64, help="images per forward pass")
    p.add_argument("--nhood_size", "--nhood-size", type=int, default=3, help="k of the k-NN precision/recall")
    p.add_argument("--split_size", "--split-size", type=int, default=5000, help="rows per Inception Score split")
    p.add_argument("--extra", action="store_true", help="also density, coverage, per-class recall")
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    p.add_argument("--device", default=None, help="default: cuda when available")
    p.add_argument("--cache_dir", "--cache-dir", default=None,
                   help="folder of cached reference features (default: $GUIDED_DIFFUSION_CACHE/reference_features, "
                        "else ~/.cache/guided_diffusion/reference_features)")
    p.add_argument("--no_cache", "--no-cache", action="store_true",
                   help="extract the reference batch's features without reading or writing the cache")
    p.add_argument("--progress", type=str2bool, default=True,
                   help="a progress bar of the feature extraction (rank 0, on a terminal)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, float] | None:
    args = parse_args(argv)
    if args.batch_size < 1:
        raise ValueError(f"--batch_size must be at least 1, got {args.batch_size}")
    dist_util.setup_dist()
    rank = dist_util.get_rank()
    ref_images, sample_images = open_images(args.ref_batch), open_images(args.sample_batch)
    check_image_counts(ref_images, sample_images, args.nhood_size)
    device = torch.device(args.device) if args.device else None
    extractor = create_extractor(args.feature_extractor, device, args.inception_weights)
    cache = None if args.no_cache else Path(args.cache_dir) if args.cache_dir else feature_cache_dir()

    log = print if rank == 0 else (lambda *a, **k: None)
    log("computing reference batch activations...")
    ref = reference_features(ref_images, extractor, args.batch_size, cache, progress=args.progress)
    log(ref.note)
    log("computing sample batch activations...")
    sample = extract(sample_images, extractor, args.batch_size, "samples", ("pool", "spatial", "softmax"),
                     args.progress)
    if rank != 0:
        return None
    log("computing/reading reference batch statistics...")
    ref_stats = fid_statistics(args.ref_batch, ref.features, args.feature_extractor == "inception", ref.stats)
    sample_stats = fid_statistics(args.sample_batch, sample, use_stored=False)
    log("Computing evaluations...")
    result = evaluate(ref.features, sample, ref_stats, sample_stats, args.nhood_size, args.split_size,
                      extractor.device)
    print("Inception Score:", result["inception_score"])
    print("FID:", result["fid"])
    print("sFID:", result["sfid"])
    print("Precision:", result["precision"])
    print("Recall:", result["recall"])
    if args.extra:
        labels = ref_images.labels(), sample_images.labels()
        unlabelled = [str(images.path) for images, y in zip((ref_images, sample_images), labels, strict=True)
                      if y is None]
        if unlabelled:
            log(f"per-class recall needs labels (arr_1 of an .npz) in both batches; none in {', '.join(unlabelled)}")
        result.update(extra_metrics(*labels, ref.features, sample, args.nhood_size, extractor.device))
        print("Density:", result["density"])
        print("Coverage:", result["coverage"])
        print("Per-class recall:", result["per_class_recall"])
    if args.json:
        info = {"ref_batch": args.ref_batch, "sample_batch": args.sample_batch,
                "feature_extractor": args.feature_extractor, "num_ref": len(ref_images),
                "num_samples": len(sample_images), "nhood_size": args.nhood_size,
                "ref_features_cached": ref.cached}  # fmt: skip
        Path(args.json).write_text(json.dumps({**info, **result}, indent=2) + "\n")
    return result


if __name__ == "__main__":
    run_main(main)
