"""Command-line flags: parsing values and dictionaries of defaults into argparse, with no other
dependency, so that both the factories (``script_util``) and the checkpoint loader can use them."""

from __future__ import annotations

import argparse

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


def add_dict_to_argparser(parser: argparse.ArgumentParser, default_dict: dict) -> None:
    """One ``--key`` flag per entry, typed by its default (bools parse yes/no/true/false/1/0)."""
    for k, v in default_dict.items():
        v_type = str if v is None else str2bool if isinstance(v, bool) else type(v)
        parser.add_argument(f"--{k}", default=v, type=v_type)


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
