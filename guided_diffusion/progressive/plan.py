"""The guidance plan: what a guidance name and its flags amount to, and the networks it samples with.

Every guidance is expressed as a denoiser (the model, or classifier-free
guidance around it), a ``cond_fn`` (a classifier guidance, or none) and an
information degree (``s_T`` and gamma; one-hot for the guidances that do not
use one, which is also what they are recorded with in a trajectory).
"""

from __future__ import annotations

import os
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
    RampedGuidance,
)
from .information_degree import check_gamma, check_relevance, gamma_per_step, uniform_relevance
from .relevance import load_relevance

GUIDANCES = ("vanilla", "prog", "uniform_ls", "ls", "eds", "prog_eds", "ramped", "cfg", "none")
RELEVANCE_GUIDANCES = ("prog", "prog_eds", "ramped")  # those whose s_T comes from a relevance matrix
GUIDANCE_HELP = {
    "vanilla": "classifier guidance, s grad log p(y | x_t) (Dhariwal & Nichol)",
    "prog": "Progressive Guidance: s_T from the relevance matrix, moved toward one-hot with rate gamma (Eq. 4-5)",
    "uniform_ls": "ProG with uniform label smoothing as s_T (1 - ls_eps on the condition), scheduled by gamma",
    "ls": "uniform label smoothing without schedule (gamma = 0)",
    "eds": "vanilla guidance with the entropy-driven scale log(C) / H(p(y | x_t)) (Zheng et al. 2022)",
    "prog_eds": "ProG with the entropy-driven scale",
    "ramped": "a control for ProG: vanilla guidance scaled by ProG's weight on the condition, s_t[c]",
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
    "ramped": RampedGuidance,
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
                  relevance: str | os.PathLike | np.ndarray | None = None, ls_eps: float = 0.1) -> GuidancePlan:
    """The information degree a guidance uses (``relevance``: an ``.npz`` path or the matrix itself);
    ValueError for an unknown name, a bad gamma or matrix."""
    if name not in GUIDANCES:
        raise ValueError(f"unknown guidance {name!r}; expected one of {', '.join(GUIDANCES)}")
    gamma = check_gamma(gamma)
    if name in RELEVANCE_GUIDANCES:
        if relevance is None or (isinstance(relevance, (str, os.PathLike)) and not str(relevance)):
            raise ValueError(f"--guidance {name} needs a relevance matrix (--relevance PATH or --label_set)")
        matrix = (check_relevance(relevance, num_classes) if isinstance(relevance, np.ndarray)
                  else load_relevance(relevance, num_classes))
        return GuidancePlan(name, matrix, gamma_per_step(gamma, num_steps, reference_steps))
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
