"""Moved to guided_diffusion.evaluation.metrics; this path is kept for code that imports it."""

from .evaluation.metrics import (  # noqa: F401
    DEFAULT_BLOCK_ELEMENTS,
    ArrayLike,
    channel_gap,
    density_coverage,
    feature_statistics,
    frechet_distance,
    inception_score,
    manifold_radii,
    per_class_recall,
    precision_recall,
    squared_distances,
)
