"""Held-out metrics of trained networks, as the shipped models' manifests record them.

Diffusion models: the noise-prediction error on held-out images; classifiers:
top-1 accuracy on clean and noised images; and the main job's channel gap
(a colour cast check) for a diffusion model run with no other flag. For the
Fashion-MNIST models also the FID of unguided samples against the test set,
beside its floor, and a grid of samples per class (:func:`unguided_quality`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..sampling.figures import image_grid
from ..sampling.job import MainJob, job_args
from ..sampling.samplers import from_uint8_nhwc
from .autoencoder import reconstruction_mse
from .feature_extractors import FeatureExtractor
from .metrics import channel_gap, feature_statistics, frechet_distance

EVAL_TIMESTEPS = (0, 100, 250, 500, 750, 999)  # where held-out metrics are taken


@torch.no_grad()
def noise_predictions(model: nn.Module, diffusion, images: torch.Tensor, labels: torch.Tensor | None, t: int,
                      generator: torch.Generator, batch_size: int = 100) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Per batch of ``images`` (NCHW in [-1, 1]) noised to timestep ``t`` with noise drawn from ``generator``:
    the noise the model predicts (its first C output channels) and the true noise."""
    for start in range(0, len(images), batch_size):
        x0 = images[start:start + batch_size]
        noise = torch.randn(x0.shape, generator=generator)
        t_batch = torch.full((len(x0),), t, dtype=torch.long)
        kwargs = {} if labels is None else {"y": labels[start:start + batch_size]}
        yield model(diffusion.q_sample(x0, t_batch, noise=noise), t_batch, **kwargs)[:, :x0.shape[1]], noise


def denoising_mse(model: nn.Module, diffusion, images: torch.Tensor, labels: torch.Tensor | None,
                  timesteps=EVAL_TIMESTEPS, seed: int = 0, batch_size: int = 100) -> float:
    """Mean squared error of the predicted noise on ``images`` (NCHW in [-1, 1]) noised to each of
    ``timesteps`` with a fixed draw: the training objective, on held-out data."""
    generator = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    for t in timesteps:
        for eps, noise in noise_predictions(model, diffusion, images, labels, t, generator, batch_size):
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
def default_job_channel_gap(model: nn.Module, info: dict, classifier: nn.Module,
                            num_samples: int | None = None) -> np.ndarray:
    """Per sample, the channel gap (:func:`guided_diffusion.evaluation.metrics.channel_gap`) of what the main
    job writes for a shipped diffusion model (``info``: its manifest) with no other flag, sampled with
    ``model`` and ``classifier`` in place of the shipped weights (float32, CPU); ``num_samples``: only the
    first of them (each sample's noise and label depend on its index alone)."""
    extra = [] if num_samples is None else ["--num_samples", str(num_samples)]
    args = job_args(["--model_path", info["name"], *extra], model_manifest=info)
    job = MainJob(args, device=torch.device("cpu"), model=model.float().eval(),
                  classifier=classifier.float().eval()).load()
    return channel_gap(job.sample()["images"])


def held_out_metrics(kind: str, net: nn.Module, diffusion, images: np.ndarray, labels: np.ndarray,
                     noised: bool = True) -> dict[str, float]:
    """The metrics a manifest records, on uint8 NHWC ``images``.

    diffusion models: ``denoising_mse`` (conditional models see the labels);
    classifiers: ``accuracy`` on clean images, and for noise-aware ones
    ``accuracy_t{t}`` at each of :data:`EVAL_TIMESTEPS`; autoencoders:
    ``reconstruction_mse`` (images in [-1, 1]).
    """
    x = from_uint8_nhwc(images)
    y = torch.from_numpy(labels).long()
    net = net.float().eval()
    if kind == "autoencoder":
        return {"reconstruction_mse": reconstruction_mse(net, x)}
    if kind == "diffusion":
        return {"denoising_mse": denoising_mse(net, diffusion, x, y if net.num_classes is not None else None)}
    metrics = {"accuracy": accuracy(net, diffusion, x, y, 0)}
    if noised:
        metrics.update({f"accuracy_t{t}": accuracy(net, diffusion, x, y, t) for t in EVAL_TIMESTEPS if t})
    return metrics


@torch.no_grad()
def unguided_quality(model: nn.Module, info: dict, features: FeatureExtractor, test_images: np.ndarray,
                     train_images: np.ndarray, num_samples: int = 1000, batch_size: int = 100,
                     per_class: int = 8) -> tuple[dict, np.ndarray]:
    """FID, in the space of ``features`` (its ``pool``), of ``num_samples`` unguided samples of a diffusion model
    (``info``: its manifest; the main job with ``--guidance none``, balanced classes for a class-conditional
    model) against ``test_images``, beside its floor: the FID of as many training images (a fixed draw) against
    the same test images, what a model that reproduces the training set scores with this many samples. Returns
    the metrics and a grid of ``per_class`` samples per row, one row per class (a class-conditional model's
    labels; an unconditional model's samples as ``features`` classifies them, rows padded with blanks)."""
    args = job_args(["--model_path", info["name"], "--guidance", "none", "--classes", "balanced"],
                    model_manifest=info, num_samples=num_samples, batch_size=batch_size)
    out = MainJob(args, device=torch.device("cpu"), model=model.float().eval()).load().sample()
    sampled = features.extract_in_batches(out["images"])
    reference = feature_statistics(features.extract_in_batches(test_images)["pool"])
    rng = np.random.default_rng(0)
    floor = train_images[np.sort(rng.choice(len(train_images), num_samples, replace=False))]
    labels = out["labels"] if args.class_cond else sampled["logits"].argmax(axis=1)
    classes = int(args.num_classes)
    blank = np.full_like(out["images"][:1], 255)
    rows = []
    for c in range(classes):
        chosen = out["images"][labels == c][:per_class]
        rows += [chosen, *([blank] * (per_class - len(chosen)))]
    metrics = {"fid_vs_test": frechet_distance(*feature_statistics(sampled["pool"]), *reference),
               "fid_floor_train_vs_test": frechet_distance(
                   *feature_statistics(features.extract_in_batches(floor)["pool"]), *reference),
               "samples": num_samples, "test_images": len(test_images),
               "sampling": f"main job, --guidance none, {args.timestep_respacing} steps, seed {args.seed}",
               "grid_rows": "labels" if args.class_cond else "classified by the feature network"}
    return metrics, image_grid(np.concatenate(rows), nrow=per_class)
