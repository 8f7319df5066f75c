"""Sample with Progressive Guidance (or any guidance of the family), on any number of processes, resumably.

    mpiexec -n 8 python scripts/prog_classifier_sample.py --gamma 0.04 $MODEL_FLAGS --classifier_scale 1.0 \\
        --classifier_path 64x64_classifier.pt --model_path 64x64_diffusion.pt \\
        --num_samples 50000 --batch_size 256 --timestep_respacing 250

Without --model_path it samples the shipped digits model (digits/adm) with its classifier; a shipped
model's name (digits/adm, digits/cadm, ...) sets every flag not given to the model's own. Every flag of
classifier_sample.py, plus --guidance, --gamma, --gamma_reference_steps, --relevance,
--label_set, --ls_eps, --cfg_scale, --classes, --save_trajectory and --eta. Sample i's label, x_T and
step noise depend only on --seed and i, so any number of processes writes the same arrays (on CPUs byte for
byte when every process runs the same number of threads; else a few pixels may differ by 1/255). Finished
batches are kept as shards in the output directory (OPENAI_LOGDIR); rerunning the same command resumes.
Output: samples_NxHxWx3.npz (arr_0 uint8 NHWC images, arr_1 labels; with --save_trajectory K also
trajectory_x0 and information_degree), samples_NxHxWx3.png and, with K > 0, trajectory.png.
"""

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from guided_diffusion import dist_util, logger
from guided_diffusion.checkpoints import require_kind
from guided_diffusion.figures import trajectory_figure
from guided_diffusion.guided_sampling import GUIDANCE_HELP, GUIDANCES, build_guidance, plan_guidance, sample_batch
from guided_diffusion.image_grid import image_grid
from guided_diffusion.precision import check_precision
from guided_diffusion.relevance import CLASS_DESCRIPTIONS_DIR, load_descriptions, shipped_relevance
from guided_diffusion.sampling import accelerate_for_sampling, choose_sampler, create_for_sampling, prepare
from guided_diffusion.script_util import (
    add_dict_to_argparser,
    apply_shipped_flags,
    args_to_dict,
    classifier_defaults,
    classifier_sample_defaults,
    create_classifier,
    explicit_flags,
    run_main,
)
from guided_diffusion.seeding import SampleNoise, parse_classes, sample_labels
from guided_diffusion.shards import ShardedRun, StreamedArray, write_npz
from guided_diffusion.shipped import DEFAULT_MODEL

LABEL_SETS = {1000: "imagenet1k", 10: "digits"}  # the default label set by classifier size
GRID_IMAGES = 64


def main() -> None:
    parser = create_argparser()
    args = parser.parse_args()
    explicit = explicit_flags(parser)
    args.model_path = args.model_path or DEFAULT_MODEL
    # its flags, and its sampling defaults
    apply_shipped_flags(args, explicit, args.model_path, vars(args), "diffusion", "--model_path")
    apply_shipped_flags(args, explicit, args.classifier_path, classifier_defaults(), "classifier",
                        "--classifier_path")
    dist_util.setup_dist()
    logger.configure()
    rank, world = dist_util.get_rank(), dist_util.get_world_size()

    # Everything that can be wrong with the flags is found before anything is loaded or sampled.
    require_kind(args.model_path, "diffusion", "--model_path")
    sampler = choose_sampler(args.sampler, args.use_ddim)
    model, diffusion = create_for_sampling(args, sampler)
    label_set = args.label_set or LABEL_SETS.get(args.num_classes, "")
    names = class_names(label_set, args.num_classes)
    relevance = args.relevance or (str(shipped_relevance(label_set)) if label_set else "")
    plan = plan_guidance(args.guidance, args.num_classes, diffusion.num_timesteps, args.gamma,
                         args.gamma_reference_steps or None, relevance, args.ls_eps)
    if plan.needs_classifier:
        require_kind(args.classifier_path, "classifier", "--classifier_path")
    check_precision(args.precision, dist_util.dev(), args.use_fp16 or args.classifier_use_fp16)
    classes = parse_classes(args.classes, args.num_classes)
    if not 0 <= args.save_trajectory <= args.num_samples:
        raise ValueError(f"--save_trajectory {args.save_trajectory} must be in [0, --num_samples {args.num_samples}]")
    if plan.name == "cfg" and (not args.class_cond or args.label_dropout <= 0):
        raise ValueError("--guidance cfg needs a class-conditional model trained with label dropout: pass "
                         "--class_cond True --label_dropout P as in its training (image_train.py --label_dropout)")
    run = ShardedRun(logger.get_dir(), args.num_samples, args.batch_size)
    dist_util.on_rank0(lambda: (run.check_args(vars(args)), run.discard_damaged(logger.log)))

    prepare(model, args.model_path, args.use_fp16, what="model checkpoint")
    model = accelerate_for_sampling(model, args.precision, args.compile, args.use_fp16)
    classifier = None
    if plan.needs_classifier:
        classifier = create_classifier(**args_to_dict(args, classifier_defaults().keys()))
        prepare(classifier, args.classifier_path, args.classifier_use_fp16, what="classifier checkpoint")
        classifier = accelerate_for_sampling(classifier, args.precision, args.compile, args.classifier_use_fp16)
    scale = args.cfg_scale if plan.name == "cfg" else args.classifier_scale
    denoiser, cond_fn = build_guidance(plan, model, classifier, scale, args.class_cond)

    pending = run.pending(rank, world)
    logger.log(f"{sampler} sampler, {args.precision}; {args.guidance} guidance, gamma per step {plan.gamma:.6g}; "
               f"rank {rank}: {len(pending)} of {run.num_batches} batches to sample ({run.done_samples()} samples "
               f"already on disk); {torch.get_num_threads()} CPU thread(s) per process")
    device = dist_util.dev()
    shape = (3, args.image_size, args.image_size)
    with tqdm(total=args.num_samples, initial=run.done_samples(), unit="sample", disable=rank != 0) as bar:
        for batch in pending:
            start, stop = run.bounds(batch)
            indices = range(start, stop)
            out = sample_batch(diffusion, denoiser, cond_fn, plan,
                               sample_labels(classes, args.seed, indices, args.num_classes),
                               SampleNoise(args.seed, indices, shape, device), sampler=sampler, eta=args.eta,
                               clip_denoised=args.clip_denoised,
                               trajectory=max(0, min(args.save_trajectory, stop) - start))
            run.write(batch, out)
            bar.update(run.done_samples() - bar.n)
    dist_util.barrier()
    if rank == 0:
        merge(run, args, names)
    dist_util.barrier()
    logger.log("sampling complete")


def merge(run: ShardedRun, args: argparse.Namespace, names: list[str]) -> None:
    """Rank 0: the shards in batch order as samples_NxHxWx3.npz, with a PNG grid (and trajectory figure)."""
    missing = run.missing()
    if missing:
        raise ValueError(f"batches {missing[:10]} are missing from {run.shard_dir}; rerun the same command")
    size, n = args.image_size, args.num_samples
    labels = np.concatenate([run.read(j, "labels")["labels"] for j in range(run.num_batches)])
    arrays = {"arr_0": StreamedArray((n, size, size, 3), np.uint8,
                                     (run.read(j, "images")["images"] for j in range(run.num_batches))),
              "arr_1": labels}
    if args.save_trajectory:
        parts = [run.read(j, "trajectory_x0", "information_degree") for j in range(run.num_batches)
                 if run.bounds(j)[0] < args.save_trajectory]
        arrays["trajectory_x0"] = np.concatenate([p["trajectory_x0"] for p in parts], axis=1)
        arrays["information_degree"] = np.concatenate([p["information_degree"] for p in parts], axis=1)
    stem = Path(run.dir) / f"samples_{n}x{size}x{size}x3"
    write_npz(f"{stem}.npz", arrays)
    logger.log(f"saved {stem}.npz")
    first = np.concatenate([run.read(j, "images")["images"]
                            for j in range(-(-min(n, GRID_IMAGES) // args.batch_size))])
    scale = max(1, 64 // size)  # small images are enlarged (nearest) to be seen
    grid = image_grid(first[:GRID_IMAGES].repeat(scale, axis=1).repeat(scale, axis=2), 8)
    Image.fromarray(grid).save(f"{stem}.png")
    if args.save_trajectory:
        trajectory_figure(arrays["trajectory_x0"], arrays["information_degree"], labels[:args.save_trajectory],
                          names, run.dir / "trajectory.png")


def class_names(label_set: str, num_classes: int) -> list[str]:
    """The label set's class names, or the indices as names without one."""
    if not label_set:
        return [str(i) for i in range(num_classes)]
    names = [e["name"] for e in load_descriptions(CLASS_DESCRIPTIONS_DIR / f"{label_set}.json")]
    if len(names) != num_classes:
        raise ValueError(f"--label_set {label_set} has {len(names)} classes but the classifier has {num_classes}")
    return names


def create_argparser() -> argparse.ArgumentParser:
    defaults = classifier_sample_defaults()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dict_to_argparser(parser, defaults)
    parser.add_argument("--guidance", choices=GUIDANCES, default="prog",
                        help="; ".join(f"{k}: {v}" for k, v in GUIDANCE_HELP.items()))
    parser.add_argument("--gamma", type=float, default=0.04, help="ProG's schedule rate (Eq. 5)")
    parser.add_argument("--gamma_reference_steps", type=int, default=250,
                        help="read --gamma as the rate for this many steps (the paper's 250), converted to the actual "
                             "step count; 0: per actual step")
    parser.add_argument("--relevance", default="", help=".npz whose key 'relevance' is a classes x classes matrix "
                        "(default: the shipped matrix of --label_set)")
    parser.add_argument("--label_set", default="", choices=("", "imagenet1k", "cifar10", "digits"),
                        help="class names and shipped relevance matrix (default: imagenet1k for 1000 classes, "
                             "digits for 10)")
    parser.add_argument("--ls_eps", type=float, default=0.1, help="label smoothing: the mass off the condition")
    parser.add_argument("--cfg_scale", type=float, default=1.0, help="w of classifier-free guidance")
    parser.add_argument("--classes", default="random",
                        help="random (uniform per sample), balanced (sample i is class i mod C) or a list: 3,207")
    parser.add_argument("--save_trajectory", type=int, default=0,
                        help="keep the predicted x_0 and the information degree at every step of the first K samples")
    parser.add_argument("--eta", type=float, default=0.0, help="DDIM's eta (with --sampler ddim)")
    return parser


if __name__ == "__main__":
    run_main(main)
