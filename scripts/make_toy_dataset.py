"""Write a small labelled image folder for trying the pipeline without downloads.

Class 0 is a bright square, class 1 a bright disc, class 2 a horizontal bar, each
at a random position and colour on a dark background; files are named
``{class}_{index}.png`` so the image-folder loader reads the class from the prefix.

    python scripts/make_toy_dataset.py --out_dir toy --num_images 300 --image_size 16
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from guided_diffusion.cli import ScriptParser, run_main

SHAPES = ("square", "disc", "bar")


def toy_image(shape: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One uint8 HxWx3 image of ``shape``."""
    yy, xx = np.mgrid[:size, :size]
    r = size / 4
    cy, cx = rng.uniform(r, size - r, 2)
    if shape == "square":
        mask = (abs(yy - cy) <= r * 0.8) & (abs(xx - cx) <= r * 0.8)
    elif shape == "disc":
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    else:
        mask = (abs(yy - cy) <= r * 0.35) & (abs(xx - size / 2) <= size * 0.4)
    background = rng.integers(0, 40, 3)
    colour = rng.integers(150, 256, 3)
    return np.where(mask[..., None], colour, background).astype(np.uint8)


def main() -> None:
    parser = ScriptParser(description=__doc__)
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--num_images", type=int, default=300)
    parser.add_argument("--image_size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    for i in range(args.num_images):
        label = i % len(SHAPES)
        image = toy_image(SHAPES[label], args.image_size, rng)
        Image.fromarray(image).save(os.path.join(args.out_dir, f"{label}_{i:05d}.png"))
    print(f"wrote {args.num_images} images of {SHAPES} to {args.out_dir}")


if __name__ == "__main__":
    run_main(main)
