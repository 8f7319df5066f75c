"""The checkpoints released with ADM (openai/guided-diffusion), by file name: what each one is, the flags that
build it (the ADM README's, as given there: the others keep their defaults) and where to download it.

The single source of these flags: the scripts set them from a checkpoint's name (``--model_path
models/64x64_diffusion.pt``, any path whose file name is in the table, or ``adm/64x64_diffusion``; see
:func:`guided_diffusion.cli.apply_shipped_flags`), the table in docs/compatibility.md is checked against this one,
and the reproduction scripts read it. A lookup only: it imports nothing of the package.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

RELEASE_URL = "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/"
PREFIX = "adm/"  # adm/64x64_diffusion names the released 64x64_diffusion.pt ...
FOLDER = "models"  # ... looked for in models/ (where the ADM README puts the downloads)


@dataclass(frozen=True)
class Released:
    """One released checkpoint. ``kind``: ``diffusion``, ``classifier`` or ``superres`` (an upsampler);
    ``classifier`` and ``classifier_scale``: what the ADM README guides a diffusion model with."""

    file: str
    kind: str
    flags: dict = field(hash=False)
    classifier: str = ""
    classifier_scale: float | None = None

    @property
    def name(self) -> str:
        return PREFIX + self.file.removesuffix(".pt")

    @property
    def url(self) -> str:
        return RELEASE_URL + self.file


_64 = dict(attention_resolutions="32,16,8", class_cond=True, diffusion_steps=1000, dropout=0.1, image_size=64,
           learn_sigma=True, noise_schedule="cosine", num_channels=192, num_head_channels=64, num_res_blocks=3,
           resblock_updown=True, use_new_attention_order=True, use_fp16=True, use_scale_shift_norm=True)
_128 = dict(attention_resolutions="32,16,8", class_cond=True, diffusion_steps=1000, image_size=128, learn_sigma=True,
            noise_schedule="linear", num_channels=256, num_heads=4, num_res_blocks=2, resblock_updown=True,
            use_fp16=True, use_scale_shift_norm=True)
_LSUN = dict(attention_resolutions="32,16,8", class_cond=False, diffusion_steps=1000, dropout=0.1, image_size=256,
             learn_sigma=True, noise_schedule="linear", num_channels=256, num_head_channels=64, num_res_blocks=2,
             resblock_updown=True, use_fp16=True, use_scale_shift_norm=True)
_256 = dict(attention_resolutions="32,16,8", class_cond=True, diffusion_steps=1000, image_size=256, learn_sigma=True,
            noise_schedule="linear", num_channels=256, num_head_channels=64, num_res_blocks=2, resblock_updown=True,
            use_fp16=True, use_scale_shift_norm=True)

RELEASED: dict[str, Released] = {r.file: r for r in (
    Released("64x64_diffusion.pt", "diffusion", _64, "64x64_classifier.pt", 1.0),
    Released("64x64_classifier.pt", "classifier", dict(image_size=64, classifier_depth=4)),
    Released("128x128_diffusion.pt", "diffusion", _128, "128x128_classifier.pt", 0.5),
    Released("128x128_classifier.pt", "classifier", dict(image_size=128)),
    Released("256x256_diffusion.pt", "diffusion", _256, "256x256_classifier.pt", 1.0),
    Released("256x256_diffusion_uncond.pt", "diffusion", {**_256, "class_cond": False}, "256x256_classifier.pt",
             10.0),
    Released("256x256_classifier.pt", "classifier", dict(image_size=256)),
    Released("512x512_diffusion.pt", "diffusion", {**_256, "image_size": 512, "use_fp16": False},
             "512x512_classifier.pt", 4.0),
    Released("512x512_classifier.pt", "classifier", dict(image_size=512)),
    Released("64_256_upsampler.pt", "superres", dict(
        attention_resolutions="32,16,8", class_cond=True, diffusion_steps=1000, large_size=256, small_size=64,
        learn_sigma=True, noise_schedule="linear", num_channels=192, num_heads=4, num_res_blocks=2,
        resblock_updown=True, use_fp16=True, use_scale_shift_norm=True)),
    Released("128_512_upsampler.pt", "superres", dict(
        attention_resolutions="32,16", class_cond=True, diffusion_steps=1000, large_size=512, small_size=128,
        learn_sigma=True, noise_schedule="linear", num_channels=192, num_head_channels=64, num_res_blocks=2,
        resblock_updown=True, use_fp16=True, use_scale_shift_norm=True)),
    Released("lsun_bedroom.pt", "diffusion", _LSUN),
    Released("lsun_cat.pt", "diffusion", _LSUN),
    Released("lsun_horse.pt", "diffusion", _LSUN),
    Released("lsun_horse_nodropout.pt", "diffusion", {**_LSUN, "dropout": 0.0}),
)}


def released(path: str) -> Released | None:
    """The released checkpoint that ``path`` names (``adm/64x64_diffusion``, or any path or address whose file
    name is a released file's), else None."""
    if path.startswith(PREFIX) and not path.endswith(".pt"):
        return RELEASED.get(path.removeprefix(PREFIX) + ".pt")
    return RELEASED.get(os.path.basename(path)) if path else None


def local_path(path: str) -> str:
    """Where a name such as ``adm/64x64_diffusion`` is read from (``models/64x64_diffusion.pt``); any other path
    unchanged."""
    entry = released(path)
    return os.path.join(FOLDER, entry.file) if entry and path == entry.name else path


def command_line(flags: dict) -> str:
    """``flags`` as they are written on the command line: ``--image_size 64 --class_cond True``."""
    return " ".join(f"--{k} {v}" for k, v in flags.items())
