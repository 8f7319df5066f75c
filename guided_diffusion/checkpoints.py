"""Loading checkpoints with errors that say what to do.

A missing file names itself and, for the released ADM files, where to download
it; a state dict that does not fit the model lists the keys that differ and the
flags most likely set wrong, read off the checkpoint's own shapes.
"""

from __future__ import annotations

import os
import pickle
import re

import blobfile as bf
import torch
from torch import nn

from . import dist_util, logger, models
from .flags import parse_attention_resolutions, parse_channel_mult
from .models.released import RELEASE_URL, RELEASED, command_line, local_path, released


class CheckpointError(RuntimeError):
    """A checkpoint is missing or does not fit the model built from the flags."""


def download_hint(path: str) -> str:
    entry = released(path)
    if entry:
        return f"download it from {entry.url}"
    return (f"known released files: {', '.join(RELEASED)} (from {RELEASE_URL}); "
            f"shipped models: {', '.join(models.shipped_names()) or 'none'}")


def resolve(path: str) -> str:
    """A shipped model's name (``digits/cadm``) or a released checkpoint's (``adm/64x64_diffusion``) as its file;
    any other path unchanged."""
    return str(models.checkpoint_path(path)) if models.is_shipped(path) else local_path(path)


def require_file(path: str, what: str = "checkpoint") -> None:
    """Raise a CheckpointError naming ``path`` and its download address if it is absent."""
    if not path:
        raise CheckpointError(f"no {what} path given; {download_hint('')}")
    if "://" not in path and not os.path.exists(path):
        raise CheckpointError(f"{what} not found: {path}; {download_hint(path)}")


def load_checkpoint(model: nn.Module, path: str, what: str = "checkpoint") -> None:
    """Load ``path`` (or a shipped model's name) into ``model`` (strict, ``weights_only=True``, read once
    per job); float16 weights are cast to the model's precision. A released ADM checkpoint says so in the log."""
    name = path
    path = resolve(path)
    require_file(path, what)
    state_dict = read_state_dict(path, what)
    check_state_dict(model, state_dict, path, what, shipped_name=name if models.is_shipped(name) else None)
    model.load_state_dict(state_dict, strict=True)
    entry = released(path)
    if entry:
        logger.log(f"{what} {path}: ADM's released {entry.file}, its flags set by its name "
                   f"({command_line(entry.flags)})")


def read_state_dict(path: str, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """``torch.load(path, weights_only=True)`` as a state dict, or a CheckpointError saying why the file
    cannot be one (truncated, not a checkpoint, pickled objects, not a dict of tensors)."""
    try:
        state = dist_util.load_state_dict(path, map_location="cpu")
    except pickle.UnpicklingError as err:
        if "Weights only load failed" not in str(err) or not _looks_like_torch_file(path):
            raise _unreadable(path, what, err) from err
        raise CheckpointError(
            f"{what} {path} is not a plain state dict: it holds pickled objects that torch.load(..., "
            f"weights_only=True) refuses to run. If you trust the file, re-save its state dict "
            f"(torch.save(model.state_dict(), ...)) and pass that") from err
    except (RuntimeError, ValueError, KeyError, EOFError, OSError, IndexError, AttributeError) as err:
        raise _unreadable(path, what, err) from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        inner = [k for k, v in state.items() if isinstance(v, dict)] if isinstance(state, dict) else []
        hint = f"; its state dict may be under the key {inner[0]!r}" if inner else ""
        raise CheckpointError(f"{what} {path} holds a {type(state).__name__}, not a state dict (a dict of "
                              f"tensors){hint}")
    return state


def checkpoint_kind(path: str) -> str:
    """What the checkpoint at ``path`` holds, read off its keys without loading its tensors: ``diffusion``,
    ``classifier`` or ``unknown`` (also for a file that cannot be read; loading it says why)."""
    if not path or "://" in path or not os.path.isfile(path):
        return "unknown"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - any unreadable file: read_state_dict reports it when loading
        return "unknown"
    return network_kind(state) if isinstance(state, dict) else "unknown"


def require_kind(path: str, kind: str, flag: str) -> None:
    """A CheckpointError if the file (or shipped model) given with ``flag`` holds another kind of network."""
    path = resolve(path)
    found = checkpoint_kind(path)
    if found not in ("unknown", kind):
        raise CheckpointError(f"{flag} {path} is a {found} model's checkpoint, not a {kind} model's; "
                              f"{flag} needs a {kind} model")


def _looks_like_torch_file(path: str) -> bool:
    """A zip archive (torch.save since 1.6) or a pickle (the legacy format), by the first bytes."""
    with bf.BlobFile(path, "rb") as f:
        head = f.read(4)
    return head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")


def _unreadable(path: str, what: str, err: BaseException) -> CheckpointError:
    size = bf.stat(path).size if bf.exists(path) else 0
    detail = re.split(r"(?<=\.) ", str(err).strip())[0][:100] or "no detail"
    again = download_hint(path) if released(path) else "copy or download it again"
    return CheckpointError(
        f"{what} {path} ({size:,} bytes) cannot be read as a PyTorch checkpoint ({type(err).__name__}: {detail}): "
        f"it is truncated (an interrupted download or copy) or not a checkpoint at all; {again}")


def check_state_dict(model: nn.Module, state_dict: dict, path: str = "checkpoint", what: str = "checkpoint",
                     shipped_name: str | None = None) -> None:
    """Raise a CheckpointError listing missing, unexpected and mis-shaped keys, and the flags likely wrong."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state_dict.items()}
    kind_found, kind_expected = network_kind(found), network_kind(expected)
    if "unknown" not in (kind_found, kind_expected) and kind_found != kind_expected:
        flag = "--classifier_path" if kind_expected == "classifier" else "--model_path"
        raise CheckpointError(f"{what} {shipped_name or path} is a {kind_found} model's checkpoint, not a "
                              f"{kind_expected} model's: {flag} needs a {kind_expected} model")
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
    entry = released(path)
    if entry:  # the scripts built the model from the table's flags for this name
        lines.append(f"  {os.path.basename(path)} is the name of ADM's released {entry.kind} checkpoint, whose "
                     "flags the scripts set by that name: this file is another network (renamed?); give it a name "
                     "of its own and pass its flags")
    hints = flag_hints(found, expected, model)
    if shipped_name:
        hints = shipped_flag_hints(model, shipped_name) or hints
    if hints:
        lines.append("  likely wrong flags: " + "; ".join(hints))
    raise CheckpointError("\n".join(lines))


def network_kind(shapes: dict) -> str:
    """``diffusion`` (a UNet with a decoder), ``classifier`` (an encoder only) or ``unknown``."""
    if any(k.startswith("output_blocks.") for k in shapes):
        return "diffusion"
    if any(k.startswith("input_blocks.") for k in shapes):
        return "classifier"
    return "unknown"


def _count_blocks(shapes: dict, prefix: str) -> int:
    idx = {int(m.group(1)) for k in shapes if (m := re.match(rf"{prefix}\.(\d+)\.", k))}
    return max(idx) + 1 if idx else 0


def _attention_blocks(shapes: dict) -> set[str]:
    return {k.rsplit(".qkv.", 1)[0] for k in shapes if ".qkv." in k and "input_blocks" in k}


def _attention_rates(shapes: dict, num_res_blocks: int) -> set[int]:
    """Downsample rates of the input blocks holding attention (block 0 is the stem; each level has
    ``num_res_blocks`` blocks and then a downsampling one)."""
    blocks = {int(b.split(".")[1]) for b in _attention_blocks(shapes)}
    return {2 ** ((i - 1) // (num_res_blocks + 1)) for i in blocks}


def _image_size_hint(found: dict, expected: dict, model: nn.Module | None) -> str | None:
    """``--image_size should be S`` when the checkpoint's attention layers sit where the model's attention
    resolutions put them at image size S (the attention layers move with the image size)."""
    size, rates = getattr(model, "image_size", None), getattr(model, "attention_resolutions", None)
    blocks, mult = getattr(model, "num_res_blocks", None), getattr(model, "channel_mult", None)
    if not (size and rates and blocks and mult) or _count_blocks(found, "input_blocks") != _count_blocks(
            expected, "input_blocks"):
        return None
    have = _attention_rates(found, blocks)
    if have == _attention_rates(expected, blocks):
        return None
    reachable = {2**level for level in range(len(mult))}
    resolutions = {size // r for r in rates}
    for shift in (-1, 1, -2, 2, -3, 3):
        other = int(size * 2.0**shift)
        if other >= 1 and {other // r for r in resolutions if other // r in reachable} == have:
            return (f"--image_size should be {other} (is {size}) or --attention_resolutions is not the "
                    f"checkpoint's: its attention layers sit where these resolutions put them at that size")
    return None


def flag_hints(found: dict, expected: dict, model: nn.Module | None = None) -> list[str]:
    """Flags whose values the checkpoint's shapes contradict: those that set the network's shapes
    (image size, width, classes) first, then those derived from them."""
    hints = []
    size_hint = _image_size_hint(found, expected, model)
    if size_hint:
        hints.append(size_hint)
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
        hints.append("--image_size, --channel_mult or --num_res_blocks / --classifier_depth differ "
                     f"({_count_blocks(found, 'input_blocks')} input blocks in the checkpoint, "
                     f"{_count_blocks(expected, 'input_blocks')} in the model)")
    elif _attention_blocks(found) != _attention_blocks(expected) and not size_hint:
        hints.append("--attention_resolutions differs")
    emb = "input_blocks.1.0.emb_layers.1.weight"
    same_width = found.get(width) == expected.get(width)
    if same_width and emb in found and emb in expected and found[emb][0] != expected[emb][0]:
        hints.append(f"--use_scale_shift_norm should be {found[emb][0] > expected[emb][0]}")
    if any(".op." in k for k in found) != any(".op." in k for k in expected):
        hints.append(f"--resblock_updown should be {not any('.op.' in k for k in found)}")
    return hints


def shipped_flag_hints(model: nn.Module, name: str) -> list[str]:
    """For a shipped model, the network flags that differ from those it was trained with (its manifest's)."""
    flags = models.manifest(name)["flags"]
    prefix = "classifier_" if "classifier_width" in flags else ""
    size = flags["image_size"]
    width = flags["classifier_width" if prefix else "num_channels"]
    depth = flags["classifier_depth" if prefix else "num_res_blocks"]
    classes = flags["num_classes"] if prefix or flags.get("class_cond") else None
    built_classes = getattr(model, "num_classes", None)
    if prefix:
        built_classes = getattr(model, "out_channels", None)
    checks = [
        ("image_size", getattr(model, "image_size", size), size),
        ("classifier_width" if prefix else "num_channels", getattr(model, "model_channels", width), width),
        ("num_classes", built_classes, classes),
        ("classifier_depth" if prefix else "num_res_blocks", getattr(model, "num_res_blocks", depth), depth),
        (f"{prefix}channel_mult", getattr(model, "channel_mult", None),
         parse_channel_mult(flags[f"{prefix}channel_mult"], size)),
    ]
    hints = [f"--{flag} should be {_show(want)} (is {_show(have)})" for flag, have, want in checks
             if have is not None and tuple(_as_tuple(have)) != tuple(_as_tuple(want))]
    if not hints:
        attention = parse_attention_resolutions(flags[f"{prefix}attention_resolutions"], size)
        if set(getattr(model, "attention_resolutions", attention)) != set(attention):
            hints.append(f"--{prefix}attention_resolutions should be {flags[f'{prefix}attention_resolutions']}")
    if hints:
        hints.append(f"{name} sets these itself: drop them from the command line")
    return hints


def _as_tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _show(value) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, (tuple, list)) else str(value)
