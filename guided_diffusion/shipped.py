"""Models shipped with the package, addressable by a short name such as ``digits/cadm``.

Each is ``models/<name>.pt`` (a float16 state dict) with ``models/<name>.json``
beside it: its ``flags`` (what the scripts need to build it), how it was
trained (command, steps, seconds, data hash) and its ``held_out`` metrics,
which :func:`held_out_metrics` recomputes. ``sample_flags`` of a diffusion
model are the sampling defaults the main job uses with it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = "digits/adm"
EVAL_TIMESTEPS = (0, 100, 250, 500, 750, 999)  # where held-out metrics are taken


def is_shipped(name: str) -> bool:
    """Whether ``name`` is a shipped model's name (not a path of the user's)."""
    return bool(name) and not name.endswith(".pt") and checkpoint_path(name).is_file()


def shipped_names() -> list[str]:
    return sorted(str(p.relative_to(MODELS_DIR).with_suffix("")) for p in MODELS_DIR.rglob("*.pt"))


def checkpoint_path(name: str) -> Path:
    return MODELS_DIR / f"{name}.pt"


def manifest(name: str) -> dict:
    path = MODELS_DIR / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no shipped model {name!r}; shipped: {', '.join(shipped_names()) or 'none'}")
    return json.loads(path.read_text())


@torch.no_grad()
def denoising_mse(model: nn.Module, diffusion, images: torch.Tensor, labels: torch.Tensor | None,
                  timesteps=EVAL_TIMESTEPS, seed: int = 0, batch_size: int = 100) -> float:
    """Mean squared error of the predicted noise on ``images`` (NCHW in [-1, 1]) noised to each of
    ``timesteps`` with a fixed draw: the training objective, on held-out data."""
    generator = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    for t in timesteps:
        for start in range(0, len(images), batch_size):
            x0 = images[start:start + batch_size]
            noise = torch.randn(x0.shape, generator=generator)
            t_batch = torch.full((len(x0),), t, dtype=torch.long)
            kwargs = {} if labels is None else {"y": labels[start:start + batch_size]}
            eps = model(diffusion.q_sample(x0, t_batch, noise=noise), t_batch, **kwargs)[:, :x0.shape[1]]
            total += F.mse_loss(eps, noise, reduction="sum").item()
            count += noise.numel()
    return total / count


@torch.no_grad()
def accuracy(classifier: nn.Module, diffusion, images: torch.Tensor, labels: torch.Tensor, t: int = 0,
             seed: int = 0, batch_size: int = 100) -> float:
    """Top-1 accuracy on ``images`` noised to timestep ``t`` (t = 0: clean) with a fixed draw."""
    generator = torch.Generator().manual_seed(seed)
    correct = 0
    for start in range(0, len(images), batch_size):
        x0 = images[start:start + batch_size]
        t_batch = torch.full((len(x0),), t, dtype=torch.long)
        x = x0 if t == 0 else diffusion.q_sample(x0, t_batch, noise=torch.randn(x0.shape, generator=generator))
        correct += (classifier(x, t_batch).argmax(dim=1) == labels[start:start + batch_size]).sum().item()
    return correct / len(images)


@torch.no_grad()
def default_job_channel_gap(model: nn.Module, info: dict, classifier: nn.Module) -> np.ndarray:
    """Per sample, the channel gap (:func:`guided_diffusion.metrics.channel_gap`) of what the main job
    writes for a shipped diffusion model (``info``: its manifest) with no other flag (ProG with its
    ``sample_flags``, seed 0, random classes), sampled with ``model`` in its place (float32, CPU)."""
    from .guided_sampling import build_guidance, plan_guidance, sample_batch
    from .metrics import channel_gap
    from .relevance import shipped_relevance
    from .script_util import create_gaussian_diffusion
    from .seeding import SampleNoise, sample_labels

    flags, sample = info["flags"], info["sample_flags"]
    diffusion = create_gaussian_diffusion(steps=flags["diffusion_steps"], learn_sigma=flags["learn_sigma"],
                                          noise_schedule=flags["noise_schedule"],
                                          timestep_respacing=sample["timestep_respacing"])
    plan = plan_guidance("prog", 10, diffusion.num_timesteps, 0.04, 250, str(shipped_relevance("digits")))
    denoiser, cond_fn = build_guidance(plan, model.float().eval(), classifier.float().eval(),
                                       sample["classifier_scale"], flags["class_cond"])
    images = []
    for start in range(0, sample["num_samples"], sample["batch_size"]):
        indices = range(start, min(start + sample["batch_size"], sample["num_samples"]))
        images.append(sample_batch(diffusion, denoiser, cond_fn, plan, sample_labels("random", 0, indices, 10),
                                   SampleNoise(0, indices, (3, flags["image_size"], flags["image_size"]),
                                               torch.device("cpu")))["images"])
    return channel_gap(np.concatenate(images))


def held_out_metrics(kind: str, net: nn.Module, diffusion, images: np.ndarray, labels: np.ndarray,
                     noised: bool = True) -> dict[str, float]:
    """The metrics a manifest records, on uint8 NHWC ``images``.

    diffusion models: ``denoising_mse`` (conditional models see the labels);
    classifiers: ``accuracy`` on clean images, and for noise-aware ones
    ``accuracy_t{t}`` at each of :data:`EVAL_TIMESTEPS`.
    """
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    y = torch.from_numpy(labels).long()
    net = net.float().eval()
    if kind == "diffusion":
        return {"denoising_mse": denoising_mse(net, diffusion, x, y if net.num_classes is not None else None)}
    metrics = {"accuracy": accuracy(net, diffusion, x, y, 0)}
    if noised:
        metrics.update({f"accuracy_t{t}": accuracy(net, diffusion, x, y, t) for t in EVAL_TIMESTEPS if t})
    return metrics
