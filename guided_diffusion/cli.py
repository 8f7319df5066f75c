"""What every script shares on the command line: shipped models' flags applied by name, and bad input
reported as one ``error:`` line instead of a traceback."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from . import dist_util
from .checkpoints import CheckpointError
from .flags import explicit_flags  # noqa: F401  (the scripts take it from here)
from .models import is_shipped, manifest, shipped_names


def apply_shipped_flags(args: argparse.Namespace, explicit: set[str], name: str, keys, kind: str | None = None,
                        flag: str = "", info: dict | None = None) -> None:
    """For a shipped model ``name``, set the flags among ``keys`` that were not given to its manifest's values
    (``flags``, then ``sample_flags``), so that ``--model_path digits/cadm`` alone builds the right network.
    With ``kind`` (``diffusion`` or ``classifier``), a shipped model of another kind is a ValueError naming
    ``flag``. ``info`` stands in for the registry's manifest (a model about to be shipped)."""
    if info is None:
        if not is_shipped(name):
            return
        info = manifest(name)
    if kind and info.get("kind", kind) != kind:
        same = [n for n in shipped_names() if manifest(n).get("kind") == kind]
        raise ValueError(f"{flag or 'the checkpoint'} {name} is a {info['kind']} model, not a {kind} model; "
                         f"shipped {kind} models: {', '.join(same) or 'none'}")
    for key, value in {**info["flags"], **info.get("sample_flags", {})}.items():
        if key in keys and key not in explicit:
            setattr(args, key, value)


INPUT_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, CheckpointError)


def run_main(main: Callable[[], object], errors: tuple[type[BaseException], ...] = INPUT_ERRORS) -> None:
    """Run a script's ``main``; a bad input (one of ``errors``) exits with its message, not a traceback."""
    try:
        main()
    except errors as exc:
        # a bad input is the same on every rank: rank 0 alone says so (mpiexec stops the others)
        sys.exit(f"error: {exc}" if _launch_rank() == 0 else 1)


def _launch_rank() -> int:
    """This process's rank, also before the process group exists (from the launcher's environment)."""
    if dist_util.is_distributed():
        return dist_util.get_rank()
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "RANK"):
        if var in os.environ:
            return int(os.environ[var])
    return 0
