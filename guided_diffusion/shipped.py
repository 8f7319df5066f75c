"""Moved to guided_diffusion.models and .evaluation.held_out; kept for code that imports it."""

from .evaluation.held_out import EVAL_TIMESTEPS, accuracy, default_job_channel_gap, denoising_mse, held_out_metrics  # noqa: F401
from .models import DEFAULT_MODEL, MODELS_DIR, checkpoint_path, is_shipped, manifest, shipped_names  # noqa: F401
