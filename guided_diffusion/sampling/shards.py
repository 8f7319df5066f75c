"""Output of a sampling run that survives being killed, and does not depend on the number of processes.

A run of N samples in batches of B is cut into the fixed batches
``j = 0 .. ceil(N / B) - 1`` (samples ``[j B, min((j + 1) B, N))``); rank r of W
samples batches ``j = r, r + W, ...`` and writes each finished one as
``shards/batch_{j:06d}.npz`` (written to a temporary name, then renamed, so a
shard on disk is always whole). A restart with the same arguments skips the
batches already on disk; ``run_args.json`` beside the shards holds the
arguments, and a restart with others is refused. A shard that cannot be read
whole (cut short by a full disk or a copy) is set aside as ``*.damaged`` and its
batch sampled again. Rank 0 merges the shards, in batch order, into one ``.npz``
whose bytes depend only on its arrays.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

RUN_ARGS = "run_args.json"
SHARD_DIR = "shards"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # zip entry timestamps, so equal arrays give equal files


@dataclass
class StreamedArray:
    """An array written part by part (concatenated along axis 0), never whole in memory."""

    shape: tuple[int, ...]
    dtype: np.dtype
    parts: Iterable[np.ndarray]


def write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray | StreamedArray],
              compress: bool = False) -> None:
    """Write an ``.npz`` of arrays (at least 1-D) atomically: a temporary file, then a rename; uncompressed
    unless ``compress`` (deflate, as ``np.savez_compressed``).

    Entries carry fixed timestamps and a fixed header format, so equal arrays give equal bytes (compressed: with
    the same zlib).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for key, value in arrays.items():
                if not isinstance(value, StreamedArray):
                    value = np.asarray(value)
                    value = StreamedArray(value.shape, value.dtype, [value])
                entry = zipfile.ZipInfo(f"{key}.npy", date_time=_FIXED_TIME)
                entry.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
                with zf.open(entry, "w", force_zip64=True) as f:
                    _write_streamed(f, value, key)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_streamed(f, array: StreamedArray, key: str) -> None:
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(array.dtype)), "fortran_order": False,
              "shape": tuple(array.shape)}
    np.lib.format.write_array_header_2_0(f, header)
    written = 0
    for part in array.parts:
        part = np.ascontiguousarray(part, dtype=array.dtype)
        if part.shape[1:] != tuple(array.shape[1:]):
            raise ValueError(f"{key}: a part of shape {part.shape} does not fit {array.shape}")
        f.write(part.tobytes())
        written += len(part)
    if written != array.shape[0]:
        raise ValueError(f"{key}: {written} rows written for a shape of {array.shape}")


def read_npz(path: str | os.PathLike, *keys: str) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an ``.npz`` (all of them if none are named)."""
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in (keys or npz.files)}


class ShardedRun:
    """The batches of a run, its shards on disk and the check of its arguments."""

    def __init__(self, out_dir: str | os.PathLike, num_samples: int, batch_size: int):
        if num_samples < 1 or batch_size < 1:
            raise ValueError(f"num_samples and batch_size must be positive, got {num_samples} and {batch_size}")
        self.dir = Path(out_dir)
        self.shard_dir = self.dir / SHARD_DIR
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.num_batches = -(-num_samples // batch_size)

    def bounds(self, batch: int) -> tuple[int, int]:
        """Global indices ``[start, stop)`` of the samples of batch ``batch``."""
        start = batch * self.batch_size
        return start, min(start + self.batch_size, self.num_samples)

    def shard_path(self, batch: int) -> Path:
        return self.shard_dir / f"batch_{batch:06d}.npz"

    def is_done(self, batch: int) -> bool:
        return self.shard_path(batch).is_file()

    def done_samples(self) -> int:
        """Samples already on disk."""
        return sum(self.bounds(j)[1] - self.bounds(j)[0] for j in range(self.num_batches) if self.is_done(j))

    def pending(self, rank: int, world_size: int) -> list[int]:
        """This rank's batches (``rank``, ``rank + world_size``, ...) not yet on disk."""
        return [j for j in range(rank, self.num_batches, world_size) if not self.is_done(j)]

    def write(self, batch: int, arrays: Mapping[str, np.ndarray]) -> None:
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        write_npz(self.shard_path(batch), arrays)

    def read(self, batch: int, *keys: str) -> dict[str, np.ndarray]:
        return read_npz(self.shard_path(batch), *keys)

    def damage(self, batch: int) -> str | None:
        """Why shard ``batch`` on disk cannot be used (None if it is whole): every array must read back in
        full (zip CRCs checked) with one row per sample of the batch."""
        start, stop = self.bounds(batch)
        try:
            arrays = self.read(batch)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
            return f"{type(err).__name__}: {err}"
        if "images" not in arrays or "labels" not in arrays:
            return f"holds {sorted(arrays)}, not images and labels"
        rows = {k: len(arrays[k]) for k in ("images", "labels") if len(arrays[k]) != stop - start}
        return f"rows {rows} for a batch of {stop - start}" if rows else None

    def discard_damaged(self, log=print) -> list[int]:
        """Set aside every shard on disk that :meth:`damage` rejects (renamed ``*.damaged``), so that its batch
        is sampled again; returns those batches. Run by one process before the others look for pending batches."""
        damaged = []
        for batch in range(self.num_batches):
            if not self.is_done(batch):
                continue
            reason = self.damage(batch)
            if reason:
                path = self.shard_path(batch)
                os.replace(path, path.with_name(path.name + ".damaged"))
                log(f"shard {path} is damaged ({reason}); set aside as {path.name}.damaged, batch {batch} "
                    f"(samples {self.bounds(batch)[0]}..{self.bounds(batch)[1] - 1}) will be sampled again")
                damaged.append(batch)
        return damaged

    def check_args(self, args: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> None:
        """Record ``args`` for a new run, or raise a ValueError naming the flags that differ from the recorded;
        ``defaults``: what a flag that the recorded run lacks (it was started before the flag existed) stood for."""
        path = self.dir / RUN_ARGS
        args = json.loads(json.dumps(dict(args)))  # as JSON would give them back
        defaults = json.loads(json.dumps(dict(defaults or {})))
        if not path.is_file():
            self.dir.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(args, indent=2, sort_keys=True) + "\n")
            return
        try:
            recorded = json.loads(path.read_text())
            if not isinstance(recorded, dict):
                raise ValueError(f"a {type(recorded).__name__}, not the run's arguments")
        except (ValueError, UnicodeDecodeError) as err:
            raise ValueError(f"{path} is damaged ({err}); delete it and {self.shard_dir} to start over, or "
                             f"write to another directory (OPENAI_LOGDIR)") from None
        recorded = {**{k: defaults[k] for k in args.keys() & defaults.keys() - recorded.keys()}, **recorded}
        differ = sorted(k for k in set(recorded) | set(args) if recorded.get(k) != args.get(k))
        if differ:
            listed = "; ".join(f"--{k} {recorded.get(k)!r} there, {args.get(k)!r} now" for k in differ)
            raise ValueError(f"{self.dir} holds a run with other arguments ({listed}); rerun with the same arguments "
                             f"to resume it, or write to another directory (OPENAI_LOGDIR)")

    def missing(self) -> list[int]:
        return [j for j in range(self.num_batches) if not self.is_done(j)]
