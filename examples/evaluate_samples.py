"""Score a sample batch: FID, sFID, IS, precision and recall in a classifier's feature space (the evaluator's
library functions), and robustness, the mean top-1 accuracy of a bank of independently trained classifiers on
the samples against their labels (the paper's Sec. 6).

    python examples/evaluate_samples.py       # samples 16 digits with the main job first (a CPU, in seconds)
    python examples/evaluate_samples.py --samples prog_samples.npz   # a batch of yours (prog_sampling.py's)

Defaults are the digits testbed's: its training images as the reference, the shipped digits/features network,
the bank digits/bank1..5. For ImageNet batches (Inception features, the paper's torchvision bank) use
evaluations/evaluator.py and evaluations/robustness.py.
"""

import argparse

import numpy as np

from guided_diffusion.evaluation.evaluator import evaluate, fitted_statistics
from guided_diffusion.evaluation.feature_extractors import create_extractor
from guided_diffusion.evaluation.robustness import build_bank, check_labels, robustness
from guided_diffusion.sampling.job import MainJob, job_args
from guided_diffusion.testbeds.digits import DIGITS

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--samples", default="", help=".npz: arr_0 uint8 NHWC images, arr_1 labels; default: sample "
                    "--num_samples digits with the main job (ProG, its defaults)")
parser.add_argument("--num_samples", type=int, default=16)
parser.add_argument("--steps", type=int, default=25, help="sampling steps of the main job's batch")
parser.add_argument("--reference", default="", help=".npz of reference images (arr_0); default: the digits' "
                    "training images")
parser.add_argument("--per_class", type=int, default=0, help="only the first N training images of each digit as "
                    "the reference (0: all 1,497)")
parser.add_argument("--features", default="classifier:digits/features", help="a feature extractor "
                    "(guided_diffusion.evaluation.feature_extractors.create_extractor)")
parser.add_argument("--bank", default=",".join(DIGITS.bank), help="comma-separated classifiers (shipped names, "
                    "checkpoints or torchvision names)")
args = parser.parse_args()

# The sample batch: a file, or the main job as a library (the flags of scripts/prog_classifier_sample.py).
if args.samples:
    with np.load(args.samples) as npz:
        images, labels = npz["arr_0"], npz["arr_1"]
else:
    job = MainJob(job_args([], num_samples=args.num_samples, batch_size=args.num_samples,
                           timestep_respacing=str(args.steps))).load()
    out = job.sample()
    images, labels = out["images"], out["labels"]
if args.reference:
    with np.load(args.reference) as npz:
        reference = npz["arr_0"]
else:
    reference = DIGITS.first_of_each_class(args.per_class).reference()[0]

# Fidelity and diversity: both batches' features, their Gaussian statistics, the five ADM numbers (from a few
# samples FID is biased upward and precision and recall are coarse; ADM's tables use 50,000).
extractor = create_extractor(args.features)
ref_features = extractor.extract_in_batches(reference)
sample_features = extractor.extract_in_batches(images)
scores = evaluate(ref_features, sample_features, fitted_statistics(ref_features), fitted_statistics(sample_features))

# Robustness: do classifiers that never guided the sampling see the conditioning label?
bank = build_bank(args.bank.split(","))
check_labels(labels, bank.num_classes())
scores["robustness"] = robustness(bank.extract_in_batches(images), labels)["robustness"]

print(f"{len(images)} samples against {len(reference)} reference images ({args.features})")
for name, value in scores.items():
    print(f"{name}: {value:.4f}")
