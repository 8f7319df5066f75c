"""ADM-compatible evaluator: Inception Score, FID, sFID, precision and recall.

    python evaluations/evaluator.py REF.npz SAMPLE.npz [--json out.json]

Prints the same five result lines as the ADM evaluator (``openai/guided-
diffusion``). ``arr_0`` of each ``.npz`` holds uint8 ``[N, H, W, 3]`` images;
a reference batch's ``mu``/``sigma``/``mu_s``/``sigma_s`` are used when
present (Inception features only). Images are streamed from the zip member in
batches; under ``torchrun`` or ``mpiexec`` each rank extracts a contiguous
shard and rank 0 gathers them in order and reports.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from guided_diffusion import metrics
from guided_diffusion.feature_extractors import FeatureExtractor, create_extractor


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
                if f.readinto(buffer) != len(buffer):
                    raise ValueError(f"{self.path}: {self.key} is truncated")
                yield np.frombuffer(buffer, dtype=np.uint8).reshape((n,) + self.shape[1:])


def init_distributed() -> tuple[int, int]:
    """Join the process group of ``torchrun`` or ``mpiexec`` if launched by one.

    Returns ``(rank, world_size)``; ``(0, 1)`` for a single process.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torchrun
        dist.init_process_group(backend)
    elif any(int(os.environ.get(v, "1")) > 1 for v in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")):
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
        address = None
        if comm.rank == 0:
            with socket.socket() as s:
                s.bind(("", 0))
                address = f"tcp://{socket.gethostbyname(socket.getfqdn())}:{s.getsockname()[1]}"
        address = comm.bcast(address, root=0)
        dist.init_process_group(backend, init_method=address, rank=comm.rank, world_size=comm.size)
    else:
        return 0, 1
    if torch.cuda.is_available():
        torch.cuda.set_device(dist.get_rank() % torch.cuda.device_count())
    return dist.get_rank(), dist.get_world_size()


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Contiguous rows ``[start, stop)`` of rank ``rank``; shards differ by at most one row."""
    return n * rank // world_size, n * (rank + 1) // world_size


def gather_to_rank0(local: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """Concatenate every rank's arrays in rank order on rank 0 (others get ``None``)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return local
    parts: list | None = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
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
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    start, stop = shard_bounds(len(images), rank, world)
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


def _check_counts(ref: NpzImages, sample: NpzImages, nhood_size: int) -> None:
    for images in (ref, sample):
        if len(images) <= nhood_size:
            raise ValueError(
                f"{images.path}: {len(images)} images; FID needs at least 2 and "
                f"precision/recall more than nhood_size={nhood_size}"
            )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ref_batch", help="reference .npz (arr_0 images; optional mu, sigma, mu_s, sigma_s)")
    p.add_argument("sample_batch", help="sample .npz (arr_0 images; optional arr_1 labels)")
    p.add_argument("--feature-extractor", default="inception", help="inception | classifier:PATH")
    p.add_argument("--inception-weights", default=None, help="path of pt_inception-2015-12-05-6726825d.pth")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--nhood-size", type=int, default=3, help="k of the k-NN precision/recall")
    p.add_argument("--split-size", type=int, default=5000, help="rows per Inception Score split")
    p.add_argument("--extra", action="store_true", help="also density, coverage, per-class recall")
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    p.add_argument("--device", default=None, help="default: cuda when available")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, float] | None:
    args = parse_args(argv)
    rank, _ = init_distributed()
    ref_images, sample_images = NpzImages(args.ref_batch), NpzImages(args.sample_batch)
    _check_counts(ref_images, sample_images, args.nhood_size)
    device = torch.device(args.device) if args.device else None
    extractor = create_extractor(args.feature_extractor, device, args.inception_weights)

    log = print if rank == 0 else (lambda *a, **k: None)
    log("computing reference batch activations...")
    ref = extract_npz(args.ref_batch, extractor, args.batch_size, "reference", ("pool", "spatial"))
    log("computing sample batch activations...")
    sample = extract_npz(args.sample_batch, extractor, args.batch_size, "samples", ("pool", "spatial", "softmax"))
    if rank != 0:
        return None
    log("computing/reading reference batch statistics...")
    ref_stats = fid_statistics(args.ref_batch, ref, args.feature_extractor == "inception")
    sample_stats = fid_statistics(args.sample_batch, sample, use_stored=False)
    log("Computing evaluations...")
    result = evaluate(ref, sample, ref_stats, sample_stats, args.nhood_size, args.split_size, extractor.device)
    print("Inception Score:", result["inception_score"])
    print("FID:", result["fid"])
    print("sFID:", result["sfid"])
    print("Precision:", result["precision"])
    print("Recall:", result["recall"])
    if args.extra:
        result.update(extra_metrics(args.ref_batch, args.sample_batch, ref, sample, args.nhood_size, extractor.device))
        print("Density:", result["density"])
        print("Coverage:", result["coverage"])
        print("Per-class recall:", result["per_class_recall"])
    if args.json:
        info = {"ref_batch": args.ref_batch, "sample_batch": args.sample_batch,
                "feature_extractor": args.feature_extractor, "num_ref": len(ref_images),
                "num_samples": len(sample_images), "nhood_size": args.nhood_size}  # fmt: skip
        Path(args.json).write_text(json.dumps({**info, **result}, indent=2) + "\n")
    return result


def extra_metrics(
    ref_path: str, sample_path: str, ref: dict, sample: dict, nhood_size: int, device: torch.device | None
) -> dict[str, float]:
    """Density and coverage (k=5, Naeem et al.), and per-class recall when both files have ``arr_1``."""
    density, coverage = metrics.density_coverage(ref["pool"], sample["pool"], device=device)
    with np.load(ref_path) as r, np.load(sample_path) as s:
        labels = (r["arr_1"], s["arr_1"]) if "arr_1" in r.files and "arr_1" in s.files else None
    pcr = float("nan")
    if labels is not None:
        pcr = metrics.per_class_recall(ref["pool"], labels[0], sample["pool"], labels[1], nhood_size, device)
    return {"density": density, "coverage": coverage, "per_class_recall": pcr}


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError) as exc:
        sys.exit(f"error: {exc}")
