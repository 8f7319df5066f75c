"""Guidance: objects the sampler calls as ``cond_fn(x_t, t, y=...)`` for the gradient term."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ClassifierGuidance:
    """Vanilla classifier guidance: ``scale * grad_x log p(y | x_t)`` (Dhariwal & Nichol, Eq. 2/3).

    ``t`` is the original (unspaced) timestep: SpacedDiffusion maps it before calling.
    """

    def __init__(self, classifier: nn.Module, scale: float = 1.0):
        self.classifier = classifier
        self.scale = scale

    def __call__(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None, **_) -> torch.Tensor:
        if y is None:
            raise ValueError("classifier guidance needs the target labels y in model_kwargs")
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            log_probs = F.log_softmax(self.classifier(x_in, t), dim=-1)
            selected = log_probs[torch.arange(len(y), device=y.device), y.view(-1)]
            return torch.autograd.grad(selected.sum(), x_in)[0] * self.scale
