from types import SimpleNamespace

import numpy as np
import pytest
import torch

from guided_diffusion.resample import (
    LossSecondMomentResampler,
    UniformSampler,
    create_named_schedule_sampler,
)

DIFFUSION = SimpleNamespace(num_timesteps=4)


def test_named_samplers():
    assert isinstance(create_named_schedule_sampler("uniform", DIFFUSION), UniformSampler)
    assert isinstance(create_named_schedule_sampler("loss-second-moment", DIFFUSION), LossSecondMomentResampler)
    with pytest.raises(ValueError, match="unknown --schedule_sampler"):
        create_named_schedule_sampler("nope", DIFFUSION)


def test_uniform_below_draws_only_the_low_noise_steps():
    np.random.seed(0)
    t, _ = create_named_schedule_sampler("uniform_below_2", DIFFUSION).sample(500, "cpu")
    assert set(t.tolist()) == {0, 1}
    with pytest.raises(ValueError, match="must be in"):
        create_named_schedule_sampler("uniform_below_9", DIFFUSION)


def test_uniform_sampler_draws_valid_steps_with_unit_weights():
    np.random.seed(0)
    t, w = UniformSampler(DIFFUSION).sample(1000, "cpu")
    assert t.dtype == torch.int64 and w.dtype == torch.float32
    assert set(t.tolist()) == {0, 1, 2, 3}
    assert torch.equal(w, torch.ones(1000))


def test_loss_second_moment_is_uniform_until_warm_then_follows_rms_loss():
    sampler = LossSecondMomentResampler(DIFFUSION, history_per_term=2, uniform_prob=0.2)
    sampler.update_with_local_losses(torch.tensor([0, 1, 2, 3]), torch.tensor([1.0, 1.0, 1.0, 1.0]))
    assert np.array_equal(sampler.weights(), np.ones(4))  # only one loss per term so far
    sampler.update_with_local_losses(torch.tensor([0, 1, 2, 3]), torch.tensor([1.0, 1.0, 1.0, 7.0]))
    rms = np.sqrt([1.0, 1.0, 1.0, 25.0])
    expected = rms / rms.sum() * 0.8 + 0.2 / 4
    assert np.allclose(sampler.weights(), expected)

    # A full history shifts out its oldest loss: t=3 now remembers [7, 1].
    sampler.update_with_all_losses([3], [1.0])
    assert np.allclose(sampler._loss_history[3], [7.0, 1.0])


def test_importance_weights_are_inverse_probabilities():
    sampler = LossSecondMomentResampler(DIFFUSION, history_per_term=1, uniform_prob=0.0)
    sampler.update_with_all_losses([0, 1, 2, 3], [1.0, 1.0, 1.0, 5.0])
    np.random.seed(1)
    t, w = sampler.sample(2000, "cpu")
    p = np.array([1, 1, 1, 5]) / 8
    assert torch.allclose(w, torch.from_numpy(1 / (4 * p[t.numpy()])).float())
    assert abs((t == 3).float().mean().item() - 5 / 8) < 0.05
