"""Tiling images into one picture."""

from __future__ import annotations

import numpy as np


def image_grid(images: np.ndarray, nrow: int, pad: int = 1, pad_value: int = 255) -> np.ndarray:
    """uint8 N x H x W x C images as one grid with ``nrow`` images per row, ``pad`` pixels apart."""
    if images.ndim != 4:
        raise ValueError(f"expected N x H x W x C images, got shape {images.shape}")
    n, h, w, c = images.shape
    rows = -(-n // nrow)
    grid = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), pad_value, dtype=images.dtype)
    for i, image in enumerate(images):
        r, col = divmod(i, nrow)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = image
    return grid
