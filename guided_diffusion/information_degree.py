"""Moved to guided_diffusion.progressive.information_degree; this path is kept for code that imports it."""

from .progressive.information_degree import (  # noqa: F401
    ROW_SUM_TOLERANCE,
    InformationDegree,
    check_gamma,
    check_relevance,
    gamma_per_step,
    uniform_relevance,
)
