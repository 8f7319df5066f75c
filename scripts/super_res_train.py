"""Train a super-resolution model: it learns large_size images conditioned on their
area-downsampled small_size versions.
"""

import argparse

from guided_diffusion import dist_util, logger
from guided_diffusion.cli import ScriptParser, run_main
from guided_diffusion.image_datasets import load_superres_data
from guided_diffusion.script_util import (
    add_dict_to_argparser,
    args_to_dict,
    seed_all,
    sr_create_model_and_diffusion,
    sr_model_and_diffusion_defaults,
)
from guided_diffusion.train_util import train_from_args, training_defaults


def main() -> None:
    args = create_argparser().parse_args()
    dist_util.setup_dist()
    logger.configure()
    seed_all(args.seed + dist_util.get_rank())

    logger.log("creating model...")
    model, diffusion = sr_create_model_and_diffusion(**args_to_dict(args, sr_model_and_diffusion_defaults().keys()))
    model.to(dist_util.dev())

    logger.log("creating data loader...")
    data = load_superres_data(args.data_dir, args.batch_size, large_size=args.large_size,
                              small_size=args.small_size, class_cond=args.class_cond, random_flip=args.random_flip)

    logger.log("training...")
    train_from_args(args, model, diffusion, data)


def create_argparser() -> argparse.ArgumentParser:
    defaults = training_defaults()
    defaults.update(sr_model_and_diffusion_defaults())
    parser = ScriptParser(description=__doc__)
    add_dict_to_argparser(parser, defaults)
    return parser


if __name__ == "__main__":
    run_main(main)
