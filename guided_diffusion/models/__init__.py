"""Models shipped with the package, addressable by a short name such as ``digits/cadm``.

Each is ``models/<name>.pt`` (a float16 state dict) with ``models/<name>.json``
beside it: its ``flags`` (what the scripts need to build it), how it was
trained (command, steps, seconds, data hash) and its ``held_out`` metrics
(recomputed by :mod:`guided_diffusion.evaluation.held_out`). ``sample_flags``
of a diffusion model are the sampling defaults the main job uses with it. This
module is a lookup only: it imports nothing of the package.
"""

from __future__ import annotations

import json
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = "digits/adm"


def is_shipped(name: str) -> bool:
    """Whether ``name`` is a shipped model's name (not a path of the user's)."""
    return bool(name) and not name.endswith(".pt") and checkpoint_path(name).is_file()


def shipped_names() -> list[str]:
    return sorted(str(p.relative_to(MODELS_DIR).with_suffix("")) for p in MODELS_DIR.rglob("*.pt"))


def checkpoint_path(name: str) -> Path:
    return MODELS_DIR / f"{name}.pt"


def manifest(name: str) -> dict:
    path = MODELS_DIR / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no shipped model {name!r}; shipped: {', '.join(shipped_names()) or 'none'}")
    return json.loads(path.read_text())
