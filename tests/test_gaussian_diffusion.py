import math

import numpy as np
import pytest
import torch

from guided_diffusion import gaussian_diffusion as gd
from guided_diffusion import script_util
from guided_diffusion.progressive.guidance import ClassifierGuidance

from golden import build_golden_network, load_fixture, relative_error

GOLDEN = load_fixture("golden_diffusion.pt")
TOL = 1e-4


@pytest.fixture(scope="module")
def nets():
    model = build_golden_network(load_fixture(GOLDEN["model_fixture"]))
    with torch.no_grad():
        for p in model.out.parameters():
            p.mul_(0.05)
    classifier = build_golden_network(load_fixture(GOLDEN["classifier_fixture"]))
    cond_fn = ClassifierGuidance(classifier, GOLDEN["classifier_scale"])

    return model, cond_fn


def _diffusion(respacing):
    return script_util.create_gaussian_diffusion(steps=1000, learn_sigma=True, noise_schedule="cosine",
                                                 timestep_respacing=respacing)


def _assert_matches(out, expected):
    for key, value in expected.items():
        if isinstance(value, torch.Tensor):
            assert relative_error(out[key], value) < TOL, key


@pytest.mark.parametrize("name,steps", [("linear", 1000), ("cosine", 1000), ("linear", 4000)])
def test_beta_schedules(name, steps):
    betas = gd.get_named_beta_schedule(name, steps)
    assert betas.dtype == np.float64
    np.testing.assert_allclose(betas, GOLDEN[f"betas_{name}_{steps}"].double().numpy(), rtol=1e-6)


def test_unknown_schedule():
    with pytest.raises(NotImplementedError, match="quadratic"):
        gd.get_named_beta_schedule("quadratic", 10)


def test_too_short_linear_schedule_is_rejected():
    with pytest.raises(ValueError, match="more than 20 steps"):
        gd.get_named_beta_schedule("linear", 20)
    assert gd.get_named_beta_schedule("linear", 21)[-1] < 1


def test_p_mean_variance(nets):
    model, _ = nets
    with torch.no_grad():
        out = _diffusion(GOLDEN["timestep_respacing"]).p_mean_variance(
            model, GOLDEN["x"], GOLDEN["t"], clip_denoised=True, model_kwargs={"y": GOLDEN["y"]})
    _assert_matches(out, GOLDEN["p_mean_variance"])


@pytest.mark.parametrize("guided", [False, True])
def test_p_sample(nets, guided):
    model, cond_fn = nets
    with torch.no_grad():
        out = _diffusion(GOLDEN["timestep_respacing"]).p_sample(
            model, GOLDEN["x"], GOLDEN["t"], model_kwargs={"y": GOLDEN["y"]}, noise=GOLDEN["noise"],
            cond_fn=cond_fn if guided else None)
    _assert_matches(out, GOLDEN["p_sample_guided" if guided else "p_sample"])


def test_p_sample_draws_randn_like_when_no_noise_given(nets):
    model, _ = nets
    diffusion = _diffusion(GOLDEN["timestep_respacing"])
    torch.manual_seed(3)
    noise = torch.randn_like(GOLDEN["x"])
    torch.manual_seed(3)
    with torch.no_grad():
        implicit = diffusion.p_sample(model, GOLDEN["x"], GOLDEN["t"], model_kwargs={"y": GOLDEN["y"]})
        explicit = diffusion.p_sample(model, GOLDEN["x"], GOLDEN["t"], model_kwargs={"y": GOLDEN["y"]}, noise=noise)
    assert torch.equal(implicit["sample"], explicit["sample"])


def test_ddim_guided(nets):
    model, cond_fn = nets
    with torch.no_grad():
        out = _diffusion(GOLDEN["timestep_respacing"]).ddim_sample(
            model, GOLDEN["x"], GOLDEN["t"], model_kwargs={"y": GOLDEN["y"]}, cond_fn=cond_fn, eta=0.0)
    _assert_matches(out, GOLDEN["ddim_sample_guided_eta0"])


def test_ddim_eta(nets):
    model, _ = nets
    with torch.no_grad():
        out = _diffusion(GOLDEN["timestep_respacing"]).ddim_sample(
            model, GOLDEN["x"], GOLDEN["t"], model_kwargs={"y": GOLDEN["y"]}, noise=GOLDEN["noise"], eta=0.5)
    _assert_matches(out, GOLDEN["ddim_sample_eta05"])


def test_ddim_loop(nets):
    model, cond_fn = nets
    loop = GOLDEN["ddim_loop"]
    sample = _diffusion(loop["timestep_respacing"]).ddim_sample_loop(
        model, tuple(loop["noise"].shape), noise=loop["noise"], model_kwargs={"y": GOLDEN["y"]}, cond_fn=cond_fn)
    assert relative_error(sample, loop["sample"]) < TOL


def test_training_losses(nets):
    model, _ = nets
    case = GOLDEN["training_losses"]
    diffusion = script_util.create_gaussian_diffusion(steps=1000, learn_sigma=True, noise_schedule="cosine")
    with torch.no_grad():
        out = diffusion.training_losses(model, case["x_start"], case["t"], model_kwargs={"y": GOLDEN["y"]},
                                        noise=case["noise"])
    _assert_matches(out, case["losses"])


def test_progressive_loops_yield_every_step(nets):
    model, _ = nets
    diffusion = _diffusion("4")
    kwargs = dict(noise=GOLDEN["noise"], model_kwargs={"y": GOLDEN["y"]})
    for loop in (diffusion.p_sample_loop_progressive, diffusion.ddim_sample_loop_progressive):
        steps = list(loop(model, tuple(GOLDEN["x"].shape), **kwargs))
        assert len(steps) == 4
        assert set(steps[-1]) == {"sample", "pred_xstart"}
    torch.manual_seed(0)
    final = diffusion.p_sample_loop(model, tuple(GOLDEN["x"].shape), **kwargs)
    torch.manual_seed(0)
    last = list(diffusion.p_sample_loop_progressive(model, tuple(GOLDEN["x"].shape), **kwargs))[-1]["sample"]
    assert torch.equal(final, last)


# ------------------------------------------------------------- all variants


class _Linear(torch.nn.Module):
    """A tiny stand-in network: a 1x1 conv on x and a t-dependent bias."""

    def __init__(self, out_channels):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, out_channels, 1)

    def forward(self, x, t):
        return torch.tanh(self.conv(x) + t.float().reshape(-1, 1, 1, 1) / 100)


@pytest.mark.parametrize("mean_type", list(gd.ModelMeanType))
@pytest.mark.parametrize("var_type", list(gd.ModelVarType))
@pytest.mark.parametrize("loss_type", list(gd.LossType))
def test_every_parameterisation_trains_and_samples(mean_type, var_type, loss_type):
    learned = var_type in (gd.ModelVarType.LEARNED, gd.ModelVarType.LEARNED_RANGE)
    diffusion = gd.GaussianDiffusion(betas=gd.get_named_beta_schedule("cosine", 10), model_mean_type=mean_type,
                                     model_var_type=var_type, loss_type=loss_type)
    model = _Linear(6 if learned else 3)
    x0 = torch.rand(2, 3, 4, 4) * 2 - 1
    t = torch.tensor([0, 7])
    losses = diffusion.training_losses(model, x0, t)
    assert losses["loss"].shape == (2,) and torch.isfinite(losses["loss"]).all()
    if loss_type.is_vb():
        assert set(losses) == {"loss"}
    else:
        assert "mse" in losses and ("vb" in losses) == learned
    losses["loss"].sum().backward()
    assert model.conv.weight.grad is not None
    sample = diffusion.p_sample_loop(model, (2, 3, 4, 4))
    assert sample.shape == (2, 3, 4, 4) and torch.isfinite(sample).all()


def test_q_sample_marginal():
    diffusion = script_util.create_gaussian_diffusion(steps=100)
    x0 = torch.full((20000, 1), 0.5)
    t = torch.full((20000,), 60)
    xt = diffusion.q_sample(x0, t)
    abar = diffusion.alphas_cumprod[60]
    assert abs(xt.mean().item() - math.sqrt(abar) * 0.5) < 0.02
    assert abs(xt.var().item() - (1 - abar)) < 0.02


def test_eps_and_xstart_round_trip():
    diffusion = script_util.create_gaussian_diffusion(steps=50)
    x0, eps, t = torch.randn(3, 3, 4, 4), torch.randn(3, 3, 4, 4), torch.tensor([0, 20, 49])
    xt = diffusion.q_sample(x0, t, noise=eps)
    assert torch.allclose(diffusion._predict_xstart_from_eps(xt, t, eps), x0, atol=1e-4)
    assert torch.allclose(diffusion._predict_eps_from_xstart(xt, t, x0), eps, atol=1e-3)


def test_posterior_mean_of_true_x0_matches_closed_form():
    diffusion = script_util.create_gaussian_diffusion(steps=100)
    x0, xt, t = torch.randn(1, 1), torch.randn(1, 1), torch.tensor([5])
    mean, var, _ = diffusion.q_posterior_mean_variance(x0, xt, t)
    ab, ab_prev, beta = diffusion.alphas_cumprod[5], diffusion.alphas_cumprod[4], diffusion.betas[5]
    expected = (math.sqrt(ab_prev) * beta * x0 + math.sqrt(1 - beta) * (1 - ab_prev) * xt) / (1 - ab)
    assert torch.allclose(mean, expected.float(), atol=1e-6)
    assert abs(var.item() - beta * (1 - ab_prev) / (1 - ab)) < 1e-7


def test_ddim_reverse_then_forward_inverts():
    diffusion = script_util.create_gaussian_diffusion(steps=1000, timestep_respacing="ddim50")

    def model(x, t):  # eps prediction that is exact for x0 = 0.3
        ab = torch.from_numpy(np.asarray(diffusion_base_abar)).float()[t].reshape(-1, 1, 1, 1)
        return (x - ab.sqrt() * 0.3) / (1 - ab).sqrt()

    diffusion_base_abar = script_util.create_gaussian_diffusion(steps=1000).alphas_cumprod
    x = torch.full((1, 1, 2, 2), 0.3)
    t = torch.tensor([10])
    up = diffusion.ddim_reverse_sample(model, x, t, clip_denoised=False)["sample"]
    down = diffusion.ddim_sample(model, up, t + 1, clip_denoised=False)["sample"]
    assert torch.allclose(down, x, atol=1e-4)
    with pytest.raises(ValueError, match="eta"):
        diffusion.ddim_reverse_sample(model, x, t, eta=0.5)


def test_calc_bpd_loop_adds_up():
    diffusion = gd.GaussianDiffusion(betas=gd.get_named_beta_schedule("cosine", 6),
                                     model_mean_type=gd.ModelMeanType.EPSILON,
                                     model_var_type=gd.ModelVarType.LEARNED_RANGE, loss_type=gd.LossType.MSE)
    out = diffusion.calc_bpd_loop(_Linear(6), torch.rand(2, 3, 4, 4) * 2 - 1)
    assert out["vb"].shape == out["mse"].shape == out["xstart_mse"].shape == (2, 6)
    assert torch.allclose(out["total_bpd"], out["vb"].sum(1) + out["prior_bpd"])
    assert (out["prior_bpd"] >= 0).all()


def test_condition_mean_shifts_by_variance_times_gradient():
    diffusion = script_util.create_gaussian_diffusion(steps=100)
    x, t = torch.randn(2, 3, 2, 2), torch.tensor([3, 9])
    p = {"mean": torch.zeros_like(x), "variance": torch.full_like(x, 0.25)}
    mean = diffusion.condition_mean(lambda x, t, **kw: torch.ones_like(x) * t.reshape(-1, 1, 1, 1), p, x, t)
    assert torch.allclose(mean[0], torch.full_like(x[0], 0.75))
    assert torch.allclose(mean[1], torch.full_like(x[1], 2.25))
