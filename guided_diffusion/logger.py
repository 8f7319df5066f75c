"""Key-value and text logging to stdout, text, CSV and JSON files.

Same public API as the logger of openai/guided-diffusion: ``configure`` picks an
output directory (``$OPENAI_LOGDIR`` or a fresh temporary folder, shared by the ranks of a process group) and output
formats (``$OPENAI_LOG_FORMAT``, default ``stdout,log,csv``); ``logkv`` and
``logkv_mean`` accumulate diagnostics that ``dumpkvs`` writes as one row.
On ranks other than 0 only a text log (``log-rankNNN.txt``) is written unless
``$OPENAI_LOG_FORMAT_MPI`` says otherwise. ``progress.csv`` (started over) and ``progress.json`` (appended
to) are opened at the first ``dumpkvs``, so a run that logs no diagnostics (a sampling script) leaves no empty
file behind.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import json
import os
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from typing import IO, Any

DEBUG = 10
INFO = 20
WARN = 30
ERROR = 40
DISABLED = 50


class KVWriter:
    """An output format that can write a dict of diagnostics."""

    def writekvs(self, kvs: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the underlying file, if any."""


class SeqWriter:
    """An output format that can write free text."""

    def writeseq(self, seq: list[Any]) -> None:
        raise NotImplementedError


def _short(value: Any, width: int = 30) -> str:
    text = f"{value:<8.3g}" if isinstance(value, float) else str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


class HumanOutputFormat(KVWriter, SeqWriter):
    """Human-readable tables and lines, to a file path or an open stream."""

    def __init__(self, filename_or_file: str | IO[str]):
        if isinstance(filename_or_file, str):
            self.file: IO[str] = open(filename_or_file, "a")  # noqa: SIM115
            self.own_file = True
        else:
            self.file = filename_or_file
            self.own_file = False

    def writekvs(self, kvs: dict[str, Any]) -> None:
        rows = [(_short(k), _short(v)) for k, v in sorted(kvs.items())]
        if not rows:
            return
        kw = max(len(k) for k, _ in rows)
        vw = max(len(v) for _, v in rows)
        bar = "-" * (kw + vw + 7)
        lines = [bar] + [f"| {k:<{kw}} | {v:<{vw}} |" for k, v in rows] + [bar]
        self.file.write("\n".join(lines) + "\n")
        self.file.flush()

    def writeseq(self, seq: list[Any]) -> None:
        self.file.write(" ".join(str(s) for s in seq) + "\n")
        self.file.flush()

    def close(self) -> None:
        if self.own_file:
            self.file.close()


def _plain(value: Any) -> Any:
    """Numpy/torch scalars as Python numbers, for JSON."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()
    return value


class JSONOutputFormat(KVWriter):
    """One JSON object per line, appended to the file (opened at the first row)."""

    def __init__(self, filename: str):
        self.filename = filename
        self.file: IO[str] | None = None

    def writekvs(self, kvs: dict[str, Any]) -> None:
        if self.file is None:
            self.file = open(self.filename, "a")  # noqa: SIM115
        row = {k: _plain(v) for k, v in sorted(kvs.items())}
        self.file.write(json.dumps(row, default=str) + "\n")
        self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class CSVOutputFormat(KVWriter):
    """A CSV table whose header grows (the file is rewritten) when new keys appear; the file is started over at
    the first row."""

    def __init__(self, filename: str):
        self.filename = filename
        self.keys: list[str] = []
        self.started = False

    def writekvs(self, kvs: dict[str, Any]) -> None:
        if not self.started:
            open(self.filename, "w").close()
            self.started = True
        new_keys = sorted(k for k in kvs if k not in self.keys)
        if new_keys:
            with open(self.filename, newline="") as f:
                old_rows = list(csv.DictReader(f))
            self.keys.extend(new_keys)
            with open(self.filename, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self.keys, restval="")
                writer.writeheader()
                writer.writerows(old_rows)
        with open(self.filename, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.keys, restval="").writerow(kvs)


def make_output_format(format: str, ev_dir: str, log_suffix: str = "") -> KVWriter:
    """Create the writer for one format name: stdout, log, json or csv."""
    os.makedirs(ev_dir, exist_ok=True)
    if format == "stdout":
        return HumanOutputFormat(sys.stdout)
    if format == "log":
        return HumanOutputFormat(os.path.join(ev_dir, f"log{log_suffix}.txt"))
    if format == "json":
        return JSONOutputFormat(os.path.join(ev_dir, f"progress{log_suffix}.json"))
    if format == "csv":
        return CSVOutputFormat(os.path.join(ev_dir, f"progress{log_suffix}.csv"))
    raise ValueError(f"Unknown log format: {format!r}")


class Logger:
    """Accumulates diagnostics and writes them to a list of output formats."""

    CURRENT: Logger | None = None

    def __init__(self, dir: str | None, output_formats: list[KVWriter], comm: Any = None):
        self.name2val: dict[str, Any] = defaultdict(float)
        self.name2cnt: dict[str, int] = defaultdict(int)
        self.level = INFO
        self.dir = dir
        self.output_formats = output_formats
        self.comm = comm

    def logkv(self, key: str, val: Any) -> None:
        self.name2val[key] = val

    def logkv_mean(self, key: str, val: Any) -> None:
        old, cnt = self.name2val[key], self.name2cnt[key]
        self.name2val[key] = old * cnt / (cnt + 1) + val / (cnt + 1)
        self.name2cnt[key] = cnt + 1

    def dumpkvs(self) -> dict[str, Any]:
        if self.comm is None:
            d = dict(self.name2val)
        else:
            local = {k: (v, self.name2cnt.get(k, 1)) for k, v in self.name2val.items()}
            d = _weighted_mean(self.comm, local)
        if self.comm is None or self.comm.rank == 0:
            for fmt in self.output_formats:
                fmt.writekvs(d)
        self.name2val.clear()
        self.name2cnt.clear()
        return d

    def log(self, *args: Any, level: int = INFO) -> None:
        if self.level <= level:
            for fmt in self.output_formats:
                if isinstance(fmt, SeqWriter):
                    fmt.writeseq(list(args))

    def set_level(self, level: int) -> None:
        self.level = level

    def set_comm(self, comm: Any) -> None:
        self.comm = comm

    def get_dir(self) -> str | None:
        return self.dir

    def close(self) -> None:
        for fmt in self.output_formats:
            fmt.close()


def _weighted_mean(comm: Any, local: dict[str, tuple[Any, int]]) -> dict[str, float]:
    """Average (value, count) pairs over an MPI-style communicator; non-root ranks get {}."""
    gathered = comm.gather(local, root=0)
    if comm.rank != 0:
        return {}
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, float] = defaultdict(float)
    for part in gathered:
        for key, (val, cnt) in part.items():
            try:
                sums[key] += float(val) * cnt
                counts[key] += cnt
            except (TypeError, ValueError):
                continue
    return {k: sums[k] / counts[k] for k in sums}


def _rank_from_env() -> int:
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "RANK"):
        if var in os.environ:
            return int(os.environ[var])
    return 0


def _fresh_dir() -> str:
    """A new timestamped folder in the temporary directory, the same one on every rank of a process group."""
    import torch.distributed as dist

    stamp = datetime.datetime.now().strftime("openai-%Y-%m-%d-%H-%M-%S-%f")
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        holder = [stamp]
        dist.broadcast_object_list(holder, src=0)
        stamp = holder[0]
    return os.path.join(tempfile.gettempdir(), stamp)


def configure(
    dir: str | None = None,
    format_strs: list[str] | None = None,
    comm: Any = None,
    log_suffix: str = "",
) -> None:
    """Make a new current logger writing into ``dir`` with the given formats."""
    if dir is None:
        dir = os.getenv("OPENAI_LOGDIR")
    if dir is None:
        dir = _fresh_dir()
    dir = os.path.expanduser(dir)
    os.makedirs(dir, exist_ok=True)
    rank = _rank_from_env()
    if rank > 0:
        log_suffix = f"{log_suffix}-rank{rank:03d}"
    if format_strs is None:
        if rank == 0:
            format_strs = os.getenv("OPENAI_LOG_FORMAT", "stdout,log,csv").split(",")
        else:
            format_strs = os.getenv("OPENAI_LOG_FORMAT_MPI", "log").split(",")
    formats = [make_output_format(f, dir, log_suffix) for f in filter(None, format_strs)]
    if Logger.CURRENT is not None:
        Logger.CURRENT.close()
    Logger.CURRENT = Logger(dir=dir, output_formats=formats, comm=comm)
    if formats:
        log(f"Logging to {dir}")


def get_current() -> Logger:
    """The current logger, configured with defaults on first use."""
    if Logger.CURRENT is None:
        configure()
    assert Logger.CURRENT is not None
    return Logger.CURRENT


def reset() -> None:
    """Close the current logger; the next call configures a default one."""
    if Logger.CURRENT is not None:
        Logger.CURRENT.close()
        Logger.CURRENT = None


@contextlib.contextmanager
def scoped_configure(
    dir: str | None = None, format_strs: list[str] | None = None, comm: Any = None
) -> Iterator[None]:
    """Use a freshly configured logger inside a ``with`` block, then restore the previous one."""
    previous = Logger.CURRENT
    Logger.CURRENT = None
    configure(dir=dir, format_strs=format_strs, comm=comm)
    try:
        yield
    finally:
        assert Logger.CURRENT is not None
        Logger.CURRENT.close()
        Logger.CURRENT = previous


def logkv(key: str, val: Any) -> None:
    """Set a diagnostic for this iteration (the last value wins)."""
    get_current().logkv(key, val)


def logkv_mean(key: str, val: Any) -> None:
    """Add a value to a diagnostic averaged over this iteration."""
    get_current().logkv_mean(key, val)


def logkvs(d: dict[str, Any]) -> None:
    """``logkv`` for every item of a dict."""
    for k, v in d.items():
        logkv(k, v)


def dumpkvs() -> dict[str, Any]:
    """Write all diagnostics of this iteration and clear them; returns what was written."""
    return get_current().dumpkvs()


def getkvs() -> dict[str, Any]:
    """Diagnostics accumulated since the last ``dumpkvs``."""
    return get_current().name2val


def log(*args: Any, level: int = INFO) -> None:
    """Write a line (its arguments joined by spaces) to the text outputs."""
    get_current().log(*args, level=level)


def debug(*args: Any) -> None:
    log(*args, level=DEBUG)


def info(*args: Any) -> None:
    log(*args, level=INFO)


def warn(*args: Any) -> None:
    log(*args, level=WARN)


def error(*args: Any) -> None:
    log(*args, level=ERROR)


def set_level(level: int) -> None:
    """Only lines at or above ``level`` are written."""
    get_current().set_level(level)


def set_comm(comm: Any) -> None:
    """Average ``dumpkvs`` values over an MPI-style communicator (``gather`` and ``rank``)."""
    get_current().set_comm(comm)


def get_dir() -> str | None:
    """The directory the current logger writes into (checkpoints and samples go there too)."""
    return get_current().get_dir()
