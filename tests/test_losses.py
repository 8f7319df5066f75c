import torch

from guided_diffusion.losses import (
    approx_standard_normal_cdf,
    discretized_gaussian_log_likelihood,
    normal_kl,
)


def test_normal_kl_matches_torch_distributions():
    m1, m2 = torch.randn(5), torch.randn(5)
    lv1, lv2 = torch.randn(5), torch.randn(5)
    p = torch.distributions.Normal(m1, (0.5 * lv1).exp())
    q = torch.distributions.Normal(m2, (0.5 * lv2).exp())
    assert torch.allclose(normal_kl(m1, lv1, m2, lv2), torch.distributions.kl_divergence(p, q), atol=1e-5)
    assert torch.allclose(normal_kl(m1, lv1, m1, lv1), torch.zeros(5), atol=1e-6)
    assert normal_kl(m1, lv1, 0.0, 0.0).shape == (5,)


def test_cdf_approximation():
    x = torch.linspace(-4, 4, 101)
    assert (approx_standard_normal_cdf(x) - torch.distributions.Normal(0, 1).cdf(x)).abs().max() < 1e-3


def test_discretized_likelihood_is_a_distribution_over_256_bins():
    bins = torch.linspace(-1, 1, 256)
    means, log_scales = torch.full_like(bins, 0.1), torch.full_like(bins, -2.0)
    probs = discretized_gaussian_log_likelihood(bins, means=means, log_scales=log_scales).exp()
    assert abs(probs.sum().item() - 1) < 1e-3
    assert probs.argmax().item() in (140, 141)  # the bin nearest 0.1
