"""Evaluation: sample metrics, feature networks, robustness, and held-out metrics of trained networks.

``metrics`` (FID, IS, precision/recall, ...) and ``feature_extractors`` (Inception, classifiers) <-
``evaluator`` (reference vs sample batches, on any number of ranks) and ``robustness`` (a classifier bank's
top-1 on samples); ``held_out`` scores networks, not samples. The names below are those of the former
module ``guided_diffusion.evaluation``, kept for code that imports them.
"""

from .evaluator import (  # noqa: F401
    NpzImages,
    check_image_counts,
    evaluate,
    extra_metrics,
    extract_npz,
    fid_statistics,
    gather_to_rank0,
    shard_bounds,
)
