"""Shared fixtures: a tiny class-labelled image folder; one torch thread for a module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


def write_image_folder(root: Path, per_class: int = 4, size: tuple[int, int] = (10, 12)) -> Path:
    """PNGs ``c{class}_{i:03d}.png`` of 2 classes: class 0 dark, class 1 bright, random noise."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for c in range(2):
        for i in range(per_class):
            base = 40 if c == 0 else 200
            arr = np.clip(base + rng.integers(-30, 30, size=(*size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(root / f"c{c}_{i:03d}.png")
    return root


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """8 RGB 10x12 images, 4 per class, named like ``c0_001.png``."""
    return write_image_folder(tmp_path / "images")


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for the rest of the module: fixtures written with one thread compare byte for byte, and
    small tensors run many times faster on one thread than on two fighting over the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
