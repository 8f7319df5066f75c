"""Training images from a folder of image files or from an ``.npz`` array file.

Batches are ``(images, extra)``: images are NCHW float32 in [-1, 1]; ``extra`` holds
``"y"`` (int64 class labels) when ``class_cond`` is set. Each distributed rank reads
its own shard (every ``world_size``-th item starting at its rank).
"""

from __future__ import annotations

import math
import random
import signal
from collections.abc import Iterator, Sequence

import blobfile as bf
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from . import dist_util
from .train_util import STOP_SIGNALS

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "gif")


def ignore_stop_signals(worker_id: int) -> None:
    """A loader worker's start: a stop signal sent to the whole process group (a scheduler's) is left to the
    training loop, which saves its step and then shuts the workers down (train_util.StopRequest)."""
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)


def load_data(
    *,
    data_dir: str,
    batch_size: int,
    image_size: int,
    class_cond: bool = False,
    deterministic: bool = False,
    random_crop: bool = False,
    random_flip: bool = True,
) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """Yield ``(images, extra)`` batches forever.

    ``data_dir`` is a folder searched recursively for jpg/jpeg/png/gif files, whose class is
    the file-name prefix before the first ``_`` (sorted unique prefixes give the indices), or
    an ``.npz`` file with ``arr_0`` (uint8 NHWC images) and ``arr_1`` (labels) as written by
    the sampling scripts. Images are resized and center-cropped (or randomly cropped) to
    ``image_size``; with ``deterministic`` the order is fixed, otherwise shuffled.
    """
    if not data_dir:
        raise ValueError("unspecified data directory")
    rank, world_size = dist_util.get_rank(), dist_util.get_world_size()
    if data_dir.endswith(".npz"):
        dataset: Dataset = NpzDataset(
            image_size,
            data_dir,
            class_cond=class_cond,
            shard=rank,
            num_shards=world_size,
            random_crop=random_crop,
            random_flip=random_flip,
        )
    else:
        paths = _list_image_files_recursively(data_dir)
        if not paths:
            raise ValueError(f"no {'/'.join(IMAGE_EXTENSIONS)} images found in {data_dir}")
        classes = class_labels_from_filenames(paths) if class_cond else None
        dataset = ImageDataset(
            image_size,
            paths,
            classes=classes,
            shard=rank,
            num_shards=world_size,
            random_crop=random_crop,
            random_flip=random_flip,
        )
    if len(dataset) < batch_size:
        raise ValueError(
            f"{data_dir}: {len(dataset)} images on rank {rank} of {world_size}, "
            f"fewer than batch_size={batch_size}"
        )
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=not deterministic,
        num_workers=1,
        drop_last=True,
        worker_init_fn=ignore_stop_signals,
    )
    while True:
        yield from loader


def load_labelled_images(data_dir: str, image_size: int, max_images: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """All images (the first ``max_images`` if > 0) of an ``.npz`` or image folder, in order, centre-cropped,
    unflipped: NCHW float32 in [-1, 1] and int64 labels."""
    if data_dir.endswith(".npz"):
        dataset: Dataset = NpzDataset(image_size, data_dir, class_cond=True, random_flip=False)
    else:
        paths = _list_image_files_recursively(data_dir)
        if not paths:
            raise ValueError(f"no {'/'.join(IMAGE_EXTENSIONS)} images found in {data_dir}")
        dataset = ImageDataset(image_size, paths, classes=class_labels_from_filenames(paths), random_flip=False)
    count = len(dataset) if max_images <= 0 else min(max_images, len(dataset))
    items = [dataset[i] for i in range(count)]
    return torch.from_numpy(np.stack([x for x, _ in items])), torch.tensor([int(e["y"]) for _, e in items])


def _list_image_files_recursively(data_dir: str) -> list[str]:
    results = []
    for entry in sorted(bf.listdir(data_dir)):
        full_path = bf.join(data_dir, entry)
        if bf.isdir(full_path):
            results.extend(_list_image_files_recursively(full_path))
        elif "." in entry and entry.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS:
            results.append(full_path)
    return results


def class_labels_from_filenames(paths: Sequence[str]) -> list[int]:
    """Class index of each path: the rank of its name prefix (before the first ``_``)."""
    names = [bf.basename(p).split("_")[0] for p in paths]
    index = {name: i for i, name in enumerate(sorted(set(names)))}
    return [index[name] for name in names]


class _CroppingDataset(Dataset):
    """Shared crop/flip/normalise step of the image datasets."""

    def __init__(self, resolution: int, random_crop: bool, random_flip: bool):
        self.resolution = resolution
        self.random_crop = random_crop
        self.random_flip = random_flip

    def _to_array(self, pil_image: Image.Image) -> np.ndarray:
        if self.random_crop:
            arr = random_crop_arr(pil_image, self.resolution)
        else:
            arr = center_crop_arr(pil_image, self.resolution)
        if self.random_flip and random.random() < 0.5:
            arr = arr[:, ::-1]
        arr = arr.astype(np.float32) / 127.5 - 1
        return np.ascontiguousarray(np.transpose(arr, [2, 0, 1]))


class ImageDataset(_CroppingDataset):
    """One shard of a list of image files, with optional integer classes."""

    def __init__(
        self,
        resolution: int,
        image_paths: Sequence[str],
        classes: Sequence[int] | None = None,
        shard: int = 0,
        num_shards: int = 1,
        random_crop: bool = False,
        random_flip: bool = True,
    ):
        super().__init__(resolution, random_crop, random_flip)
        self.local_images = list(image_paths)[shard::num_shards]
        self.local_classes = None if classes is None else list(classes)[shard::num_shards]

    def __len__(self) -> int:
        return len(self.local_images)

    def __getitem__(self, idx: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        with bf.BlobFile(self.local_images[idx], "rb") as f:
            pil_image = Image.open(f)
            pil_image.load()
        out = {}
        if self.local_classes is not None:
            out["y"] = np.array(self.local_classes[idx], dtype=np.int64)
        return self._to_array(pil_image.convert("RGB")), out


class NpzDataset(_CroppingDataset):
    """One shard of an ``.npz`` file with ``arr_0`` uint8 NHWC images and ``arr_1`` labels."""

    def __init__(
        self,
        resolution: int,
        path: str,
        class_cond: bool = False,
        shard: int = 0,
        num_shards: int = 1,
        random_crop: bool = False,
        random_flip: bool = True,
    ):
        super().__init__(resolution, random_crop, random_flip)
        with bf.BlobFile(path, "rb") as f, np.load(f) as npz:
            images = npz["arr_0"]
            if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
                raise ValueError(
                    f"{path}: arr_0 must be uint8 NHWC RGB, got {images.dtype} {images.shape}"
                )
            self.local_images = images[shard::num_shards]
            self.local_classes = None
            if class_cond:
                if "arr_1" not in npz.files:
                    raise ValueError(f"{path}: class_cond needs labels in arr_1")
                self.local_classes = npz["arr_1"].astype(np.int64)[shard::num_shards]

    def __len__(self) -> int:
        return len(self.local_images)

    def __getitem__(self, idx: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        out = {}
        if self.local_classes is not None:
            out["y"] = np.array(self.local_classes[idx], dtype=np.int64)
        return self._to_array(Image.fromarray(self.local_images[idx])), out


def _halve_while_large(pil_image: Image.Image, target: int) -> Image.Image:
    """Downsample by 2 with a BOX filter while the smaller side is at least ``2 * target``."""
    while min(*pil_image.size) >= 2 * target:
        pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=Image.BOX)
    return pil_image


def _resize_smaller_side(pil_image: Image.Image, target: int) -> np.ndarray:
    """BICUBIC resize so that the smaller side becomes ``target``."""
    pil_image = _halve_while_large(pil_image, target)
    scale = target / min(*pil_image.size)
    size = tuple(round(x * scale) for x in pil_image.size)
    return np.array(pil_image.resize(size, resample=Image.BICUBIC))


def center_crop_arr(pil_image: Image.Image, image_size: int) -> np.ndarray:
    """Resize (smaller side to ``image_size``) and take the central square, as HWC uint8."""
    arr = _resize_smaller_side(pil_image, image_size)
    top = (arr.shape[0] - image_size) // 2
    left = (arr.shape[1] - image_size) // 2
    return arr[top : top + image_size, left : left + image_size]


def random_crop_arr(
    pil_image: Image.Image,
    image_size: int,
    min_crop_frac: float = 0.8,
    max_crop_frac: float = 1.0,
) -> np.ndarray:
    """Resize the smaller side to a random size in [size/max_frac, size/min_frac], crop randomly."""
    low = math.ceil(image_size / max_crop_frac)
    high = math.ceil(image_size / min_crop_frac)
    arr = _resize_smaller_side(pil_image, random.randrange(low, high + 1))
    top = random.randrange(arr.shape[0] - image_size + 1)
    left = random.randrange(arr.shape[1] - image_size + 1)
    return arr[top : top + image_size, left : left + image_size]


def load_superres_data(
    data_dir: str, batch_size: int, large_size: int, small_size: int, class_cond: bool = False,
    random_flip: bool = True,
) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """Batches of large images with their area-downsampled versions as ``low_res``."""
    data = load_data(data_dir=data_dir, batch_size=batch_size, image_size=large_size, class_cond=class_cond,
                     random_flip=random_flip)
    for large_batch, model_kwargs in data:
        model_kwargs["low_res"] = F.interpolate(large_batch, small_size, mode="area")
        yield large_batch, model_kwargs
