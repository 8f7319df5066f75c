"""Factories from command-line flags to models and diffusions.

Flag names and defaults are those of the released ADM code, so its README's
flags build networks whose state dicts match the official checkpoints. Added:
``channel_mult`` / ``classifier_channel_mult`` for any image size and
``num_classes`` for label sets other than ImageNet's, and ``label_dropout`` (a
null class for classifier-free guidance).
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import sys
from collections.abc import Callable

import numpy as np

from . import gaussian_diffusion as gd
from .checkpoints import CheckpointError
from .dpm_solver import solver_timesteps
from .respace import SpacedDiffusion, space_timesteps
from .unet import EncoderUNetModel, SuperResModel, UNetModel

NUM_CLASSES = 1000

# Channel multipliers of the released models, by image size.
_CHANNEL_MULT = {
    512: (0.5, 1, 1, 2, 2, 4, 4),
    256: (1, 1, 2, 2, 4, 4),
    128: (1, 1, 2, 3, 4),
    64: (1, 2, 3, 4),
}


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


def classifier_sample_defaults() -> dict:
    """Every flag of ``classifier_sample.py`` (the main job takes them all, with the same defaults)."""
    return {**dict(clip_denoised=True, num_samples=10000, batch_size=16, use_ddim=False, model_path="",
                   classifier_path="", classifier_scale=1.0, seed=0),
            **fast_sampling_defaults(), **model_and_diffusion_defaults(), **classifier_defaults()}


def classifier_and_diffusion_defaults() -> dict:
    return {**classifier_defaults(), **diffusion_defaults()}


def parse_channel_mult(channel_mult: str | tuple | list, image_size: int) -> tuple[float, ...]:
    """``"1,2,2"`` -> (1, 2, 2); empty -> the released models' multipliers for ``image_size``."""
    if isinstance(channel_mult, (tuple, list)):
        return tuple(channel_mult)
    if channel_mult:
        return tuple(float(m) if "." in m else int(m) for m in channel_mult.split(","))
    if image_size not in _CHANNEL_MULT:
        raise ValueError(
            f"no default channel_mult for image_size {image_size} (defaults exist for "
            f"{sorted(_CHANNEL_MULT)}); pass one, e.g. --channel_mult 1,2,2"
        )
    return _CHANNEL_MULT[image_size]


def parse_attention_resolutions(attention_resolutions: str, image_size: int) -> tuple[int, ...]:
    """Resolutions ("32,16,8") -> downsample rates (image_size // res)."""
    if not attention_resolutions:
        return ()
    return tuple(image_size // int(res) for res in str(attention_resolutions).split(","))


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
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def explicit_flags(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> set[str]:
    """The flags given on the command line ``argv`` (default: ``sys.argv``), not left at their defaults."""
    saved = [(action, action.default) for action in parser._actions]
    try:
        for action, _ in saved:
            action.default = argparse.SUPPRESS
        return set(vars(parser.parse_args(argv)))
    finally:
        for action, default in saved:
            action.default = default


def apply_shipped_flags(args: argparse.Namespace, explicit: set[str], name: str, keys, kind: str | None = None,
                        flag: str = "") -> None:
    """For a shipped model ``name``, set the flags among ``keys`` that were not given to its manifest's values
    (``flags``, then ``sample_flags``), so that ``--model_path digits/cadm`` alone builds the right network.
    With ``kind`` (``diffusion`` or ``classifier``), a shipped model of another kind is a ValueError naming ``flag``."""
    from .shipped import is_shipped, manifest, shipped_names

    if not is_shipped(name):
        return
    info = manifest(name)
    if kind and info.get("kind", kind) != kind:
        same = [n for n in shipped_names() if manifest(n).get("kind") == kind]
        raise ValueError(f"{flag or 'the checkpoint'} {name} is a {info['kind']} model, not a {kind} model; "
                         f"shipped {kind} models: {', '.join(same) or 'none'}")
    for key, value in {**info["flags"], **info.get("sample_flags", {})}.items():
        if key in keys and key not in explicit:
            setattr(args, key, value)


INPUT_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, CheckpointError)


def run_main(main: Callable[[], object], errors: tuple[type[BaseException], ...] = INPUT_ERRORS) -> None:
    """Run a script's ``main``; a bad input (one of ``errors``) exits with its message, not a traceback."""
    try:
        main()
    except errors as exc:
        # a bad input is the same on every rank: rank 0 alone says so (mpiexec stops the others)
        sys.exit(f"error: {exc}" if _launch_rank() == 0 else 1)


def _launch_rank() -> int:
    """This process's rank, also before the process group exists (from the launcher's environment)."""
    from . import dist_util

    if dist_util.is_distributed():
        return dist_util.get_rank()
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "RANK"):
        if var in os.environ:
            return int(os.environ[var])
    return 0


def add_dict_to_argparser(parser: argparse.ArgumentParser, default_dict: dict) -> None:
    """One ``--key`` flag per entry, typed by its default (bools parse yes/no/true/false/1/0)."""
    for k, v in default_dict.items():
        v_type = str if v is None else str2bool if isinstance(v, bool) else type(v)
        parser.add_argument(f"--{k}", default=v, type=v_type)


def args_to_dict(args: argparse.Namespace, keys) -> dict:
    return {k: getattr(args, k) for k in keys}


def str2bool(v) -> bool:
    if isinstance(v, bool):
        return v
    if v.lower() in ("yes", "true", "t", "y", "1"):
        return True
    if v.lower() in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"boolean value expected, got {v!r}")
