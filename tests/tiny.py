"""Tiny random networks for fast tests (8x8 images)."""

from __future__ import annotations

import numpy as np
import torch

from guided_diffusion import script_util as su

MODEL_FLAGS = dict(image_size=8, num_channels=32, num_res_blocks=1, channel_mult="1,2", attention_resolutions="4",
                   learn_sigma=True, diffusion_steps=100, noise_schedule="cosine")
CLASSIFIER_FLAGS = dict(image_size=8, classifier_width=32, classifier_depth=1, classifier_channel_mult="1,2",
                        classifier_attention_resolutions="4")


def randomize_zero_layers(net: torch.nn.Module, std: float = 0.05) -> torch.nn.Module:
    """Give every all-zero parameter (ADM zero-initialises the last layer of each residual block, each
    attention projection and the output head, and norms start with zero bias) a random value, so that
    every input (the timestep, the label) reaches the output as in a trained network."""
    with torch.no_grad():
        for p in net.parameters():
            if p.is_floating_point() and not p.any():
                p.normal_(0, std)
    return net


def tiny_model_and_diffusion(seed: int = 0, **overrides):
    """A random UNet with no zero-initialised layer left (its output depends on x, t and y), in eval mode."""
    torch.manual_seed(seed)
    model, diffusion = su.create_model_and_diffusion(
        **{**su.model_and_diffusion_defaults(), **MODEL_FLAGS, **overrides})
    return randomize_zero_layers(model).eval(), diffusion


def tiny_classifier(num_classes: int = 5, seed: int = 1) -> torch.nn.Module:
    """A random noise-aware classifier with no zero-initialised layer left, in eval mode."""
    torch.manual_seed(seed)
    classifier = su.create_classifier(**{**su.classifier_defaults(), **CLASSIFIER_FLAGS, "num_classes": num_classes})
    randomize_zero_layers(classifier)
    with torch.no_grad():
        for p in classifier.out.parameters():
            p.normal_(0, 0.5)
    return classifier.eval()


def random_relevance(num_classes: int, seed: int = 0) -> np.ndarray:
    """Dirichlet rows with each row's diagonal made its largest entry."""
    rng = np.random.default_rng(seed)
    matrix = rng.dirichlet(np.ones(num_classes), size=num_classes)
    matrix[np.arange(num_classes), np.arange(num_classes)] += matrix.max(axis=1) + 0.05
    return matrix / matrix.sum(axis=1, keepdims=True)
