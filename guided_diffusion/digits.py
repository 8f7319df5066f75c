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

import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image

from .shards import write_npz

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
    out = Path(out_dir)
    hashes = {}
    for split, (images, labels) in load_digits_split(image_size, held_out, seed).items():
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            Image.fromarray(image).save(folder / f"{label}_{i:04d}.png")
        write_npz(out / f"{split}.npz", {"arr_0": images, "arr_1": labels})
        hashes[split] = hashlib.sha256((out / f"{split}.npz").read_bytes()).hexdigest()
    return hashes
