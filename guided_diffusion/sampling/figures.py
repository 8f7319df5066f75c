"""Pictures of sampling runs: image grids, and figures drawn with matplotlib (Agg, no display needed)."""

from __future__ import annotations

import os
from collections.abc import Sequence

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


def trajectory_figure(trajectory_x0: np.ndarray, information_degree: np.ndarray, labels: Sequence[int],
                      class_names: Sequence[str], path: str | os.PathLike, columns: int = 8, top: int = 3) -> None:
    """In the style of the paper's Figures 2 and 3: for each sample, the predicted x_0 at ``columns``
    evenly spaced steps, above bars of the ``top`` classes of the information degree at that step.

    ``trajectory_x0``: steps x K x H x W x 3 uint8; ``information_degree``: steps x K x classes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, count = trajectory_x0.shape[:2]
    shown = np.unique(np.linspace(0, steps - 1, min(columns, steps)).round().astype(int))
    fig, axes = plt.subplots(2 * count, len(shown), figsize=(1.6 * len(shown), 2.9 * count), squeeze=False,
                             gridspec_kw={"height_ratios": [1.0, 0.8] * count})
    for i in range(count):
        for col, k in enumerate(shown):
            image_ax, bar_ax = axes[2 * i, col], axes[2 * i + 1, col]
            image_ax.imshow(trajectory_x0[k, i], interpolation="nearest")
            image_ax.set_xticks([])
            image_ax.set_yticks([])
            if col == 0:
                image_ax.set_ylabel(class_names[labels[i]], fontsize=8)
            if i == 0:
                image_ax.set_title(f"step {k}", fontsize=8)
            degree = information_degree[k, i]
            order = np.argsort(-degree, kind="stable")[:top][::-1]
            colors = ["tab:red" if c == labels[i] else "tab:gray" for c in order]
            bar_ax.barh(range(len(order)), degree[order], color=colors)
            bar_ax.set_yticks(range(len(order)), [class_names[c][:14] for c in order], fontsize=6)
            bar_ax.set_xlim(0, 1)
            bar_ax.tick_params(axis="x", labelsize=5)
    fig.suptitle("predicted x_0 and the top classes of the information degree (red: the condition)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
