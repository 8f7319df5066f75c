"""Generate a large batch of samples from a super resolution model, given a batch of
samples from a regular model from image_sample.py.
"""

import argparse

import torch

from guided_diffusion import dist_util, logger
from guided_diffusion.cli import ScriptParser, apply_shipped_flags, explicit_flags, run_main
from guided_diffusion.image_datasets import load_data
from guided_diffusion.sampling.samplers import (
    batches_per_process,
    prepare,
    progress_bar,
    sample_images,
    save_samples,
)
from guided_diffusion.script_util import (
    add_dict_to_argparser,
    args_to_dict,
    output_defaults,
    sr_create_model_and_diffusion,
    sr_model_and_diffusion_defaults,
)


def main() -> None:
    args = parse_args()

    dist_util.setup_dist()
    logger.configure()
    torch.manual_seed(args.seed + dist_util.get_rank())

    logger.log("creating model...")
    model, diffusion = sr_create_model_and_diffusion(
        **args_to_dict(args, sr_model_and_diffusion_defaults().keys())
    )
    prepare(model, args.model_path, args.use_fp16, what="model checkpoint")

    logger.log("loading data...")
    # Each rank takes every world_size-th base sample, in order, without augmentation.
    data = load_data(
        data_dir=args.base_samples,
        batch_size=args.batch_size,
        image_size=args.small_size,
        class_cond=args.class_cond,
        deterministic=True,
        random_flip=False,
    )

    logger.log("creating samples...")
    sample_fn = diffusion.ddim_sample_loop if args.use_ddim else diffusion.p_sample_loop
    device = dist_util.dev()
    bar = progress_bar(batches_per_process(args.num_samples, args.batch_size) * diffusion.num_timesteps, args.progress)

    def sample_batch():
        low_res, extra = next(data)
        model_kwargs = {k: v.to(device) for k, v in extra.items()}
        model_kwargs["low_res"] = low_res.to(device)
        images = sample_fn(model, (args.batch_size, 3, args.large_size, args.large_size),
                           clip_denoised=args.clip_denoised, model_kwargs=model_kwargs, device=device, progress=bar)
        return images, model_kwargs.get("y")

    with bar:
        samples = sample_images(sample_batch, args.num_samples)
    save_samples(*samples, png_dir=args.save_png)
    logger.log("sampling complete")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags of ``argv`` (default: the command line); a released upsampler's name sets its own."""
    parser = create_argparser()
    args = parser.parse_args(argv)
    apply_shipped_flags(args, explicit_flags(parser, argv), args.model_path, sr_model_and_diffusion_defaults(),
                        "superres", "--model_path")
    return args


def create_argparser() -> argparse.ArgumentParser:
    defaults = {
        "clip_denoised": True,
        "num_samples": 10000,
        "batch_size": 16,
        "use_ddim": False,
        "base_samples": "",
        "model_path": "",
        "seed": 0,
        **output_defaults(),
    }
    defaults.update(sr_model_and_diffusion_defaults())
    parser = ScriptParser(description=__doc__)
    add_dict_to_argparser(parser, defaults)
    return parser


if __name__ == "__main__":
    run_main(main)
