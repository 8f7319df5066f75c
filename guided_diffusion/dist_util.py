"""Process-group setup for ``mpiexec -n N``, ``torchrun``, Slurm's ``srun`` and plain ``python``.

:func:`launch_from_env` reads from the launcher's environment who started this process: torchrun's variables
first, then MPI's, then those of an ``srun`` task (``SLURM_PROCID`` of ``SLURM_STEP_NUM_TASKS``, rank 0's host
the first of ``SLURM_STEP_NODELIST``); a batch script's plain ``python`` has ``SLURM_PROCID`` but no step
variables, and runs alone. Under MPI the rank, world size and rendezvous address come from rank 0 over MPI.
The ranks meet at a TCP store on rank 0's host; a group that cannot be formed within
:data:`RENDEZVOUS_TIMEOUT` seconds is a ValueError (one ``error:`` line from the scripts), never a run of
world size 1 that would sample everything once per task. Backend: NCCL with one GPU per local rank when
CUDA is present, gloo otherwise. A plain run (and ``mpiexec -n 1``) gets a process group of world size 1 on
an in-process store, as the original ``setup_dist`` left one, so client code may call ``torch.distributed``
directly; it never imports MPI and needs no network.
"""

from __future__ import annotations

import atexit
import io
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import blobfile as bf
import torch
import torch.distributed as dist
from torch.distributed.constants import default_pg_timeout

_MPI_ENV_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")
_MPI_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")
_MPI_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
_BROADCAST_CHUNK = 2**30  # bytes per broadcast, under MPI's 2 GiB message limit
RENDEZVOUS_TIMEOUT = 300  # seconds the ranks wait for each other at start
SLURM_PORTS = (20000, 10000)  # an srun step's default MASTER_PORT: first port, number of ports
_local_rank = 0
T = TypeVar("T")


@dataclass(frozen=True)
class Launch:
    """This process's place in its job, as its launcher's environment gives it."""

    launcher: str  # "python", "torchrun", "mpiexec" or "srun"
    rank: int = 0
    world_size: int = 1  # 0: not in the environment (MPI tells)
    local_rank: int = 0
    master_addr: str = ""
    master_port: int = 0


def _int(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise ValueError(f"${name}={env[name]!r} is not an integer") from None


def first_host(nodelist: str) -> str:
    """The first host of a Slurm host list in its compressed form: ``node[01-04,07],gpu5`` -> ``node01``."""
    depth, end = 0, len(nodelist)
    for i, char in enumerate(nodelist):
        depth += (char == "[") - (char == "]")
        if char == "," and depth == 0:
            end = i
            break
    host = re.sub(r"\[([^\[\]]*)\]", lambda m: re.split("[,-]", m.group(1))[0], nodelist[:end].strip())
    if not host or any(char in host for char in "[],"):
        raise ValueError(f"cannot read the Slurm host list {nodelist!r}: set MASTER_ADDR to rank 0's host")
    return host


def _slurm_port(env: Mapping[str, str]) -> int:
    """MASTER_PORT, else the first of the step's reserved ports, else one derived from the job and step ids
    (steps of one job, and jobs sharing a node, get different ports unless their ids are far apart)."""
    if "MASTER_PORT" in env:
        return _int(env, "MASTER_PORT")
    reserved = env.get("SLURM_STEP_RESV_PORTS", "")
    if reserved[:1].isdigit():
        return int(re.match(r"\d+", reserved).group())
    job = _int(env, "SLURM_JOB_ID") if "SLURM_JOB_ID" in env else 0
    step = _int(env, "SLURM_STEP_ID") if "SLURM_STEP_ID" in env else 0
    first, count = SLURM_PORTS
    return first + (16 * job + step % 16) % count


def srun_launch(env: Mapping[str, str]) -> Launch | None:
    """The place of an ``srun`` task (None for anything else, such as a batch script's plain ``python``).

    Rank ``SLURM_PROCID`` of ``SLURM_STEP_NUM_TASKS``, local rank ``SLURM_LOCALID``; rank 0's host is
    ``MASTER_ADDR`` when set, else the first host of ``SLURM_STEP_NODELIST`` (where srun's block distribution
    puts task 0), its port ``MASTER_PORT`` when set, else the step's first reserved port, else one derived from
    the job id. Rank 0 on another node than the first (another distribution) is a ValueError asking for
    ``MASTER_ADDR``.
    """
    if "SLURM_STEP_NUM_TASKS" not in env or "SLURM_PROCID" not in env:
        return None
    rank, world = _int(env, "SLURM_PROCID"), _int(env, "SLURM_STEP_NUM_TASKS")
    local = _int(env, "SLURM_LOCALID") if "SLURM_LOCALID" in env else 0
    if not 0 <= rank < world:
        raise ValueError(f"SLURM_PROCID={rank} is not a rank of SLURM_STEP_NUM_TASKS={world} tasks")
    if world == 1:
        return Launch("srun")
    addr = env.get("MASTER_ADDR")
    if not addr:
        nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
        if not nodelist:
            raise ValueError(f"srun task {rank} of {world} without SLURM_STEP_NODELIST: "
                             f"set MASTER_ADDR to rank 0's host")
        addr = first_host(nodelist)
        node = env.get("SLURMD_NODENAME")
        if rank == 0 and node and node != addr:
            raise ValueError(f"srun placed rank 0 on {node}, not on the step's first node {addr}: "
                             f"set MASTER_ADDR to rank 0's host")
    return Launch("srun", rank, world, local, addr, _slurm_port(env))


def _mpi_agrees(env: Mapping[str, str], srun: Launch) -> bool:
    """Whether MPI's variables describe the srun tasks themselves (``srun --mpi=pmi2`` or ``pmix``), not
    the processes an ``mpiexec`` started under srun-launched daemons (one per node)."""
    return (all(_int(env, v) == srun.rank for v in _MPI_RANK_VARS if v in env)
            and all(_int(env, v) == srun.world_size for v in _MPI_SIZE_VARS if v in env))


def launch_from_env(env: Mapping[str, str]) -> Launch:
    """Who started this process and its place in the job, by precedence: torchrun (``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``), MPI (``PMI_*``, ``OMPI_COMM_WORLD_*``, ``PMIX_RANK``: rank and world size come from
    MPI itself; when they are srun's own, the srun task), an srun task (:func:`srun_launch`), else plain python.
    """
    if all(k in env for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR")):
        return Launch("torchrun", _int(env, "RANK"), _int(env, "WORLD_SIZE"),
                      _int(env, "LOCAL_RANK") if "LOCAL_RANK" in env else 0, env["MASTER_ADDR"],
                      _int(env, "MASTER_PORT") if "MASTER_PORT" in env else 0)
    srun = srun_launch(env)
    if any(v in env for v in _MPI_ENV_VARS) and not (srun and srun.world_size > 1 and _mpi_agrees(env, srun)):
        sizes = [_int(env, v) for v in _MPI_SIZE_VARS if v in env]
        return Launch("mpiexec", world_size=max(sizes, default=0))
    return srun or Launch("python")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _host_address() -> str:
    try:
        return socket.gethostbyname(socket.getfqdn())
    except OSError:
        return "127.0.0.1"


def setup_dist() -> None:
    """Initialise torch.distributed: a group of all the launcher's processes, or of this one alone."""
    if dist.is_initialized():
        return
    launch = launch_from_env(os.environ)
    if launch.launcher == "mpiexec":
        launch = _mpi_launch(launch.world_size)
    if launch.world_size == 1:
        _init_single_process()
    elif launch.launcher == "torchrun":
        _set_local_rank(launch.local_rank)
        dist.init_process_group(backend=_backend(), init_method="env://", rank=launch.rank,
                                world_size=launch.world_size)
    else:
        _join(launch)
    atexit.register(_teardown)


def _mpi_launch(declared: int) -> Launch:
    """Rank, world size, local rank and a rendezvous address of rank 0's choosing, from MPI."""
    from mpi4py import MPI  # only under mpiexec: importing it initialises MPI

    comm = MPI.COMM_WORLD
    rank, world = comm.Get_rank(), comm.Get_size()
    if declared and world != declared:
        raise ValueError(f"mpiexec started {declared} processes but MPI (mpi4py) sees {world}: mpi4py is built "
                         f"against another MPI library than the launcher's ({MPI.Get_library_version().strip()})")
    if world == 1:
        return Launch("mpiexec")
    local = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
    addr = comm.bcast(_host_address() if rank == 0 else None, root=0)
    port = comm.bcast(_free_port() if rank == 0 else None, root=0)
    return Launch("mpiexec", rank, world, local, addr, port)


def _join(launch: Launch) -> None:
    """Meet the other ranks at a TCP store on rank 0's host and form the process group.

    The environment gets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` first (so
    that an error is reported by rank 0 alone). Ranks that do not meet within :data:`RENDEZVOUS_TIMEOUT` seconds,
    or a port already taken, are a ValueError.
    """
    where = f"{launch.master_addr}:{launch.master_port}"
    os.environ.update(RANK=str(launch.rank), WORLD_SIZE=str(launch.world_size), LOCAL_RANK=str(launch.local_rank),
                      MASTER_ADDR=launch.master_addr, MASTER_PORT=str(launch.master_port))
    try:
        store = dist.TCPStore(launch.master_addr, launch.master_port, launch.world_size, launch.rank == 0,
                              timeout=timedelta(seconds=RENDEZVOUS_TIMEOUT))
    except RuntimeError as err:  # torch.distributed.DistError: timed out, port taken, host unknown
        reason = str(err).strip().splitlines()[0]
        raise ValueError(f"{launch.launcher}: rank {launch.rank} of {launch.world_size} could not form the process "
                         f"group at {where} (MASTER_ADDR:MASTER_PORT): {reason}. Every rank must reach rank 0's "
                         f"host; set MASTER_ADDR / MASTER_PORT to change them") from None
    store.set_timeout(default_pg_timeout)  # later waits (a rank's first collective) as long as torch's default
    _set_local_rank(launch.local_rank)
    dist.init_process_group(backend=_backend(), store=store, rank=launch.rank, world_size=launch.world_size)


def _set_local_rank(local_rank: int) -> None:
    global _local_rank
    _local_rank = local_rank


def _backend() -> str:
    if torch.cuda.is_available():
        torch.cuda.set_device(_local_rank % torch.cuda.device_count())
        return "nccl"
    return "gloo"


def _init_single_process() -> None:
    """World size 1 on an in-process store: no MPI, no sockets."""
    dist.init_process_group(backend=_backend(), store=dist.HashStore(), rank=0, world_size=1)


def _teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def any_rank(flag: bool) -> bool:
    """Whether ``flag`` is true on any rank (the same answer on every rank)."""
    if not is_distributed():
        return flag
    value = torch.tensor([float(flag)], device=dev())
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def dev() -> torch.device:
    """This process's device: its local GPU, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", _local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def load_state_dict(path: str, **kwargs) -> dict:
    """``torch.load(path, weights_only=True)``, the file read once by rank 0 and broadcast."""
    if get_world_size() == 1:
        data = _read_bytes(path)
    else:
        data = _broadcast_bytes(_read_bytes(path) if get_rank() == 0 else None)
    return torch.load(io.BytesIO(data), weights_only=True, **kwargs)


def _read_bytes(path: str) -> bytes:
    with bf.BlobFile(path, "rb") as f:
        return f.read()


def _broadcast_bytes(data: bytes | None) -> bytes:
    holder = [None if data is None else len(data)]
    dist.broadcast_object_list(holder, src=0)
    chunks = []
    for start in range(0, holder[0], _BROADCAST_CHUNK):
        piece = [data[start:start + _BROADCAST_CHUNK] if data is not None else None]
        dist.broadcast_object_list(piece, src=0)
        chunks.append(piece[0])
    return b"".join(chunks)


def sync_params(params) -> None:
    """Make every rank's tensors equal to rank 0's."""
    if not is_distributed():
        return
    for p in params:
        with torch.no_grad():
            dist.broadcast(p, 0)


def on_rank0(fn: Callable[[], T]) -> T:
    """``fn()`` run by rank 0 alone; every rank returns its result, or raises its ValueError."""
    outcome: list = [None, None]
    if get_rank() == 0:
        try:
            outcome = [fn(), None]
        except ValueError as err:
            outcome = [None, str(err)]
    if get_world_size() > 1:
        dist.broadcast_object_list(outcome, src=0)
    if outcome[1] is not None:
        raise ValueError(outcome[1])
    return outcome[0]
