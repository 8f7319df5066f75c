"""Retrain every shipped digit model with the project's own training scripts (make digits-models).

    python scripts/train_digits_models.py                      # all models, one after another
    python scripts/train_digits_models.py --only cadm,classifier --jobs 2

Prepares the digits (scripts/prepare_digits.py), runs image_train.py / classifier_train.py
with the flags of guided_diffusion.testbeds.digits.MODELS and fixed seeds, then stores each
final checkpoint (the EMA weights of the diffusion models) as a float16 state dict in
guided_diffusion/models/digits/<name>.pt with <name>.json beside it: flags, training command,
steps, seconds, the training data's sha256 and the held-out metrics
(guided_diffusion.evaluation.held_out.held_out_metrics). A second run resumes: finished models
are skipped, an interrupted one continues from its latest checkpoint
(guided_diffusion.testbeds.training).
"""

from pathlib import Path

from guided_diffusion.cli import run_main
from guided_diffusion.sampling.shards import read_npz
from guided_diffusion.testbeds.digits import MODELS, SAMPLE_FLAGS, TRAINING_DATA, write_digits
from guided_diffusion.testbeds.training import ModelSet, run


def held_out(data_dir: Path):
    test = read_npz(data_dir / "test.npz")
    return test["arr_0"], test["arr_1"]


DIGITS_MODELS = ModelSet(testbed="digits", models=MODELS, sample_flags=SAMPLE_FLAGS, write_data=write_digits,
                         data=TRAINING_DATA, held_out=held_out)

if __name__ == "__main__":
    run_main(lambda: run(DIGITS_MODELS, doc=__doc__))
