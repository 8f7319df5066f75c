"""Network configurations the speed benchmarks time with random weights: the released 64x64 and 256x256
ImageNet checkpoints' flags (from the ADM README) and a tiny model."""

from __future__ import annotations

import torch

from .. import script_util as su

CONFIGS = {
    # The 64x64 ImageNet checkpoints' flags from the ADM README.
    "64x64": dict(
        model=dict(image_size=64, num_channels=192, num_res_blocks=3, attention_resolutions="32,16,8",
                   num_head_channels=64, class_cond=True, learn_sigma=True, resblock_updown=True,
                   use_new_attention_order=True, use_scale_shift_norm=True, dropout=0.1,
                   noise_schedule="cosine"),
        classifier=dict(image_size=64, classifier_depth=4),
    ),
    "tiny": dict(
        model=dict(image_size=32, num_channels=64, num_res_blocks=1, channel_mult="1,2,2",
                   attention_resolutions="16,8", num_head_channels=32, class_cond=True, learn_sigma=True),
        classifier=dict(image_size=32, classifier_width=64, classifier_depth=1, classifier_channel_mult="1,2,2",
                        classifier_attention_resolutions="16,8"),
    ),
}

OFFICIAL = {
    **{k: v for k, v in CONFIGS.items() if k == "64x64"},
    # The 256x256 conditional checkpoint's flags from the ADM README.
    "256x256": dict(
        model=dict(image_size=256, num_channels=256, num_res_blocks=2, attention_resolutions="32,16,8",
                   num_head_channels=64, class_cond=True, learn_sigma=True, resblock_updown=True,
                   use_scale_shift_norm=True, noise_schedule="linear"),
        classifier=dict(image_size=256),
    ),
}


def build(config: dict, device: torch.device, timestep_respacing: str = "25", **model_flags):
    """``(model, classifier, diffusion)`` of a configuration, random weights, in eval mode on ``device``
    (``model_flags`` added to the configuration's)."""
    flags = {**su.model_and_diffusion_defaults(), **config["model"], "timestep_respacing": timestep_respacing,
             **model_flags}
    model, diffusion = su.create_model_and_diffusion(**flags)
    classifier = su.create_classifier(**{**su.classifier_defaults(), **config["classifier"]})
    return model.to(device).eval(), classifier.to(device).eval(), diffusion
