"""Sampling: samplers and the main job.

``precision`` and ``seeding`` (per-sample noise and labels) <- ``samplers`` (the loops by name, networks
prepared for sampling) <- ``batch`` (one guided batch) <- ``job`` (the main job: flags, shards, merge), with
``shards`` (resumable output) and ``figures`` (grids, trajectories) beside it. The names below are those of
the former module ``guided_diffusion.sampling``, kept for code that imports them.
"""

from .samplers import (  # noqa: F401
    SAMPLER_HELP,
    SAMPLERS,
    SOLVERS,
    accelerate_for_sampling,
    all_gather,
    choose_sampler,
    create_for_sampling,
    prepare,
    respacing_for,
    sample_images,
    sample_loop,
    save_samples,
    to_uint8_nhwc,
)
