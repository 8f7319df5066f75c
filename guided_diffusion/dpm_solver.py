"""DPM-Solver++(2M): the multistep second-order solver of the diffusion ODE in data prediction
(Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic Models",
Algorithm 2), and of the diffusion SDE (SDE-DPM-Solver++(2M), same paper, Appendix), over the kept
timesteps of a (respaced) discrete-time diffusion.

With ``alpha_t = sqrt(abar_t)``, ``sigma_t = sqrt(1 - abar_t)`` and the half log-SNR
``lambda_t = log(alpha_t / sigma_t)``, one step from ``s`` to the next (smaller) time ``t``,
``h = lambda_t - lambda_s``, given the data predictions ``x0_s`` (now) and ``x0_r`` (the step before,
``h_prev = lambda_s - lambda_r``, ``r = h_prev / h``) is

    D   = (1 + 1 / (2 r)) x0_s - 1 / (2 r) x0_r                       (Alg. 2; D = x0_s on the first step)
    x_t = (sigma_t / sigma_s) x_s - alpha_t (exp(-h) - 1) D            (Eq. 9, first order in D)

The step into the smallest timestep (index 0) is first order (DPM-Solver's "lower order final"):
the log-SNR jumps there (cosine schedule: lambda = 2.3 at t = 53, 5.1 at t = 0), ``r`` is small
and the extrapolation overshoots (on Gaussian data, where the ODE is solved exactly, 20 uniform
steps err by 0.17 with it and 0.006 without). The last step goes to the clean data (``sigma = 0``)
and returns ``x0_s``, as DDIM's last step does. The first-order update is DDIM with eta = 0.
Guidance enters through the data prediction: the sampler shifts the predicted noise by the
guidance gradient (``GaussianDiffusion.condition_score``) before ``x0_s`` is formed.

The SDE variant (``stochastic=True``) takes the same D and adds fresh noise ``z`` each step:

    x_t = (sigma_t / sigma_s) exp(-h) x_s + alpha_t (1 - exp(-2h)) D + sigma_t sqrt(1 - exp(-2h)) z

Its first-order step is DDIM with eta = 1, i.e. a draw from the forward posterior
q(x_t | x_s, x0_s), as an ancestral (DDPM) step with the posterior variance.

Step spacing (:func:`solver_timesteps`): the solver never starts at t = T - 1. There the cosine
schedule's alpha is 5e-5 (its betas are clipped at 0.999), so the data prediction divides the
noise prediction's error by 5e-5, the clipping to [-1, 1] turns it into a black-and-white image,
and the deterministic steps that follow keep it (on the digits: FID 9.9 against 0.08 for DDPM,
at every step count from 5 to 50; DDIM, which starts there too, does the same). Like ADM's
``ddimN``, the N steps start at T - T/N: ``uniformN`` (what ``--sampler dpmpp_2m`` makes of a plain
N) puts them at round(k T / N), k = 0, ..., N - 1; ``logsnrN`` spaces them evenly in log-SNR
between the same first step and 0.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch


class DPMSolverPlusPlus:
    """The state of one DPM-Solver++(2M) run over a diffusion's timesteps (index ``i`` = the
    diffusion's step ``i``; a run visits N-1, N-2, ..., 0 in turn)."""

    def __init__(self, alphas_cumprod: np.ndarray, order: int = 2, stochastic: bool = False):
        if order not in (1, 2):
            raise ValueError(f"DPM-Solver++ order must be 1 or 2, got {order}")
        abar = np.asarray(alphas_cumprod, dtype=np.float64)
        self.alpha = np.sqrt(abar)
        self.sigma = np.sqrt(1.0 - abar)
        self.lam = np.log(self.alpha) - np.log(self.sigma)
        self.order = order
        self.stochastic = stochastic
        if self.alpha[-1] < 1e-3:
            warnings.warn(f"DPM-Solver++ starts where alpha = {self.alpha[-1]:.1e}: its first data prediction is "
                          f"noise; respace with uniformN or logsnrN (from T - T/N), as --timestep_respacing N "
                          f"does in the scripts", stacklevel=3)
        self._previous: tuple[int, torch.Tensor] | None = None  # (index, x0) of the step before

    def step(self, x: torch.Tensor, index: int, x0: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` at step ``index`` with its data prediction ``x0``, moved to step ``index - 1`` (the data at 0);
        ``noise``: the SDE variant's Gaussian draw (a fresh one if None; the ODE ignores it)."""
        previous, self._previous = self._previous, (index, x0)
        if index == 0:
            return x0  # to sigma = 0: x = alpha x0 with alpha = 1
        s, t = index, index - 1
        h = self.lam[t] - self.lam[s]
        d = x0
        if self.order == 2 and previous is not None and t > 0:
            r = (self.lam[s] - self.lam[previous[0]]) / h
            d = (1 + 0.5 / r) * x0 - (0.5 / r) * previous[1]
        if not self.stochastic:  # Eq. 9
            return float(self.sigma[t] / self.sigma[s]) * x - float(self.alpha[t] * np.expm1(-h)) * d
        if noise is None:
            noise = torch.randn_like(x)
        decay = -np.expm1(-2 * h)  # 1 - exp(-2h)
        return (float(self.sigma[t] / self.sigma[s] * np.exp(-h)) * x + float(self.alpha[t] * decay) * d
                + float(self.sigma[t] * np.sqrt(decay)) * noise)


def solver_timesteps(alphas_cumprod: np.ndarray, num_steps: int, spacing: str = "uniform") -> list[int]:
    """``num_steps`` distinct timesteps from T - T/N down to 0: evenly spaced in time (``uniform``:
    round(k T / N)) or with log-SNRs as evenly spaced as integer timesteps allow (``logsnr``)."""
    abar = np.asarray(alphas_cumprod, dtype=np.float64)
    T = len(abar)
    if not 1 <= num_steps <= T:
        raise ValueError(f"--timestep_respacing {spacing}{num_steps}: need 1 to {T} steps")
    first = round((num_steps - 1) * T / num_steps)
    if spacing == "uniform" or num_steps == 1:
        return sorted({round(k * T / num_steps) for k in range(num_steps)})
    if spacing != "logsnr":
        raise ValueError(f"unknown solver spacing {spacing!r} (uniform or logsnr)")
    lam = 0.5 * (np.log(abar) - np.log1p(-abar))  # decreasing in t
    targets = np.linspace(lam[first], lam[0], num_steps)
    chosen: list[int] = []
    for k, target in enumerate(targets):  # nearest free timestep below the previous one, leaving room for the rest
        low, high = num_steps - 1 - k, (chosen[-1] - 1) if chosen else first
        candidates = np.arange(low, high + 1)
        chosen.append(int(candidates[np.argmin(np.abs(lam[candidates] - target))]))
    return sorted(chosen)
