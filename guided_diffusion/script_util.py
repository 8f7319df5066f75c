"""Factories from command-line flags to models and diffusions.

Flag names and defaults are those of the released ADM code, so its README's
flags build networks whose state dicts match the official checkpoints. Added:
``channel_mult`` / ``classifier_channel_mult`` for any image size and
``num_classes`` for label sets other than ImageNet's, and ``label_dropout`` (a
null class for classifier-free guidance).
"""

from __future__ import annotations

import inspect
import random
import re

import numpy as np
import torch

from . import gaussian_diffusion as gd
from .dpm_solver import solver_timesteps
from .flags import add_dict_to_argparser, args_to_dict, parse_attention_resolutions, parse_channel_mult, str2bool  # noqa: F401  (ADM's script_util API)
from .respace import SpacedDiffusion, space_timesteps
from .unet import EncoderUNetModel, SuperResModel, UNetModel

NUM_CLASSES = 1000

def diffusion_defaults() -> dict:
    return dict(
        learn_sigma=False,
        diffusion_steps=1000,
        noise_schedule="linear",
        timestep_respacing="",
        use_kl=False,
        predict_xstart=False,
        rescale_timesteps=False,
        rescale_learned_sigmas=False,
    )


def classifier_defaults() -> dict:
    return dict(
        image_size=64,
        classifier_use_fp16=False,
        classifier_width=128,
        classifier_depth=2,
        classifier_attention_resolutions="32,16,8",
        classifier_use_scale_shift_norm=True,
        classifier_resblock_updown=True,
        classifier_pool="attention",
        classifier_channel_mult="",
        num_classes=NUM_CLASSES,
    )


def model_and_diffusion_defaults() -> dict:
    return dict(
        image_size=64,
        num_channels=128,
        num_res_blocks=2,
        num_heads=4,
        num_heads_upsample=-1,
        num_head_channels=-1,
        attention_resolutions="16,8",
        channel_mult="",
        dropout=0.0,
        class_cond=False,
        use_checkpoint=False,
        use_scale_shift_norm=True,
        resblock_updown=False,
        use_fp16=False,
        use_new_attention_order=False,
        num_classes=NUM_CLASSES,
        label_dropout=0.0,
        **diffusion_defaults(),
    )


def fast_sampling_defaults() -> dict:
    """Flags of the sampling scripts for the sampler (ddpm, ddim, dpmpp_2m) and the cost of each network
    evaluation (autocast precision fp32 / fp16 / bf16, torch.compile); the defaults are ADM's."""
    return dict(sampler="ddpm", precision="fp32", compile=False)


def output_defaults() -> dict:
    """Flags of every sampling script for what it shows and writes besides the samples' ``.npz``: a progress bar
    of sampling steps, one PNG per sample (in the folder given)."""
    return dict(progress=True, save_png="")


def classifier_sample_defaults() -> dict:
    """Every flag of ``classifier_sample.py`` (the main job takes them all, with the same defaults)."""
    return {**dict(clip_denoised=True, num_samples=10000, batch_size=16, use_ddim=False, model_path="",
                   classifier_path="", classifier_scale=1.0, seed=0),
            **fast_sampling_defaults(), **output_defaults(), **model_and_diffusion_defaults(),
            **classifier_defaults()}


def classifier_and_diffusion_defaults() -> dict:
    return {**classifier_defaults(), **diffusion_defaults()}


def create_model_and_diffusion(
    image_size, class_cond, learn_sigma, num_channels, num_res_blocks, channel_mult, num_heads,
    num_head_channels, num_heads_upsample, attention_resolutions, dropout, diffusion_steps, noise_schedule,
    timestep_respacing, use_kl, predict_xstart, rescale_timesteps, rescale_learned_sigmas, use_checkpoint,
    use_scale_shift_norm, resblock_updown, use_fp16, use_new_attention_order, num_classes=NUM_CLASSES,
    label_dropout=0.0,
):
    model = create_model(
        image_size, num_channels, num_res_blocks, channel_mult=channel_mult, learn_sigma=learn_sigma,
        class_cond=class_cond, use_checkpoint=use_checkpoint, attention_resolutions=attention_resolutions,
        num_heads=num_heads, num_head_channels=num_head_channels, num_heads_upsample=num_heads_upsample,
        use_scale_shift_norm=use_scale_shift_norm, dropout=dropout, resblock_updown=resblock_updown,
        use_fp16=use_fp16, use_new_attention_order=use_new_attention_order, num_classes=num_classes,
        label_dropout=label_dropout,
    )
    diffusion = create_gaussian_diffusion(
        steps=diffusion_steps, learn_sigma=learn_sigma, noise_schedule=noise_schedule, use_kl=use_kl,
        predict_xstart=predict_xstart, rescale_timesteps=rescale_timesteps,
        rescale_learned_sigmas=rescale_learned_sigmas, timestep_respacing=timestep_respacing,
    )
    return model, diffusion


def create_model(
    image_size: int, num_channels: int, num_res_blocks: int, channel_mult="", learn_sigma: bool = False,
    class_cond: bool = False, use_checkpoint: bool = False, attention_resolutions: str = "16",
    num_heads: int = 1, num_head_channels: int = -1, num_heads_upsample: int = -1,
    use_scale_shift_norm: bool = False, dropout: float = 0, resblock_updown: bool = False,
    use_fp16: bool = False, use_new_attention_order: bool = False, num_classes: int = NUM_CLASSES,
    label_dropout: float = 0.0,
) -> UNetModel:
    return UNetModel(
        image_size=image_size,
        in_channels=3,
        model_channels=num_channels,
        out_channels=6 if learn_sigma else 3,
        num_res_blocks=num_res_blocks,
        attention_resolutions=parse_attention_resolutions(attention_resolutions, image_size),
        dropout=dropout,
        channel_mult=parse_channel_mult(channel_mult, image_size),
        num_classes=num_classes if class_cond else None,
        use_checkpoint=use_checkpoint,
        use_fp16=use_fp16,
        num_heads=num_heads,
        num_head_channels=num_head_channels,
        num_heads_upsample=num_heads_upsample,
        use_scale_shift_norm=use_scale_shift_norm,
        resblock_updown=resblock_updown,
        use_new_attention_order=use_new_attention_order,
        label_dropout=label_dropout,
    )


def create_classifier_and_diffusion(
    image_size, classifier_use_fp16, classifier_width, classifier_depth, classifier_attention_resolutions,
    classifier_use_scale_shift_norm, classifier_resblock_updown, classifier_pool, learn_sigma, diffusion_steps,
    noise_schedule, timestep_respacing, use_kl, predict_xstart, rescale_timesteps, rescale_learned_sigmas,
    classifier_channel_mult="", num_classes=NUM_CLASSES,
):
    classifier = create_classifier(
        image_size, classifier_use_fp16, classifier_width, classifier_depth, classifier_attention_resolutions,
        classifier_use_scale_shift_norm, classifier_resblock_updown, classifier_pool,
        classifier_channel_mult=classifier_channel_mult, num_classes=num_classes,
    )
    diffusion = create_gaussian_diffusion(
        steps=diffusion_steps, learn_sigma=learn_sigma, noise_schedule=noise_schedule, use_kl=use_kl,
        predict_xstart=predict_xstart, rescale_timesteps=rescale_timesteps,
        rescale_learned_sigmas=rescale_learned_sigmas, timestep_respacing=timestep_respacing,
    )
    return classifier, diffusion


def create_classifier(
    image_size: int, classifier_use_fp16: bool, classifier_width: int, classifier_depth: int,
    classifier_attention_resolutions: str, classifier_use_scale_shift_norm: bool,
    classifier_resblock_updown: bool, classifier_pool: str, classifier_channel_mult="",
    num_classes: int = NUM_CLASSES,
) -> EncoderUNetModel:
    return EncoderUNetModel(
        image_size=image_size,
        in_channels=3,
        model_channels=classifier_width,
        out_channels=num_classes,
        num_res_blocks=classifier_depth,
        attention_resolutions=parse_attention_resolutions(classifier_attention_resolutions, image_size),
        channel_mult=parse_channel_mult(classifier_channel_mult, image_size),
        use_fp16=classifier_use_fp16,
        num_head_channels=64,
        use_scale_shift_norm=classifier_use_scale_shift_norm,
        resblock_updown=classifier_resblock_updown,
        pool=classifier_pool,
    )


def sr_model_and_diffusion_defaults() -> dict:
    res = model_and_diffusion_defaults()
    res["large_size"] = 256
    res["small_size"] = 64
    accepted = inspect.signature(sr_create_model_and_diffusion).parameters
    return {k: v for k, v in res.items() if k in accepted}


def sr_create_model_and_diffusion(
    large_size, small_size, class_cond, learn_sigma, num_channels, num_res_blocks, num_heads, num_head_channels,
    num_heads_upsample, attention_resolutions, dropout, diffusion_steps, noise_schedule, timestep_respacing,
    use_kl, predict_xstart, rescale_timesteps, rescale_learned_sigmas, use_checkpoint, use_scale_shift_norm,
    resblock_updown, use_fp16, num_classes=NUM_CLASSES,
):
    model = sr_create_model(
        large_size, small_size, num_channels, num_res_blocks, learn_sigma=learn_sigma, class_cond=class_cond,
        use_checkpoint=use_checkpoint, attention_resolutions=attention_resolutions, num_heads=num_heads,
        num_head_channels=num_head_channels, num_heads_upsample=num_heads_upsample,
        use_scale_shift_norm=use_scale_shift_norm, dropout=dropout, resblock_updown=resblock_updown,
        use_fp16=use_fp16, num_classes=num_classes,
    )
    diffusion = create_gaussian_diffusion(
        steps=diffusion_steps, learn_sigma=learn_sigma, noise_schedule=noise_schedule, use_kl=use_kl,
        predict_xstart=predict_xstart, rescale_timesteps=rescale_timesteps,
        rescale_learned_sigmas=rescale_learned_sigmas, timestep_respacing=timestep_respacing,
    )
    return model, diffusion


def sr_create_model(
    large_size: int, small_size: int, num_channels: int, num_res_blocks: int, learn_sigma: bool,
    class_cond: bool, use_checkpoint: bool, attention_resolutions: str, num_heads: int, num_head_channels: int,
    num_heads_upsample: int, use_scale_shift_norm: bool, dropout: float, resblock_updown: bool, use_fp16: bool,
    num_classes: int = NUM_CLASSES,
) -> SuperResModel:
    del small_size  # the architecture depends only on the output size
    sr_mult = {512: (1, 1, 2, 2, 4, 4), 256: (1, 1, 2, 2, 4, 4), 64: (1, 2, 3, 4)}
    if large_size not in sr_mult:
        raise ValueError(f"unsupported large_size {large_size} (expected one of {sorted(sr_mult)})")
    return SuperResModel(
        image_size=large_size,
        in_channels=3,
        model_channels=num_channels,
        out_channels=6 if learn_sigma else 3,
        num_res_blocks=num_res_blocks,
        attention_resolutions=parse_attention_resolutions(attention_resolutions, large_size),
        dropout=dropout,
        channel_mult=sr_mult[large_size],
        num_classes=num_classes if class_cond else None,
        use_checkpoint=use_checkpoint,
        num_heads=num_heads,
        num_head_channels=num_head_channels,
        num_heads_upsample=num_heads_upsample,
        use_scale_shift_norm=use_scale_shift_norm,
        resblock_updown=resblock_updown,
        use_fp16=use_fp16,
    )


def create_gaussian_diffusion(
    *, steps: int = 1000, learn_sigma: bool = False, sigma_small: bool = False, noise_schedule: str = "linear",
    use_kl: bool = False, predict_xstart: bool = False, rescale_timesteps: bool = False,
    rescale_learned_sigmas: bool = False, timestep_respacing="",
) -> SpacedDiffusion:
    if use_kl:
        loss_type = gd.LossType.RESCALED_KL
    elif rescale_learned_sigmas:
        loss_type = gd.LossType.RESCALED_MSE
    else:
        loss_type = gd.LossType.MSE
    if learn_sigma:
        var_type = gd.ModelVarType.LEARNED_RANGE
    else:
        var_type = gd.ModelVarType.FIXED_SMALL if sigma_small else gd.ModelVarType.FIXED_LARGE
    betas = gd.get_named_beta_schedule(noise_schedule, steps)
    solver = re.fullmatch(r"(uniform|logsnr)(.*)", timestep_respacing) if isinstance(timestep_respacing, str) else None
    if solver:
        if not solver[2].isdigit():
            raise ValueError(f"--timestep_respacing {timestep_respacing!r}: {solver[1]}N takes a step count "
                             f"({solver[1]}20)")
        kept = solver_timesteps(np.cumprod(1.0 - betas), int(solver[2]), solver[1])
    else:
        kept = space_timesteps(steps, timestep_respacing or [steps])
    return SpacedDiffusion(
        use_timesteps=kept,
        betas=betas,
        model_mean_type=gd.ModelMeanType.START_X if predict_xstart else gd.ModelMeanType.EPSILON,
        model_var_type=var_type,
        loss_type=loss_type,
        rescale_timesteps=rescale_timesteps,
    )


def seed_all(seed: int) -> None:
    """Seed torch, numpy and random (DataLoader workers derive their seeds from torch's)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)

