"""The suite's longest subprocess runs, side by side.

A few tests each run one long command (a benchmark at a toy size, the GPU check's CPU version) and then read
what it wrote. Every such command runs single-threaded (OMP_NUM_THREADS=1, as launch.run_python runs scripts), so
one at a time leaves the other cores idle while pytest waits. A test module registers its command with
:func:`background`; the first of those tests to ask for its result starts the commands of all of them that this
session selected (longest first, as many at a time as there are cores), and waits until all of them are done
(so that none runs beside the in-process tests that follow: torch's threads crowded off their cores slow those
down many times over); each test then reads its own. A command whose test is not selected never runs:
``pytest tests/test_digits_paper.py`` runs only that one.
"""

from __future__ import annotations

import atexit
import os
import queue
import signal
import subprocess
import threading
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from launch import ROOT, cores


@dataclass(eq=False)
class Job:
    """``command`` and ``env`` may name the job's output folder as ``{out}``."""

    module: Path
    test: str
    command: list[str]
    seconds: float  # about how long it runs: the longest start first
    env: dict[str, str] = field(default_factory=dict)
    timeout: int = 600
    out: Path | None = None
    future: Future | None = None
    batch: list[Job] = field(default_factory=list)  # the jobs started with it

    def result(self, request: pytest.FixtureRequest, check: bool = True) -> tuple[subprocess.CompletedProcess, Path]:
        """The finished run (started now with the session's others if not yet, and waited for with them) and its
        output folder; with ``check``, raises with the output if it failed."""
        with _LOCK:
            if self.future is None:
                _start(request, self)
        wait([job.future for job in self.batch])
        proc = self.future.result()
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(proc.args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc, self.out


_JOBS: list[Job] = []
_LOCK = threading.Lock()
_RUNNING: set[subprocess.Popen] = set()
_STOPPING = threading.Event()
_STARTING = threading.Lock()


def background(test_file: str, test: str, command: list[str], seconds: float, env: dict[str, str] | None = None,
               timeout: int = 600) -> Job:
    """Register ``command`` as the run of ``test`` in ``test_file`` (a module's ``__file__``)."""
    job = Job(Path(test_file).resolve(), test, command, seconds, env or {}, timeout)
    _JOBS.append(job)
    return job


def _start(request: pytest.FixtureRequest, asking: Job) -> None:
    selected = {(Path(item.path).resolve(), getattr(item, "originalname", item.name)) for item in request.session.items}
    # under pytest-xdist each worker runs only some of the selected tests: start only the asking one
    others = [] if os.environ.get("PYTEST_XDIST_WORKER") else _JOBS
    jobs = [j for j in others if j.future is None and (j.module, j.test) in selected]
    jobs = sorted({*jobs, asking}, key=lambda j: -j.seconds)
    tmp = request.getfixturevalue("tmp_path_factory")
    work: queue.Queue[Job] = queue.Queue()
    for job in jobs:
        job.out = tmp.mktemp(job.test)
        job.future = Future()
        job.batch = jobs
        work.put(job)
    for _ in range(min(cores(), len(jobs))):
        threading.Thread(target=_worker, args=(work,), daemon=True).start()


def _worker(work: queue.Queue[Job]) -> None:
    while True:
        try:
            job = work.get_nowait()
        except queue.Empty:
            return
        try:
            job.future.set_result(_run(job))
        except Exception as err:  # the waiting test raises it
            job.future.set_exception(err)


def _run(job: Job) -> subprocess.CompletedProcess:
    command = [part.format(out=job.out) for part in job.command]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           **{k: v.format(out=job.out) for k, v in job.env.items()}}
    with _STARTING:
        if _STOPPING.is_set():
            raise RuntimeError("the session ended before this run started")
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _RUNNING.add(proc)
    with proc:
        try:
            stdout, stderr = proc.communicate(timeout=job.timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            stdout, stderr = proc.communicate()
            raise AssertionError(f"{' '.join(command)} ran past {job.timeout} s:\n{stdout}\n{stderr}") from None
        finally:
            _RUNNING.discard(proc)
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


@atexit.register
def _stop_leftovers() -> None:
    """A session that ends early (-x, Ctrl-C) leaves no run behind."""
    with _STARTING:
        _STOPPING.set()
        for proc in list(_RUNNING):
            _kill(proc)


def _kill(proc: subprocess.Popen) -> None:
    """``proc`` and what it started (the GPU check's steps, which hold its output open)."""
    for pid in [*_descendants(proc.pid), proc.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # already gone
            pass


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):  # Linux; elsewhere only proc itself is killed
        try:
            children.setdefault(int(stat.read_text().rsplit(")", 1)[1].split()[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):  # gone meanwhile
            pass
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found

