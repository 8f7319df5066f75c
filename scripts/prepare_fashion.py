"""Prepare Fashion-MNIST for training and evaluation (offline: from the four idx files on disk).

    apt-get install dataset-fashion-mnist                    # Debian/Ubuntu: /usr/share/datasets/fashion-mnist
    python scripts/prepare_fashion.py --out data/fashion      # reads $FASHION_MNIST_DIR, else the Debian folder
    python scripts/prepare_fashion.py --source DIR --out data/fashion   # the files of GitHub's data/fashion

Writes train/ and test/ image folders ({label}_{index}.png, 28x28 RGB) and train.npz / test.npz
(arr_0 uint8 NHWC, arr_1 labels), and prints the sha256 of each .npz. The files must be the
published ones (sha256 of their decompressed bytes) unless --no_verify. --subset_dir also writes
the held-out test subset that ships in guided_diffusion/testbeds/data/, with its manifest.
"""


from guided_diffusion.cli import ScriptParser, run_main
from guided_diffusion.testbeds.fashion import (
    SOURCE_ENV,
    SUBSET_PER_CLASS,
    SUBSET_SEED,
    default_source,
    write_fashion,
    write_subset,
)


def main() -> None:
    parser = ScriptParser(description=__doc__)
    parser.add_argument("--source", default=None,
                        help=f"folder of the four idx files, .gz or not (default: ${SOURCE_ENV}, else "
                             f"{default_source()})")
    parser.add_argument("--out", "--out_dir", dest="out", default="data/fashion")
    parser.add_argument("--no_verify", "--no-verify", action="store_true",
                        help="skip the checksums (a synthetic or edited copy); the idx structure is still checked")
    parser.add_argument("--subset_dir", default=None,
                        help="also write fashion_subset.npz and .json here (the shipped one: "
                             "guided_diffusion/testbeds/data)")
    parser.add_argument("--subset_per_class", type=int, default=SUBSET_PER_CLASS)
    parser.add_argument("--subset_seed", type=int, default=SUBSET_SEED)
    args = parser.parse_args()
    verify = not args.no_verify
    for split, digest in write_fashion(args.out, args.source, verify).items():
        print(f"{args.out}/{split}.npz sha256 {digest}")
    if args.subset_dir:
        manifest = write_subset(args.subset_dir, args.source, verify, args.subset_per_class, args.subset_seed)
        print(f"{args.subset_dir}/fashion_subset.npz: {manifest['count']} test images, {manifest['file_bytes']} "
              f"bytes, sha256 {manifest['file_sha256']}")


if __name__ == "__main__":
    run_main(main)
