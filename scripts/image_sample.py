"""Sample a diffusion model and save the images as ``samples_NxHxWx3.npz`` (``arr_0``
uint8 NHWC; ``arr_1`` labels for class-conditional models), e.g. for FID evaluation.
"""

import argparse

import torch

from guided_diffusion import dist_util, logger
from guided_diffusion.cli import ScriptParser, apply_shipped_flags, explicit_flags, run_main
from guided_diffusion.sampling.samplers import (
    accelerate_for_sampling,
    batches_per_process,
    choose_sampler,
    create_for_sampling,
    prepare,
    progress_bar,
    sample_images,
    sample_loop,
    save_samples,
)
from guided_diffusion.script_util import (
    add_dict_to_argparser,
    fast_sampling_defaults,
    model_and_diffusion_defaults,
    output_defaults,
)


def main() -> None:
    args = parse_args()
    dist_util.setup_dist()
    logger.configure()
    torch.manual_seed(args.seed + dist_util.get_rank())

    logger.log("creating model and diffusion...")
    sampler = choose_sampler(args.sampler, args.use_ddim)
    model, diffusion = create_for_sampling(args, sampler)
    sample_fn = sample_loop(diffusion, sampler)
    prepare(model, args.model_path, args.use_fp16, args.use_bf16, "model checkpoint")
    model = accelerate_for_sampling(model, args.precision, args.compile, args.use_fp16 or args.use_bf16)
    device = dist_util.dev()
    bar = progress_bar(batches_per_process(args.num_samples, args.batch_size) * diffusion.num_timesteps, args.progress)

    def sample_batch():
        y = torch.randint(0, args.num_classes, (args.batch_size,), device=device) if args.class_cond else None
        images = sample_fn(model, (args.batch_size, 3, args.image_size, args.image_size),
                           clip_denoised=args.clip_denoised, model_kwargs={} if y is None else {"y": y},
                           device=device, progress=bar)
        return images, y

    logger.log("sampling...")
    with bar:
        samples = sample_images(sample_batch, args.num_samples)
    save_samples(*samples, png_dir=args.save_png)
    logger.log("sampling complete")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags of ``argv`` (default: the command line); a shipped or released checkpoint's name sets its own."""
    parser = create_argparser()
    args = parser.parse_args(argv)
    apply_shipped_flags(args, explicit_flags(parser, argv), args.model_path, model_and_diffusion_defaults(),
                        "diffusion", "--model_path")
    return args


def create_argparser() -> argparse.ArgumentParser:
    defaults = dict(clip_denoised=True, num_samples=10000, batch_size=16, use_ddim=False, model_path="", seed=0,
                    use_bf16=False, **fast_sampling_defaults(), **output_defaults())
    defaults.update(model_and_diffusion_defaults())
    parser = ScriptParser(description=__doc__)
    add_dict_to_argparser(parser, defaults)
    return parser


if __name__ == "__main__":
    run_main(main)
