"""Running a Python snippet under ``mpiexec -n N`` from a test, and independent runs side by side."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def mpiexec() -> str:
    """The mpiexec of the ``mpich`` wheel beside this interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        raise RuntimeError("mpiexec not found: install the project's dependencies (pip install -e .[dev])")
    return found


def run_python(args: list[str], nproc: int = 1, cwd: Path | None = None, timeout: int = 300,
               env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """``python ARGS`` (under mpiexec when nproc > 1); with ``check``, raises with the output on failure."""
    cmd = [sys.executable, *args]
    if nproc > 1:
        cmd = [mpiexec(), "-n", str(nproc), *cmd]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run(cmd, cwd=cwd or ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def cores() -> int:
    """The CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def together(*calls: Callable[[], T], side_by_side: bool = True) -> list[T]:
    """The results of ``calls`` (each running scripts, as :func:`run_python` does), run side by side, as many at a
    time as there are cores (one at a time without ``side_by_side``: runs of several MPI ranks each, which would
    crowd the cores); the first to raise is raised."""
    if not side_by_side:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=min(cores(), len(calls))) as pool:
        futures = [pool.submit(call) for call in calls]
    return [future.result() for future in futures]


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """A bad input ends a script with one ``error: ...`` on stderr and a usage hint after it, a non-zero status and
    no traceback."""
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("error: ") == 1, proc.stderr
    after = proc.stderr[proc.stderr.index("error: "):].splitlines()[1:]  # (a checkpoint's error has more lines)
    assert any(line.startswith("usage: ") and line.endswith("(--help for all options)") for line in after), proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, (fragment, proc.stderr)
