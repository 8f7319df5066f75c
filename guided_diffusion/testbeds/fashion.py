"""Zalando's Fashion-MNIST as a small image dataset (MIT licence; read from local files, never downloaded).

70,000 grey 28x28 images of clothing (60,000 train, 10,000 test), 10 classes
(:data:`CLASS_NAMES`). The four idx files come from the Debian/Ubuntu package
``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``, the default
source) or from the dataset's GitHub repository (``data/fashion``); either
gzipped (``*.gz``) or already decompressed. Every file is checked: its idx
header (magic number, dimensions, length), the label range, and, unless
``verify=False``, the sha256 of its decompressed bytes. Images are stored as RGB
uint8 at their 28x28 size (grey in all three channels), as image folders
(``{label}_{index:05d}.png``, the class read from the name) and as ``.npz``
(``arr_0`` NHWC uint8, ``arr_1`` labels), the formats the training scripts and
the evaluator read (as :mod:`.digits` writes them).

A held-out subset of the test split (:data:`SUBSET_PER_CLASS` images of each
class, seed :data:`SUBSET_SEED`) ships in ``testbeds/data/`` with a manifest
of its provenance, so that tests run without the dataset (:func:`load_subset`).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib
from pathlib import Path

import numpy as np

from ..evaluation import autoencoder
from ..sampling.shards import write_npz
from .testbed import Testbed, write_image_splits
from .training import classifier_spec

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")
IMAGE_SIZE = 28
SPLITS = {"train": 60_000, "test": 10_000}  # the published sizes

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"  # apt-get install dataset-fashion-mnist
SOURCE_ENV = "FASHION_MNIST_DIR"  # overrides DEBIAN_DIR
GITHUB = "https://github.com/zalandoresearch/fashion-mnist"

# the files of each split, by their names without .gz
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
# sha256 of the DECOMPRESSED idx files, computed here from the Debian package: the Debian .gz files are
# recompressed (their bytes and sizes differ from the dataset's own .gz files, whose published md5s they do not
# match), but the idx bytes inside are the same, so both the Debian copy and the files of GitHub's data/fashion pass
SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
IDX_MAGIC = {1: 0x00000801, 3: 0x00000803}  # unsigned bytes, 1 dimension (labels) or 3 (images)

SUBSET_PER_CLASS = 200
SUBSET_SEED = 0
DATA_DIR = Path(__file__).resolve().parent / "data"
SUBSET_NAME = "fashion_subset"  # DATA_DIR / fashion_subset.npz and .json


class FashionDataError(ValueError):
    """A Fashion-MNIST file missing or damaged: one message naming the file and where to get the data."""

    def __init__(self, problem: str):
        super().__init__(f"{problem}. Get Fashion-MNIST with `apt-get install dataset-fashion-mnist` "
                         f"(Debian/Ubuntu: {DEBIAN_DIR}), or download the four files of data/fashion from {GITHUB} "
                         f"into a folder and pass it (--source DIR, or ${SOURCE_ENV})")


def default_source() -> Path:
    """Where the idx files are read from: ``$FASHION_MNIST_DIR`` if set, else the Debian package's folder."""
    return Path(os.environ.get(SOURCE_ENV) or DEBIAN_DIR)


# ------------------------------------------------------------------------------------------------ idx files


def read_idx(data: bytes, name: str = "idx file") -> np.ndarray:
    """An idx file's array (uint8, 1-D labels or 3-D images) from its decompressed bytes; ``name`` is in errors."""
    if len(data) < 4:
        raise FashionDataError(f"{name} is damaged: {len(data)} bytes, shorter than an idx header")
    magic = int.from_bytes(data[:4], "big")
    ndim = magic & 0xFF
    if IDX_MAGIC.get(ndim) != magic:
        raise FashionDataError(f"{name} is damaged or not an idx file of unsigned bytes: magic number "
                               f"0x{magic:08x}, expected 0x{IDX_MAGIC[1]:08x} (labels) or 0x{IDX_MAGIC[3]:08x} "
                               f"(images)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise FashionDataError(f"{name} is truncated: {len(data)} bytes, shorter than its {header}-byte header")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise FashionDataError(f"{name} is {'truncated' if len(data) < expected else 'damaged'}: {len(data)} "
                               f"bytes, its header {shape} says {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def find_file(source: str | os.PathLike, stem: str) -> Path:
    """``stem.gz`` in ``source``, else ``stem`` (already decompressed)."""
    folder = Path(source)
    if not folder.is_dir():
        raise FashionDataError(f"Fashion-MNIST folder not found: {folder}")
    for path in (folder / f"{stem}.gz", folder / stem):
        if path.is_file():
            return path
    raise FashionDataError(f"{stem}.gz (or {stem}) not found in {folder}")


def read_bytes(path: Path) -> bytes:
    """A file's decompressed bytes (``.gz``) or its bytes."""
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        return gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as err:
        raise FashionDataError(f"{path} is damaged: not a readable gzip file ({err})") from err


def read_split(source: str | os.PathLike | None = None, split: str = "train",
               verify: bool = True) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """One split's grey images (uint8 N x 28 x 28), labels (int64) and the sha256 of each decompressed file.

    ``verify``: the files must be the published ones (:data:`SHA256`); without it (a synthetic or edited copy),
    only their structure is checked.
    """
    if split not in FILES:
        raise ValueError(f"unknown split {split!r}: expected one of {sorted(FILES)}")
    source = default_source() if source is None else Path(source)
    arrays, digests = [], {}
    for stem in FILES[split]:
        path = find_file(source, stem)
        data = read_bytes(path)
        digests[stem] = hashlib.sha256(data).hexdigest()
        if verify and digests[stem] != SHA256[stem]:
            raise FashionDataError(f"{path} is damaged or not Fashion-MNIST's: the sha256 of its decompressed bytes "
                                   f"is {digests[stem]}, expected {SHA256[stem]}")
        arrays.append((path, read_idx(data, str(path))))
    (image_path, images), (label_path, labels) = arrays
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise FashionDataError(f"{image_path} is damaged: images of shape {images.shape[1:]}, expected 28 x 28")
    if labels.ndim != 1 or len(labels) != len(images):
        raise FashionDataError(f"{label_path} is damaged: {labels.shape} labels for {len(images)} images")
    if labels.size and labels.max() >= len(CLASS_NAMES):
        raise FashionDataError(f"{label_path} is damaged: label {labels.max()} outside 0..{len(CLASS_NAMES) - 1}")
    return images, labels.astype(np.int64), digests


def to_rgb(grey: np.ndarray) -> np.ndarray:
    """N x H x W grey uint8 as N x H x W x 3 (R = G = B)."""
    return np.repeat(grey[..., None], 3, axis=-1)


def load_fashion(source: str | os.PathLike | None = None,
                 verify: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train": (images, labels), "test": (images, labels)}``, images uint8 N x 28 x 28 x 3, labels int64."""
    out = {}
    for split in FILES:
        images, labels, _ = read_split(source, split, verify)
        out[split] = (to_rgb(images), labels)
    return out


def write_fashion(out_dir: str | os.PathLike, source: str | os.PathLike | None = None,
                  verify: bool = True) -> dict[str, str]:
    """Write ``train/``, ``test/``, ``train.npz`` and ``test.npz``; return each npz's sha256."""
    return write_image_splits(out_dir, load_fashion(source, verify), 5)


# ------------------------------------------------------------------------- the shipped held-out subset


def subset_indices(labels: np.ndarray, per_class: int = SUBSET_PER_CLASS, seed: int = SUBSET_SEED) -> np.ndarray:
    """Sorted indices of ``per_class`` images of each class, drawn without replacement, class by class, by
    ``numpy.random.default_rng(seed).choice``."""
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(len(CLASS_NAMES)):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ValueError(f"class {c} ({CLASS_NAMES[c]}) has {len(members)} images, fewer than {per_class}")
        chosen.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def write_subset(out_dir: str | os.PathLike, source: str | os.PathLike | None = None, verify: bool = True,
                 per_class: int = SUBSET_PER_CLASS, seed: int = SUBSET_SEED) -> dict:
    """Write the held-out subset of the test split (``fashion_subset.npz``: ``images`` grey uint8 N x 28 x 28,
    ``labels`` int64, ``indices`` into the test split) and its manifest (``fashion_subset.json``); return it."""
    grey, labels, digests = read_split(source, "test", verify)
    index = subset_indices(labels, per_class, seed)
    arrays = {"images": np.ascontiguousarray(grey[index]), "labels": labels[index], "indices": index}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    npz = out / f"{SUBSET_NAME}.npz"
    write_npz(npz, arrays, compress=True)
    manifest = {
        "what": f"a held-out subset of Fashion-MNIST's test split: {per_class} images of each class, never used "
                f"for training; what the tests read without the dataset (guided_diffusion.testbeds.fashion)",
        "source": {"split": "test", "files_sha256": digests, "sha256_of": "the decompressed idx files",
                   "published": all(digests[k] == SHA256[k] for k in digests), "from": GITHUB},
        "selection": {"per_class": per_class, "seed": seed,
                      "method": "numpy.random.default_rng(seed).choice(indices of the class, per_class, "
                                "replace=False) for class 0 to 9 in turn; the union sorted (subset_indices)"},
        "count": int(len(index)),
        "class_names": list(CLASS_NAMES),
        "arrays": {"images": "uint8 N x 28 x 28, grey (load_subset repeats it to RGB)", "labels": "int64",
                   "indices": "int64, each image's index in the test split"},
        "arrays_sha256": {k: hashlib.sha256(v.tobytes()).hexdigest() for k, v in arrays.items()},
        "file_sha256": hashlib.sha256(npz.read_bytes()).hexdigest(),
        "file_bytes": npz.stat().st_size,
        "licence": "MIT, Copyright (c) 2017 Zalando SE (fashion_mnist_LICENSE.txt beside this file)",
        "rebuild": "python scripts/prepare_fashion.py --subset_dir guided_diffusion/testbeds/data",
    }
    (out / f"{SUBSET_NAME}.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def subset_manifest(folder: str | os.PathLike = DATA_DIR) -> dict:
    return json.loads((Path(folder) / f"{SUBSET_NAME}.json").read_text())


def load_subset(folder: str | os.PathLike = DATA_DIR) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The shipped held-out subset: images uint8 N x 28 x 28 x 3 (R = G = B), labels int64 and each image's index
    in the test split."""
    with np.load(Path(folder) / f"{SUBSET_NAME}.npz", allow_pickle=False) as npz:
        return to_rgb(npz["images"]), npz["labels"], npz["indices"]


# ------------------------------------------ the models' training (scripts/train_fashion_models.py, docs/fashion.md)

TRAINING_DATA = ("Fashion-MNIST train split (60,000), scripts/prepare_fashion.py (28x28 RGB grey); held-out "
                 "metrics on the shipped test subset (2,000)")  # in manifests

# native 28x28: ADM's U-Net at 28, 14, 7 (channel_mult 1,2,2), attention at 7 only; the digits' recipe otherwise
# (constant learning rate, EMA 0.999 shipped: results/digits/colour_cast.md). No flips anywhere: Fashion-MNIST's
# shoes all face left. num_classes for the unconditional model too: its manifest tells the main job the label set.
DIFFUSION = dict(image_size=28, num_channels=32, num_res_blocks=2, channel_mult="1,2,2", attention_resolutions="7",
                 num_head_channels=32, learn_sigma=True, diffusion_steps=1000, noise_schedule="cosine",
                 use_scale_shift_norm=True, resblock_updown=True, dropout=0.1, num_classes=10)
DIFFUSION_STEPS = 8500
DIFFUSION_TRAINING = dict(lr=3e-4, batch_size=64, ema_rate="0.999,0.9995,0.9999", max_steps=DIFFUSION_STEPS,
                          save_interval=250, log_interval=100, random_flip=False)
NOISE = dict(diffusion_steps=1000, noise_schedule="cosine", learn_sigma=True)
CLASSIFIER_TRAINING = dict(batch_size=128, lr=1e-3, anneal_lr=True, random_flip=False, log_interval=100,
                           num_classes=10, image_size=28)
SHIPPED_WEIGHTS = {"adm": ("ema_0.999", DIFFUSION_STEPS), "cadm": ("ema_0.999", DIFFUSION_STEPS)}


def classifier(iterations: int, seed: int, noised: bool, **arch) -> dict:
    """A classifier's spec, trained on train.npz, with a checkpoint every 500 steps (resumable)."""
    return {**classifier_spec(iterations, seed, noised, {**NOISE, **CLASSIFIER_TRAINING}, save_interval=500,
                              **arch), "data": "train.npz"}


def clean(arch: str, iterations: int, seed: int) -> dict:
    """A bank member: a torchvision architecture adapted to 28x28 (evaluation.clean_classifiers), clean images."""
    return classifier(iterations, seed, False, classifier_arch=arch)


# the guide: ADM's encoder as for the digits (attention at 14 and 7, attention pooling), noise-aware
GUIDE = dict(classifier_width=32, classifier_depth=2, classifier_channel_mult="1,2,2",
             classifier_attention_resolutions="14,7", classifier_pool="attention")

# Listed in training order: `--jobs 2` gives each free lane the next one, so the two diffusion models train side by
# side, then the rest (guided_diffusion.testbeds.training.schedule).
MODELS = {
    "adm": dict(script="image_train", kind="diffusion", steps=DIFFUSION_STEPS, weights=SHIPPED_WEIGHTS["adm"][0],
                data="train.npz", flags={**DIFFUSION, **DIFFUSION_TRAINING, "class_cond": False, "seed": 0}),
    "cadm": dict(script="image_train", kind="diffusion", steps=DIFFUSION_STEPS, weights=SHIPPED_WEIGHTS["cadm"][0],
                 data="train.npz", flags={**DIFFUSION, **DIFFUSION_TRAINING, "class_cond": True, "label_dropout": 0.1,
                                          "seed": 0}),
    "classifier": classifier(5000, 0, True, **GUIDE),
    # evaluation only: the feature network of FID / sFID / IS / precision / recall (ADM's encoder: its middle
    # block gives sFID's spatial features), and the robustness bank, one architecture each
    "features": classifier(3000, 10, False, classifier_width=32, classifier_depth=2, classifier_channel_mult="1,2,2",
                           classifier_attention_resolutions="7", classifier_pool="adaptive"),
    # evaluation only: a feature space learned without labels (FID / precision / recall beside the classifier's)
    "autoencoder": dict(script="autoencoder_train", kind="autoencoder", steps=3000, data="train.npz",
                        flags={**autoencoder.DEFAULTS, **autoencoder.TRAINING, "iterations": 3000, "seed": 11}),
    "bank1": clean("resnet18", 2000, 1),
    "bank2": clean("densenet", 2000, 2),
    "bank3": clean("squeezenet", 2000, 3),
    "bank4": clean("mobilenet_v2", 2000, 4),
    "bank5": clean("vgg", 2000, 5),
    "bank6": classifier(2000, 6, False, classifier_width=32, classifier_depth=1, classifier_channel_mult="1,2,2",
                        classifier_attention_resolutions="", classifier_pool="spatial"),
}
# grey_data: the networks do not learn the noise's colour (docs/fashion.md, "The colour cast"), its exact value
SAMPLE_FLAGS = {name: dict(timestep_respacing="100", num_samples=64, batch_size=64, classifier_scale=scale,
                           classifier_path="fashion/classifier", label_set="fashion", grey_data=True)
                for name, scale in (("adm", 4.0), ("cadm", 2.0))}  # the scales of the vanilla sweep's lowest FID

# CPU seconds of one training step of each spec, one thread, the larger of two measurements on the busy 2-core CPU
# (scripts/time_training.py; docs/fashion.md: the commands, the contention, both measurements)
SECONDS_PER_STEP = {"adm": 1.97, "cadm": 2.00, "classifier": 1.25, "features": 0.93, "autoencoder": 0.38,
                    "bank1": 1.30, "bank2": 0.59, "bank3": 0.31, "bank4": 0.47, "bank5": 0.29, "bank6": 0.65}
QUALITY_SAMPLES = 1000  # unguided samples per diffusion model for its manifest's FID against the test split
# preparing the data and packaging, after the training (held-out metrics on the 2,000-image subset; for each diffusion
# model its no-flag job and the 1,000 unguided samples, 100 steps each, at a measured 0.9 to 1.1 s per forward pass of
# 100 images on one thread): an estimate from those step times, not a measurement of the whole
PACKAGING_SECONDS = 1800


# ----------------------------------------------------------------------------------------------- the testbed


def test_split() -> tuple[np.ndarray, np.ndarray]:
    """The test split (10,000 images, RGB grey, and labels), read and checked from the dataset's files."""
    images, labels, _ = read_split(None, "test")
    return to_rgb(images), labels


def train_split() -> tuple[np.ndarray, np.ndarray]:
    """The training split (60,000 images, RGB grey, and labels), read and checked from the dataset's files."""
    images, labels, _ = read_split(None, "train")
    return to_rgb(images), labels


# the classes that share features (classifiers confuse them most): Figure 4 per family
FAMILIES = {"tops": (0, 2, 3, 4, 6), "footwear": (5, 7, 9), "apart": (1, 8)}

# samples are scored against the test split, which no model saw (the training split's own scores are the floor);
# FID also in the autoencoder's label-free space
FASHION = Testbed(name="fashion", models={"adm": "fashion/adm", "cadm": "fashion/cadm"},
                  classifier="fashion/classifier", features="fashion/features",
                  bank=tuple(f"fashion/bank{i}" for i in range(1, 7)), label_set="fashion", num_classes=10,
                  reference=test_split, label_free="fashion/autoencoder", families=FAMILIES, held_in=train_split)
