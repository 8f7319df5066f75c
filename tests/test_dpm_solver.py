"""DPM-Solver++(2M): order of accuracy on an exactly solvable ODE, its first-order form is DDIM, guidance;
the SDE variant: its first-order form is DDIM with eta = 1, and it samples Gaussian data's law."""

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from guided_diffusion import script_util as su
from guided_diffusion.dpm_solver import DPMSolverPlusPlus, solver_timesteps
from guided_diffusion.progressive.guidance import ClassifierFreeGuidance, ClassifierGuidance
from guided_diffusion.sampling.samplers import create_for_sampling, respacing_for

from tiny import tiny_classifier, tiny_model_and_diffusion

C = 5
DATA_STD = 0.5


class GaussianData:
    """The exact noise prediction for data ~ N(0, c^2 I): the probability-flow ODE is solved in closed form,
    x_0 = x_T c / sqrt(abar_T c^2 + 1 - abar_T)."""

    def __init__(self, alphas_cumprod: np.ndarray):
        self.abar = torch.tensor(alphas_cumprod, dtype=torch.float64)

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, s = self.abar[t].sqrt().view(-1, 1, 1, 1), (1 - self.abar[t]).sqrt().view(-1, 1, 1, 1)
        x0 = a * DATA_STD**2 / (a**2 * DATA_STD**2 + s**2) * x.double()
        return ((x.double() - a * x0) / s).float()

    def solution(self, x_T: torch.Tensor) -> torch.Tensor:
        abar = self.abar[-1]
        return x_T * DATA_STD / torch.sqrt(abar * DATA_STD**2 + 1 - abar).float()

    def parameters(self):
        return iter([torch.zeros(1)])


def _errors(respacing: str) -> dict[str, float]:
    diffusion = su.create_gaussian_diffusion(steps=1000, noise_schedule="cosine", timestep_respacing=respacing)
    data = GaussianData(su.create_gaussian_diffusion(steps=1000, noise_schedule="cosine").alphas_cumprod)
    x_T = torch.randn(4, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    runs = {"ddim": diffusion.ddim_sample_loop(data, x_T.shape, noise=x_T, clip_denoised=False),
            "dpm1": diffusion.dpm_solver_sample_loop(data, x_T.shape, noise=x_T, clip_denoised=False, order=1),
            "dpm2": diffusion.dpm_solver_sample_loop(data, x_T.shape, noise=x_T, clip_denoised=False)}
    exact = data.solution(x_T)
    errors = {k: (v - exact).abs().max().item() for k, v in runs.items()}
    errors["dpm1_vs_ddim"] = (runs["dpm1"] - runs["ddim"]).abs().max().item()
    return errors


@pytest.mark.filterwarnings("ignore:DPM-Solver\\+\\+ starts where alpha")  # exact data: no clipping to go wrong
@pytest.mark.parametrize("respacing", ["20", "40", "80"])
def test_second_order_beats_ddim_on_an_exactly_solvable_ode(respacing):
    errors = _errors(respacing)
    assert errors["dpm2"] < errors["ddim"] / 10, errors  # measured: 24x, 18x, 21x smaller
    assert errors["dpm1_vs_ddim"] < 1e-5, errors  # first order in lambda is DDIM with eta = 0


def test_the_first_step_and_the_last_are_first_order():
    solver = DPMSolverPlusPlus(np.array([0.999, 0.9, 0.5, 0.1]))
    x, x0, other = torch.ones(1), torch.full((1,), 0.5), torch.full((1,), -3.0)
    first = solver.step(x, 3, x0)
    expected = solver.sigma[2] / solver.sigma[3] * x - solver.alpha[2] * np.expm1(solver.lam[3] - solver.lam[2]) * x0
    torch.testing.assert_close(first, expected.float())
    second = solver.step(first, 2, other)  # uses both predictions
    first_order = DPMSolverPlusPlus(np.array([0.999, 0.9, 0.5, 0.1]), order=1)
    first_order.step(x, 3, x0)
    assert not torch.allclose(second, first_order.step(first, 2, other))
    into_zero = solver.step(second, 1, other)  # into the smallest timestep: first order
    first_order.step(second, 0, x0)  # (state only)
    plain = DPMSolverPlusPlus(np.array([0.999, 0.9, 0.5, 0.1]), order=1)
    torch.testing.assert_close(into_zero, plain.step(second, 1, other))
    assert torch.equal(solver.step(into_zero, 0, x0), x0)  # to the data: the prediction itself
    with pytest.raises(ValueError, match="order"):
        DPMSolverPlusPlus(np.array([0.5]), order=3)


def test_logsnr_spacing():
    abar = su.create_gaussian_diffusion(steps=1000, noise_schedule="cosine").alphas_cumprod
    steps = solver_timesteps(abar, 20, "logsnr")
    assert len(set(steps)) == 20 and steps == sorted(steps) and steps[0] == 0 and steps[-1] == 950
    lam = 0.5 * np.log(abar / (1 - abar))[steps]
    ideal = (lam[0] - lam[-1]) / 19
    even = np.abs(-np.diff(lam) - ideal) < 0.1 * ideal
    assert even.sum() >= 12, np.diff(lam)  # even in lambda but where integer timesteps are too coarse
    diffusion = su.create_gaussian_diffusion(steps=1000, noise_schedule="cosine", timestep_respacing="logsnr20")
    assert diffusion.timestep_map == steps
    with pytest.raises(ValueError, match="logsnrN"):
        su.create_gaussian_diffusion(steps=1000, timestep_respacing="logsnrx")
    with pytest.raises(ValueError, match="uniformN"):
        su.create_gaussian_diffusion(steps=1000, timestep_respacing="uniform")


@pytest.mark.parametrize("spacing", ["uniform", "logsnr"])
def test_the_solver_never_starts_where_alpha_vanishes(spacing):
    """At t = T - 1 the cosine schedule's alpha is 5e-5: a data prediction there is noise / 5e-5, which the
    clipping turns into a black-and-white image that the deterministic steps keep. The steps start at T - T/N."""
    abar = su.create_gaussian_diffusion(steps=1000, noise_schedule="cosine").alphas_cumprod
    assert np.sqrt(abar[999]) < 1e-4
    for n in (1, 5, 10, 15, 20, 25, 1000):
        steps = solver_timesteps(abar, n, spacing)
        assert len(set(steps)) == n and steps == sorted(steps) and steps[0] == 0
        assert steps[-1] == round((n - 1) * 1000 / n) and (n == 1000 or np.sqrt(abar[steps[-1]]) > 0.01)
    assert solver_timesteps(abar, 20, "uniform") == list(range(0, 1000, 50))  # ADM's ddim20


def test_library_callers_starting_where_alpha_vanishes_are_warned():
    model, diffusion = tiny_model_and_diffusion(timestep_respacing="5")  # ADM's plain N keeps t = T - 1
    with pytest.warns(UserWarning, match="respace with uniformN or logsnrN"):
        diffusion.dpm_solver_sample_loop(model, (1, 3, 8, 8))
    _, spaced = tiny_model_and_diffusion(timestep_respacing="uniform5")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spaced.dpm_solver_sample_loop(model, (1, 3, 8, 8))


def test_dpmpp_reads_a_plain_step_count_as_uniform_from_t_minus_t_over_n():
    assert respacing_for("dpmpp_2m", "20") == "uniform20" and respacing_for("dpmpp_2m_sde", "20") == "uniform20"
    assert respacing_for("dpmpp_2m", "logsnr20") == "logsnr20"
    assert respacing_for("ddpm", "20") == "20" and respacing_for("ddim", "20") == "20"  # ADM's meaning kept
    args = SimpleNamespace(**{**su.model_and_diffusion_defaults(), "image_size": 8, "num_channels": 32,
                              "num_res_blocks": 1, "attention_resolutions": "", "noise_schedule": "cosine",
                              "channel_mult": "1,2", "timestep_respacing": "20"})
    assert create_for_sampling(args, "dpmpp_2m")[1].timestep_map[-1] == 950
    assert create_for_sampling(args, "ddpm")[1].timestep_map[-1] == 999


def _draws(seed: int):
    generator = torch.Generator().manual_seed(seed)
    return lambda x: torch.randn(x.shape, generator=generator)


def test_first_order_sde_solver_is_ddim_with_eta_one():
    model, diffusion = tiny_model_and_diffusion(timestep_respacing="uniform6")
    x_T = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    sde = diffusion.dpm_solver_sample_loop(model, x_T.shape, noise=x_T, noise_sampler=_draws(0), order=1,
                                           stochastic=True)
    ddim = diffusion.ddim_sample_loop(model, x_T.shape, noise=x_T, noise_sampler=_draws(0), eta=1.0)
    torch.testing.assert_close(sde, ddim, atol=1e-5, rtol=1e-5)
    second = diffusion.dpm_solver_sample_loop(model, x_T.shape, noise=x_T, noise_sampler=_draws(0), stochastic=True)
    assert torch.equal(second, diffusion.dpm_solver_sample_loop(model, x_T.shape, noise=x_T,
                                                               noise_sampler=_draws(0), stochastic=True))
    other = diffusion.dpm_solver_sample_loop(model, x_T.shape, noise=x_T, noise_sampler=_draws(1), stochastic=True)
    assert not torch.allclose(second, other)  # the draws matter; the ODE ignores them


def test_sde_solver_samples_gaussian_data():
    """For data ~ N(0, c^2) the SDE's x_0 has standard deviation c whatever x_T. Measured (relative error of the
    std at 10 / 20 / 50 / 200 steps): first order 22 / 13 / 6.6 / 1.6 %, second order 2.9 / 3.5 / 1.4 / 0.4 %."""
    data = GaussianData(su.create_gaussian_diffusion(steps=1000, noise_schedule="cosine").alphas_cumprod)
    x_T = torch.randn(64, 3, 16, 16, generator=torch.Generator().manual_seed(0))

    def error(steps: int, order: int) -> float:
        diffusion = su.create_gaussian_diffusion(steps=1000, noise_schedule="cosine",
                                                 timestep_respacing=f"uniform{steps}")
        x_0 = diffusion.dpm_solver_sample_loop(data, x_T.shape, noise=x_T, clip_denoised=False,
                                               noise_sampler=_draws(3), order=order, stochastic=True)
        assert torch.corrcoef(torch.stack([x_0.flatten(), data.solution(x_T).flatten()]))[0, 1] < 0.5  # not the ODE
        return abs(x_0.std().item() / DATA_STD - 1)

    assert error(20, 2) < 0.05 and error(20, 2) < error(20, 1) / 2
    assert error(200, 2) < 0.01 and error(200, 1) < 0.02


def test_deterministic_learned_variance_respaced_and_guided():
    model, diffusion = tiny_model_and_diffusion(class_cond=True, num_classes=C, label_dropout=0.1,
                                                timestep_respacing="uniform8")
    classifier = tiny_classifier(C)
    y = torch.tensor([0, 3])
    x_T = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))

    def run(denoiser, cond_fn=None, noise_sampler=None):
        return diffusion.dpm_solver_sample_loop(denoiser, (2, 3, 8, 8), noise=x_T, cond_fn=cond_fn,
                                                model_kwargs={"y": y}, noise_sampler=noise_sampler)

    plain = run(model)
    calls = []
    assert torch.equal(plain, run(model, noise_sampler=lambda x: calls.append(1) or torch.randn_like(x)))
    assert not calls  # the ODE draws no noise
    guided = run(model, ClassifierGuidance(classifier, 5.0))
    free = run(ClassifierFreeGuidance(model, 2.0))
    assert torch.isfinite(guided).all() and torch.isfinite(free).all()
    assert not torch.allclose(plain, guided) and not torch.allclose(plain, free)
    assert plain.abs().max() <= 1.0  # the last step returns the clipped prediction of x_0
