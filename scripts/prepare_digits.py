"""Prepare scikit-learn's 8x8 digits for training and evaluation (deterministic, offline).

    python scripts/prepare_digits.py --out_dir data/digits            # 16x16, 300 held out

Writes train/ and test/ image folders ({label}_{index}.png) and train.npz / test.npz
(arr_0 uint8 NHWC, arr_1 labels), and prints the sha256 of each .npz.
"""


from guided_diffusion.cli import ScriptParser, run_main
from guided_diffusion.testbeds.digits import HELD_OUT, IMAGE_SIZE, SPLIT_SEED, write_digits


def main() -> None:
    parser = ScriptParser(description=__doc__)
    parser.add_argument("--out_dir", default="data/digits")
    parser.add_argument("--image_size", type=int, default=IMAGE_SIZE)
    parser.add_argument("--held_out", type=int, default=HELD_OUT, help="images kept out of training (stratified)")
    parser.add_argument("--seed", type=int, default=SPLIT_SEED, help="seed of the train / held-out split")
    args = parser.parse_args()
    for split, digest in write_digits(args.out_dir, args.image_size, args.held_out, args.seed).items():
        print(f"{args.out_dir}/{split}.npz sha256 {digest}")


if __name__ == "__main__":
    run_main(main)
