"""The main job: sample with Progressive Guidance (or any guidance of the family), on any number of
processes, resumably. ``scripts/prog_classifier_sample.py`` is this module on the command line:

    mpiexec -n 8 python scripts/prog_classifier_sample.py --gamma 0.04 --classifier_scale 1.0 \\
        --classifier_path models/64x64_classifier.pt --model_path models/64x64_diffusion.pt \\
        --num_samples 50000 --batch_size 256 --timestep_respacing 250

Without --model_path it samples the shipped digits model (digits/adm) with its classifier; a shipped
model's name (digits/adm, digits/cadm, ...) or a released ADM checkpoint's file name sets every network
flag not given to the model's own. Every flag of
classifier_sample.py, plus --guidance, --gamma, --gamma_reference_steps, --relevance,
--label_set, --ls_eps, --cfg_scale, --classes, --grey_data, --save_trajectory, --grid_labels and --eta.
Sample i's label, x_T and step noise depend only on --seed and i, so any number of processes writes the
same arrays (on CPUs byte for byte when every process runs the same number of threads; else a few pixels
may differ by 1/255). Finished
batches are kept as shards in the output directory (OPENAI_LOGDIR); rerunning the same command resumes.
Output: samples_NxHxWx3.npz (arr_0 uint8 NHWC images, arr_1 labels; with --save_trajectory K also
trajectory_x0 and information_degree), samples_NxHxWx3.png (the first 64; --grid_labels True: with their
class names), with K > 0 trajectory.png, and with --save_png DIR one PNG per sample in DIR.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from .. import dist_util, logger
from ..checkpoints import require_kind
from ..cli import ScriptParser, apply_shipped_flags, explicit_flags, shown
from ..flags import add_dict_to_argparser, args_to_dict, flag_group, str2bool
from ..gaussian_diffusion import Progress, get_named_beta_schedule
from ..models import DEFAULT_MODEL
from ..progressive.plan import GUIDANCE_HELP, GUIDANCES, build_guidance, plan_guidance
from ..progressive.relevance import CLASS_DESCRIPTIONS_DIR, load_descriptions, shipped_relevance
from ..script_util import classifier_defaults, classifier_sample_defaults, create_classifier, output_defaults
from .batch import sample_batch
from .figures import image_grid, trajectory_figure, write_pngs
from .grey import GreyData
from .precision import check_precision
from .samplers import (
    accelerate_for_sampling,
    choose_sampler,
    create_for_sampling,
    diffusion_for_sampling,
    prepare,
    progress_bar,
)
from .seeding import SampleNoise, parse_classes, sample_labels
from .shards import ShardedRun, StreamedArray, write_npz

LABEL_SETS = {1000: "imagenet1k", 10: "digits"}  # the default label set by classifier size
GRID_IMAGES = 64
OUTPUT_ONLY = (*output_defaults(), "grid_labels")  # flags that change no sample: a resumed run may change them
DEFAULTS_NOTE = f"""
A default written '{DEFAULT_MODEL}: V, else W' is V when --model_path is not given (the shipped model
{DEFAULT_MODEL} and its classifier set it; any shipped --model_path sets the flags not given to its
manifest's values) and W, ADM's default, with a checkpoint of yours.
"""


def create_argparser() -> argparse.ArgumentParser:
    """The main job's flags and their defaults (the only place they are written)."""
    parser = ScriptParser(description=__doc__ + DEFAULTS_NOTE, default_notes=shipped_default_notes)
    add_dict_to_argparser(parser, classifier_sample_defaults())
    guidance = flag_group(parser, "guidance")
    guidance.add_argument("--guidance", choices=GUIDANCES, default="prog",
                          help="; ".join(f"{k}: {v}" for k, v in GUIDANCE_HELP.items()))
    guidance.add_argument("--gamma", type=float, default=0.04, metavar="FLOAT", help="ProG's schedule rate (Eq. 5)")
    guidance.add_argument("--gamma_reference_steps", type=int, default=250, metavar="INT",
                          help="read --gamma as the rate for this many steps (the paper's 250), converted to the "
                               "actual step count; 0: per actual step")
    guidance.add_argument("--relevance", default="", metavar="NPZ",
                          help=".npz whose key 'relevance' is a classes x classes matrix; empty: the shipped matrix "
                               "of --label_set")
    guidance.add_argument("--label_set", default="", choices=("", "imagenet1k", "cifar10", "digits", "fashion"),
                          help="class names and shipped relevance matrix; empty: imagenet1k for 1000 classes, "
                               "digits for 10")
    guidance.add_argument("--ls_eps", type=float, default=0.1, metavar="FLOAT",
                          help="label smoothing: the mass off the condition")
    guidance.add_argument("--cfg_scale", type=float, default=1.0, metavar="FLOAT",
                          help="w of classifier-free guidance")
    sampling = flag_group(parser, "sampling")
    sampling.add_argument("--classes", default="random", metavar="STR",
                          help="random (uniform per sample), balanced (sample i is class i mod C) or a list: 3,207")
    sampling.add_argument("--eta", type=float, default=0.0, metavar="FLOAT", help="DDIM's eta (with --sampler ddim)")
    sampling.add_argument("--grey_data", type=str2bool, default=False, metavar="BOOL",
                          help="the model's data are grey (R = G = B): use the exact colour of the noise in place of "
                               "the model's prediction of it (guided_diffusion.sampling.grey)")
    output = flag_group(parser, "output")
    output.add_argument("--save_trajectory", type=int, default=0, metavar="INT",
                        help="keep the predicted x_0 and the information degree at every step of the first K samples")
    output.add_argument("--grid_labels", type=str2bool, default=False, metavar="BOOL",
                        help="write each sample's class name under it in samples_NxHxWx3.png")
    return parser


def shipped_default_notes() -> dict[str, str]:
    """For --help: the default of each flag that the default model's manifests set (what :func:`job_args` gives
    without flags), as '<model>: V, else W' (W: the parser's own default)."""
    plain, shipped = vars(create_argparser().parse_args([])), vars(job_args([]))
    notes = {k: f"{DEFAULT_MODEL}: {shown(v)}, else {shown(plain[k])}" for k, v in shipped.items() if v != plain[k]}
    return {**notes, "model_path": DEFAULT_MODEL}


def job_args(argv: Sequence[str] | None = None, model_manifest: dict | None = None, **flags) -> argparse.Namespace:
    """The job's flags from ``argv`` (default: the command line) and ``flags`` (as if given there), with
    --model_path defaulting to the shipped digits model and a shipped model's flags filling the others.
    ``model_manifest`` stands in for the shipped manifest of --model_path (a model not yet shipped)."""
    parser = create_argparser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    explicit = explicit_flags(parser, argv)
    for key, value in flags.items():
        if not hasattr(args, key):
            raise ValueError(f"the main job has no flag --{key}")
        setattr(args, key, value)
        explicit.add(key)
    args.model_path = args.model_path or DEFAULT_MODEL
    # its flags, and its sampling defaults
    apply_shipped_flags(args, explicit, args.model_path, vars(args), "diffusion", "--model_path", model_manifest)
    apply_shipped_flags(args, explicit, args.classifier_path, classifier_defaults(), "classifier",
                        "--classifier_path")
    return args


class MainJob:
    """The job of one set of flags: checked and planned on construction (before anything is loaded),
    networks loaded by :meth:`load`, then batches sampled by index."""

    def __init__(self, args: argparse.Namespace, *, relevance: np.ndarray | None = None,
                 device: torch.device | None = None, model: nn.Module | None = None,
                 classifier: nn.Module | None = None):
        """``relevance`` replaces the matrix of --relevance / --label_set; ``device`` (default: this rank's)
        is where batches are sampled; ``model`` and ``classifier``, if given, are used as they are (float32
        on ``device``; copied when --precision casts them) instead of the checkpoints' networks."""
        self.args = args
        self.device = device or dist_util.dev()
        self.given = (model, classifier)
        # Everything that can be wrong with the flags is found before anything is loaded or sampled, the counts
        # first (the checks of other flags compare with them).
        for flag in ("num_samples", "batch_size"):
            if getattr(args, flag) < 1:
                raise ValueError(f"--{flag} must be at least 1, got {getattr(args, flag)}")
        require_kind(args.model_path, "diffusion", "--model_path")
        self.sampler = choose_sampler(args.sampler, args.use_ddim)
        if model is None:
            self.model, self.diffusion = create_for_sampling(args, self.sampler)
        else:
            self.model, self.diffusion = model, diffusion_for_sampling(args, self.sampler)
        label_set = args.label_set or LABEL_SETS.get(args.num_classes, "")
        self.class_names = class_names(label_set, args.num_classes)
        if relevance is None:
            relevance = args.relevance or (str(shipped_relevance(label_set)) if label_set else "")
        self.plan = plan_guidance(args.guidance, args.num_classes, self.diffusion.num_timesteps, args.gamma,
                                  args.gamma_reference_steps or None, relevance, args.ls_eps)
        if self.plan.needs_classifier:
            require_kind(args.classifier_path, "classifier", "--classifier_path")
        check_precision(args.precision, self.device, args.use_fp16 or args.classifier_use_fp16)
        self.classes = parse_classes(args.classes, args.num_classes)
        if not 0 <= args.save_trajectory <= args.num_samples:
            raise ValueError(f"--save_trajectory {args.save_trajectory} must be in [0, --num_samples "
                             f"{args.num_samples}]")
        if self.plan.name == "cfg" and (not args.class_cond or args.label_dropout <= 0):
            raise ValueError("--guidance cfg needs a class-conditional model trained with label dropout: pass "
                             "--class_cond True --label_dropout P as in its training (image_train.py --label_dropout)")
        self.classifier = self.denoiser = self.cond_fn = None

    def load(self) -> MainJob:
        """Load the checkpoints of the networks not given, set precision, and build the guidance."""
        args = self.args
        model, classifier = self.given
        if model is None:
            model = prepare(self.model, args.model_path, args.use_fp16, what="model checkpoint")
        elif args.precision != "fp32":
            model = copy.deepcopy(model)
        model = accelerate_for_sampling(model, args.precision, args.compile, args.use_fp16)
        if self.plan.needs_classifier:
            if classifier is None:
                classifier = create_classifier(**args_to_dict(args, classifier_defaults().keys()))
                prepare(classifier, args.classifier_path, args.classifier_use_fp16, what="classifier checkpoint")
            elif args.precision != "fp32":
                classifier = copy.deepcopy(classifier)
            classifier = accelerate_for_sampling(classifier, args.precision, args.compile, args.classifier_use_fp16)
        scale = args.cfg_scale if self.plan.name == "cfg" else args.classifier_scale
        self.model, self.classifier = model, classifier
        if args.grey_data:
            alphas_cumprod = np.cumprod(1.0 - get_named_beta_schedule(args.noise_schedule, args.diffusion_steps))
            model = GreyData(model, alphas_cumprod, 1000.0 / args.diffusion_steps if args.rescale_timesteps else 1.0)
        self.denoiser, self.cond_fn = build_guidance(self.plan, model, classifier, scale, args.class_cond)
        return self

    def batch(self, indices: range, trajectory: int = 0, progress: Progress | None = None) -> dict[str, np.ndarray]:
        """Samples ``indices`` as one batch (:func:`~guided_diffusion.sampling.batch.sample_batch`'s arrays);
        ``trajectory``: how many of them keep their trajectory; ``progress``: a bar each step advances by one."""
        args = self.args
        shape = (3, args.image_size, args.image_size)
        return sample_batch(self.diffusion, self.denoiser, self.cond_fn, self.plan,
                            sample_labels(self.classes, args.seed, indices, args.num_classes),
                            SampleNoise(args.seed, indices, shape, self.device), sampler=self.sampler,
                            eta=args.eta, clip_denoised=args.clip_denoised, trajectory=trajectory, progress=progress)

    def sample(self, indices: range | None = None, trajectory: int = 0) -> dict[str, np.ndarray]:
        """Samples ``indices`` (default: all --num_samples) in memory, in batches of --batch_size; the first
        ``trajectory`` of them keep their trajectory."""
        indices = range(self.args.num_samples) if indices is None else indices
        parts = []
        for start in range(indices.start, indices.stop, self.args.batch_size):
            batch = range(start, min(start + self.args.batch_size, indices.stop))
            parts.append(self.batch(batch, max(0, min(indices.start + trajectory, batch.stop) - batch.start)))
        out = {k: np.concatenate([p[k] for p in parts]) for k in ("images", "labels")}
        if trajectory:
            for key in ("trajectory_x0", "information_degree"):
                out[key] = np.concatenate([p[key] for p in parts if key in p], axis=1)
        return out


def run_job(args: argparse.Namespace) -> None:
    """The job on every rank: batches not yet on disk sampled into shards of the output directory
    (OPENAI_LOGDIR), then merged by rank 0 into ``samples_NxHxWx3.npz`` and its PNG grid."""
    dist_util.setup_dist()
    logger.configure()
    rank, world = dist_util.get_rank(), dist_util.get_world_size()
    job = MainJob(args)
    run = ShardedRun(logger.get_dir(), args.num_samples, args.batch_size)
    sampled = {k: v for k, v in vars(args).items() if k not in OUTPUT_ONLY}  # what a resumed run must share
    defaults = vars(create_argparser().parse_args([]))
    dist_util.on_rank0(lambda: (run.check_args(sampled, defaults), run.discard_damaged(logger.log)))
    job.load()

    pending = run.pending(rank, world)
    logger.log(f"{job.sampler} sampler, {args.precision}; {args.guidance} guidance, gamma per step "
               f"{job.plan.gamma:.6g}; rank {rank}: {len(pending)} of {run.num_batches} batches to sample "
               f"({run.done_samples()} samples already on disk); {torch.get_num_threads()} CPU thread(s) per process")
    with progress_bar(len(pending) * job.diffusion.num_timesteps, args.progress) as bar:
        for batch in pending:
            start, stop = run.bounds(batch)
            run.write(batch, job.batch(range(start, stop), max(0, min(args.save_trajectory, stop) - start), bar))
    dist_util.barrier()
    if rank == 0:
        merge(run, args, job.class_names)
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
                            for j in range(-(-min(n, GRID_IMAGES) // args.batch_size))])[:GRID_IMAGES]
    scale = max(1, 64 // size)  # small images are enlarged (nearest) to be seen
    captions = [names[y] for y in labels[:len(first)]] if args.grid_labels else None
    grid = image_grid(first.repeat(scale, axis=1).repeat(scale, axis=2), 8, captions=captions)
    Image.fromarray(grid).save(f"{stem}.png")
    if args.save_png:
        for j in range(run.num_batches):
            write_pngs(args.save_png, run.read(j, "images")["images"], labels[slice(*run.bounds(j))], names,
                       start=run.bounds(j)[0])
        logger.log(f"saved {n} PNGs in {args.save_png}")
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
