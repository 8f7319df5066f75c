"""guided_diffusion.testbeds.gaussian_mixture: exact scores, checked against brute force, and the samplers checked
against the exact data distribution they must converge to."""

import math

import numpy as np
import pytest
import torch

from guided_diffusion.progressive.guidance import ClassifierGuidance
from guided_diffusion.sampling.samplers import sample_loop
from guided_diffusion.script_util import create_gaussian_diffusion
from guided_diffusion.testbeds.gaussian_mixture import (
    ExactClassifier,
    ExactDenoiser,
    GaussianMixture,
    Structure,
    gaussian_w2,
    ground_truth,
    spurious_directions,
    structured_mixture,
    true_relevance,
    within_class_spread,
)

MIXTURE = structured_mixture()
BASE = create_gaussian_diffusion(steps=1000, noise_schedule="linear", sigma_small=True)
CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("one_thread")  # the testbed's tensors are small


def quadrature_log_noisy_density(x_t: float, mean: float, var: float, alpha_bar: float) -> float:
    """log of int N(x0; mean, var) N(x_t; sqrt(abar) x0, 1 - abar) dx0, by the trapezoid rule on a fine grid."""
    std = math.sqrt(var)
    grid = np.linspace(mean - 12 * std, mean + 12 * std, 20001)
    prior = np.exp(-0.5 * (grid - mean) ** 2 / var) / math.sqrt(2 * math.pi * var)
    noise_var = 1 - alpha_bar
    likelihood = np.exp(-0.5 * (x_t - math.sqrt(alpha_bar) * grid) ** 2 / noise_var) / math.sqrt(
        2 * math.pi * noise_var)
    return math.log(np.trapezoid(prior * likelihood, grid))


@pytest.mark.parametrize("alpha_bar", [0.98, 0.5, 0.02])
def test_the_noisy_posterior_is_the_brute_force_one(alpha_bar):
    """p(c | x_t) from each component's noisy density integrated numerically, dimension by dimension."""
    mixture = structured_mixture(Structure(clusters=2, per_cluster=2, modes=2, support_dims=2, null_dims=1,
                                           null_std=0.05))
    generator = torch.Generator().manual_seed(1)
    x0, _ = mixture.sample(torch.tensor([0, 1, 2, 3]), generator)
    x_t = math.sqrt(alpha_bar) * x0 + math.sqrt(1 - alpha_bar) * torch.randn(x0.shape, generator=generator,
                                                                             dtype=torch.float64)
    for row in x_t:
        joint = np.array([mixture.log_weights[k].item() + sum(
            quadrature_log_noisy_density(row[i].item(), mixture.means[k, i].item(), mixture.variances[k, i].item(),
                                         alpha_bar) for i in range(mixture.dim)) for k in range(len(mixture.means))])
        per_class = [np.logaddexp.reduce(joint[mixture.component_class.numpy() == c])
                     for c in range(mixture.num_classes)]
        expected = np.array(per_class) - np.logaddexp.reduce(per_class)
        got = mixture.class_log_posterior(row[None], alpha_bar)[0].numpy()
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_eps_is_the_autograd_score_of_the_log_density():
    generator = torch.Generator().manual_seed(2)
    x = 0.6 * torch.randn(16, MIXTURE.dim, generator=generator, dtype=torch.float64)
    alpha_bar = torch.rand(16, generator=generator, dtype=torch.float64) * 0.98 + 0.01  # a time per row
    labels = torch.randint(0, MIXTURE.num_classes, (16,), generator=generator)
    for condition in (None, labels):
        x_in = x.clone().requires_grad_(True)
        log_p = MIXTURE.log_density(x_in, alpha_bar) if condition is None else MIXTURE.class_log_density(
            x_in, condition, alpha_bar)
        score = torch.autograd.grad(log_p.sum(), x_in)[0]
        torch.testing.assert_close(MIXTURE.score(x, alpha_bar, condition), score, rtol=1e-8, atol=1e-8)
        torch.testing.assert_close(MIXTURE.eps(x, alpha_bar, condition),
                                   -(1 - alpha_bar)[:, None].sqrt() * score, rtol=1e-8, atol=1e-8)


def test_the_wrapped_networks_read_original_timesteps():
    x = 0.3 * torch.randn(3, MIXTURE.dim, 1, 1, generator=torch.Generator().manual_seed(3))
    t = torch.tensor([0, 500, 999])
    eps = ExactDenoiser(MIXTURE, BASE.alphas_cumprod)(x, t)
    assert eps.shape == x.shape
    expected = MIXTURE.eps(x.view(3, -1), torch.as_tensor(BASE.alphas_cumprod[[0, 500, 999]])).float()
    torch.testing.assert_close(eps.view(3, -1), expected)
    logits = ExactClassifier(MIXTURE, BASE.alphas_cumprod)(x, t)
    torch.testing.assert_close(logits.exp().sum(1), torch.ones(3))


def test_the_mis_specified_guide_adds_a_logit_off_the_support():
    directions = spurious_directions(MIXTURE)
    assert torch.all(directions[:, MIXTURE.support] == 0)
    torch.testing.assert_close(directions.norm(dim=1), torch.ones(MIXTURE.num_classes, dtype=torch.float64))
    x0, _ = MIXTURE.sample(torch.tensor([0, 0]), torch.Generator().manual_seed(7))
    x0[1] += directions[1]  # off the support, along the direction of a class of the same cluster
    x, t = x0.float().view(2, -1, 1, 1), torch.zeros(2, dtype=torch.long)
    exact = ExactClassifier(MIXTURE, BASE.alphas_cumprod)
    guide = ExactClassifier(MIXTURE, BASE.alphas_cumprod, spurious=100.0)
    on_support = guide(x[:1], t[:1]) - exact(x[:1], t[:1])
    assert (on_support.max() - on_support.min()).item() < 0.5  # a data draw moves the logits by ~1e-3 x 100
    assert guide(x[1:], t[1:]).argmax().item() == 1 and exact(x[1:], t[1:]).argmax().item() == 0


def test_ground_truth_of_true_samples_and_of_off_support_ones():
    labels = torch.arange(MIXTURE.num_classes).repeat(100)
    x, _ = MIXTURE.sample(labels, torch.Generator().manual_seed(4))
    truth = ground_truth(MIXTURE, x, labels)
    assert truth["bayes_accuracy"] > 90 and truth["mode_coverage"] == 100.0
    assert truth["w2"] < 0.01 and abs(truth["mmd"]) < 0.01
    assert truth["off_support"] == pytest.approx(math.sqrt(8), rel=0.1)  # a standard normal's norm in 8 dims
    guide = ExactClassifier(MIXTURE, BASE.alphas_cumprod, spurious=100.0)
    pushed = x + 0.5 * spurious_directions(MIXTURE)[(labels + 1) % MIXTURE.num_classes]
    off = ground_truth(MIXTURE, pushed, labels, guide)
    assert off["off_support"] > 10 * truth["off_support"] and off["log_density"] < truth["log_density"] - 100
    assert off["guide_accuracy"] < 20 and off["gap"] < -70  # the guide reads the pushed class


def test_with_nuisance_dimensions_the_spurious_directions_lie_there():
    structure = Structure(nuisance_dims=4)
    mixture = structured_mixture(structure)
    free = mixture.class_free
    assert free.tolist() == [False] * 8 + [True] * 4 + [False] * 8
    directions = spurious_directions(mixture)
    assert torch.all(directions[:, ~free] == 0) and torch.all(directions[:, free].abs().sum(1) > 0)
    labels = torch.arange(mixture.num_classes).repeat(100)
    x, _ = mixture.sample(labels, torch.Generator().manual_seed(2))
    exact = ExactClassifier(mixture, BASE.alphas_cumprod)
    t = torch.zeros(len(x), dtype=torch.long)
    other = (labels + 1) % mixture.num_classes
    shifted = x + 6 * structure.nuisance_std * directions[other]  # a nuisance move: the same Bayes label
    torch.testing.assert_close(exact(shifted, t), exact(x, t))
    guide = ExactClassifier(mixture, BASE.alphas_cumprod, spurious=30.0)
    before, after = (ground_truth(mixture, z, labels, guide) for z in (x, shifted))
    assert after["bayes_accuracy"] == before["bayes_accuracy"] > 90
    assert after["guide_accuracy"] < before["guide_accuracy"] - 40  # the guide reads the other class


def test_within_class_spread_is_the_data_s_for_its_draws_and_shrinks_with_them():
    labels = torch.arange(MIXTURE.num_classes).repeat(200)
    x, _ = MIXTURE.sample(labels, torch.Generator().manual_seed(3))
    assert within_class_spread(MIXTURE, x, labels) == pytest.approx(100, abs=5)
    means = torch.stack([MIXTURE.class_moments(c)[0] for c in range(MIXTURE.num_classes)])[labels]
    assert within_class_spread(MIXTURE, means + 0.5 * (x - means), labels) == pytest.approx(25, abs=2)


def test_true_relevance_is_the_cluster():
    matrix = true_relevance(Structure(), self_share=0.4)
    np.testing.assert_allclose(matrix.sum(1), 1.0)
    assert matrix[0, 0] == 0.4 and matrix[0, 1] == pytest.approx(0.2) and matrix[0, 4] == 0.0


# ----------------------------------------------------------------- the samplers against the exact distribution

def sample(sampler: str, steps: int, n: int, seed: int = 0, spacing: str = "", mixture: GaussianMixture = MIXTURE,
           conditional: bool = False, **kwargs) -> torch.Tensor:
    """``n`` draws of the exact model with ``sampler`` over ``steps`` of ADM's respacing (``spacing``: its
    prefix, e.g. logsnr); the same x_T and step noise for the same ``seed``."""
    diffusion = create_gaussian_diffusion(steps=1000, noise_schedule="linear", sigma_small=True,
                                          timestep_respacing=f"{spacing}{steps}")
    noise = torch.randn(n, mixture.dim, 1, 1, generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(seed)
    model = ExactDenoiser(mixture, BASE.alphas_cumprod, conditional=conditional)
    out = sample_loop(diffusion, sampler)(model, (n, mixture.dim, 1, 1), noise=noise, clip_denoised=False,
                                          device=CPU, **kwargs)
    return out.view(n, -1).double()


def data_w2(x: torch.Tensor) -> float:
    """Squared W2 between Gaussians fitted to the samples and to the data, on the support dimensions."""
    mean, cov = MIXTURE.class_moments()
    s = MIXTURE.support
    return gaussian_w2(x[:, s], mean[s], cov[s][:, s])


# Measured with 4000 samples (seed 0): W2 of the data's own draws 0.5-1e-4; ddpm 2.0e-3 (100 steps) 1.2e-4 (1000);
# ddim 7.6e-4 (100) 2.0e-4 (300); dpmpp_2m 4.0e-3 (30) 2.1e-4 (100); dpmpp_2m_sde 4.0e-4 (100) 8.4e-5 (300).
CONVERGENCE = {"ddpm": (100, 1000), "ddim": (30, 300), "dpmpp_2m": (30, 100), "dpmpp_2m_sde": (30, 300)}


@pytest.mark.parametrize("sampler", sorted(CONVERGENCE))
def test_every_sampler_converges_to_the_data(sampler):
    few, many = CONVERGENCE[sampler]
    coarse, fine = data_w2(sample(sampler, few, 4000)), data_w2(sample(sampler, many, 4000))
    assert fine < 4e-4 and fine < coarse / 3, (coarse, fine)


def test_the_ode_samplers_converge_to_one_flow():
    """DDIM (first order) and DPM-Solver++(2M) from the same x_T: the same endpoint at 1000 steps, and each at
    fewer steps converging to it (on the support dimensions: mean distance per sample)."""
    reference = sample("dpmpp_2m", 1000, 256)
    s = MIXTURE.support

    def error(x: torch.Tensor) -> float:
        return float((x - reference)[:, s].norm(dim=1).mean())

    assert error(sample("ddim", 1000, 256)) < 5e-3  # measured 2.8e-3
    ddim = [error(sample("ddim", n, 256)) for n in (50, 200)]  # measured 5.5e-2, 1.4e-2
    solver = [error(sample("dpmpp_2m", n, 256)) for n in (50, 200)]  # measured 4.5e-2, 6.6e-3
    assert ddim[1] < ddim[0] / 3.5 and ddim[1] < 0.02
    assert solver[1] < solver[0] / 5 and solver[1] < 0.01 and solver[1] < ddim[1] / 1.7


def test_dpm_solver_is_second_order_on_even_log_snr_steps():
    """With steps even in log-SNR, halving the step size divides DPM-Solver++(2M)'s error by about four. (With
    uniform time steps the last, widest steps dominate and every solver looks first order.)"""
    reference = sample("dpmpp_2m", 800, 256, spacing="logsnr")
    s = MIXTURE.support
    error = {n: float((sample("dpmpp_2m", n, 256, spacing="logsnr") - reference)[:, s].norm(dim=1).mean())
             for n in (25, 50)}
    # measured 6.8e-3 and 1.3e-3 (ratio 5.4); with the second-order weight 0.6 for 0.5: 1.2e-2, 3.3e-3 (3.5)
    assert error[50] < 2e-3 and error[25] / error[50] > 4.5, error


@pytest.mark.parametrize("variance", [0.01, 0.25])
def test_the_sde_solver_keeps_a_gaussian_s_variance(variance):
    """On one Gaussian, DPM-Solver++(2M) SDE at 300 steps returns its variance: the injected noise is exactly
    what the forward process removed."""
    gaussian = GaussianMixture(torch.zeros(1, 16, dtype=torch.float64), torch.full((1, 16), variance,
                                                                                 dtype=torch.float64),
                               torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.long), 1,
                               torch.ones(16, dtype=torch.bool))
    x = sample("dpmpp_2m_sde", 300, 4000, mixture=gaussian)
    ratio = float(x.var(0).mean()) / variance
    # measured 0.999 (0.01) and 1.001 (0.25); with the noise x 1.05: 1.10 and 1.10
    assert abs(ratio - 1) < 0.03, ratio


def test_ddpm_guided_by_the_exact_posterior_approaches_each_class():
    """Classifier guidance at scale 1 with the exact p(y | x_t) turns the unconditional model into p(x | c), up to
    ADM's mean-shift approximation, which shrinks with the step size."""
    labels = torch.arange(MIXTURE.num_classes).repeat(25)
    guided = {n: sample("ddpm", n, len(labels), cond_fn=ClassifierGuidance(ExactClassifier(MIXTURE,
                                                                                          BASE.alphas_cumprod)),
                        model_kwargs={"y": labels}) for n in (50, 1000)}
    coarse, fine = (ground_truth(MIXTURE, guided[n], labels) for n in (50, 1000))
    truth = ground_truth(MIXTURE, MIXTURE.sample(labels, torch.Generator().manual_seed(6))[0], labels)
    assert fine["bayes_accuracy"] > coarse["bayes_accuracy"] + 30 and fine["w2"] < coarse["w2"] / 8
    assert fine["bayes_accuracy"] > truth["bayes_accuracy"] - 6
    # Pathwise: the exact conditional model p(x | c) from the same x_T and step noise.
    conditional = sample("ddpm", 1000, len(labels), conditional=True, model_kwargs={"y": labels})
    distance = (guided[1000] - conditional)[:, MIXTURE.support].norm(dim=1).median().item()
    # measured 3.0e-3 (the guided mean shifted x 1.2: 8.1e-3)
    assert distance < 5e-3, distance
