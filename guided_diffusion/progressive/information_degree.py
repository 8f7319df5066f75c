"""The information degree of Progressive Guidance (Dinh et al., Sec. 3.1-3.2).

The information degree ``s`` is a distribution over classes that weights each
class's guidance gradient (Eq. 4). For condition ``c`` it starts as row ``c`` of
a class-relevance matrix ``R`` (``s_T = R[c]``) and moves toward the one-hot
``e_c`` once per sampling step by the schedule of Eq. 5 with rate ``gamma``:
``gamma = 1`` is vanilla guidance from the second step on, ``gamma = 0`` keeps
``s_T`` (label smoothing without a schedule).

Where ``R`` comes from (class descriptions, a classifier's confusion) is
:mod:`guided_diffusion.progressive.relevance`; this module only needs the matrix.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

ROW_SUM_TOLERANCE = 1e-4


def check_gamma(gamma: float) -> float:
    """``gamma`` as a float, or a ValueError if it is outside [0, 1]."""
    gamma = float(gamma)
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1] (1: vanilla guidance, 0: no schedule), got {gamma}")
    return gamma


def gamma_per_step(gamma: float, num_steps: int, reference_steps: int | None = None) -> float:
    """The per-step rate that leaves the off-target mass ``gamma`` leaves after ``reference_steps``.

    Eq. 5 is applied once per sampling step, so the same gamma means more at
    250 steps than at 25 (``0.96**250 = 4e-5`` of the off-target mass is left
    against ``0.96**25 = 0.36``). With ``reference_steps = N_ref`` the given
    gamma is read as a rate for N_ref steps and converted to the rate for
    ``num_steps = N`` steps with the same end point:
    ``1 - (1 - gamma) ** (N_ref / N)``. Without it gamma is per actual step, as
    the paper writes it.
    """
    gamma = check_gamma(gamma)
    if reference_steps is None:
        return gamma
    if num_steps < 1 or reference_steps < 1:
        raise ValueError(f"step counts must be positive, got {num_steps} and {reference_steps}")
    return 1.0 - (1.0 - gamma) ** (reference_steps / num_steps)


def check_relevance(relevance: np.ndarray | torch.Tensor, num_classes: int | None = None) -> np.ndarray:
    """``relevance`` as a float64 array, or a ValueError saying what is wrong with it.

    A relevance matrix is classes x classes, non-negative, each row sums to 1
    and its diagonal entry is the row's strict maximum (``s_c > s_i``, Sec. 3.1).
    """
    matrix = np.asarray(relevance.cpu() if isinstance(relevance, torch.Tensor) else relevance, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a relevance matrix is classes x classes, got shape {matrix.shape}")
    if num_classes is not None and matrix.shape[0] != num_classes:
        raise ValueError(f"the relevance matrix is for {matrix.shape[0]} classes but the classifier has "
                         f"{num_classes}; build one for this label set (scripts/build_relevance.py)")
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        raise ValueError("relevance entries must be finite and non-negative")
    off = np.abs(matrix.sum(axis=1) - 1.0)
    if (off > ROW_SUM_TOLERANCE).any():
        row = int(off.argmax())
        raise ValueError(f"every relevance row must sum to 1; row {row} sums to {matrix[row].sum():.6f}")
    others = matrix - np.diag(np.full(len(matrix), np.inf))
    bad = np.flatnonzero(np.diag(matrix) <= others.max(axis=1))
    if bad.size:
        raise ValueError(f"each row's diagonal entry must be its largest (s_c > s_i); it is not for classes "
                         f"{bad[:10].tolist()}{' ...' if bad.size > 10 else ''}")
    return matrix


def uniform_relevance(num_classes: int, eps: float) -> np.ndarray:
    """Uniform label smoothing: ``1 - eps`` on the diagonal, ``eps`` spread evenly over the other classes."""
    if num_classes < 2:
        raise ValueError("label smoothing needs at least 2 classes")
    if not 0.0 <= eps < (num_classes - 1) / num_classes:
        raise ValueError(f"ls_eps must be in [0, {(num_classes - 1) / num_classes:g}) so that the condition "
                         f"keeps the largest share, got {eps}")
    matrix = np.full((num_classes, num_classes), eps / (num_classes - 1))
    np.fill_diagonal(matrix, 1.0 - eps)
    return matrix


class InformationDegree:
    """The information degree of a batch at every sampling step, from ``s_T`` alone.

    Eq. 5 moves ``Delta = gamma (1 - s_c)`` of mass onto the condition ``c`` and
    takes it from the other classes in proportion to their shares. Writing
    ``m = 1 - s_c`` for the off-target mass, one step gives
    ``s_c' = s_c + gamma m``, so ``m' = (1 - gamma) m``, and for ``i != c``
    ``s_i' = s_i - gamma m s_i / m = (1 - gamma) s_i``. Every off-target share
    shrinks by the same factor (their ratios are kept), hence after k steps

        s_k = (1 - gamma)^k s_T + (1 - (1 - gamma)^k) e_c.

    Step k = 0 is the first sampling step (at x_T) and uses ``s_T`` itself; the
    k-th step uses ``s_k``. No state is carried from step to step, so any step
    (a resumed run, a saved trajectory) is computed directly and exactly, and
    a batch costs ``s_T`` plus one scalar per step.
    """

    def __init__(self, initial: torch.Tensor, labels: torch.Tensor, gamma: float):
        if initial.ndim != 2 or labels.shape != (initial.shape[0],):
            raise ValueError(f"s_T must be batch x classes with one label per row, got {tuple(initial.shape)} "
                             f"and labels {tuple(labels.shape)}")
        target = initial.gather(1, labels.view(-1, 1)).squeeze(1)
        others = initial.scatter(1, labels.view(-1, 1), -1.0)  # entries are >= 0: -1 hides the target
        if (initial < 0).any() or ((initial.sum(dim=1) - 1).abs() > ROW_SUM_TOLERANCE).any() or (
                target <= others.amax(dim=1)).any():
            raise ValueError("each row of s_T must be a distribution whose largest entry is its label's")
        self.gamma = check_gamma(gamma)
        self.initial = initial
        self.labels = labels
        self.one_hot = F.one_hot(labels, initial.shape[1]).to(initial.dtype)

    @classmethod
    def from_relevance(cls, relevance: np.ndarray | torch.Tensor, labels: torch.Tensor,
                       gamma: float) -> InformationDegree:
        """``s_T = R[y]`` for the conditions ``labels`` (Sec. 3.1)."""
        matrix = torch.as_tensor(relevance, dtype=torch.float32, device=labels.device)
        if labels.numel() and not 0 <= int(labels.min()) <= int(labels.max()) < len(matrix):
            raise ValueError(f"labels must be in [0, {len(matrix)}), the relevance matrix's classes")
        return cls(matrix[labels], labels, gamma)

    @property
    def num_classes(self) -> int:
        return self.initial.shape[1]

    def weight(self, step: int) -> float:
        """``(1 - gamma)^k``: the fraction of ``s_T``'s off-target mass left at step ``k``."""
        if step < 0:
            raise ValueError(f"sampling steps count from 0, got {step}")
        return (1.0 - self.gamma) ** step

    def at(self, step: int) -> torch.Tensor:
        """``s_k`` (batch x classes) used by the k-th sampling step, k = 0 at x_T (closed form of Eq. 5)."""
        w = self.weight(step)
        return w * self.initial + (1.0 - w) * self.one_hot  # exact at w = 1 (s_T) and w = 0 (e_c)
