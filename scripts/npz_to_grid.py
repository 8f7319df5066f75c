"""Write the first images of a samples ``.npz`` (``arr_0`` uint8 NHWC) as a PNG grid.

    python scripts/npz_to_grid.py samples_48x16x16x3.npz --out grid.png --nrow 12 --scale 4
"""


import numpy as np
from PIL import Image

from guided_diffusion.cli import ScriptParser, run_main
from guided_diffusion.sampling.figures import image_grid


def main() -> None:
    parser = ScriptParser(description=__doc__)
    parser.add_argument("npz")
    parser.add_argument("--out", required=True)
    parser.add_argument("--nrow", type=int, default=8, help="images per row")
    parser.add_argument("--max_images", type=int, default=64)
    parser.add_argument("--scale", type=int, default=4, help="nearest-neighbour upscaling of each image")
    args = parser.parse_args()
    with np.load(args.npz) as data:
        images = data["arr_0"][: args.max_images]
    grid = image_grid(images, args.nrow)
    Image.fromarray(grid).resize((grid.shape[1] * args.scale, grid.shape[0] * args.scale), Image.NEAREST).save(args.out)
    print(f"wrote {len(images)} images to {args.out}")


if __name__ == "__main__":
    run_main(main)
