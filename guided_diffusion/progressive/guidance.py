"""Guidance: small objects the sampler calls.

Classifier-based guidances are called as ``cond_fn(x_t, t, y=..., information_degree=...)``
and return the gradient term that the sampler adds to the mean (DDPM) or
subtracts from the noise (DDIM). Each costs one classifier forward and one
backward pass per step:

- :class:`ClassifierGuidance`: vanilla, ``s grad log p(y | x_t)`` (Dhariwal & Nichol, Eq. 2/3);
- :class:`ProgressiveGuidance`: ProG, ``w grad sum_i s_i log p(y_i | x_t)`` (Dinh et al., Eq. 4),
  with ``s`` the step's information degree (:mod:`guided_diffusion.progressive.information_degree`);
  uniform label smoothing is this with a uniform-smoothing ``s_T``;
- :class:`EntropyDrivenGuidance` and :class:`ProgressiveEntropyDrivenGuidance`: EDS
  (Zheng et al. 2022), the scale multiplied per sample by ``log(C) / H(p(y | x_t))``.

:class:`ClassifierFreeGuidance` (Ho & Salimans 2022) wraps the diffusion model
instead: the sampler calls it in the model's place.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ENTROPY_FLOOR = 1e-6  # nats; keeps EDS finite for a classifier that is certain


class ClassifierGuidance:
    """Vanilla classifier guidance: ``scale * grad_x log p(y | x_t)`` (Dhariwal & Nichol, Eq. 2/3).

    ``t`` is the original (unspaced) timestep: SpacedDiffusion maps it before calling.
    Subclasses change the objective (:meth:`log_likelihood`) or the per-sample
    scale (:meth:`sample_scale`); the forward and backward pass stay one each.
    """

    def __init__(self, classifier: nn.Module, scale: float = 1.0):
        self.classifier = classifier
        self.scale = scale

    def __call__(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None,
                 information_degree: torch.Tensor | None = None, **_) -> torch.Tensor:
        if y is None:
            raise ValueError("classifier guidance needs the target labels y in model_kwargs")
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            log_probs = F.log_softmax(self.classifier(x_in, t), dim=-1)
            objective = self.log_likelihood(log_probs, y.view(-1), information_degree)
            gradient = torch.autograd.grad(objective.sum(), x_in)[0]
        scale = self.sample_scale(log_probs.detach())
        if isinstance(scale, torch.Tensor):
            scale = scale.view(-1, *([1] * (gradient.dim() - 1)))
        return gradient * scale

    def log_likelihood(self, log_probs: torch.Tensor, y: torch.Tensor,
                       information_degree: torch.Tensor | None) -> torch.Tensor:
        """Per sample, ``log p(y | x_t)``."""
        return log_probs[torch.arange(len(y), device=y.device), y]

    def sample_scale(self, log_probs: torch.Tensor) -> float | torch.Tensor:
        """The guidance scale: a number, or a tensor with one per sample."""
        return self.scale


class ProgressiveGuidance(ClassifierGuidance):
    """ProG (Eq. 4): ``scale * grad_x sum_i s_i log p(y_i | x_t)``, one backward pass of the soft target.

    ``s`` is the information degree of the current step, handed over by the
    sampling loop (``information_degree=`` on ``p_sample_loop`` / ``ddim_sample_loop``).
    Its gradient equals that of ``-KL(s || p(. | x_t))`` (Eq. 6), since ``s`` does
    not depend on ``x_t``. A one-hot ``s`` gives vanilla guidance exactly.
    """

    def log_likelihood(self, log_probs: torch.Tensor, y: torch.Tensor,
                       information_degree: torch.Tensor | None) -> torch.Tensor:
        if information_degree is None:
            raise ValueError("ProG needs the information degree: pass information_degree=InformationDegree(...) "
                             "to the sampling loop")
        if information_degree.shape != log_probs.shape:
            raise ValueError(f"information degree of shape {tuple(information_degree.shape)} for classifier "
                             f"outputs of shape {tuple(log_probs.shape)}")
        return (information_degree.to(log_probs.dtype) * log_probs).sum(dim=-1)


class RampedGuidance(ClassifierGuidance):
    """A control for ProG: vanilla guidance whose scale follows ProG's weight on the condition,
    ``s_k[c] * scale * grad log p(c | x_t)``: the schedule of Eq. 5 without the other classes' gradients."""

    def log_likelihood(self, log_probs: torch.Tensor, y: torch.Tensor,
                       information_degree: torch.Tensor | None) -> torch.Tensor:
        if information_degree is None:
            raise ValueError("ramped guidance needs the information degree (information_degree=...)")
        rows = torch.arange(len(y), device=y.device)
        return information_degree[rows, y].to(log_probs.dtype) * log_probs[rows, y]


class EntropyDrivenGuidance(ClassifierGuidance):
    """EDS (Zheng et al. 2022): the scale times ``log(C) / H(p(y | x_t))`` per sample.

    ``H`` is the entropy of the classifier's softmax at ``x_t`` (floored at
    :data:`ENTROPY_FLOOR`), read off the same forward pass; the factor is 1 for a
    uniform prediction and grows as the classifier grows certain, countering
    the vanishing guidance gradient late in sampling.
    """

    def sample_scale(self, log_probs: torch.Tensor) -> torch.Tensor:
        entropy = (-(log_probs.exp() * log_probs).sum(dim=-1)).clamp_min(ENTROPY_FLOOR)
        factor = math.log(log_probs.shape[-1]) / entropy
        return self.scale * factor


class ProgressiveEntropyDrivenGuidance(ProgressiveGuidance, EntropyDrivenGuidance):
    """ProG + EDS (Table 3): the soft-target objective of ProG with the per-sample scale of EDS."""


class ClassifierFreeGuidance(nn.Module):
    """``eps = (1 + w) eps(x, y) - w eps(x, null)`` (Ho & Salimans 2022), called in the model's place.

    The model must have a null class (trained with ``--label_dropout``). Both
    predictions come from one forward pass over a doubled batch, so a step
    costs two model evaluations; learned variance channels are the conditional
    prediction's. ``w = 0`` is the conditional model.
    """

    def __init__(self, model: nn.Module, scale: float):
        super().__init__()
        null_class = getattr(model, "null_class", None)
        if null_class is None:
            raise ValueError("classifier-free guidance needs a model trained with label dropout (a null class); "
                             "train one with image_train.py --label_dropout 0.1 and sample with that flag too")
        self.model = model
        self.scale = scale
        self.null_class = null_class

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            raise ValueError("classifier-free guidance needs the target labels y in model_kwargs")
        out = self.model(torch.cat([x, x]), torch.cat([t, t]), y=torch.cat([y, torch.full_like(y, self.null_class)]))
        cond, uncond = out.chunk(2)
        channels = x.shape[1]
        eps = (1 + self.scale) * cond[:, :channels] - self.scale * uncond[:, :channels]
        return torch.cat([eps, cond[:, channels:]], dim=1)
