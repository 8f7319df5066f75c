"""Randomness that depends only on a run's seed and each sample's global index.

Sample ``i`` of a run draws its label, its x_T and every step's noise from
generators seeded by ``(seed, i)``, so what it becomes does not depend on how
many processes ran, which batch it was in or whether the run was resumed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

NOISE_STREAM, LABEL_STREAM = 0, 1
CLASS_CHOICES = ("random", "balanced")


def sample_seed(seed: int, index: int, stream: int) -> int:
    """A 63-bit seed for stream ``stream`` of sample ``index``, mixed by numpy's SeedSequence."""
    state = np.random.SeedSequence([seed, index, stream]).generate_state(1, dtype=np.uint64)[0]
    return int(state) & (2**63 - 1)


class SampleNoise:
    """x_T and the per-step Gaussian draws of samples ``indices``, each from its own generator.

    Call :meth:`initial` once, then use the object as the sampling loop's
    ``noise_sampler`` (one draw per step for every sample).
    """

    def __init__(self, seed: int, indices: Sequence[int], shape: Sequence[int], device: torch.device):
        self.shape = tuple(shape)
        self.device = device
        self.generators = [torch.Generator(device=device).manual_seed(sample_seed(seed, i, NOISE_STREAM))
                           for i in indices]

    def _draw(self) -> torch.Tensor:
        return torch.stack([torch.randn(self.shape, generator=g, device=self.device) for g in self.generators])

    def initial(self) -> torch.Tensor:
        """x_T."""
        return self._draw()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._draw()


def parse_classes(classes: str, num_classes: int) -> str | list[int]:
    """``random``, ``balanced`` or a comma-separated list of class indices, checked against ``num_classes``."""
    if classes in CLASS_CHOICES:
        return classes
    try:
        chosen = [int(c) for c in classes.split(",") if c.strip()]
    except ValueError as err:
        raise ValueError(f"--classes must be 'random', 'balanced' or class indices such as 3,207; got {classes!r}"
                         ) from err
    bad = [c for c in chosen if not 0 <= c < num_classes]
    if bad or not chosen:
        raise ValueError(f"--classes {classes}: class indices must be in [0, {num_classes}) for a classifier with "
                         f"{num_classes} classes" + (f" ({bad} are not)" if bad else ""))
    return chosen


def sample_labels(classes: str | list[int], seed: int, indices: Sequence[int], num_classes: int) -> torch.Tensor:
    """Labels of samples ``indices``: uniform at random per sample (as the original scripts), each class
    in turn (``balanced``: sample i is class i mod C), or the given list in turn."""
    if classes == "random":
        return torch.tensor([int(np.random.default_rng(sample_seed(seed, i, LABEL_STREAM)).integers(num_classes))
                             for i in indices], dtype=torch.long)
    cycle = range(num_classes) if classes == "balanced" else classes
    return torch.tensor([cycle[i % len(cycle)] for i in indices], dtype=torch.long)
