"""Models of grey data (R = G = B): the colour of the noise, exactly.

For data whose three channels are equal, x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps has no colour but
the noise's: the colour of eps (its RGB minus their mean, pixel by pixel) is exactly colour(x_t) /
sqrt(1 - abar_t). :class:`GreyData` puts that value in place of a network's prediction of it, so that a network
that did not learn it (docs/fashion.md, "The colour cast") still samples grey images; the grey part of its
prediction and its variance are left as they are. The main job applies it with ``--grey_data True``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .wrapper import Wrapper


def colour(x: torch.Tensor) -> torch.Tensor:
    """Each pixel's RGB minus their mean (NCHW, 3 channels)."""
    return x - x.mean(dim=1, keepdim=True)


class GreyData(Wrapper):
    """``model`` (called as ADM's U-Net, on original timesteps) with the exact noise colour of grey data.

    ``alphas_cumprod``: the model's training schedule (abar_t of each original timestep);
    ``timestep_scale``: what the model is called with per timestep (1000 / T with ADM's ``rescale_timesteps``).
    Attributes the guidance reads off the network (``null_class``, ``num_classes``, ...) are the wrapped model's.
    """

    wrapped = "model"

    def __init__(self, model: nn.Module, alphas_cumprod: np.ndarray, timestep_scale: float = 1.0):
        super().__init__()
        self.model = model
        self.register_buffer("sigmas", torch.from_numpy(np.sqrt(1.0 - alphas_cumprod)).float(), persistent=False)
        self.timestep_scale = timestep_scale

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        out = self.model(x, t, y, **kwargs)
        index = (t.float() / self.timestep_scale).round().long()
        sigma = self.sigmas.to(x.device)[index].view(-1, 1, 1, 1)
        eps = out[:, :3].float()
        eps = eps - colour(eps) + colour(x.float()) / sigma  # the colour of eps = colour(x_t) / sigma_t
        return torch.cat([eps.to(out.dtype), out[:, 3:]], dim=1)
