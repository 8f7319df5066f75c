"""One batch of a guided sampling run: labels and per-sample noise in, uint8 images (and, for the first
samples, the trajectory of predicted x_0 and information degrees) out."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..gaussian_diffusion import Progress
from ..progressive.information_degree import InformationDegree
from ..progressive.plan import GuidancePlan
from .samplers import sample_loop, to_uint8_nhwc
from .seeding import SampleNoise


def sample_batch(diffusion, denoiser: Callable, cond_fn: Callable | None, plan: GuidancePlan, labels: torch.Tensor,
                 noise: SampleNoise, *, sampler: str = "ddpm", eta: float = 0.0, clip_denoised: bool = True,
                 trajectory: int = 0, progress: Progress | None = None) -> dict[str, np.ndarray]:
    """Sample one batch: ``images`` (uint8 NHWC) and ``labels``; with ``trajectory = k`` also, for the
    first k samples, ``trajectory_x0`` (steps x k x H x W x 3 uint8, the predicted x_0 at each step) and
    ``information_degree`` (steps x k x classes float32, the degree each step's guidance used).
    ``progress``: a bar that each step advances by one."""
    device = noise.device
    labels = labels.to(device)
    degree = InformationDegree.from_relevance(plan.relevance, labels, plan.gamma)
    loop = sample_loop(diffusion, sampler, progressive=True, eta=eta)
    x_T = noise.initial()
    steps = loop(denoiser, tuple(x_T.shape), noise=x_T, clip_denoised=clip_denoised, cond_fn=cond_fn,
                 model_kwargs={"y": labels}, device=device, information_degree=degree, noise_sampler=noise,
                 progress=False if progress is None else progress)
    x0_path, degrees = [], []
    out = None
    for k, out in enumerate(steps):
        if trajectory:
            x0_path.append(to_uint8_nhwc(out["pred_xstart"][:trajectory]).cpu().numpy())
            degrees.append(degree.at(k)[:trajectory].float().cpu().numpy())
    result = {"images": to_uint8_nhwc(out["sample"]).cpu().numpy(), "labels": labels.cpu().numpy()}
    if trajectory:
        result["trajectory_x0"] = np.stack(x0_path)
        result["information_degree"] = np.stack(degrees)
    return result
