"""Timestep samplers for training: which diffusion steps each batch trains on.

A sampler draws timesteps with probabilities ``p_t`` and returns importance weights
``1 / (T * p_t)`` so that the weighted loss stays an unbiased estimate of the uniform
objective.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


def create_named_schedule_sampler(name: str, diffusion: Any) -> ScheduleSampler:
    """Sampler by name: ``"uniform"``, ``"uniform_below_N"`` (uniform over t < N, a narrower noise range) or
    ``"loss-second-moment"``."""
    if name == "uniform":
        return UniformSampler(diffusion)
    if name.startswith("uniform_below_") and name[len("uniform_below_"):].isdigit():
        return UniformSampler(diffusion, below=int(name[len("uniform_below_"):]))
    if name == "loss-second-moment":
        return LossSecondMomentResampler(diffusion)
    raise ValueError(f"unknown --schedule_sampler {name!r}: uniform, uniform_below_N or loss-second-moment")


class ScheduleSampler(ABC):
    """A distribution over timesteps used to pick training steps."""

    @abstractmethod
    def weights(self) -> np.ndarray:
        """Unnormalised, positive probability of each timestep."""

    def sample(self, batch_size: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``batch_size`` timesteps; returns (int64 timesteps, float32 importance weights)."""
        w = self.weights()
        p = w / np.sum(w)
        indices_np = np.random.choice(len(p), size=(batch_size,), p=p)
        weights_np = 1 / (len(p) * p[indices_np])
        indices = torch.from_numpy(indices_np).long().to(device)
        weights = torch.from_numpy(weights_np).float().to(device)
        return indices, weights


class UniformSampler(ScheduleSampler):
    """Every timestep equally likely (all weights are 1); with ``below = N`` only the timesteps t < N."""

    def __init__(self, diffusion: Any, below: int | None = None):
        self.diffusion = diffusion
        self._weights = np.ones([diffusion.num_timesteps])
        if below is not None:
            if not 1 <= below <= diffusion.num_timesteps:
                raise ValueError(f"uniform_below_{below}: N must be in [1, {diffusion.num_timesteps}]")
            self._weights[below:] = 0.0

    def weights(self) -> np.ndarray:
        return self._weights


class LossAwareSampler(ScheduleSampler):
    """A sampler whose distribution is updated from the training losses."""

    def update_with_local_losses(self, local_ts: torch.Tensor, local_losses: torch.Tensor) -> None:
        """Update from this rank's (timestep, loss) pairs after gathering those of all ranks.

        Every rank must call this, in the same order, so that all keep identical weights.
        """
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            self.update_with_all_losses(local_ts.tolist(), local_losses.tolist())
            return
        world_size = dist.get_world_size()
        size = torch.tensor([len(local_ts)], dtype=torch.int64, device=local_ts.device)
        sizes = [torch.zeros_like(size) for _ in range(world_size)]
        dist.all_gather(sizes, size)
        counts = [int(s.item()) for s in sizes]
        max_bs = max(counts)

        def gather_padded(values: torch.Tensor) -> list[torch.Tensor]:
            padded = torch.zeros(max_bs, dtype=values.dtype, device=values.device)
            padded[: len(values)] = values
            out = [torch.zeros_like(padded) for _ in range(world_size)]
            dist.all_gather(out, padded)
            return out

        ts_batches = gather_padded(local_ts)
        loss_batches = gather_padded(local_losses)
        timesteps = [int(t) for batch, n in zip(ts_batches, counts, strict=True) for t in batch[:n].tolist()]
        losses = [float(x) for batch, n in zip(loss_batches, counts, strict=True) for x in batch[:n].tolist()]
        self.update_with_all_losses(timesteps, losses)

    @abstractmethod
    def update_with_all_losses(self, ts: Sequence[int], losses: Sequence[float]) -> None:
        """Update the distribution from the (timestep, loss) pairs of every rank."""


class LossSecondMomentResampler(LossAwareSampler):
    """Sample t proportionally to sqrt(E[loss_t^2]) over the last ``history_per_term`` losses.

    Uniform until every timestep has a full history; a ``uniform_prob`` share of the mass
    always stays uniform.
    """

    def __init__(self, diffusion: Any, history_per_term: int = 10, uniform_prob: float = 0.001):
        self.diffusion = diffusion
        self.history_per_term = history_per_term
        self.uniform_prob = uniform_prob
        self._loss_history = np.zeros([diffusion.num_timesteps, history_per_term], dtype=np.float64)
        self._loss_counts = np.zeros([diffusion.num_timesteps], dtype=np.int64)

    def weights(self) -> np.ndarray:
        if not self._warmed_up():
            return np.ones([self.diffusion.num_timesteps], dtype=np.float64)
        weights = np.sqrt(np.mean(self._loss_history**2, axis=-1))
        weights /= np.sum(weights)
        weights *= 1 - self.uniform_prob
        weights += self.uniform_prob / len(weights)
        return weights

    def update_with_all_losses(self, ts: Sequence[int], losses: Sequence[float]) -> None:
        for t, loss in zip(ts, losses, strict=True):
            count = self._loss_counts[t]
            if count == self.history_per_term:
                self._loss_history[t, :-1] = self._loss_history[t, 1:]
                self._loss_history[t, -1] = loss
            else:
                self._loss_history[t, count] = loss
                self._loss_counts[t] = count + 1

    def _warmed_up(self) -> bool:
        return bool((self._loss_counts == self.history_per_term).all())
