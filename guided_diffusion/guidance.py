"""Moved to guided_diffusion.progressive.guidance; this path is kept for code that imports it."""

from .progressive.guidance import (  # noqa: F401
    ENTROPY_FLOOR,
    ClassifierFreeGuidance,
    ClassifierGuidance,
    EntropyDrivenGuidance,
    ProgressiveEntropyDrivenGuidance,
    ProgressiveGuidance,
)
