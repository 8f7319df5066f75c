"""Train a diffusion model on a folder of images (or an ``.npz`` of uint8 NHWC images)."""

import argparse

from guided_diffusion import dist_util, logger
from guided_diffusion.cli import ScriptParser, run_main
from guided_diffusion.image_datasets import load_data
from guided_diffusion.script_util import (
    add_dict_to_argparser,
    args_to_dict,
    create_model_and_diffusion,
    model_and_diffusion_defaults,
    seed_all,
)
from guided_diffusion.train_util import train_from_args, training_defaults


def main() -> None:
    args = create_argparser().parse_args()
    dist_util.setup_dist()
    logger.configure()
    seed_all(args.seed + dist_util.get_rank())

    logger.log("creating model and diffusion...")
    model, diffusion = create_model_and_diffusion(**args_to_dict(args, model_and_diffusion_defaults().keys()))
    model.to(dist_util.dev())

    logger.log("creating data loader...")
    data = load_data(data_dir=args.data_dir, batch_size=args.batch_size, image_size=args.image_size,
                     class_cond=args.class_cond, random_flip=args.random_flip)

    logger.log("training...")
    train_from_args(args, model, diffusion, data)


def create_argparser() -> argparse.ArgumentParser:
    defaults = training_defaults()
    defaults.update(model_and_diffusion_defaults())
    parser = ScriptParser(description=__doc__)
    add_dict_to_argparser(parser, defaults)
    return parser


if __name__ == "__main__":
    run_main(main)
