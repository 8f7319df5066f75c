"""What the sampling scripts share: preparing networks, drawing batches on every
rank, their progress bar, and writing the ``.npz`` the evaluator reads (``arr_0``
uint8 NHWC images, ``arr_1`` labels) and, if asked, one PNG per sample.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from .. import dist_util, logger
from ..checkpoints import load_checkpoint
from ..flags import SAMPLER_HELP, SAMPLERS  # noqa: F401  (SAMPLER_HELP: the former module's name)
from ..script_util import args_to_dict, create_gaussian_diffusion, create_model, diffusion_defaults
from .figures import write_pngs
from .precision import accelerate, check_precision


def prepare(net: nn.Module, path: str, use_fp16: bool = False, use_bf16: bool = False,
            what: str = "checkpoint") -> nn.Module:
    """Load ``path`` into ``net``, move it to this rank's device, set precision and eval mode."""
    load_checkpoint(net, path, what)
    net.to(dist_util.dev())
    if use_fp16:
        net.convert_to_fp16()
    elif use_bf16:
        net.convert_to_bf16()
    return net.eval()


MODEL_FLAGS = tuple(inspect.signature(create_model).parameters)  # the flags that shape the denoiser
SOLVERS = ("dpmpp_2m", "dpmpp_2m_sde")  # DPM-Solver++ loops: their own reading of --timestep_respacing


def choose_sampler(sampler: str, use_ddim: bool = False) -> str:
    """``--sampler``, with ADM's ``--use_ddim True`` meaning ``ddim``; a ValueError if they disagree."""
    if sampler not in SAMPLERS:
        raise ValueError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if use_ddim and sampler not in ("ddpm", "ddim"):
        raise ValueError(f"--use_ddim True and --sampler {sampler} disagree: pass one of them")
    return "ddim" if use_ddim else sampler


def respacing_for(sampler: str, timestep_respacing: str) -> str:
    """What ``--timestep_respacing`` means for ``sampler``: the DPM-Solver++ samplers read a plain step
    count N as ``uniformN`` (N steps evenly spaced in time from T - T/N, not from T: see ``dpm_solver``);
    the other samplers keep ADM's meaning."""
    if sampler in SOLVERS and str(timestep_respacing).isdigit():
        return f"uniform{timestep_respacing}"
    return timestep_respacing


def create_for_sampling(args, sampler: str) -> tuple:
    """``(model, diffusion)`` of the flags in ``args``, the diffusion respaced as ``sampler`` reads
    ``--timestep_respacing`` (:func:`respacing_for`)."""
    return create_model(**args_to_dict(args, MODEL_FLAGS)), diffusion_for_sampling(args, sampler)


def diffusion_for_sampling(args, sampler: str):
    """The diffusion of :func:`create_for_sampling` alone."""
    flags = args_to_dict(args, diffusion_defaults().keys())
    flags["timestep_respacing"] = respacing_for(sampler, args.timestep_respacing)
    return create_gaussian_diffusion(steps=flags.pop("diffusion_steps"), **flags)


def sample_loop(diffusion, sampler: str, progressive: bool = False, eta: float = 0.0) -> Callable:
    """The diffusion's sampling loop for ``sampler`` (``eta``: DDIM's), called like ``p_sample_loop``."""
    name = {"ddpm": "p_sample_loop", "ddim": "ddim_sample_loop", "dpmpp_2m": "dpm_solver_sample_loop",
            "dpmpp_2m_sde": "dpm_solver_sample_loop"}[sampler]
    loop = getattr(diffusion, name + ("_progressive" if progressive else ""))
    if sampler == "ddim":
        return lambda *args, **kwargs: loop(*args, eta=eta, **kwargs)
    if sampler == "dpmpp_2m_sde":
        return lambda *args, **kwargs: loop(*args, stochastic=True, **kwargs)
    return loop


def accelerate_for_sampling(net: nn.Module, precision: str, compile: bool, use_fp16: bool = False) -> nn.Module:
    """``net`` wrapped for ``--precision`` and ``--compile`` on this rank's device (checked first); its torso is
    cast to the autocast dtype in place."""
    check_precision(precision, dist_util.dev(), use_fp16)
    return accelerate(net, precision, compile, cast_weights=True)


def progress_bar(total: int, enabled: bool = True) -> tqdm:
    """The one progress bar of a sampling run, of ``total`` sampling steps on this process (batches x steps; the
    diffusion's loops advance it with ``progress=bar``): shown on rank 0 alone, when ``enabled`` (--progress) and
    stderr is a terminal."""
    return tqdm(total=total, unit="step", dynamic_ncols=True,
                disable=None if enabled and dist_util.get_rank() == 0 else True)  # None: off when not a terminal


def batches_per_process(num_samples: int, batch_size: int) -> int:
    """The batches each process samples in :func:`sample_images` (until ``num_samples`` exist across them)."""
    return -(-num_samples // (batch_size * dist_util.get_world_size()))


def to_uint8_nhwc(sample: torch.Tensor) -> torch.Tensor:
    """[-1, 1] NCHW floats to [0, 255] NHWC uint8, rounding as the original scripts."""
    return ((sample + 1) * 127.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def from_uint8_nhwc(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """[0, 255] NHWC uint8 images (an array or a tensor) to [-1, 1] NCHW float32: the inverse of
    :func:`to_uint8_nhwc`, up to its rounding."""
    return torch.as_tensor(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def all_gather(tensor: torch.Tensor) -> list[np.ndarray]:
    """``tensor`` from every rank, in rank order, as numpy arrays."""
    if not dist_util.is_distributed():
        return [tensor.cpu().numpy()]
    parts = [torch.zeros_like(tensor) for _ in range(dist_util.get_world_size())]
    dist.all_gather(parts, tensor)
    return [p.cpu().numpy() for p in parts]


def sample_images(sample_batch: Callable[[], tuple[torch.Tensor, torch.Tensor | None]],
                  num_samples: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Call ``sample_batch() -> (images in [-1, 1], labels or None)`` on every rank
    until ``num_samples`` images exist across ranks; all ranks get them all."""
    images, labels = [], []
    count = 0
    while count < num_samples:
        batch, batch_labels = sample_batch()
        images.extend(all_gather(to_uint8_nhwc(batch)))
        if batch_labels is not None:
            labels.extend(all_gather(batch_labels))
        count += len(batch) * dist_util.get_world_size()
        logger.log(f"created {count} samples")
    arr = np.concatenate(images)[:num_samples]
    return arr, (np.concatenate(labels)[:num_samples] if labels else None)


def save_samples(images: np.ndarray, labels: np.ndarray | None = None, out_dir: str | None = None,
                 png_dir: str = "") -> str | None:
    """Rank 0 writes ``samples_NxHxWx3.npz`` into ``out_dir`` (the log dir), and with ``png_dir`` (--save_png)
    one PNG per sample there (:func:`~guided_diffusion.sampling.figures.write_pngs`); returns the npz's path
    there."""
    path = None
    if dist_util.get_rank() == 0:
        shape = "x".join(str(s) for s in images.shape)
        path = os.path.join(out_dir or logger.get_dir(), f"samples_{shape}.npz")
        logger.log(f"saving to {path}")
        np.savez(path, images, *([] if labels is None else [labels]))
        if png_dir:
            write_pngs(png_dir, images, labels)
            logger.log(f"saved {len(images)} PNGs in {png_dir}")
    dist_util.barrier()
    return path
