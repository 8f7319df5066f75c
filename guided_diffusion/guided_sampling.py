"""One batch of a guided sampling run, by guidance name: the library side of ``prog_classifier_sample.py``.

Every guidance is expressed as a denoiser (the model, or classifier-free
guidance around it), a ``cond_fn`` (a classifier guidance, or none) and an
information degree (``s_T`` and gamma; one-hot for the guidances that do not
use one, which is also what they are recorded with in a trajectory).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .guidance import (
    ClassifierFreeGuidance,
    ClassifierGuidance,
    EntropyDrivenGuidance,
    ProgressiveEntropyDrivenGuidance,
    ProgressiveGuidance,
)
from .information_degree import InformationDegree, check_gamma, gamma_per_step, uniform_relevance
from .relevance import load_relevance
from .sampling import sample_loop, to_uint8_nhwc
from .seeding import SampleNoise

GUIDANCES = ("vanilla", "prog", "uniform_ls", "ls", "eds", "prog_eds", "cfg", "none")
GUIDANCE_HELP = {
    "vanilla": "classifier guidance, s grad log p(y | x_t) (Dhariwal & Nichol)",
    "prog": "Progressive Guidance: s_T from the relevance matrix, moved toward one-hot with rate gamma (Eq. 4-5)",
    "uniform_ls": "ProG with uniform label smoothing as s_T (1 - ls_eps on the condition), scheduled by gamma",
    "ls": "uniform label smoothing without schedule (gamma = 0)",
    "eds": "vanilla guidance with the entropy-driven scale log(C) / H(p(y | x_t)) (Zheng et al. 2022)",
    "prog_eds": "ProG with the entropy-driven scale",
    "cfg": "classifier-free guidance (1 + w) eps(x, y) - w eps(x, null); no classifier",
    "none": "no guidance (a class-conditional model still gets the labels)",
}
_CLASSIFIER_GUIDANCE = {
    "vanilla": ClassifierGuidance,
    "prog": ProgressiveGuidance,
    "uniform_ls": ProgressiveGuidance,
    "ls": ProgressiveGuidance,
    "eds": EntropyDrivenGuidance,
    "prog_eds": ProgressiveEntropyDrivenGuidance,
}


@dataclass
class GuidancePlan:
    """What a guidance name and its flags amount to, checked before anything is loaded."""

    name: str
    relevance: np.ndarray  # classes x classes; s_T = relevance[y]
    gamma: float  # per sampling step

    @property
    def needs_classifier(self) -> bool:
        return self.name not in ("cfg", "none")


def plan_guidance(name: str, num_classes: int, num_steps: int, gamma: float, reference_steps: int | None = None,
                  relevance_path: str | None = None, ls_eps: float = 0.1) -> GuidancePlan:
    """The information degree a guidance uses; ValueError for an unknown name, a bad gamma or matrix."""
    if name not in GUIDANCES:
        raise ValueError(f"unknown guidance {name!r}; expected one of {', '.join(GUIDANCES)}")
    gamma = check_gamma(gamma)
    if name in ("prog", "prog_eds"):
        if not relevance_path:
            raise ValueError(f"--guidance {name} needs a relevance matrix (--relevance PATH or --label_set)")
        return GuidancePlan(name, load_relevance(relevance_path, num_classes),
                            gamma_per_step(gamma, num_steps, reference_steps))
    if name in ("uniform_ls", "ls"):
        step_gamma = 0.0 if name == "ls" else gamma_per_step(gamma, num_steps, reference_steps)
        return GuidancePlan(name, uniform_relevance(num_classes, ls_eps), step_gamma)
    return GuidancePlan(name, np.eye(num_classes), 1.0)


def build_guidance(plan: GuidancePlan, model: nn.Module, classifier: nn.Module | None, scale: float,
                   class_cond: bool) -> tuple[Callable, Callable | None]:
    """``(denoiser, cond_fn)`` for the sampling loop."""
    if plan.name == "cfg":
        return ClassifierFreeGuidance(model, scale), None

    def denoiser(x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return model(x, t, y if class_cond else None)

    if plan.name == "none":
        return denoiser, None
    return denoiser, _CLASSIFIER_GUIDANCE[plan.name](classifier, scale)


def sample_batch(diffusion, denoiser: Callable, cond_fn: Callable | None, plan: GuidancePlan, labels: torch.Tensor,
                 noise: SampleNoise, *, sampler: str = "ddpm", eta: float = 0.0, clip_denoised: bool = True,
                 trajectory: int = 0) -> dict[str, np.ndarray]:
    """Sample one batch: ``images`` (uint8 NHWC) and ``labels``; with ``trajectory = k`` also, for the
    first k samples, ``trajectory_x0`` (steps x k x H x W x 3 uint8, the predicted x_0 at each step) and
    ``information_degree`` (steps x k x classes float32, the degree each step's guidance used)."""
    device = noise.device
    labels = labels.to(device)
    degree = InformationDegree.from_relevance(plan.relevance, labels, plan.gamma)
    loop = sample_loop(diffusion, sampler, progressive=True, eta=eta)
    x_T = noise.initial()
    steps = loop(denoiser, tuple(x_T.shape), noise=x_T, clip_denoised=clip_denoised, cond_fn=cond_fn,
                 model_kwargs={"y": labels}, device=device, information_degree=degree, noise_sampler=noise)
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
