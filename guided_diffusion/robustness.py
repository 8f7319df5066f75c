"""Moved to guided_diffusion.evaluation.robustness; this path is kept for code that imports it."""

from .evaluation.robustness import (  # noqa: F401
    PAPER_BANK,
    TOP_K,
    BankExtractor,
    TorchvisionClassifier,
    adversarial_gap,
    bank_top1,
    build_bank,
    build_member,
    check_labels,
    fooled,
    member_classes,
    per_class_top1,
    read_labels,
    robustness,
    topk_accuracy,
)
