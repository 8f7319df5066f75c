import numpy as np
import pytest
import torch

from guided_diffusion import gaussian_diffusion as gd
from guided_diffusion.respace import SpacedDiffusion, space_timesteps

from golden import load_fixture


@pytest.mark.parametrize("section", sorted(load_fixture("golden_diffusion.pt")["spacings"]))
def test_spacings_match_reference(section):
    expected = load_fixture("golden_diffusion.pt")["spacings"][section]
    assert sorted(space_timesteps(1000, section)) == list(expected)


def test_list_and_string_forms_agree():
    assert space_timesteps(100, [3, 2]) == space_timesteps(100, "3,2") == {0, 24, 49, 50, 99}


@pytest.mark.parametrize("bad", ["ddim7", "300"])
def test_impossible_spacings_are_rejected(bad):
    with pytest.raises(ValueError):
        space_timesteps(200 if bad == "300" else 10, bad)


@pytest.mark.parametrize("bad", ["abc", "10,x", "", "ddimx"])
def test_unparsable_spacings_name_the_flag(bad):
    with pytest.raises(ValueError, match="--timestep_respacing"):
        space_timesteps(1000, bad)


def _spaced(keep, **kw):
    return SpacedDiffusion(use_timesteps=keep, betas=gd.get_named_beta_schedule("linear", 1000),
                           model_mean_type=gd.ModelMeanType.EPSILON, model_var_type=gd.ModelVarType.FIXED_SMALL,
                           loss_type=gd.LossType.MSE, **kw)


def test_spaced_process_keeps_marginals():
    base = gd.GaussianDiffusion(betas=gd.get_named_beta_schedule("linear", 1000),
                                model_mean_type=gd.ModelMeanType.EPSILON,
                                model_var_type=gd.ModelVarType.FIXED_SMALL, loss_type=gd.LossType.MSE)
    keep = space_timesteps(1000, "ddim25")
    spaced = _spaced(keep)
    assert spaced.num_timesteps == 25
    np.testing.assert_allclose(spaced.alphas_cumprod, base.alphas_cumprod[sorted(keep)], rtol=1e-12)


@pytest.mark.parametrize("rescale", [False, True])
def test_model_and_cond_fn_see_original_timesteps(rescale):
    spaced = _spaced({0, 500, 999}, rescale_timesteps=rescale)
    seen = {}

    def model(x, t, **kw):
        seen["model"] = t.clone()
        return torch.zeros_like(x)

    def cond_fn(x, t, **kw):
        seen["cond"] = t.clone()
        return torch.zeros_like(x)

    x = torch.zeros(2, 3, 2, 2)
    t = torch.tensor([1, 2])
    spaced.p_sample(model, x, t, cond_fn=cond_fn)
    expected = torch.tensor([500.0, 999.0])
    if rescale:
        expected = expected * (1000.0 / 1000)
    assert torch.equal(seen["model"].float(), expected)
    assert torch.equal(seen["cond"].float(), expected)
    spaced.ddim_sample(model, x, t, cond_fn=cond_fn)
    assert torch.equal(seen["cond"].float(), expected)
    spaced.training_losses(model, x, t)
    assert torch.equal(seen["model"].float(), expected)
