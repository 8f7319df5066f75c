"""Process-group setup for ``mpiexec -n N``, ``torchrun`` and plain ``python``.

Under MPI the rendezvous address comes from rank 0 over MPI; under torchrun
from its environment. Backend: NCCL with one GPU per local rank when CUDA is
present, gloo otherwise. A plain run (and ``mpiexec -n 1``) gets a process
group of world size 1 on an in-process store, as the original ``setup_dist``
left one, so client code may call ``torch.distributed`` directly; it never
imports MPI and needs no network.
"""

from __future__ import annotations

import atexit
import io
import os
import socket
from collections.abc import Callable
from typing import TypeVar

import blobfile as bf
import torch
import torch.distributed as dist

_MPI_ENV_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")
_BROADCAST_CHUNK = 2**30  # bytes per broadcast, under MPI's 2 GiB message limit
_local_rank = 0
T = TypeVar("T")


def _launched_by_mpi() -> bool:
    return any(v in os.environ for v in _MPI_ENV_VARS)


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
    """Initialise torch.distributed when launched with more than one process."""
    global _local_rank
    if dist.is_initialized():
        return
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "MASTER_ADDR" in os.environ:  # torchrun
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        _local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    elif _launched_by_mpi():
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
        rank, world = comm.Get_rank(), comm.Get_size()
        if world == 1:
            _init_single_process()
            return
        _local_rank = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
        host = _host_address() if rank == 0 else None
        os.environ["MASTER_ADDR"] = comm.bcast(host, root=0)
        os.environ["MASTER_PORT"] = str(comm.bcast(_free_port() if rank == 0 else None, root=0))
        os.environ["RANK"], os.environ["WORLD_SIZE"] = str(rank), str(world)
    else:
        _init_single_process()
        return
    dist.init_process_group(backend=_backend(), init_method="env://", rank=rank, world_size=world)
    atexit.register(_teardown)


def _backend() -> str:
    if torch.cuda.is_available():
        torch.cuda.set_device(_local_rank % torch.cuda.device_count())
        return "nccl"
    return "gloo"


def _init_single_process() -> None:
    """World size 1 on an in-process store: no MPI, no sockets."""
    dist.init_process_group(backend=_backend(), store=dist.HashStore(), rank=0, world_size=1)
    atexit.register(_teardown)


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
