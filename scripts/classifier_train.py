"""Train a noise-aware ImageNet-style classifier on noised images (for classifier guidance).

``--classifier_arch`` (default ``adm``, ADM's encoder from the ``--classifier_*`` flags) may instead name a
torchvision architecture adapted to small images (guided_diffusion.evaluation.clean_classifiers: resnet18,
densenet, squeezenet, mobilenet_v2, vgg), trained with ``--noised False`` as an evaluation-only classifier.
"""

import argparse

from guided_diffusion import dist_util, logger
from guided_diffusion.cli import ScriptParser, run_main
from guided_diffusion.evaluation.clean_classifiers import ADM, build_classifier
from guided_diffusion.image_datasets import load_data
from guided_diffusion.resample import create_named_schedule_sampler
from guided_diffusion.script_util import (
    add_dict_to_argparser,
    args_to_dict,
    classifier_and_diffusion_defaults,
    create_classifier_and_diffusion,
    create_gaussian_diffusion,
    diffusion_defaults,
    seed_all,
)
from guided_diffusion.train_util import ClassifierTrainLoop


def main() -> None:
    args = create_argparser().parse_args()

    dist_util.setup_dist()
    logger.configure()
    seed_all(args.seed + dist_util.get_rank())

    logger.log("creating model and diffusion...")
    if args.classifier_arch == ADM:
        model, diffusion = create_classifier_and_diffusion(
            **args_to_dict(args, classifier_and_diffusion_defaults().keys())
        )
    else:  # a torchvision architecture; the diffusion only noises the inputs (with --noised True)
        model = build_classifier(vars(args))
        flags = args_to_dict(args, diffusion_defaults().keys())
        diffusion = create_gaussian_diffusion(steps=flags.pop("diffusion_steps"), **flags)
    model.to(dist_util.dev())
    schedule_sampler = create_named_schedule_sampler(args.schedule_sampler, diffusion)

    logger.log("creating data loader...")
    data = load_data(
        data_dir=args.data_dir,
        batch_size=args.batch_size,
        image_size=args.image_size,
        class_cond=True,
        random_crop=args.random_crop,
        random_flip=args.random_flip,
    )
    val_data = None
    if args.val_data_dir:
        val_data = load_data(
            data_dir=args.val_data_dir,
            batch_size=args.batch_size,
            image_size=args.image_size,
            class_cond=True,
            random_flip=args.random_flip,
        )

    logger.log("training classifier model...")
    ClassifierTrainLoop(
        model=model,
        diffusion=diffusion,
        data=data,
        val_data=val_data,
        batch_size=args.batch_size,
        microbatch=args.microbatch,
        lr=args.lr,
        weight_decay=args.weight_decay,
        anneal_lr=args.anneal_lr,
        iterations=args.iterations,
        noised=args.noised,
        schedule_sampler=schedule_sampler,
        resume_checkpoint=args.resume_checkpoint,
        log_interval=args.log_interval,
        eval_interval=args.eval_interval,
        save_interval=args.save_interval,
        use_fp16=args.classifier_use_fp16,
    ).run_loop()


def create_argparser() -> argparse.ArgumentParser:
    defaults = {
        "data_dir": "",
        "val_data_dir": "",
        "noised": True,
        "iterations": 150000,
        "lr": 3e-4,
        "weight_decay": 0.0,
        "anneal_lr": False,
        "batch_size": 4,
        "microbatch": -1,
        "schedule_sampler": "uniform",
        "resume_checkpoint": "",
        "log_interval": 10,
        "eval_interval": 5,
        "save_interval": 10000,
        "seed": 0,
        "random_crop": True,
        "random_flip": True,
        "classifier_arch": ADM,
    }
    defaults.update(classifier_and_diffusion_defaults())
    parser = ScriptParser(description=__doc__)
    add_dict_to_argparser(parser, defaults)
    return parser


if __name__ == "__main__":
    run_main(main)
