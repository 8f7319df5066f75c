"""Command-line flags: parsing values and dictionaries of defaults into argparse, with no other
dependency, so that both the factories (``script_util``) and the checkpoint loader can use them.
:data:`FLAG_HELP` is the one table of ADM's flags (and the sampling scripts'): each flag's group, help text
and choices, which :func:`add_dict_to_argparser` gives every flag it adds."""

from __future__ import annotations

import argparse
from typing import NamedTuple

# Channel multipliers of the released models, by image size.
_CHANNEL_MULT = {
    512: (0.5, 1, 1, 2, 2, 4, 4),
    256: (1, 1, 2, 2, 4, 4),
    128: (1, 1, 2, 3, 4),
    64: (1, 2, 3, 4),
}


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


SAMPLERS = ("ddpm", "ddim", "dpmpp_2m", "dpmpp_2m_sde")
SAMPLER_HELP = ("ddpm: ancestral sampling (ADM's default); ddim: DDIM (--eta); dpmpp_2m: DPM-Solver++(2M), "
                "deterministic, for 10-25 steps; dpmpp_2m_sde: its stochastic (SDE) variant; --timestep_respacing N "
                "is every sampler's step count (for the DPM-Solver++ samplers evenly spaced from T - T/N; logsnrN: "
                "evenly in log-SNR)")

# Groups in the order --help lists them, with their descriptions.
FLAG_GROUPS = {
    "guidance": "how each sample is steered toward its label",
    "sampling": "the sampler, its steps and the samples drawn",
    "output": "what is written and shown besides the samples' .npz",
    "training": "the optimisation, its data and its checkpoints",
    "model": "the diffusion model's network: must match its checkpoint",
    "classifier": "the noise-aware classifier's network: must match its checkpoint",
    "diffusion": "the noise process the networks were trained with",
}


class FlagHelp(NamedTuple):
    """A flag's group (None: the run's, ``sampling`` or ``training``), help text and choices; ``positive``:
    an integer that must be at least 1; ``metavar``: what its value is (default: its type)."""

    group: str | None
    help: str
    choices: tuple[str, ...] | None = None
    positive: bool = False
    metavar: str | None = None


FLAG_HELP: dict[str, FlagHelp] = {
    # the diffusion model's network
    "model_path": FlagHelp("model", "diffusion checkpoint (.pt), or a shipped model's name (digits/adm, digits/cadm) "
                                    "or a released ADM checkpoint's (adm/64x64_diffusion, or its file): the name sets "
                                    "the flags not given", metavar="PATH"),
    "image_size": FlagHelp("model", "image height and width in pixels"),
    "num_channels": FlagHelp("model", "the U-Net's base channel count"),
    "num_res_blocks": FlagHelp("model", "residual blocks per resolution"),
    "num_heads": FlagHelp("model", "attention heads (when --num_head_channels is -1)"),
    "num_heads_upsample": FlagHelp("model", "attention heads of the upsampling path; -1: --num_heads"),
    "num_head_channels": FlagHelp("model", "channels per attention head; -1: --num_heads heads"),
    "attention_resolutions": FlagHelp("model", "resolutions with self-attention, comma-separated (32,16,8)"),
    "channel_mult": FlagHelp("model", "channel multiplier per resolution, comma-separated (1,2,2); empty: the "
                                      "released models' for --image_size"),
    "dropout": FlagHelp("model", "dropout rate"),
    "class_cond": FlagHelp("model", "a class-conditional model (it takes the labels)"),
    "use_checkpoint": FlagHelp("model", "gradient checkpointing: less memory, slower"),
    "use_scale_shift_norm": FlagHelp("model", "condition the norms on the timestep by scale and shift"),
    "resblock_updown": FlagHelp("model", "resample with residual blocks"),
    "use_fp16": FlagHelp("model", "float16 weights for the network's torso (ADM's mixed precision, CUDA)"),
    "use_bf16": FlagHelp("model", "bfloat16 weights for the network's torso"),
    "use_new_attention_order": FlagHelp("model", "split q, k, v before the heads"),
    "num_classes": FlagHelp("model", "classes of the labels (1000: ImageNet)"),
    "label_dropout": FlagHelp("model", "share of labels replaced by a null class in training (classifier-free "
                                       "guidance); must match the checkpoint"),
    "large_size": FlagHelp("model", "the super-resolution model's output size"),
    "small_size": FlagHelp("model", "the super-resolution model's input size"),
    # the noise process
    "learn_sigma": FlagHelp("diffusion", "the model also predicts the variance (6 output channels)"),
    "diffusion_steps": FlagHelp("diffusion", "T, the steps of the training noise process"),
    "noise_schedule": FlagHelp("diffusion", "the beta schedule", ("linear", "cosine")),
    "use_kl": FlagHelp("diffusion", "train on the variational bound instead of the noise MSE"),
    "predict_xstart": FlagHelp("diffusion", "the model predicts x_0 instead of the noise"),
    "rescale_timesteps": FlagHelp("diffusion", "the model sees t scaled to [0, 1000)"),
    "rescale_learned_sigmas": FlagHelp("diffusion", "rescale the variance's loss term (with --learn_sigma)"),
    # the classifier's network
    "classifier_path": FlagHelp("classifier", "noise-aware classifier checkpoint (.pt), or a shipped or released "
                                              "classifier's name (digits/classifier, adm/64x64_classifier)",
                                metavar="PATH"),
    "classifier_use_fp16": FlagHelp("classifier", "float16 weights for the classifier's torso (CUDA)"),
    "classifier_width": FlagHelp("classifier", "the classifier's base channel count"),
    "classifier_depth": FlagHelp("classifier", "residual blocks per resolution"),
    "classifier_attention_resolutions": FlagHelp("classifier", "resolutions with self-attention, comma-separated"),
    "classifier_use_scale_shift_norm": FlagHelp("classifier", "condition the norms on the timestep by scale and "
                                                              "shift"),
    "classifier_resblock_updown": FlagHelp("classifier", "resample with residual blocks"),
    "classifier_pool": FlagHelp("classifier", "how the features are pooled into logits",
                                ("adaptive", "attention", "spatial", "spatial_v2")),
    "classifier_channel_mult": FlagHelp("classifier", "channel multiplier per resolution; empty: the released "
                                                      "models' for --image_size"),
    "classifier_arch": FlagHelp("classifier", "adm (the encoder of the --classifier_* flags) or a torchvision "
                                              "architecture (resnet18, densenet, squeezenet, mobilenet_v2, vgg)"),
    # guidance
    "classifier_scale": FlagHelp("guidance", "scale of the classifier's gradient"),
    # sampling (batch_size and seed: the run's, sampling's or training's)
    "sampler": FlagHelp("sampling", SAMPLER_HELP, SAMPLERS),
    "timestep_respacing": FlagHelp("sampling", "the steps to sample: N (evenly spaced), ddimN, or counts per "
                                               "section (10,15,20); empty: all --diffusion_steps"),
    "num_samples": FlagHelp("sampling", "samples in all, over every process", positive=True),
    "batch_size": FlagHelp(None, "images per batch on each process", positive=True),
    "seed": FlagHelp(None, "random seed"),
    "use_ddim": FlagHelp("sampling", "sample with DDIM (ADM's flag; where there is --sampler, --sampler ddim)"),
    "clip_denoised": FlagHelp("sampling", "clip each step's predicted x_0 to [-1, 1]"),
    "precision": FlagHelp("sampling", "autocast precision of the networks: bf16 on CPUs or GPUs, fp16 on CUDA",
                          ("fp32", "fp16", "bf16")),
    "compile": FlagHelp("sampling", "torch.compile the networks (slow to start, faster per step)"),
    "base_samples": FlagHelp("sampling", "the .npz of small images to upsample (image_sample.py's output)",
                             metavar="NPZ"),
    # output
    "progress": FlagHelp("output", "a progress bar of sampling steps, on a terminal"),
    "save_png": FlagHelp("output", "also write each sample as a PNG into this folder, named "
                                   "INDEX_labelLABEL_NAME.png (000012_label3_three.png); empty: none",
                         metavar="DIR"),
    # training
    "data_dir": FlagHelp("training", "training images: a folder (class from the file name's prefix) or an .npz",
                         metavar="PATH"),
    "val_data_dir": FlagHelp("training", "validation images, as --data_dir; empty: none", metavar="PATH"),
    "schedule_sampler": FlagHelp("training", "how timesteps are drawn: uniform, uniform_below_N or "
                                             "loss-second-moment"),
    "lr": FlagHelp("training", "learning rate (AdamW)"),
    "weight_decay": FlagHelp("training", "AdamW's weight decay"),
    "lr_anneal_steps": FlagHelp("training", "stop after this many steps, the learning rate decayed linearly to 0; "
                                            "0: no annealing"),
    "max_steps": FlagHelp("training", "stop after this many steps; 0: no limit"),
    "iterations": FlagHelp("training", "training steps"),
    "anneal_lr": FlagHelp("training", "decay the learning rate linearly to 0 over --iterations"),
    "microbatch": FlagHelp("training", "split each batch into chunks of this size; -1: no split"),
    "ema_rate": FlagHelp("training", "EMA decay rates, comma-separated (each saved as ema_RATE_STEP.pt)"),
    "ema_warmup": FlagHelp("training", "EMA decay (1 + k) / (10 + k) at update k, up to the rate"),
    "log_interval": FlagHelp("training", "steps between logged losses"),
    "eval_interval": FlagHelp("training", "steps between validation losses"),
    "save_interval": FlagHelp("training", "steps between checkpoints"),
    "resume_checkpoint": FlagHelp("training", "the model checkpoint to resume (optimizer state found beside it)",
                                  metavar="PATH"),
    "fp16_scale_growth": FlagHelp("training", "growth of the float16 loss scale per step"),
    "random_flip": FlagHelp("training", "flip images horizontally at random"),
    "random_crop": FlagHelp("training", "crop images at random"),
    "noised": FlagHelp("training", "train on noised images (a noise-aware classifier for guidance)"),
}
_METAVARS = {"str2bool": "BOOL", "int": "INT", "float": "FLOAT", "str": "STR", "positive_int": "N"}


def flag_group(parser: argparse.ArgumentParser, name: str) -> argparse._ArgumentGroup:
    """The argument group ``name`` of ``parser`` (created, with its description, on first use)."""
    for group in parser._action_groups:
        if group.title == name:
            return group
    return parser.add_argument_group(name, FLAG_GROUPS.get(name))


def add_dict_to_argparser(parser: argparse.ArgumentParser, default_dict: dict) -> None:
    """One ``--key`` flag per entry, typed by its default (bools parse yes/no/true/false/1/0), with the group,
    help text and choices of :data:`FLAG_HELP` (flags not in it go to the parser's own options)."""
    training = any(k in FLAG_HELP and FLAG_HELP[k].group == "training" for k in default_dict)
    groups = {k: FLAG_HELP[k].group or ("training" if training else "sampling")
              for k in default_dict if k in FLAG_HELP}
    for name in FLAG_GROUPS:  # created in FLAG_GROUPS's order, which --help keeps
        if name in groups.values():
            flag_group(parser, name)
    order = {k: i for i, k in enumerate(FLAG_HELP)}  # within a group, the table's order
    for k, v in sorted(default_dict.items(), key=lambda kv: order.get(kv[0], len(order))):
        v_type = str if v is None else str2bool if isinstance(v, bool) else type(v)
        entry = FLAG_HELP.get(k, FlagHelp(None, ""))
        if entry.positive and v_type is int:
            v_type = positive_int
        target = flag_group(parser, groups[k]) if k in groups else parser
        target.add_argument(f"--{k}", default=v, type=v_type, help=entry.help or None, choices=entry.choices,
                            metavar=None if entry.choices else entry.metavar or _METAVARS.get(v_type.__name__))


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


def positive_int(v: str) -> int:
    """An integer of at least 1 (a count)."""
    try:
        value = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"integer expected, got {v!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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
