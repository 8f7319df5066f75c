"""scikit-learn's 8x8 handwritten digits as a small image dataset (no download: it ships with scikit-learn).

1,797 grey 8x8 images (values 0..16, strokes bright on dark), 10 classes. One
split with a fixed seed, stratified by class, keeps ``held_out`` images aside;
the rest is the training set. Images are upsampled to ``image_size`` (bicubic)
and stored as RGB uint8 (grey in all three channels), as image folders
(``{label}_{index:04d}.png``, the class read from the name) and as ``.npz``
(``arr_0`` NHWC uint8, ``arr_1`` labels), the formats the training scripts and
the evaluator read.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from .testbed import Testbed, write_image_splits
from .training import classifier_spec

IMAGE_SIZE = 16
HELD_OUT = 300
SPLIT_SEED = 0


def load_digits_split(image_size: int = IMAGE_SIZE, held_out: int = HELD_OUT,
                      seed: int = SPLIT_SEED) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train": (images, labels), "test": (images, labels)}``, images uint8 N x S x S x 3."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    index = np.arange(len(digits.target))
    train, test = train_test_split(index, test_size=held_out, random_state=seed, stratify=digits.target)
    images = np.stack([upsample(img, image_size) for img in digits.images])
    return {"train": (images[np.sort(train)], digits.target[np.sort(train)].astype(np.int64)),
            "test": (images[np.sort(test)], digits.target[np.sort(test)].astype(np.int64))}


def upsample(image: np.ndarray, image_size: int) -> np.ndarray:
    """An 8x8 image of values 0..16 as ``image_size`` x ``image_size`` x 3 uint8 (bicubic)."""
    grey = Image.fromarray(np.round(image * (255 / 16)).astype(np.uint8))
    if image_size != grey.width:
        grey = grey.resize((image_size, image_size), Image.BICUBIC)
    return np.repeat(np.asarray(grey)[..., None], 3, axis=2)


def write_digits(out_dir: str | os.PathLike, image_size: int = IMAGE_SIZE, held_out: int = HELD_OUT,
                 seed: int = SPLIT_SEED) -> dict[str, str]:
    """Write ``train/``, ``test/``, ``train.npz`` and ``test.npz``; return each npz's sha256."""
    return write_image_splits(out_dir, load_digits_split(image_size, held_out, seed), 4)


def _training_reference() -> tuple[np.ndarray, np.ndarray]:
    return load_digits_split()["train"]


def _held_out() -> tuple[np.ndarray, np.ndarray]:
    return load_digits_split()["test"]


DIGITS = Testbed(name="digits", models={"adm": "digits/adm", "cadm": "digits/cadm"}, classifier="digits/classifier",
                 features="digits/features", bank=tuple(f"digits/bank{i}" for i in range(1, 6)), label_set="digits",
                 num_classes=10, reference=_training_reference, held_in=_held_out)


# ---------------------------------------------- the shipped models' training (scripts/train_digits_models.py)

DIFFUSION = dict(image_size=16, num_channels=32, num_res_blocks=2, channel_mult="1,2,2", attention_resolutions="8,4",
                 num_head_channels=32, learn_sigma=True, diffusion_steps=1000, noise_schedule="cosine",
                 use_scale_shift_norm=True, resblock_updown=True, dropout=0.1)
# Constant learning rate, three EMAs and a checkpoint every 2000 steps; the shipped weights are the one of them
# chosen by measurement (SHIPPED_WEIGHTS: the samples' channel gap, held-out MSE; results/digits/colour_cast.md).
DIFFUSION_TRAINING = dict(lr=3e-4, batch_size=64, ema_rate="0.999,0.9995,0.9999", max_steps=8000,
                          save_interval=2000, log_interval=500, random_flip=False)
NOISE = dict(diffusion_steps=1000, noise_schedule="cosine", learn_sigma=True)
CLASSIFIER_TRAINING = dict(batch_size=64, lr=1e-3, anneal_lr=True, random_flip=False, log_interval=500,
                           num_classes=10, image_size=16)


TRAINING_DATA = "scikit-learn digits, scripts/prepare_digits.py (16x16, 300 held out, seed 0)"  # in manifests


def classifier(iterations: int, seed: int, noised: bool, **arch) -> dict:
    return classifier_spec(iterations, seed, noised, {**NOISE, **CLASSIFIER_TRAINING}, **arch)


GUIDE = dict(classifier_width=32, classifier_depth=2, classifier_channel_mult="1,2,2",
             classifier_attention_resolutions="8,4", classifier_pool="attention")
SHIPPED_WEIGHTS = {"adm": ("ema_0.999", 8000), "cadm": ("ema_0.999", 8000)}  # which checkpoint is shipped

MODELS = {
    # the paper's ADM (unconditional) and CADM (class-conditional, with a null class for classifier-free guidance)
    "adm": dict(script="image_train", kind="diffusion", steps=SHIPPED_WEIGHTS["adm"][1],
                weights=SHIPPED_WEIGHTS["adm"][0],
                flags={**DIFFUSION, **DIFFUSION_TRAINING, "class_cond": False, "seed": 0}),
    "cadm": dict(script="image_train", kind="diffusion", steps=SHIPPED_WEIGHTS["cadm"][1],
                 weights=SHIPPED_WEIGHTS["cadm"][0],
                 flags={**DIFFUSION, **DIFFUSION_TRAINING, "class_cond": True, "num_classes": 10,
                        "label_dropout": 0.1, "seed": 0}),
    # the noise-aware guidance classifier
    "classifier": classifier(4000, 0, True, **GUIDE),
    # a weak guide, for the adversarial regime (benchmarks/digits_adversarial.py): the same network and schedule,
    # trained on clean images only, so that its gradient on noisy images is not a class's (the design search,
    # results/digits/adversarial/designs.md)
    "classifier_weak": classifier(4000, 0, False, **GUIDE),
    # evaluation only: the feature network for FID/sFID/IS/precision/recall and the robustness bank
    "features": classifier(2000, 10, False, classifier_width=32, classifier_depth=2, classifier_channel_mult="1,2",
                           classifier_attention_resolutions="8", classifier_pool="adaptive"),
    "bank1": classifier(1500, 1, False, classifier_width=32, classifier_depth=1, classifier_channel_mult="1,2",
                        classifier_attention_resolutions="", classifier_pool="adaptive"),
    "bank2": classifier(1500, 2, False, classifier_width=32, classifier_depth=1, classifier_channel_mult="1,2,2",
                        classifier_attention_resolutions="4", classifier_pool="attention"),
    "bank3": classifier(1500, 3, False, classifier_width=32, classifier_depth=1, classifier_channel_mult="1,2",
                        classifier_attention_resolutions="", classifier_pool="spatial"),
    "bank4": classifier(1500, 4, False, classifier_width=32, classifier_depth=2, classifier_channel_mult="1,2",
                        classifier_attention_resolutions="", classifier_pool="adaptive",
                        classifier_use_scale_shift_norm=False),
    "bank5": classifier(1500, 5, False, classifier_width=32, classifier_depth=1, classifier_channel_mult="1,2,2",
                        classifier_attention_resolutions="8", classifier_pool="attention",
                        classifier_resblock_updown=False),
}
# the main job's defaults with each diffusion model; the scales were chosen from the evidence in
# results/digits (docs/sampling.md: the defaults and the evidence for them)
SAMPLE_FLAGS = {"adm": dict(timestep_respacing="100", num_samples=64, batch_size=64, classifier_scale=4.0,
                            classifier_path="digits/classifier"),
                "cadm": dict(timestep_respacing="100", num_samples=64, batch_size=64, classifier_scale=1.0,
                             classifier_path="digits/classifier")}
