"""What an experiment needs to know of a testbed: its shipped networks by role, its label set and the
images samples are scored against."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from ..sampling.shards import write_npz


@dataclass(frozen=True)
class Testbed:
    """A testbed's shipped networks (by name), label set, reference images and real images beside them."""

    name: str
    models: dict[str, str]  # a setting's model key (adm, cadm) -> shipped diffusion model
    classifier: str  # the noise-aware guidance classifier
    features: str  # the feature network of FID / sFID / IS / precision / recall
    bank: tuple[str, ...]  # independent classifiers of the robustness score
    label_set: str  # class descriptions and shipped relevance matrix in class_descriptions/
    num_classes: int
    reference: Callable[[], tuple[np.ndarray, np.ndarray]]  # uint8 NHWC images and labels scored against
    label_free: str = ""  # an autoencoder: FID / precision / recall also in a feature space learned without labels
    families: dict[str, tuple[int, ...]] = field(default_factory=dict)  # groups of classes that share features
    # real images of the reference's distribution that are not in it: the data's own scores, a model's floor
    held_in: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None

    def first_of_each_class(self, per_class: int) -> Testbed:
        """This testbed scored against only the first ``per_class`` reference images of each class (toy runs: the
        reference features and the confusion relevance cost in proportion); ``0``: all of them."""
        if not per_class:
            return self
        images, labels = self.reference()
        keep = first_of_each(labels, self.num_classes, per_class)
        return replace(self, reference=lambda: (images[keep], labels[keep]))


def first_of_each(labels: np.ndarray, num_classes: int, per_class: int) -> np.ndarray:
    """The indices of the first ``per_class`` images of each class (fewer where a class has fewer), ascending."""
    return np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(num_classes)]))


def write_image_splits(out_dir: str | os.PathLike, splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
                       index_digits: int) -> dict[str, str]:
    """Write each split as an image folder (``{label}_{index}.png``, the index zero-padded to ``index_digits``)
    and as ``{split}.npz`` (``arr_0`` NHWC uint8, ``arr_1`` labels); return each npz's sha256."""
    out = Path(out_dir)
    hashes = {}
    for split, (images, labels) in splits.items():
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            Image.fromarray(image).save(folder / f"{label}_{i:0{index_digits}d}.png")
        write_npz(out / f"{split}.npz", {"arr_0": images, "arr_1": labels})
        hashes[split] = hashlib.sha256((out / f"{split}.npz").read_bytes()).hexdigest()
    return hashes
