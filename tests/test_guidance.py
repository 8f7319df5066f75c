import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from guided_diffusion import script_util as su
from guided_diffusion.progressive.guidance import (
    ClassifierFreeGuidance,
    ClassifierGuidance,
    EntropyDrivenGuidance,
    ProgressiveEntropyDrivenGuidance,
    ProgressiveGuidance,
    RampedGuidance,
)
from guided_diffusion.progressive.information_degree import InformationDegree, uniform_relevance
from guided_diffusion.sampling.samplers import SAMPLERS, respacing_for, sample_loop

from tiny import random_relevance, tiny_classifier, tiny_model_and_diffusion

C = 5


@pytest.fixture(scope="module")
def classifier():
    return tiny_classifier(C)


@pytest.fixture(scope="module")
def inputs():
    torch.manual_seed(2)
    return torch.randn(3, 3, 8, 8), torch.tensor([10, 50, 90]), torch.tensor([1, 4, 0])


def test_prog_gradient_is_the_weighted_sum_of_per_class_gradients(classifier, inputs):
    x, t, y = inputs
    s = torch.as_tensor(random_relevance(C), dtype=torch.float32)[y]
    prog = ProgressiveGuidance(classifier, scale=2.5)(x, t, y=y, information_degree=s)
    vanilla = ClassifierGuidance(classifier, scale=2.5)
    one_class_at_a_time = sum(s[:, i].view(-1, 1, 1, 1) * vanilla(x, t, y=torch.full_like(y, i)) for i in range(C))
    torch.testing.assert_close(prog, one_class_at_a_time, atol=1e-5 * prog.abs().max().item(), rtol=1e-5)
    assert not torch.allclose(prog, vanilla(x, t, y=y), atol=1e-4)


def test_prog_gradient_equals_the_kl_form_of_eq6(classifier, inputs):
    x, t, y = inputs
    s = torch.as_tensor(random_relevance(C, seed=3), dtype=torch.float32)[y]
    x_in = x.clone().requires_grad_(True)
    log_p = F.log_softmax(classifier(x_in, t), dim=-1)
    kl = (s * (s.log() - log_p)).sum()  # KL(s || p(y | x_t)), entropy term included
    (minus_kl_gradient,) = torch.autograd.grad(-kl, x_in)
    prog = ProgressiveGuidance(classifier, scale=1.0)(x, t, y=y, information_degree=s)
    torch.testing.assert_close(prog, minus_kl_gradient, atol=1e-5 * prog.abs().max().item(), rtol=1e-5)


def test_eds_scale_follows_its_formula(classifier, inputs):
    x, t, y = inputs
    with torch.no_grad():
        log_p = F.log_softmax(classifier(x, t), dim=-1)
    entropy = -(log_p.exp() * log_p).sum(dim=-1)
    factor = (math.log(C) / entropy).view(-1, 1, 1, 1)
    vanilla = ClassifierGuidance(classifier, scale=3.0)(x, t, y=y)
    torch.testing.assert_close(EntropyDrivenGuidance(classifier, scale=3.0)(x, t, y=y), vanilla * factor,
                               atol=1e-6, rtol=1e-5)
    s = torch.as_tensor(uniform_relevance(C, 0.3), dtype=torch.float32)[y]
    prog = ProgressiveGuidance(classifier, scale=3.0)(x, t, y=y, information_degree=s)
    both = ProgressiveEntropyDrivenGuidance(classifier, scale=3.0)(x, t, y=y, information_degree=s)
    torch.testing.assert_close(both, prog * factor, atol=1e-6, rtol=1e-5)
    assert (factor > 1).all()  # a random classifier is less than maximally uncertain


def test_prog_without_information_degree_is_a_clear_error(classifier, inputs):
    x, t, y = inputs
    with pytest.raises(ValueError, match="information_degree="):
        ProgressiveGuidance(classifier)(x, t, y=y)
    with pytest.raises(ValueError, match="outputs of shape"):
        ProgressiveGuidance(classifier)(x, t, y=y, information_degree=torch.eye(C + 1)[y])


@pytest.mark.parametrize("sampler,respacing", [("ddpm", "7"), ("ddim", "ddim5"), ("ddpm", ""), ("ddim", "10"),
                                               ("dpmpp_2m", "uniform6"), ("dpmpp_2m", "logsnr6"),
                                               ("dpmpp_2m_sde", "uniform6")])
def test_prog_with_one_hot_s_T_is_vanilla_bit_for_bit(classifier, sampler, respacing):
    model, diffusion = tiny_model_and_diffusion(class_cond=True, num_classes=C, timestep_respacing=respacing)
    if respacing == "":
        diffusion = su.create_gaussian_diffusion(steps=12, learn_sigma=True, noise_schedule="cosine")
    y = torch.tensor([0, 3, 2])
    noise = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(5))

    def run(cond_fn, degree=None):
        torch.manual_seed(11)
        return sample_loop(diffusion, sampler, eta=0.5)(model, (3, 3, 8, 8), noise=noise, cond_fn=cond_fn,
                                                        model_kwargs={"y": y}, information_degree=degree)

    vanilla = run(ClassifierGuidance(classifier, scale=4.0))
    prog = run(ProgressiveGuidance(classifier, scale=4.0), InformationDegree.from_relevance(np.eye(C), y, 0.04))
    assert torch.equal(vanilla, prog)
    smoothed = run(ProgressiveGuidance(classifier, scale=4.0),
                   InformationDegree.from_relevance(uniform_relevance(C, 0.5), y, 0.04))
    assert not torch.equal(vanilla, smoothed)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_loops_hand_each_step_its_information_degree(sampler):
    model, diffusion = tiny_model_and_diffusion(class_cond=True, num_classes=C,
                                                timestep_respacing=respacing_for(sampler, "6"))
    y = torch.tensor([2, 1])
    degree = InformationDegree.from_relevance(random_relevance(C), y, 0.3)
    seen = []

    def recording_cond_fn(x, t, y=None, information_degree=None):
        seen.append(information_degree.clone())
        return torch.zeros_like(x)

    sample_loop(diffusion, sampler)(model, (2, 3, 8, 8), cond_fn=recording_cond_fn, model_kwargs={"y": y},
                              information_degree=degree)
    assert len(seen) == 6
    for k, s in enumerate(seen):
        assert torch.equal(s, degree.at(k))


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_a_bare_cond_fn_closure_works_as_before(classifier, sampler):
    """ADM-style client code: a closure that takes (x, t, y) only, no information degree."""
    model, diffusion = tiny_model_and_diffusion(class_cond=True, num_classes=C,
                                                timestep_respacing=respacing_for(sampler, "4"))
    y = torch.tensor([1, 2])

    def cond_fn(x, t, y=None):
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            selected = F.log_softmax(classifier(x_in, t), dim=-1)[range(len(y)), y]
            return torch.autograd.grad(selected.sum(), x_in)[0] * 3.0

    def model_fn(x, t, y=None):
        return model(x, t, y)

    outs = []
    for fn in (cond_fn, ClassifierGuidance(classifier, 3.0)):
        torch.manual_seed(4)
        outs.append(sample_loop(diffusion, sampler)(model_fn, (2, 3, 8, 8), cond_fn=fn, model_kwargs={"y": y},
                                              device=torch.device("cpu")))
    assert torch.equal(outs[0], outs[1])


def test_noise_sampler_supplies_every_step_draw():
    model, diffusion = tiny_model_and_diffusion(timestep_respacing="3")
    x_T = torch.randn(2, 3, 8, 8)
    draws = [torch.randn(2, 3, 8, 8) for _ in range(3)]
    supplied = iter(draws)
    looped = diffusion.p_sample_loop(model, (2, 3, 8, 8), noise=x_T, noise_sampler=lambda x: next(supplied))
    x = x_T
    with torch.no_grad():
        for k, i in enumerate((2, 1, 0)):
            x = diffusion.p_sample(model, x, torch.tensor([i, i]), noise=draws[k])["sample"]
    assert torch.equal(looped, x)


def test_tiny_models_depend_on_label_and_timestep():
    """Else a guidance test comparing conditional with unconditional outputs compares equal tensors."""
    model, _ = tiny_model_and_diffusion(class_cond=True, num_classes=C, label_dropout=0.1)
    x, t, y = torch.randn(2, 3, 8, 8), torch.tensor([5, 50]), torch.tensor([0, 4])
    with torch.no_grad():
        out = model(x, t, y)
        by_label = (out - model(x, t, torch.full_like(y, C))).abs().amax(dim=(1, 2, 3))
        by_time = (out - model(x, t + 20, y)).abs().amax(dim=(1, 2, 3))
    assert (by_label > 1e-3 * out.abs().max()).all() and (by_time > 1e-3 * out.abs().max()).all()
    classifier = tiny_classifier(C)
    with torch.no_grad():
        assert not torch.allclose(classifier(x, t), classifier(x, t + 20), atol=1e-4)


def test_classifier_free_guidance():
    model, diffusion = tiny_model_and_diffusion(class_cond=True, num_classes=C, label_dropout=0.1)
    x, t, y = torch.randn(3, 3, 8, 8), torch.tensor([5, 50, 95]), torch.tensor([0, 4, 2])
    with torch.no_grad():
        cond = model(x, t, y)
        uncond = model(x, t, torch.full_like(y, C))
        assert (cond[:, :3] - uncond[:, :3]).abs().max() > 1e-2 * cond[:, :3].abs().max()  # they can be told apart
        torch.testing.assert_close(ClassifierFreeGuidance(model, 0.0)(x, t, y=y), cond, atol=1e-5, rtol=1e-4)
        guided = ClassifierFreeGuidance(model, 2.0)(x, t, y=y)
    torch.testing.assert_close(guided[:, :3], 3.0 * cond[:, :3] - 2.0 * uncond[:, :3], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(guided[:, 3:], cond[:, 3:], atol=1e-5, rtol=1e-4)  # variance: conditional
    sample = diffusion.p_sample_loop(ClassifierFreeGuidance(model, 2.0), (3, 3, 8, 8), model_kwargs={"y": y})
    assert torch.isfinite(sample).all()
    plain, _ = tiny_model_and_diffusion(class_cond=True, num_classes=C)
    with pytest.raises(ValueError, match="label dropout"):
        ClassifierFreeGuidance(plain, 1.0)


def test_ramped_guidance_is_vanilla_scaled_by_the_conditions_weight():
    classifier = tiny_classifier(num_classes=4)
    x, t = torch.randn(3, 3, 8, 8), torch.tensor([10, 500, 900])
    y = torch.tensor([0, 2, 3])
    degree = torch.tensor([[0.5, 0.5, 0, 0], [0.1, 0.1, 0.7, 0.1], [0, 0, 0, 1.0]])
    ramped = RampedGuidance(classifier, 2.0)(x, t, y=y, information_degree=degree)
    vanilla = ClassifierGuidance(classifier, 2.0)(x, t, y=y)
    torch.testing.assert_close(ramped, vanilla * degree[[0, 1, 2], y].view(-1, 1, 1, 1))
    with pytest.raises(ValueError, match="information degree"):
        RampedGuidance(classifier, 2.0)(x, t, y=y)
