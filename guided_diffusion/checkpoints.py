"""Loading checkpoints with errors that say what to do.

A missing file names itself and, for the released ADM files, where to download
it; a state dict that does not fit the model lists the keys that differ and the
flags most likely set wrong, read off the checkpoint's own shapes.
"""

from __future__ import annotations

import os
import re

from torch import nn

from . import dist_util, shipped

RELEASE_URL = "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/"
RELEASED_CHECKPOINTS = (
    "64x64_classifier.pt", "64x64_diffusion.pt",
    "128x128_classifier.pt", "128x128_diffusion.pt",
    "256x256_classifier.pt", "256x256_diffusion.pt", "256x256_diffusion_uncond.pt",
    "512x512_classifier.pt", "512x512_diffusion.pt",
    "64_256_upsampler.pt", "128_512_upsampler.pt",
    "lsun_bedroom.pt", "lsun_cat.pt", "lsun_horse.pt", "lsun_horse_nodropout.pt",
)


class CheckpointError(RuntimeError):
    """A checkpoint is missing or does not fit the model built from the flags."""


def download_hint(path: str) -> str:
    name = os.path.basename(path)
    if name in RELEASED_CHECKPOINTS:
        return f"download it from {RELEASE_URL}{name}"
    return (f"known released files: {', '.join(RELEASED_CHECKPOINTS)} (from {RELEASE_URL}); "
            f"shipped models: {', '.join(shipped.shipped_names()) or 'none'}")


def resolve(path: str) -> str:
    """A shipped model's name (``digits/cadm``) as its file; any other path unchanged."""
    return str(shipped.checkpoint_path(path)) if shipped.is_shipped(path) else path


def require_file(path: str, what: str = "checkpoint") -> None:
    """Raise a CheckpointError naming ``path`` and its download address if it is absent."""
    if not path:
        raise CheckpointError(f"no {what} path given; {download_hint('')}")
    if "://" not in path and not os.path.exists(path):
        raise CheckpointError(f"{what} not found: {path}; {download_hint(path)}")


def load_checkpoint(model: nn.Module, path: str, what: str = "checkpoint") -> None:
    """Load ``path`` (or a shipped model's name) into ``model`` (strict, ``weights_only=True``, read once
    per job); float16 weights are cast to the model's precision."""
    path = resolve(path)
    require_file(path, what)
    state_dict = dist_util.load_state_dict(path, map_location="cpu")
    check_state_dict(model, state_dict, path)
    model.load_state_dict(state_dict, strict=True)


def check_state_dict(model: nn.Module, state_dict: dict, path: str = "checkpoint") -> None:
    """Raise a CheckpointError listing missing, unexpected and mis-shaped keys."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state_dict.items()}
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    reshaped = [f"{k}: checkpoint {found[k]} vs model {expected[k]}"
                for k in expected if k in found and found[k] != expected[k]]
    if not (missing or unexpected or reshaped):
        return
    lines = [f"{path} does not fit the model built from these flags."]
    for title, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", reshaped)):
        if keys:
            shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
            lines.append(f"  {title}: {shown}")
    hints = flag_hints(found, expected)
    if hints:
        lines.append("  likely wrong flags: " + "; ".join(hints))
    raise CheckpointError("\n".join(lines))


def _count_blocks(shapes: dict, prefix: str) -> int:
    idx = {int(m.group(1)) for k in shapes if (m := re.match(rf"{prefix}\.(\d+)\.", k))}
    return max(idx) + 1 if idx else 0


def _attention_blocks(shapes: dict) -> set[str]:
    return {k.rsplit(".qkv.", 1)[0] for k in shapes if ".qkv." in k and "input_blocks" in k}


def flag_hints(found: dict, expected: dict) -> list[str]:
    """Flags whose values the checkpoint's shapes contradict, best guesses first."""
    hints = []
    width = "time_embed.0.weight"
    if width in found and width in expected and found[width][1] != expected[width][1]:
        hints.append(f"--num_channels / --classifier_width should be {found[width][1]} (is {expected[width][1]})")
    if ("label_emb.weight" in found) != ("label_emb.weight" in expected):
        hints.append(f"--class_cond should be {'label_emb.weight' in found}")
    elif "label_emb.weight" in found and found["label_emb.weight"][0] != expected["label_emb.weight"][0]:
        rows, built = found["label_emb.weight"][0], expected["label_emb.weight"][0]
        if rows == built + 1:
            hints.append(f"--label_dropout should be > 0 (the checkpoint has a null class), or --num_classes {rows}")
        elif rows == built - 1:
            hints.append(f"--label_dropout should be 0 (the checkpoint has no null class), or --num_classes {rows}")
        else:
            hints.append(f"--num_classes should be {rows}")
    for head in ("out.2.weight", "out.3.weight", "out.2.c_proj.weight"):
        if head in found and head in expected and found[head][0] != expected[head][0]:
            n = found[head][0]
            hints.append(f"--learn_sigma should be {n == 6}" if n in (3, 6) and expected[head][0] in (3, 6)
                         else f"--num_classes should be {n}")
    if _count_blocks(found, "input_blocks") != _count_blocks(expected, "input_blocks"):
        hints.append("--num_res_blocks / --classifier_depth, --channel_mult or --image_size differ "
                     f"({_count_blocks(found, 'input_blocks')} input blocks in the checkpoint, "
                     f"{_count_blocks(expected, 'input_blocks')} in the model)")
    elif _attention_blocks(found) != _attention_blocks(expected):
        hints.append("--attention_resolutions differs")
    emb = "input_blocks.1.0.emb_layers.1.weight"
    same_width = found.get(width) == expected.get(width)
    if same_width and emb in found and emb in expected and found[emb][0] != expected[emb][0]:
        hints.append(f"--use_scale_shift_norm should be {found[emb][0] > expected[emb][0]}")
    if any(".op." in k for k in found) != any(".op." in k for k in expected):
        hints.append(f"--resblock_updown should be {not any('.op.' in k for k in found)}")
    return hints
