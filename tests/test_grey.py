"""guided_diffusion.sampling.grey: the exact noise colour for models of grey data."""

import numpy as np
import pytest
import torch

from guided_diffusion.evaluation.metrics import channel_gap
from guided_diffusion.sampling.grey import GreyData, colour
from guided_diffusion.sampling.job import MainJob, job_args

from tiny import MODEL_FLAGS, tiny_model_and_diffusion


def test_the_colour_of_the_noise_is_read_off_x_t_and_the_rest_is_the_model_s():
    model, diffusion = tiny_model_and_diffusion()
    grey = GreyData(model, diffusion.alphas_cumprod)
    x0 = torch.rand(4, 1, 8, 8).repeat(1, 3, 1, 1) * 2 - 1  # grey images
    noise = torch.randn(4, 3, 8, 8)
    t = torch.tensor([0, 10, 50, 99])
    x_t = diffusion.q_sample(x0, t, noise=noise).float()
    with torch.no_grad():
        out, raw = grey(x_t, t), model(x_t, t)
    assert torch.allclose(colour(out[:, :3]), colour(noise), atol=1e-4)  # exact, whatever the network learnt
    assert not torch.allclose(colour(raw[:, :3]), colour(noise), atol=0.1)
    assert torch.allclose(out[:, :3].mean(1), raw[:, :3].mean(1), atol=1e-4)  # the grey part: the network's
    assert torch.equal(out[:, 3:], raw[:, 3:])  # the variance: the network's


def test_rescaled_timesteps_find_their_noise_level():
    model, diffusion = tiny_model_and_diffusion()
    alphas = diffusion.alphas_cumprod
    x = torch.randn(2, 3, 8, 8)
    t = torch.tensor([3, 70])
    with torch.no_grad():
        plain = GreyData(model, alphas)(x, t)
        scale = 1000.0 / len(alphas)
        rescaled = GreyData(lambda x, t, y=None: model(x, t / scale, y), alphas, scale)(x, t.float() * scale)
    assert torch.allclose(plain, rescaled, atol=1e-5)


@pytest.mark.parametrize("sampler", ["ddpm", "dpmpp_2m"])
def test_the_main_job_samples_grey_images_with_grey_data(one_thread, sampler):
    model, _ = tiny_model_and_diffusion()
    flags = [f"--{k}={v}" for k, v in MODEL_FLAGS.items()]
    gaps = {}
    for grey in (False, True):
        args = job_args([*flags, "--model_path", "given.pt", "--guidance", "none", "--num_samples", "4",
                         "--batch_size", "4", "--sampler", sampler, "--timestep_respacing", "5",
                         "--grey_data", str(grey)])
        images = MainJob(args, device=torch.device("cpu"), model=model).load().sample()["images"]
        gaps[grey] = channel_gap(images)
    assert gaps[False].mean() > 5  # a random network draws colours
    assert gaps[True].max() <= 1 / 3 and np.mean(gaps[True]) < 0.05  # grey, but for a rounding to 1/255


def test_classifier_free_guidance_finds_the_null_class_through_grey_data(one_thread):
    model, _ = tiny_model_and_diffusion(class_cond=True, label_dropout=0.1)
    flags = [f"--{k}={v}" for k, v in {**MODEL_FLAGS, "class_cond": True, "label_dropout": 0.1}.items()]
    args = job_args([*flags, "--model_path", "given.pt", "--guidance", "cfg", "--cfg_scale", "1", "--num_samples", "4",
                     "--batch_size", "4", "--timestep_respacing", "5", "--grey_data", "True"])
    job = MainJob(args, device=torch.device("cpu"), model=model).load()
    assert model.null_class is not None and job.denoiser.null_class == model.null_class
    assert channel_gap(job.sample()["images"]).max() <= 1 / 3  # the colour is still the exact one
