"""Moved to guided_diffusion.progressive.plan and .sampling.batch; kept for code that imports it."""

from .progressive.plan import GUIDANCE_HELP, GUIDANCES, GuidancePlan, build_guidance, plan_guidance  # noqa: F401
from .sampling.batch import sample_batch  # noqa: F401
