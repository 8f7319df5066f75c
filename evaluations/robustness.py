"""Robustness score of the Progressive Guidance paper (Sec. 6, Tables 2 and 4).

    python evaluations/robustness.py SAMPLE.npz [--bank NAMES_OR_CHECKPOINTS] [--guide CLASSIFIER] [--json out.json]
    python evaluations/robustness.py samples.npz --bank fashion --guide fashion/classifier   # a shipped testbed

The mean, over a bank of independently trained classifiers, of each
classifier's Top-1 accuracy on the samples (``arr_0``) against their
conditioning labels (``arr_1``); Top-5 is reported too. The default bank is
the paper's: torchvision ResNet34, ResNet50, ResNet152, DenseNet169,
DenseNet201, SqueezeNet 1.0 and 1.1 with their ImageNet ``IMAGENET1K_V1``
weights and those weights' standard preprocessing (resize 256, centre crop
224, ImageNet mean/std). A bank entry that is a path is one of our own
classifier checkpoints (``X.pt`` with flags in ``X.json``, see
``guided_diffusion.evaluation.feature_extractors.load_classifier``).

With ``--guide CLASSIFIER`` (the classifier that guided the sampling, a
shipped name or a checkpoint), its Top-1 agreement with the labels on the final
samples (t = 0) is printed beside the bank's, with the gap (guide minus bank),
overall and per class: the share of samples that fool the guide but not the bank.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from guided_diffusion import dist_util
from guided_diffusion.cli import run_main
from guided_diffusion.evaluation.evaluator import NpzImages, extract_npz
from guided_diffusion.evaluation.robustness import (
    PAPER_BANK,
    TOP_K,
    BankExtractor,
    adversarial_gap,
    build_bank,
    build_member,
    check_labels,
    read_labels,
    robustness,
)


def main(argv: list[str] | None = None) -> dict | None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sample_batch", help=".npz with arr_0 uint8 images and arr_1 labels")
    p.add_argument("--bank", default=",".join(PAPER_BANK), help="comma-separated torchvision names, .pt paths, "
                   "shipped names, or a testbed's name for its shipped bank (digits, fashion)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--guide", default=None, help="the guidance classifier (shipped name or .pt): report its own "
                   "accuracy on the samples and the gap to the bank's")
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    p.add_argument("--device", default=None, help="default: cuda when available")
    p.add_argument("--random-weights", action="store_true", help="torchvision models untrained (smoke tests)")
    args = p.parse_args(argv)

    dist_util.setup_dist()
    images = NpzImages(args.sample_batch)
    labels = read_labels(args.sample_batch, len(images))
    device = torch.device(args.device) if args.device else None
    bank = build_bank([e for e in args.bank.split(",") if e], not args.random_weights, device)
    members = dict(bank.members)
    if args.guide:
        members[GUIDE] = build_member(args.guide, not args.random_weights, device)
    everyone = BankExtractor(members)
    check_labels(labels, everyone.num_classes())  # before any image is scored
    predictions = extract_npz(args.sample_batch, everyone, args.batch_size, "robustness")
    if dist_util.get_rank() != 0:
        return None
    guide = predictions.pop(GUIDE, None)
    result = robustness(predictions, labels)
    for name, acc in result["per_classifier"].items():
        print(f"{name}: Top-1 {acc['top1']:.2f}  Top-{TOP_K} {acc[f'top{TOP_K}']:.2f}")
    print(f"Robustness (mean Top-1): {result['robustness']:.2f}")
    print(f"Mean Top-{TOP_K}: {result[f'robustness_top{TOP_K}']:.2f}")
    if guide is not None:
        result["guide"] = {"name": args.guide, **adversarial_gap(predictions, guide, labels)}
        print_gap(result["guide"])
    if args.json:
        info = {"sample_batch": args.sample_batch, "num_samples": len(images), "bank": list(bank.members)}
        Path(args.json).write_text(json.dumps({**info, **result}, indent=2) + "\n")
    return result


GUIDE = "guide"


def print_gap(gap: dict) -> None:
    print(f"Guide {gap['name']} Top-1: {gap['guide_top1']:.2f}")
    print(f"Adversarial gap (guide - bank): {gap['gap']:+.2f} points; samples the guide accepts and most of the "
          f"bank rejects: {gap['fooled_fraction']:.2f} %")
    print("class  guide  bank    gap")
    for c, row in gap["per_class"].items():
        print(f"{c:>5} {row['guide_top1']:6.1f} {row['bank_top1']:5.1f} {row['gap']:+6.1f}")


if __name__ == "__main__":
    run_main(main)

