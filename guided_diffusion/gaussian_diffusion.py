"""The Gaussian diffusion process: forward noising, the learned reverse process,
DDPM / DDIM / DPM-Solver++ sampling with classifier guidance, training losses and the bound.

Notation follows Ho et al. 2020 (DDPM), Nichol & Dhariwal 2021 (learned
variances) and Dhariwal & Nichol 2021 (guidance). Schedules are float64 numpy
arrays; values read from them at timesteps ``t`` are float32 tensors.
"""

from __future__ import annotations

import collections
import enum
import math
from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from .dpm_solver import DPMSolverPlusPlus
from .losses import discretized_gaussian_log_likelihood, normal_kl
from .nn import mean_flat

CondFn = Callable[..., torch.Tensor]
NoiseSampler = Callable[[torch.Tensor], torch.Tensor]  # x_t -> a Gaussian draw shaped like it


class StepDegrees(Protocol):
    """What the loops hand ``cond_fn`` at step k (ProG's information degree: batch x classes)."""

    def at(self, k: int) -> torch.Tensor: ...


class Progress(Protocol):
    """A progress bar shared by several loops (a tqdm bar): each step of a loop calls ``update(1)``."""

    def update(self, n: int = 1) -> object: ...


# ----------------------------------------------------------------- schedules


def get_named_beta_schedule(schedule_name: str, num_diffusion_timesteps: int) -> np.ndarray:
    """``linear`` (Ho et al., scaled to any T) or ``cosine`` (Nichol & Dhariwal, Eq. 17)."""
    if schedule_name == "linear":
        scale = 1000 / num_diffusion_timesteps
        if scale * 0.02 >= 1:
            raise ValueError(f"the linear schedule needs more than 20 steps (beta_T = {scale * 0.02:g} with "
                             f"{num_diffusion_timesteps}); use more steps or the cosine schedule")
        return np.linspace(scale * 0.0001, scale * 0.02, num_diffusion_timesteps, dtype=np.float64)
    if schedule_name == "cosine":
        return betas_for_alpha_bar(
            num_diffusion_timesteps, lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        )
    raise NotImplementedError(f"unknown beta schedule: {schedule_name!r} (expected 'linear' or 'cosine')")


def betas_for_alpha_bar(num_diffusion_timesteps: int, alpha_bar: Callable[[float], float],
                        max_beta: float = 0.999) -> np.ndarray:
    """beta_i = min(1 - alpha_bar((i+1)/T) / alpha_bar(i/T), max_beta)."""
    T = num_diffusion_timesteps
    return np.array([min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), max_beta) for i in range(T)],
                    dtype=np.float64)


class ModelMeanType(enum.Enum):
    """What the network predicts."""

    PREVIOUS_X = enum.auto()  # x_{t-1}
    START_X = enum.auto()  # x_0
    EPSILON = enum.auto()  # the noise


class ModelVarType(enum.Enum):
    """How the reverse-process variance is obtained."""

    LEARNED = enum.auto()  # log-variance output directly
    FIXED_SMALL = enum.auto()  # posterior variance beta~_t
    FIXED_LARGE = enum.auto()  # beta_t
    LEARNED_RANGE = enum.auto()  # interpolation between the two (Nichol & Dhariwal, Eq. 15)


class LossType(enum.Enum):
    MSE = enum.auto()
    RESCALED_MSE = enum.auto()  # MSE + vb scaled by T/1000, for learned sigmas
    KL = enum.auto()  # the variational bound
    RESCALED_KL = enum.auto()  # the bound times T

    def is_vb(self) -> bool:
        return self in (LossType.KL, LossType.RESCALED_KL)


def _extract_into_tensor(arr: np.ndarray, timesteps: torch.Tensor, broadcast_shape) -> torch.Tensor:
    """arr[timesteps] as float32 on timesteps' device, broadcast to ``broadcast_shape``."""
    res = torch.from_numpy(arr).to(device=timesteps.device)[timesteps].float()
    res = res.reshape(*res.shape, *([1] * (len(broadcast_shape) - res.dim())))
    return res.expand(broadcast_shape)


def _last(steps: Iterator[dict]) -> dict:
    """The final item of a sampling loop, without keeping the others."""
    return collections.deque(steps, maxlen=1)[0]


def _cond_kwargs(model_kwargs: dict | None, information_degree: torch.Tensor | None) -> dict:
    """What ``cond_fn`` receives besides (x, t): the model's kwargs, and the step's information degree if any."""
    kwargs = dict(model_kwargs or {})
    if information_degree is not None:
        kwargs["information_degree"] = information_degree
    return kwargs


def _nonzero_mask(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """1 where t > 0: no noise is added on the last step."""
    return (t != 0).float().reshape(-1, *([1] * (x.dim() - 1)))


# ------------------------------------------------------------------ process


class GaussianDiffusion:
    """Utilities to train and sample a diffusion model.

    :param betas: float64 array of per-step noise variances beta_1..beta_T.
    :param rescale_timesteps: pass t * 1000 / T to the model (the original
        improved-diffusion convention) so its embedding sees a fixed range.
    """

    def __init__(self, *, betas, model_mean_type: ModelMeanType, model_var_type: ModelVarType,
                 loss_type: LossType, rescale_timesteps: bool = False):
        self.model_mean_type = model_mean_type
        self.model_var_type = model_var_type
        self.loss_type = loss_type
        self.rescale_timesteps = rescale_timesteps

        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or not ((betas > 0).all() and (betas <= 1).all()):
            raise ValueError("betas must be a 1-D array in (0, 1]")
        self.betas = betas
        self.num_timesteps = int(betas.shape[0])

        alphas = 1.0 - betas
        self.alphas_cumprod = np.cumprod(alphas)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.alphas_cumprod_next = np.append(self.alphas_cumprod[1:], 0.0)

        # q(x_t | x_0)
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        self.log_one_minus_alphas_cumprod = np.log(1.0 - self.alphas_cumprod)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1)

        # q(x_{t-1} | x_t, x_0), Ho et al. Eq. 6-7; log variance clipped at t=0 where it is 0
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_log_variance_clipped = np.log(
            np.append(self.posterior_variance[1], self.posterior_variance[1:])
        )
        self.posterior_mean_coef1 = betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - self.alphas_cumprod)

    # -------------------------------------------------------- forward process

    def q_mean_variance(self, x_start: torch.Tensor, t: torch.Tensor):
        """Mean, variance and log variance of q(x_t | x_0)."""
        mean = _extract_into_tensor(self.sqrt_alphas_cumprod, t, x_start.shape) * x_start
        variance = _extract_into_tensor(1.0 - self.alphas_cumprod, t, x_start.shape)
        log_variance = _extract_into_tensor(self.log_one_minus_alphas_cumprod, t, x_start.shape)
        return mean, variance, log_variance

    def q_sample(self, x_start: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps."""
        if noise is None:
            noise = torch.randn_like(x_start)
        assert noise.shape == x_start.shape
        return (_extract_into_tensor(self.sqrt_alphas_cumprod, t, x_start.shape) * x_start
                + _extract_into_tensor(self.sqrt_one_minus_alphas_cumprod, t, x_start.shape) * noise)

    def q_posterior_mean_variance(self, x_start: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor):
        """Mean, variance and clipped log variance of q(x_{t-1} | x_t, x_0)."""
        assert x_start.shape == x_t.shape
        mean = (_extract_into_tensor(self.posterior_mean_coef1, t, x_t.shape) * x_start
                + _extract_into_tensor(self.posterior_mean_coef2, t, x_t.shape) * x_t)
        variance = _extract_into_tensor(self.posterior_variance, t, x_t.shape)
        log_variance = _extract_into_tensor(self.posterior_log_variance_clipped, t, x_t.shape)
        return mean, variance, log_variance

    # ------------------------------------------------------- reverse process

    def p_mean_variance(self, model, x: torch.Tensor, t: torch.Tensor, clip_denoised: bool = True,
                        denoised_fn: Callable | None = None, model_kwargs: dict | None = None) -> dict:
        """p(x_{t-1} | x_t): ``mean``, ``variance``, ``log_variance`` and ``pred_xstart``."""
        model_kwargs = model_kwargs or {}
        B, C = x.shape[:2]
        assert t.shape == (B,)
        model_output = model(x, self._scale_timesteps(t), **model_kwargs)

        if self.model_var_type in (ModelVarType.LEARNED, ModelVarType.LEARNED_RANGE):
            assert model_output.shape == (B, C * 2, *x.shape[2:])
            model_output, var_values = torch.split(model_output, C, dim=1)
            if self.model_var_type == ModelVarType.LEARNED:
                log_variance = var_values
            else:  # Nichol & Dhariwal Eq. 15: v in [-1, 1] interpolates log beta~_t .. log beta_t
                min_log = _extract_into_tensor(self.posterior_log_variance_clipped, t, x.shape)
                max_log = _extract_into_tensor(np.log(self.betas), t, x.shape)
                frac = (var_values + 1) / 2
                log_variance = frac * max_log + (1 - frac) * min_log
            variance = torch.exp(log_variance)
        else:
            if self.model_var_type == ModelVarType.FIXED_LARGE:
                # beta_t, with the first entry made the posterior's for a better decoder bound
                var_arr = np.append(self.posterior_variance[1], self.betas[1:])
                log_arr = np.log(var_arr)
            else:
                var_arr, log_arr = self.posterior_variance, self.posterior_log_variance_clipped
            variance = _extract_into_tensor(var_arr, t, x.shape)
            log_variance = _extract_into_tensor(log_arr, t, x.shape)

        def process_xstart(x0: torch.Tensor) -> torch.Tensor:
            if denoised_fn is not None:
                x0 = denoised_fn(x0)
            return x0.clamp(-1, 1) if clip_denoised else x0

        if self.model_mean_type == ModelMeanType.PREVIOUS_X:
            pred_xstart = process_xstart(self._predict_xstart_from_xprev(x, t, model_output))
            mean = model_output
        else:
            if self.model_mean_type == ModelMeanType.START_X:
                pred_xstart = process_xstart(model_output)
            else:
                pred_xstart = process_xstart(self._predict_xstart_from_eps(x, t, model_output))
            mean, _, _ = self.q_posterior_mean_variance(pred_xstart, x, t)
        return {"mean": mean, "variance": variance, "log_variance": log_variance, "pred_xstart": pred_xstart}

    def _predict_xstart_from_eps(self, x_t, t, eps):
        return (_extract_into_tensor(self.sqrt_recip_alphas_cumprod, t, x_t.shape) * x_t
                - _extract_into_tensor(self.sqrt_recipm1_alphas_cumprod, t, x_t.shape) * eps)

    def _predict_xstart_from_xprev(self, x_t, t, xprev):
        return (_extract_into_tensor(1.0 / self.posterior_mean_coef1, t, x_t.shape) * xprev
                - _extract_into_tensor(self.posterior_mean_coef2 / self.posterior_mean_coef1, t, x_t.shape) * x_t)

    def _predict_eps_from_xstart(self, x_t, t, pred_xstart):
        return ((_extract_into_tensor(self.sqrt_recip_alphas_cumprod, t, x_t.shape) * x_t - pred_xstart)
                / _extract_into_tensor(self.sqrt_recipm1_alphas_cumprod, t, x_t.shape))

    def _scale_timesteps(self, t: torch.Tensor) -> torch.Tensor:
        return t.float() * (1000.0 / self.num_timesteps) if self.rescale_timesteps else t

    # --------------------------------------------------------------- guidance

    def condition_mean(self, cond_fn: CondFn, p_mean_var: dict, x, t, model_kwargs: dict | None = None,
                       information_degree: torch.Tensor | None = None):
        """Guided mean mu + Sigma * g, g = cond_fn(x, t) = grad log p(y | x_t) (Dhariwal & Nichol, Alg. 1)."""
        gradient = cond_fn(x, self._scale_timesteps(t), **_cond_kwargs(model_kwargs, information_degree))
        return p_mean_var["mean"].float() + p_mean_var["variance"] * gradient.float()

    def condition_score(self, cond_fn: CondFn, p_mean_var: dict, x, t, model_kwargs: dict | None = None,
                        information_degree: torch.Tensor | None = None) -> dict:
        """Score-based guidance: eps <- eps - sqrt(1 - abar_t) g (Dhariwal & Nichol, Alg. 2)."""
        alpha_bar = _extract_into_tensor(self.alphas_cumprod, t, x.shape)
        eps = self._predict_eps_from_xstart(x, t, p_mean_var["pred_xstart"])
        gradient = cond_fn(x, self._scale_timesteps(t), **_cond_kwargs(model_kwargs, information_degree))
        eps = eps - (1 - alpha_bar).sqrt() * gradient
        out = dict(p_mean_var)
        out["pred_xstart"] = self._predict_xstart_from_eps(x, t, eps)
        out["mean"], _, _ = self.q_posterior_mean_variance(out["pred_xstart"], x, t)
        return out

    # --------------------------------------------------------------- sampling

    def p_sample(self, model, x, t, clip_denoised: bool = True, denoised_fn=None, cond_fn: CondFn | None = None,
                 model_kwargs: dict | None = None, noise: torch.Tensor | None = None,
                 information_degree: torch.Tensor | None = None) -> dict:
        """One ancestral step x_t -> x_{t-1}; ``noise`` overrides the Gaussian draw.

        ``information_degree`` (batch x classes), if given, is handed to ``cond_fn``.
        """
        out = self.p_mean_variance(model, x, t, clip_denoised=clip_denoised, denoised_fn=denoised_fn,
                                   model_kwargs=model_kwargs)
        if noise is None:
            noise = torch.randn_like(x)
        if cond_fn is not None:
            out["mean"] = self.condition_mean(cond_fn, out, x, t, model_kwargs=model_kwargs,
                                              information_degree=information_degree)
        sample = out["mean"] + _nonzero_mask(t, x) * torch.exp(0.5 * out["log_variance"]) * noise
        return {"sample": sample, "pred_xstart": out["pred_xstart"]}

    def p_sample_loop(self, model, shape, noise=None, clip_denoised: bool = True, denoised_fn=None,
                      cond_fn: CondFn | None = None, model_kwargs: dict | None = None, device=None,
                      progress: bool | Progress = False, information_degree: StepDegrees | None = None,
                      noise_sampler: NoiseSampler | None = None) -> torch.Tensor:
        """Ancestral sampling from x_T (``noise`` or a fresh draw) to x_0.

        ``information_degree``: the k-th step hands ``information_degree.at(k)`` to
        ``cond_fn`` (k = 0 at x_T). ``noise_sampler(x_t)``: each step's Gaussian draw. ``progress``: True
        for a bar of this loop (ADM's), or a bar (:class:`Progress`) that each step advances by one.
        """
        return _last(self.p_sample_loop_progressive(
            model, shape, noise=noise, clip_denoised=clip_denoised, denoised_fn=denoised_fn, cond_fn=cond_fn,
            model_kwargs=model_kwargs, device=device, progress=progress, information_degree=information_degree,
            noise_sampler=noise_sampler,
        ))["sample"]

    def p_sample_loop_progressive(self, model, shape, noise=None, clip_denoised: bool = True, denoised_fn=None,
                                  cond_fn: CondFn | None = None, model_kwargs: dict | None = None, device=None,
                                  progress: bool | Progress = False, information_degree: StepDegrees | None = None,
                                  noise_sampler: NoiseSampler | None = None) -> Iterator[dict]:
        """Yield each step's ``{"sample", "pred_xstart"}`` from t = T-1 down to 0."""
        return self._loop(lambda img, t, step_kwargs: self.p_sample(
            model, img, t, clip_denoised=clip_denoised, denoised_fn=denoised_fn, cond_fn=cond_fn,
            model_kwargs=model_kwargs, **step_kwargs,
        ), model, shape, noise, device, progress, information_degree, noise_sampler)

    def ddim_sample(self, model, x, t, clip_denoised: bool = True, denoised_fn=None,
                    cond_fn: CondFn | None = None, model_kwargs: dict | None = None, eta: float = 0.0,
                    noise: torch.Tensor | None = None, information_degree: torch.Tensor | None = None) -> dict:
        """One DDIM step (Song et al. 2021, Eq. 12); eta = 1 matches DDPM's variance."""
        out = self.p_mean_variance(model, x, t, clip_denoised=clip_denoised, denoised_fn=denoised_fn,
                                   model_kwargs=model_kwargs)
        if cond_fn is not None:
            out = self.condition_score(cond_fn, out, x, t, model_kwargs=model_kwargs,
                                       information_degree=information_degree)
        eps = self._predict_eps_from_xstart(x, t, out["pred_xstart"])
        alpha_bar = _extract_into_tensor(self.alphas_cumprod, t, x.shape)
        alpha_bar_prev = _extract_into_tensor(self.alphas_cumprod_prev, t, x.shape)
        sigma = (eta * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar))
                 * torch.sqrt(1 - alpha_bar / alpha_bar_prev))
        if noise is None:
            noise = torch.randn_like(x)
        mean_pred = (out["pred_xstart"] * torch.sqrt(alpha_bar_prev)
                     + torch.sqrt(1 - alpha_bar_prev - sigma**2) * eps)
        sample = mean_pred + _nonzero_mask(t, x) * sigma * noise
        return {"sample": sample, "pred_xstart": out["pred_xstart"]}

    def ddim_reverse_sample(self, model, x, t, clip_denoised: bool = True, denoised_fn=None,
                            model_kwargs: dict | None = None, eta: float = 0.0) -> dict:
        """Deterministic DDIM step x_t -> x_{t+1} (the ODE run forward, for inversion)."""
        if eta != 0.0:
            raise ValueError("the reverse ODE is only defined for eta = 0")
        out = self.p_mean_variance(model, x, t, clip_denoised=clip_denoised, denoised_fn=denoised_fn,
                                   model_kwargs=model_kwargs)
        eps = self._predict_eps_from_xstart(x, t, out["pred_xstart"])
        alpha_bar_next = _extract_into_tensor(self.alphas_cumprod_next, t, x.shape)
        mean_pred = out["pred_xstart"] * torch.sqrt(alpha_bar_next) + torch.sqrt(1 - alpha_bar_next) * eps
        return {"sample": mean_pred, "pred_xstart": out["pred_xstart"]}

    def ddim_sample_loop(self, model, shape, noise=None, clip_denoised: bool = True, denoised_fn=None,
                         cond_fn: CondFn | None = None, model_kwargs: dict | None = None, device=None,
                         progress: bool | Progress = False, eta: float = 0.0,
                         information_degree: StepDegrees | None = None,
                         noise_sampler: NoiseSampler | None = None) -> torch.Tensor:
        """DDIM sampling from x_T to x_0 (``information_degree`` and ``noise_sampler`` as in p_sample_loop)."""
        return _last(self.ddim_sample_loop_progressive(
            model, shape, noise=noise, clip_denoised=clip_denoised, denoised_fn=denoised_fn, cond_fn=cond_fn,
            model_kwargs=model_kwargs, device=device, progress=progress, eta=eta,
            information_degree=information_degree, noise_sampler=noise_sampler,
        ))["sample"]

    def ddim_sample_loop_progressive(self, model, shape, noise=None, clip_denoised: bool = True,
                                     denoised_fn=None, cond_fn: CondFn | None = None,
                                     model_kwargs: dict | None = None, device=None, progress: bool | Progress = False,
                                     eta: float = 0.0, information_degree: StepDegrees | None = None,
                                     noise_sampler: NoiseSampler | None = None) -> Iterator[dict]:
        """Yield each DDIM step's ``{"sample", "pred_xstart"}``."""
        return self._loop(lambda img, t, step_kwargs: self.ddim_sample(
            model, img, t, clip_denoised=clip_denoised, denoised_fn=denoised_fn, cond_fn=cond_fn,
            model_kwargs=model_kwargs, eta=eta, **step_kwargs,
        ), model, shape, noise, device, progress, information_degree, noise_sampler)

    def dpm_solver_sample_loop(self, model, shape, noise=None, clip_denoised: bool = True, denoised_fn=None,
                               cond_fn: CondFn | None = None, model_kwargs: dict | None = None, device=None,
                               progress: bool | Progress = False, information_degree: StepDegrees | None = None,
                               noise_sampler: NoiseSampler | None = None, order: int = 2,
                               stochastic: bool = False) -> torch.Tensor:
        """DPM-Solver++(2M) from x_T to x_0 over this diffusion's timesteps (:mod:`.dpm_solver`); one model
        (and guidance) evaluation per timestep. Guidance shifts the predicted noise, as in DDIM;
        ``information_degree`` as in p_sample_loop. The ODE solver is deterministic given x_T
        (``noise_sampler`` is not called); ``stochastic=True`` solves the SDE instead, with
        ``noise_sampler``'s draws. Respace with ``uniformN`` or ``logsnrN`` (what the scripts make of
        ``--timestep_respacing N``): a diffusion that keeps t = T - 1, where the cosine schedule's alpha
        is 5e-5, wrecks the first step."""
        return _last(self.dpm_solver_sample_loop_progressive(
            model, shape, noise=noise, clip_denoised=clip_denoised, denoised_fn=denoised_fn, cond_fn=cond_fn,
            model_kwargs=model_kwargs, device=device, progress=progress, information_degree=information_degree,
            noise_sampler=noise_sampler, order=order, stochastic=stochastic,
        ))["sample"]

    def dpm_solver_sample_loop_progressive(self, model, shape, noise=None, clip_denoised: bool = True,
                                           denoised_fn=None, cond_fn: CondFn | None = None,
                                           model_kwargs: dict | None = None, device=None,
                                           progress: bool | Progress = False,
                                           information_degree: StepDegrees | None = None,
                                           noise_sampler: NoiseSampler | None = None,
                                           order: int = 2, stochastic: bool = False) -> Iterator[dict]:
        """Yield each DPM-Solver++ step's ``{"sample", "pred_xstart"}``."""
        solver = DPMSolverPlusPlus(self.alphas_cumprod, order, stochastic)

        def step(img, t, step_kwargs):
            noise = step_kwargs.pop("noise", None)
            out = self.p_mean_variance(model, img, t, clip_denoised=clip_denoised, denoised_fn=denoised_fn,
                                       model_kwargs=model_kwargs)
            if cond_fn is not None:
                out = self.condition_score(cond_fn, out, img, t, model_kwargs=model_kwargs, **step_kwargs)
            sample = solver.step(img, int(t[0]), out["pred_xstart"], noise)
            return {"sample": sample, "pred_xstart": out["pred_xstart"]}

        return self._loop(step, model, shape, noise, device, progress, information_degree,
                          noise_sampler if stochastic else None)

    def _loop(self, step, model, shape, noise, device, progress, information_degree: StepDegrees | None,
              noise_sampler: NoiseSampler | None) -> Iterator[dict]:
        if device is None:
            device = next(model.parameters()).device
        img = noise if noise is not None else torch.randn(*shape, device=device)
        own = progress is True  # else a shared bar, or none
        bar = tqdm(total=self.num_timesteps) if own else None if progress is False else progress
        try:
            for k, i in enumerate(range(self.num_timesteps - 1, -1, -1)):
                t = torch.full((shape[0],), i, device=device, dtype=torch.long)
                step_kwargs = {}
                if information_degree is not None:
                    step_kwargs["information_degree"] = information_degree.at(k)
                if noise_sampler is not None:
                    step_kwargs["noise"] = noise_sampler(img)
                with torch.no_grad():  # cond_fn re-enables grad for its own backward pass
                    out = step(img, t, step_kwargs)
                if bar is not None:
                    bar.update(1)
                yield out
                img = out["sample"]
        finally:
            if own:
                bar.close()

    # ------------------------------------------------------------ objectives

    def _vb_terms_bpd(self, model, x_start, x_t, t, clip_denoised: bool = True,
                      model_kwargs: dict | None = None) -> dict:
        """One term of the bound in bits/dim: KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)), or the decoder NLL at t=0."""
        true_mean, _, true_log_variance = self.q_posterior_mean_variance(x_start, x_t, t)
        out = self.p_mean_variance(model, x_t, t, clip_denoised=clip_denoised, model_kwargs=model_kwargs)
        kl = mean_flat(normal_kl(true_mean, true_log_variance, out["mean"], out["log_variance"])) / math.log(2.0)
        decoder_nll = -discretized_gaussian_log_likelihood(
            x_start, means=out["mean"], log_scales=0.5 * out["log_variance"]
        )
        decoder_nll = mean_flat(decoder_nll) / math.log(2.0)
        return {"output": torch.where(t == 0, decoder_nll, kl), "pred_xstart": out["pred_xstart"]}

    def training_losses(self, model, x_start, t, model_kwargs: dict | None = None, noise=None) -> dict:
        """Per-sample losses: ``loss`` always; ``mse`` and ``vb`` where they apply."""
        model_kwargs = model_kwargs or {}
        if noise is None:
            noise = torch.randn_like(x_start)
        x_t = self.q_sample(x_start, t, noise=noise)
        terms = {}

        if self.loss_type.is_vb():
            terms["loss"] = self._vb_terms_bpd(model, x_start, x_t, t, clip_denoised=False,
                                               model_kwargs=model_kwargs)["output"]
            if self.loss_type == LossType.RESCALED_KL:
                terms["loss"] = terms["loss"] * self.num_timesteps
            return terms

        model_output = model(x_t, self._scale_timesteps(t), **model_kwargs)
        if self.model_var_type in (ModelVarType.LEARNED, ModelVarType.LEARNED_RANGE):
            C = x_t.shape[1]
            assert model_output.shape == (x_t.shape[0], C * 2, *x_t.shape[2:])
            model_output, var_values = torch.split(model_output, C, dim=1)
            # The bound trains only the variance; the mean is learned through the MSE.
            frozen = torch.cat([model_output.detach(), var_values], dim=1)
            terms["vb"] = self._vb_terms_bpd(lambda *_, **__: frozen, x_start, x_t, t,
                                             clip_denoised=False)["output"]
            if self.loss_type == LossType.RESCALED_MSE:
                terms["vb"] = terms["vb"] * (self.num_timesteps / 1000.0)  # the bound sums T terms

        target = {
            ModelMeanType.PREVIOUS_X: lambda: self.q_posterior_mean_variance(x_start, x_t, t)[0],
            ModelMeanType.START_X: lambda: x_start,
            ModelMeanType.EPSILON: lambda: noise,
        }[self.model_mean_type]()
        assert model_output.shape == target.shape == x_start.shape
        terms["mse"] = mean_flat((target - model_output) ** 2)
        terms["loss"] = terms["mse"] + terms["vb"] if "vb" in terms else terms["mse"]
        return terms

    def _prior_bpd(self, x_start: torch.Tensor) -> torch.Tensor:
        """KL(q(x_T | x_0) || N(0, I)) in bits/dim."""
        t = torch.full((x_start.shape[0],), self.num_timesteps - 1, device=x_start.device, dtype=torch.long)
        mean, _, log_variance = self.q_mean_variance(x_start, t)
        return mean_flat(normal_kl(mean, log_variance, 0.0, 0.0)) / math.log(2.0)

    def calc_bpd_loop(self, model, x_start, clip_denoised: bool = True, model_kwargs: dict | None = None) -> dict:
        """The full bound in bits/dim, with its per-timestep terms (``vb``, ``xstart_mse``, ``mse``)."""
        device, B = x_start.device, x_start.shape[0]
        vb, xstart_mse, mse = [], [], []
        for i in range(self.num_timesteps - 1, -1, -1):
            t = torch.full((B,), i, device=device, dtype=torch.long)
            noise = torch.randn_like(x_start)
            x_t = self.q_sample(x_start, t, noise=noise)
            with torch.no_grad():
                out = self._vb_terms_bpd(model, x_start, x_t, t, clip_denoised=clip_denoised,
                                         model_kwargs=model_kwargs)
            vb.append(out["output"])
            xstart_mse.append(mean_flat((out["pred_xstart"] - x_start) ** 2))
            eps = self._predict_eps_from_xstart(x_t, t, out["pred_xstart"])
            mse.append(mean_flat((eps - noise) ** 2))
        vb_t, xstart_mse_t, mse_t = (torch.stack(v, dim=1) for v in (vb, xstart_mse, mse))
        prior_bpd = self._prior_bpd(x_start)
        return {"total_bpd": vb_t.sum(dim=1) + prior_bpd, "prior_bpd": prior_bpd, "vb": vb_t,
                "xstart_mse": xstart_mse_t, "mse": mse_t}
