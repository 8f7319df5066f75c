"""Evaluating sample batches against reference batches, the way the ADM evaluator does.

``.npz`` batches (``arr_0``: uint8 ``[N, H, W, 3]`` images) are streamed from
the zip member (:class:`NpzImages`), their features extracted in contiguous
shards over the ranks of a ``torch.distributed`` job and gathered in order on
rank 0 (:func:`extract_npz`), and turned into the five ADM numbers
(:func:`evaluate`) and the extra ones (:func:`extra_metrics`). The arithmetic
itself lives in :mod:`guided_diffusion.evaluation.metrics`.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from .. import dist_util
from . import metrics
from .feature_extractors import FeatureExtractor


class NpzImages:
    """Lazy reader of a uint8 ``[N, H, W, 3]`` array stored in an ``.npz`` file.

    Reads the ``.npy`` header of the zip member and then only the requested
    rows, so a 50,000-image batch never sits in memory at once. Works for
    ``np.savez`` and ``np.savez_compressed`` files (seeking in a compressed
    member decompresses up to that point).
    """

    def __init__(self, path: str | os.PathLike, key: str = "arr_0"):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such file")
        self.key = key
        try:
            with zipfile.ZipFile(self.path) as zf:
                members = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
                if key not in members:
                    raise ValueError(f"{self.path}: no array {key!r} (arrays: {members})")
                with zf.open(f"{key}.npy") as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                    else:
                        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                    self._offset = f.tell()
        except (zipfile.BadZipFile, EOFError, OSError) as err:
            raise ValueError(f"{self.path} is not a readable .npz file (not a zip archive, or truncated): "
                             f"{err}") from err
        if dtype != np.uint8 or len(shape) != 4 or shape[-1] != 3 or fortran:
            raise ValueError(
                f"{self.path}: {key} must be a C-ordered uint8 array [N, H, W, 3], got "
                f"{dtype} {shape}{' (Fortran order)' if fortran else ''}"
            )
        self.shape: tuple[int, ...] = shape

    def __len__(self) -> int:
        return self.shape[0]

    def batches(self, batch_size: int, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Consecutive batches of rows ``start:stop``."""
        stop = len(self) if stop is None else min(stop, len(self))
        row_bytes = int(np.prod(self.shape[1:]))
        with zipfile.ZipFile(self.path) as zf, zf.open(f"{self.key}.npy") as f:
            f.seek(self._offset + start * row_bytes)
            for begin in range(start, stop, batch_size):
                n = min(batch_size, stop - begin)
                buffer = bytearray(n * row_bytes)  # writable, unlike the bytes of f.read
                try:
                    complete = f.readinto(buffer) == len(buffer)
                except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as err:
                    raise ValueError(f"{self.path}: {self.key} cannot be read ({err}); is the file truncated?") from err
                if not complete:
                    raise ValueError(f"{self.path}: {self.key} is truncated")
                yield np.frombuffer(buffer, dtype=np.uint8).reshape((n,) + self.shape[1:])


def check_image_counts(ref: NpzImages, sample: NpzImages, nhood_size: int) -> None:
    """Raise a ValueError when a batch has too few images for FID and precision/recall."""
    for images in (ref, sample):
        if len(images) <= nhood_size:
            raise ValueError(
                f"{images.path}: {len(images)} images; FID needs at least 2 and "
                f"precision/recall more than nhood_size={nhood_size}"
            )


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Contiguous rows ``[start, stop)`` of rank ``rank``; shards differ by at most one row."""
    return n * rank // world_size, n * (rank + 1) // world_size


def gather_to_rank0(local: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """Concatenate every rank's arrays in rank order on rank 0 (others get ``None``)."""
    if dist_util.get_world_size() == 1:
        return local
    parts: list | None = [None] * dist_util.get_world_size() if dist_util.get_rank() == 0 else None
    dist.gather_object(local, parts, dst=0)
    if parts is None:
        return None
    parts = [p for p in parts if p]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def extract_npz(
    path: str | os.PathLike,
    extractor: FeatureExtractor,
    batch_size: int = 64,
    desc: str = "",
    keys: tuple[str, ...] | None = None,
) -> dict[str, np.ndarray] | None:
    """Features of all images of ``path`` (``arr_0``), sharded over the ranks.

    Keeps only ``keys`` when given. Returns the full feature dict on rank 0
    (or in a single process) and ``None`` on the other ranks.
    """
    images = NpzImages(path)
    rank = dist_util.get_rank()
    start, stop = shard_bounds(len(images), rank, dist_util.get_world_size())
    parts = []
    with tqdm(total=stop - start, desc=desc, unit="img", disable=rank != 0, leave=False) as bar:
        for batch in images.batches(batch_size, start, stop):
            features = extractor.extract(batch)
            parts.append({k: v for k, v in features.items() if keys is None or k in keys})
            bar.update(len(batch))
    local = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
    return gather_to_rank0(local)


def fid_statistics(path: str | os.PathLike, features: dict[str, np.ndarray], use_stored: bool) -> dict:
    """``(mu, sigma)`` for ``pool`` and ``spatial``: stored in the file when allowed, else fitted."""
    with np.load(path) as npz:
        stored = {k: npz[k] for k in ("mu", "sigma", "mu_s", "sigma_s") if use_stored and k in npz.files}
    stats = {}
    for key, (mu, sigma) in {"pool": ("mu", "sigma"), "spatial": ("mu_s", "sigma_s")}.items():
        if mu in stored and sigma in stored:
            stats[key] = (stored[mu], stored[sigma])
        elif key in features:
            stats[key] = metrics.feature_statistics(features[key])
    return stats


def evaluate(
    ref_features: dict[str, np.ndarray],
    sample_features: dict[str, np.ndarray],
    ref_stats: dict,
    sample_stats: dict,
    nhood_size: int = 3,
    split_size: int = 5000,
    device: torch.device | None = None,
) -> dict[str, float]:
    """The five ADM numbers (``nan`` where the extractor lacks the feature)."""
    nan = float("nan")
    result = {
        "inception_score": metrics.inception_score(sample_features["softmax"], split_size)
        if "softmax" in sample_features
        else nan,
    }
    for name, key in (("fid", "pool"), ("sfid", "spatial")):
        have = key in sample_stats and key in ref_stats
        result[name] = metrics.frechet_distance(*sample_stats[key], *ref_stats[key]) if have else nan
    result["precision"], result["recall"] = metrics.precision_recall(
        ref_features["pool"], sample_features["pool"], nhood_size, device=device
    )
    return result


def extra_metrics(
    ref_path: str | os.PathLike,
    sample_path: str | os.PathLike,
    ref: dict,
    sample: dict,
    nhood_size: int,
    device: torch.device | None,
) -> dict[str, float]:
    """Density and coverage (k=5, Naeem et al.), and per-class recall when both files have ``arr_1``."""
    density, coverage = metrics.density_coverage(ref["pool"], sample["pool"], device=device)
    with np.load(ref_path) as r, np.load(sample_path) as s:
        labels = (r["arr_1"], s["arr_1"]) if "arr_1" in r.files and "arr_1" in s.files else None
    pcr = float("nan")
    if labels is not None:
        pcr = metrics.per_class_recall(ref["pool"], labels[0], sample["pool"], labels[1], nhood_size, device)
    return {"density": density, "coverage": coverage, "per_class_recall": pcr}
