"""Train the label-free feature network: a convolutional autoencoder on the training images, no labels
(guided_diffusion.evaluation.autoencoder). Checkpoints model{step}.pt and opt{step}.pt go to $OPENAI_LOGDIR;
--resume_checkpoint continues from one.

    OPENAI_LOGDIR=runs/ae python scripts/autoencoder_train.py --data_dir data/fashion/train.npz --iterations 3000
"""

import argparse

from guided_diffusion import logger
from guided_diffusion.cli import ScriptParser, run_main
from guided_diffusion.evaluation.autoencoder import DEFAULTS, TRAINING, build, train
from guided_diffusion.flags import add_dict_to_argparser
from guided_diffusion.image_datasets import load_data
from guided_diffusion.script_util import seed_all


def main() -> None:
    args = create_argparser().parse_args()
    logger.configure()
    seed_all(args.seed)
    data = load_data(data_dir=args.data_dir, batch_size=args.batch_size, image_size=args.image_size,
                     class_cond=False, random_flip=False)
    train(build(vars(args)), data, args)


def create_argparser() -> argparse.ArgumentParser:
    parser = ScriptParser(description=__doc__)
    add_dict_to_argparser(parser, {"data_dir": "", "resume_checkpoint": "", **TRAINING,
                                   "image_size": DEFAULTS["image_size"]})
    network = parser.add_argument_group("autoencoder", "the network: must match its checkpoint")
    network.add_argument("--autoencoder_channels", type=int, default=DEFAULTS["autoencoder_channels"],
                         help="channels of the first convolution (twice as many after each downsampling)")
    network.add_argument("--code_size", type=int, default=DEFAULTS["code_size"],
                         help="size of the code: the features of FID, precision and recall")
    return parser


if __name__ == "__main__":
    run_main(main)
