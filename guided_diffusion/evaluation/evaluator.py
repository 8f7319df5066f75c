"""Evaluating sample batches against reference batches, the way the ADM evaluator does.

A batch is an ``.npz`` file (``arr_0``: uint8 ``[N, H, W, 3]`` images, optional ``arr_1`` labels) streamed
from the zip member (:class:`NpzImages`), or a folder of PNG / JPEG images without labels
(:class:`ImageFolder`); :func:`open_images` takes either. Features are extracted in contiguous shards over the
ranks of a ``torch.distributed`` job and gathered in order on rank 0 (:func:`extract`). A reference batch's
features and statistics are kept in a cache folder under the batch's content hash and the extractor's
identity (:func:`reference_features`), so that scoring many sample batches against one reference extracts it
once. They are turned into the five ADM numbers (:func:`evaluate`) and the extra ones
(:func:`extra_metrics`). The arithmetic itself lives in :mod:`guided_diffusion.evaluation.metrics`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image
from tqdm.auto import tqdm

from .. import dist_util
from . import metrics
from .feature_extractors import FeatureExtractor, cache_dir

FEATURE_CACHE_VERSION = 1  # raise when a cache entry's content, or how features are computed, changes
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_STORED = {"pool": ("mu", "sigma"), "spatial": ("mu_s", "sigma_s")}  # statistics an ADM reference .npz may hold
_UNREADABLE = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


class NpzImages:
    """Lazy reader of a uint8 ``[N, H, W, 3]`` array stored in an ``.npz`` file.

    Reads the ``.npy`` header of the zip member and then only the requested
    rows, so a 50,000-image batch never sits in memory at once. Works for
    ``np.savez`` and ``np.savez_compressed`` files (seeking in a compressed
    member decompresses up to that point).
    """

    def __init__(self, path: str | os.PathLike, key: str = "arr_0"):
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"{self.path} is a folder; an .npz file is needed here (arr_0 images and the arr_1 "
                             f"labels that a folder of images does not have)")
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

    def labels(self) -> np.ndarray | None:
        """``arr_1``, when the file has it."""
        with np.load(self.path) as npz:
            return npz["arr_1"] if "arr_1" in npz.files else None

    def digest(self) -> str:
        """sha256 of the file."""
        with open(self.path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()


class ImageFolder:
    """The PNG and JPEG images of a folder and its subfolders, in the order of their paths, as a uint8
    ``[N, H, W, 3]`` batch (RGB: grey and palette images are converted, alpha dropped), read batch by batch.

    All images must have one size (checked from their headers when opened). A folder has no labels.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"{self.path}: no such folder")
        self.files = sorted(p for p in self.path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise ValueError(f"{self.path}: no .png, .jpg or .jpeg images in this folder")
        sizes: dict[tuple[int, int], Path] = {}
        for file in self.files:
            with self._open(file) as image:
                sizes.setdefault(image.size, file)
        if len(sizes) > 1:
            (a, file_a), (b, file_b) = list(sizes.items())[:2]
            raise ValueError(f"{self.path}: images of different sizes, {a[0]}x{a[1]} ({file_a.name}) and "
                             f"{b[0]}x{b[1]} ({file_b.name}); all must have one size")
        ((width, height),) = sizes
        self.shape: tuple[int, ...] = (len(self.files), height, width, 3)

    @staticmethod
    def _open(file: Path) -> Image.Image:
        try:
            return Image.open(file)
        except OSError as err:  # PIL.UnidentifiedImageError too
            raise ValueError(f"{file}: not a readable image ({err})") from err

    def __len__(self) -> int:
        return self.shape[0]

    def batches(self, batch_size: int, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Consecutive batches of images ``start:stop``."""
        stop = len(self) if stop is None else min(stop, len(self))
        for begin in range(start, stop, batch_size):
            yield np.stack([self._pixels(f) for f in self.files[begin:min(begin + batch_size, stop)]])

    def _pixels(self, file: Path) -> np.ndarray:
        with self._open(file) as image:
            try:
                return np.asarray(image.convert("RGB"))
            except OSError as err:  # truncated or damaged past the header
                raise ValueError(f"{file}: not a readable image ({err})") from err

    def labels(self) -> None:
        """None: a folder of images has no labels."""
        return None

    def digest(self) -> str:
        """sha256 of the images' paths (relative to the folder) and contents, in order."""
        digest = hashlib.sha256()
        for file in self.files:
            with open(file, "rb") as f:
                digest.update(file.relative_to(self.path).as_posix().encode() + b"\0")
                digest.update(hashlib.file_digest(f, "sha256").digest())
        return digest.hexdigest()


Images = NpzImages | ImageFolder


def open_images(path: str | os.PathLike) -> Images:
    """The batch at ``path``: a folder of images, else an ``.npz`` file."""
    return ImageFolder(path) if Path(path).is_dir() else NpzImages(path)


def check_image_counts(ref: Images, sample: Images, nhood_size: int) -> None:
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


def extract(
    images: Images,
    extractor: FeatureExtractor,
    batch_size: int = 64,
    desc: str = "",
    keys: tuple[str, ...] | None = None,
    progress: bool = True,
) -> dict[str, np.ndarray] | None:
    """Features of all ``images``, sharded over the ranks.

    Keeps only ``keys`` when given. Returns the full feature dict on rank 0
    (or in a single process) and ``None`` on the other ranks. With ``progress``,
    rank 0 shows a bar of the images done when stderr is a terminal.
    """
    rank = dist_util.get_rank()
    start, stop = shard_bounds(len(images), rank, dist_util.get_world_size())
    parts = []
    with tqdm(total=stop - start, desc=desc, unit="img", disable=None if progress and rank == 0 else True,
              leave=False) as bar:
        for batch in images.batches(batch_size, start, stop):
            features = extractor.extract(batch)
            parts.append({k: v for k, v in features.items() if keys is None or k in keys})
            bar.update(len(batch))
    local = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
    return gather_to_rank0(local)


def extract_npz(
    path: str | os.PathLike,
    extractor: FeatureExtractor,
    batch_size: int = 64,
    desc: str = "",
    keys: tuple[str, ...] | None = None,
) -> dict[str, np.ndarray] | None:
    """:func:`extract` of the images (``arr_0``) of the ``.npz`` file ``path``."""
    return extract(NpzImages(path), extractor, batch_size, desc, keys)


def fitted_statistics(features: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``(mu, sigma)`` of the ``pool`` and ``spatial`` features present."""
    return {key: metrics.feature_statistics(features[key]) for key in _STORED if key in features}


def fid_statistics(
    path: str | os.PathLike,
    features: dict[str, np.ndarray],
    use_stored: bool,
    fitted: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict:
    """``(mu, sigma)`` for ``pool`` and ``spatial``: those stored in the ``.npz`` file ``path`` when allowed,
    else ``fitted`` (computed before: the cache's) when given, else fitted to ``features``."""
    stats = dict(fitted) if fitted is not None else fitted_statistics(features)
    if use_stored and Path(path).is_file():
        with np.load(path) as npz:
            stats.update({key: (npz[mu], npz[sigma]) for key, (mu, sigma) in _STORED.items()
                          if mu in npz.files and sigma in npz.files})
    return stats


def feature_cache_dir() -> Path:
    """The default cache of reference features: ``reference_features`` in
    :func:`~guided_diffusion.evaluation.feature_extractors.cache_dir` (``$GUIDED_DIFFUSION_CACHE``, else
    ``~/.cache/guided_diffusion``)."""
    return cache_dir() / "reference_features"


def cache_key(images: Images, extractor: FeatureExtractor, keys: tuple[str, ...]) -> str:
    """The name of the cache entry of ``images``' features ``keys`` by ``extractor``: sha256 of the images'
    content, the extractor's identity, the keys and :data:`FEATURE_CACHE_VERSION`."""
    text = json.dumps({"version": FEATURE_CACHE_VERSION, "images": images.digest(),
                       "extractor": extractor.identity(), "keys": sorted(keys)})
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Reference:
    """A reference batch's features and their fitted statistics on rank 0 (empty on other ranks), and where
    they came from."""

    features: dict[str, np.ndarray]
    stats: dict[str, tuple[np.ndarray, np.ndarray]]
    cached: bool  # read from the cache
    note: str  # what happened, to log (rank 0)


def reference_features(
    images: Images,
    extractor: FeatureExtractor,
    batch_size: int = 64,
    cache: Path | None = None,
    keys: tuple[str, ...] = ("pool", "spatial"),
    progress: bool = True,
) -> Reference:
    """Features ``keys`` of the reference batch and their statistics, read from the ``cache`` folder (None: no
    cache) where an earlier run stored them, else extracted over the ranks and stored there.

    An entry is written to a temporary file beside it and renamed, so that runs side by side never read half
    an entry; one that cannot be read (damaged, or of another shape) is extracted again and replaced; a cache
    that cannot be written is logged and skipped. Rank 0 alone hashes and reads, and tells the other ranks
    whether to extract.
    """
    if cache is None:
        return _extracted(images, extractor, batch_size, keys, None, progress)
    found: dict[str, np.ndarray] = {}

    def lookup() -> tuple[str, bool]:
        entry = cache / f"{cache_key(images, extractor, keys)}.npz"
        found.update(_read_entry(entry, len(images), keys) or {})
        return str(entry), bool(found)

    entry, hit = dist_util.on_rank0(lookup)
    entry = Path(entry)
    if hit:
        features = {k: v for k, v in found.items() if k in keys}
        stats = {k: (found[f"mu_{k}"], found[f"sigma_{k}"]) for k in features}
        return Reference(features, stats, True, f"reference batch features read from the cache: {entry}")
    return _extracted(images, extractor, batch_size, keys, entry, progress)


def _extracted(images: Images, extractor: FeatureExtractor, batch_size: int, keys: tuple[str, ...],
               entry: Path | None, progress: bool = True) -> Reference:
    """The reference batch's features extracted, and stored in the cache ``entry`` when given."""
    features = extract(images, extractor, batch_size, "reference", keys, progress)
    if features is None:
        return Reference({}, {}, False, "")
    stats = fitted_statistics(features)
    if entry is None:
        return Reference(features, stats, False, "reference batch features extracted (no cache)")
    replaced = " (replacing an entry that could not be read)" if entry.exists() else ""
    arrays = {**features, **{f"{name}_{k}": value for k, pair in stats.items()
                             for name, value in zip(("mu", "sigma"), pair, strict=True)}}
    try:
        _write_entry(entry, arrays)
    except OSError as err:
        return Reference(features, stats, False, f"reference batch features extracted; not cached ({err})")
    return Reference(features, stats, False, f"reference batch features extracted and cached{replaced}: {entry}")


def _read_entry(entry: Path, num_images: int, keys: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The arrays of a cache entry; None when there is none or it cannot be used."""
    try:
        with np.load(entry) as npz:  # no pickles
            arrays = {k: npz[k] for k in npz.files}
    except _UNREADABLE:
        return None
    features = [k for k in keys if k in arrays]
    whole = "pool" in features and all(
        arrays[k].shape[:1] == (num_images,) and f"mu_{k}" in arrays and f"sigma_{k}" in arrays for k in features
    )
    return arrays if whole else None


def _write_entry(entry: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` to a temporary file beside ``entry``, renamed to it: a reader sees all of it or none."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=f".{entry.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide entries from a group sharing the cache
        os.replace(tmp, entry)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    ref_labels: np.ndarray | None,
    sample_labels: np.ndarray | None,
    ref: dict,
    sample: dict,
    nhood_size: int,
    device: torch.device | None,
) -> dict[str, float]:
    """Density and coverage (k=5, Naeem et al.), and per-class recall when both batches have labels (else nan)."""
    density, coverage = metrics.density_coverage(ref["pool"], sample["pool"], device=device)
    pcr = float("nan")
    if ref_labels is not None and sample_labels is not None:
        pcr = metrics.per_class_recall(ref["pool"], ref_labels, sample["pool"], sample_labels, nhood_size, device)
    return {"density": density, "coverage": coverage, "per_class_recall": pcr}
