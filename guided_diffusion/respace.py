"""Sampling with fewer steps: a diffusion over a subset of the original timesteps
(Nichol & Dhariwal 2021, Sec. 4) whose betas keep the original alpha_bar values.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from .gaussian_diffusion import GaussianDiffusion


def space_timesteps(num_timesteps: int, section_counts: str | Iterable[int]) -> set[int]:
    """The original timesteps to keep.

    ``section_counts`` is a list or comma string of step counts, one per equal
    section of [0, T) (``"10,15,20"``: 10 steps in the first third, ...), each
    section strided evenly from its first to its last step; or ``"ddimN"``, the
    DDIM paper's fixed integer stride giving exactly N steps.
    """
    if isinstance(section_counts, str):
        spec = section_counts
        try:
            if spec.startswith("ddim"):
                desired = int(spec[len("ddim"):])
                for stride in range(1, num_timesteps):
                    if len(range(0, num_timesteps, stride)) == desired:
                        return set(range(0, num_timesteps, stride))
                raise ValueError(f"--timestep_respacing {spec}: cannot make exactly {desired} steps with an integer "
                                 f"stride from {num_timesteps}")
            section_counts = [int(x) for x in spec.split(",")]
        except ValueError as err:
            if str(err).startswith("--timestep_respacing"):
                raise
            raise ValueError(f"--timestep_respacing {spec!r} is not a step count: give one (250), step counts per "
                             f"equal section (10,15,20), ddimN (ddim25), uniformN or logsnrN (logsnr20)") from None
    section_counts = list(section_counts)
    if not section_counts or any(c < 0 for c in section_counts) or sum(section_counts) < 1:
        raise ValueError(f"--timestep_respacing {section_counts}: step counts must be non-negative with at least "
                         f"one step")
    size_per, extra = divmod(num_timesteps, len(section_counts))
    start, steps = 0, []
    for i, count in enumerate(section_counts):
        size = size_per + (1 if i < extra else 0)
        if size < count:
            raise ValueError(f"--timestep_respacing: cannot divide a section of {size} steps into {count} "
                             f"(at most {num_timesteps} steps in all, from --diffusion_steps)")
        stride = 1 if count <= 1 else (size - 1) / (count - 1)
        offset = 0.0  # accumulated, not multiplied: rounding must match the released spacings
        for _ in range(count):
            steps.append(start + round(offset))
            offset += stride
        start += size
    return set(steps)


class SpacedDiffusion(GaussianDiffusion):
    """A GaussianDiffusion over ``use_timesteps`` of a base process.

    beta'_i = 1 - abar(k_i) / abar(k_{i-1}) for the kept steps k_i, so every
    kept step has its original marginal. The model and ``cond_fn`` still receive
    the original timestep indices (``timestep_map``).
    """

    def __init__(self, use_timesteps: Iterable[int], **kwargs):
        self.use_timesteps = set(use_timesteps)
        self.original_num_steps = len(kwargs["betas"])
        base = GaussianDiffusion(**kwargs)
        kept = sorted(i for i in range(self.original_num_steps) if i in self.use_timesteps)
        alphas_cumprod = base.alphas_cumprod[kept]
        kwargs["betas"] = 1.0 - alphas_cumprod / np.append(1.0, alphas_cumprod[:-1])
        self.timestep_map = kept
        super().__init__(**kwargs)

    def p_mean_variance(self, model, *args, **kwargs):
        return super().p_mean_variance(self._wrap_model(model), *args, **kwargs)

    def training_losses(self, model, *args, **kwargs):
        return super().training_losses(self._wrap_model(model), *args, **kwargs)

    def condition_mean(self, cond_fn, *args, **kwargs):
        return super().condition_mean(self._wrap_model(cond_fn), *args, **kwargs)

    def condition_score(self, cond_fn, *args, **kwargs):
        return super().condition_score(self._wrap_model(cond_fn), *args, **kwargs)

    def _wrap_model(self, model):
        if isinstance(model, _WrappedModel):
            return model
        return _WrappedModel(model, self.timestep_map, self.rescale_timesteps, self.original_num_steps)

    def _scale_timesteps(self, t: torch.Tensor) -> torch.Tensor:
        return t  # the wrapper maps (and rescales) timesteps


class _WrappedModel:
    """Calls ``model`` with original timesteps in place of respaced indices."""

    def __init__(self, model, timestep_map: list[int], rescale_timesteps: bool, original_num_steps: int):
        self.model = model
        self.timestep_map = timestep_map
        self.rescale_timesteps = rescale_timesteps
        self.original_num_steps = original_num_steps

    def __call__(self, x: torch.Tensor, ts: torch.Tensor, **kwargs) -> torch.Tensor:
        new_ts = torch.tensor(self.timestep_map, device=ts.device, dtype=ts.dtype)[ts]
        if self.rescale_timesteps:
            new_ts = new_ts.float() * (1000.0 / self.original_num_steps)
        return self.model(x, new_ts, **kwargs)
