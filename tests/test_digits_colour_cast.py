"""benchmarks/digits_colour_cast.py: the error of a model's mean-colour noise prediction."""

import pytest
import torch

from benchmarks.digits_colour_cast import mean_colour_error
from guided_diffusion import script_util as su


class Oracle(torch.nn.Module):
    """Predicts the true noise, minus a share of each image's mean colour noise."""

    def __init__(self, diffusion, x0: torch.Tensor, miss: float):
        super().__init__()
        self.diffusion, self.x0, self.miss = diffusion, x0, miss

    def forward(self, x_t, t, **kwargs):
        a = torch.from_numpy(self.diffusion.sqrt_alphas_cumprod)[t].float().view(-1, 1, 1, 1)
        s = torch.from_numpy(self.diffusion.sqrt_one_minus_alphas_cumprod)[t].float().view(-1, 1, 1, 1)
        eps = (x_t - a * self.x0[:len(x_t)]) / s
        colour = (eps - eps.mean(1, keepdim=True)).mean((2, 3), keepdim=True)
        return eps - self.miss * colour


@pytest.mark.parametrize("miss", [0.0, 0.5, 1.0])
def test_mean_colour_error_is_the_share_of_the_mean_colour_missed(miss):
    diffusion = su.create_gaussian_diffusion(steps=1000, noise_schedule="cosine")
    x0 = torch.rand(8, 1, 6, 6).repeat(1, 3, 1, 1) * 2 - 1  # grey images
    errors = mean_colour_error(Oracle(diffusion, x0, miss), diffusion, x0, None, timesteps=(20, 500))
    assert errors == pytest.approx([miss ** 2] * 2, abs=1e-4)
