"""Sample with classifier guidance (Dhariwal & Nichol 2021): the reverse-process
mean (DDPM) or the score (DDIM) is shifted by ``classifier_scale * grad log p(y | x_t)``
from a noise-aware classifier. Classes are drawn uniformly at random.
"""

import argparse

import torch

from guided_diffusion import dist_util, logger
from guided_diffusion.checkpoints import require_kind
from guided_diffusion.cli import ScriptParser, apply_shipped_flags, explicit_flags, run_main
from guided_diffusion.progressive.guidance import ClassifierGuidance
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
    args_to_dict,
    classifier_defaults,
    classifier_sample_defaults,
    create_classifier,
    model_and_diffusion_defaults,
)


def main() -> None:
    args = parse_args()
    dist_util.setup_dist()
    logger.configure()
    torch.manual_seed(args.seed + dist_util.get_rank())

    require_kind(args.model_path, "diffusion", "--model_path")
    require_kind(args.classifier_path, "classifier", "--classifier_path")
    logger.log("creating model and diffusion...")
    sampler = choose_sampler(args.sampler, args.use_ddim)
    model, diffusion = create_for_sampling(args, sampler)
    sample_fn = sample_loop(diffusion, sampler)
    prepare(model, args.model_path, args.use_fp16, what="model checkpoint")
    model = accelerate_for_sampling(model, args.precision, args.compile, args.use_fp16)
    logger.log("loading classifier...")
    classifier = create_classifier(**args_to_dict(args, classifier_defaults().keys()))
    prepare(classifier, args.classifier_path, args.classifier_use_fp16, what="classifier checkpoint")
    classifier = accelerate_for_sampling(classifier, args.precision, args.compile, args.classifier_use_fp16)
    cond_fn = ClassifierGuidance(classifier, args.classifier_scale)

    def model_fn(x, t, y=None):
        return model(x, t, y if args.class_cond else None)

    device = dist_util.dev()
    bar = progress_bar(batches_per_process(args.num_samples, args.batch_size) * diffusion.num_timesteps, args.progress)

    def sample_batch():
        y = torch.randint(0, args.num_classes, (args.batch_size,), device=device)
        images = sample_fn(model_fn, (args.batch_size, 3, args.image_size, args.image_size),
                           clip_denoised=args.clip_denoised, model_kwargs={"y": y}, cond_fn=cond_fn, device=device,
                           progress=bar)
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
    explicit = explicit_flags(parser, argv)
    apply_shipped_flags(args, explicit, args.model_path, model_and_diffusion_defaults(), "diffusion",
                        "--model_path")
    apply_shipped_flags(args, explicit, args.classifier_path, classifier_defaults(), "classifier",
                        "--classifier_path")
    return args


def create_argparser() -> argparse.ArgumentParser:
    defaults = classifier_sample_defaults()
    parser = ScriptParser(description=__doc__)
    add_dict_to_argparser(parser, defaults)
    return parser


if __name__ == "__main__":
    run_main(main)
