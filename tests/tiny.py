"""Tiny random networks for fast tests (8x8 images)."""

from __future__ import annotations

import numpy as np
import torch

from guided_diffusion import script_util as su

MODEL_FLAGS = dict(image_size=8, num_channels=32, num_res_blocks=1, channel_mult="1,2", attention_resolutions="4",
                   learn_sigma=True, diffusion_steps=100, noise_schedule="cosine")
CLASSIFIER_FLAGS = dict(image_size=8, classifier_width=32, classifier_depth=1, classifier_channel_mult="1,2",
                        classifier_attention_resolutions="4")


def tiny_model_and_diffusion(seed: int = 0, **overrides):
    """A random UNet whose output head is not zero (so sampling depends on it), in eval mode."""
    torch.manual_seed(seed)
    model, diffusion = su.create_model_and_diffusion(
        **{**su.model_and_diffusion_defaults(), **MODEL_FLAGS, **overrides})
    with torch.no_grad():
        for p in model.out.parameters():
            p.normal_(0, 0.05)
    return model.eval(), diffusion


def tiny_classifier(num_classes: int = 5, seed: int = 1) -> torch.nn.Module:
    """A random noise-aware classifier with a non-zero head, in eval mode."""
    torch.manual_seed(seed)
    classifier = su.create_classifier(**{**su.classifier_defaults(), **CLASSIFIER_FLAGS, "num_classes": num_classes})
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
