"""Train every Fashion-MNIST model with the project's own training scripts (make fashion-models).

    python scripts/train_fashion_models.py --jobs 2                 # all of them, two at a time (~7.7 h, 2 cores)
    python scripts/train_fashion_models.py --only bank1,bank2 --jobs 2
    python scripts/train_fashion_models.py --jobs 2 --train_only    # a session: train or resume, package nothing

The same run as the digits' (guided_diffusion.testbeds.training), with the specs of
guided_diffusion.testbeds.fashion.MODELS: the data are prepared once into <work_dir>/data (from
$FASHION_MNIST_DIR, else the Debian package's folder; docs/fashion.md), each model trains with
fixed seeds into <work_dir>/<name> and is packaged as guided_diffusion/models/fashion/<name>.pt
and .json, its held-out metrics taken on the shipped test subset; a diffusion model's manifest
also records the FID of 1,000 unguided samples against the test split, beside the
train-vs-test floor, and <name>_samples.png is a grid of its samples per class. Run it again after an
interruption: finished models are skipped, an interrupted one resumes from its latest
checkpoint (every 250 steps of a diffusion model, 500 of a classifier).
"""

import hashlib
from pathlib import Path

from guided_diffusion.cli import run_main
from guided_diffusion.testbeds import fashion
from guided_diffusion.testbeds.training import ModelSet, run


def prepare_once(data_dir: Path) -> dict[str, str]:
    """write_fashion unless ``data_dir`` already holds both .npz files (a resumed run); their sha256."""
    if not all((data_dir / f"{split}.npz").is_file() for split in ("train", "test")):
        return fashion.write_fashion(data_dir)
    return {split: hashlib.sha256((data_dir / f"{split}.npz").read_bytes()).hexdigest() for split in ("train", "test")}


FASHION_MODELS = ModelSet(testbed="fashion", models=fashion.MODELS, sample_flags=fashion.SAMPLE_FLAGS,
                          write_data=prepare_once, data=fashion.TRAINING_DATA,
                          held_out=lambda data_dir: fashion.load_subset()[:2], quality_samples=fashion.QUALITY_SAMPLES)

if __name__ == "__main__":
    run_main(lambda: run(FASHION_MODELS, doc=__doc__))
