"""ADM's layer helpers (``guided_diffusion.nn``): defined once here, used by the networks, the
diffusion and the training loop, and importable as in the original code."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as _grad_checkpoint

SiLU = nn.SiLU  # the original defined its own for old PyTorch releases


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in float32 whatever the input dtype; under bf16 autocast by autocast's bf16 kernel
    (float32 range, float32 accumulation), which on CPUs is several times faster than the round trip."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.bfloat16 and torch.is_autocast_enabled(x.device.type):
            return super().forward(x)
        return super().forward(x.float()).type(x.dtype)


def conv_nd(dims: int, *args, **kwargs) -> nn.Module:
    """A 1-, 2- or 3-D convolution."""
    return {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims](*args, **kwargs)


def linear(*args, **kwargs) -> nn.Module:
    return nn.Linear(*args, **kwargs)


def avg_pool_nd(dims: int, *args, **kwargs) -> nn.Module:
    return {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[dims](*args, **kwargs)


def update_ema(target_params: Iterable[torch.Tensor], source_params: Iterable[torch.Tensor],
               rate: float = 0.99) -> None:
    """In place: ``target = rate * target + (1 - rate) * source``."""
    with torch.no_grad():
        for targ, src in zip(target_params, source_params, strict=True):
            targ.mul_(rate).add_(src, alpha=1 - rate)


def zero_module(module: nn.Module) -> nn.Module:
    """Zero a layer's parameters, so a residual branch starts as the identity."""
    for p in module.parameters():
        p.detach().zero_()
    return module


def scale_module(module: nn.Module, scale: float) -> nn.Module:
    """Scale a layer's parameters in place."""
    for p in module.parameters():
        p.detach().mul_(scale)
    return module


def mean_flat(tensor: torch.Tensor) -> torch.Tensor:
    """Mean over all but the batch dimension."""
    return tensor.mean(dim=list(range(1, tensor.dim())))


def normalization(channels: int) -> nn.Module:
    return GroupNorm32(32, channels)


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: int = 10000) -> torch.Tensor:
    """Sinusoidal embedding [cos(t f_i), sin(t f_i)], f_i = max_period^(-i/half)."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half
    )
    args = timesteps[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def checkpoint(func: Callable, inputs: Sequence[torch.Tensor], params: Iterable[torch.Tensor],
               flag: bool) -> torch.Tensor:
    """``func(*inputs)``, with ``flag`` recomputing its activations in the backward pass instead of keeping
    them (ADM's signature; ``params`` is accepted for it: non-reentrant checkpointing finds them itself)."""
    del params
    if flag:
        return _grad_checkpoint(func, *inputs, use_reentrant=False)
    return func(*inputs)
