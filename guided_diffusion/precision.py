"""Moved to guided_diffusion.sampling.precision; this path is kept for code that imports it."""

from .sampling.precision import COMPILE_BACKEND, PRECISIONS, Accelerated, accelerate, check_precision  # noqa: F401
