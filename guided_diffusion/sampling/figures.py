"""Pictures of sampling runs: image grids (with captions), one PNG per sample, and figures drawn with
matplotlib (Agg, no display needed)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def image_grid(images: np.ndarray, nrow: int, pad: int = 1, pad_value: int = 255,
               captions: Sequence[str] | None = None) -> np.ndarray:
    """uint8 N x H x W x C images as one grid with ``nrow`` images per row, ``pad`` pixels apart; with
    ``captions`` (one per image, e.g. its class name) each is written under its image in Pillow's default font,
    cut to the image's width."""
    if images.ndim != 4:
        raise ValueError(f"expected N x H x W x C images, got shape {images.shape}")
    n, h, w, c = images.shape
    if captions is not None and len(captions) != n:
        raise ValueError(f"{len(captions)} captions for {n} images")
    font = ImageFont.load_default()
    caption = font.getbbox("Ag")[3] + 2 if captions is not None else 0  # the height of a line of text
    cell = h + caption
    rows = -(-n // nrow)
    grid = np.full((rows * (cell + pad) + pad, nrow * (w + pad) + pad, c), pad_value, dtype=images.dtype)
    corners = [(pad + r * (cell + pad), pad + col * (w + pad)) for r, col in (divmod(i, nrow) for i in range(n))]
    for (top, left), image in zip(corners, images, strict=True):
        grid[top: top + h, left: left + w] = image
    if captions is None:
        return grid
    picture = Image.fromarray(grid[..., 0] if c == 1 else grid)
    draw = ImageDraw.Draw(picture)
    ink = (0 if pad_value > 127 else 255,) * len(picture.getbands())
    for (top, left), text in zip(corners, captions, strict=True):
        while text and draw.textlength(text, font=font) > w:
            text = text[:-1]
        draw.text((left, top + h + 1), text, fill=ink, font=font)
    return np.asarray(picture).reshape(grid.shape)


def png_name(index: int, label: int | None = None, class_names: Sequence[str] | None = None) -> str:
    """A sample's file name: ``000012.png``, with its label ``000012_label3.png``, and with a class name that is
    not the label itself ``000012_label3_sneaker.png`` (lower case, runs of other characters as one ``_``)."""
    name = f"{index:06d}"
    if label is not None:
        name += f"_label{label}"
        word = re.sub(r"[^a-z0-9]+", "_", class_names[label].lower()).strip("_")[:40] if class_names else ""
        if word and word != str(label):
            name += f"_{word}"
    return f"{name}.png"


def write_pngs(folder: str | os.PathLike, images: np.ndarray, labels: np.ndarray | None = None,
               class_names: Sequence[str] | None = None, start: int = 0) -> None:
    """Each uint8 H x W x C image as a PNG in ``folder`` (created), named by :func:`png_name` from its index
    (``start`` + its position) and label."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        label = None if labels is None else int(labels[i])
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
            folder / png_name(start + i, label, class_names))


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
