"""Sample with Progressive Guidance (or any guidance of the family), on any number of processes, resumably:
the main job (guided_diffusion.sampling.job) on the command line; --help lists its flags.

    mpiexec -n 8 python scripts/prog_classifier_sample.py --gamma 0.04 --classifier_scale 1.0 \\
        --classifier_path models/64x64_classifier.pt --model_path models/64x64_diffusion.pt \\
        --num_samples 50000 --batch_size 256 --timestep_respacing 250
"""

from guided_diffusion.cli import run_main
from guided_diffusion.sampling.job import job_args, run_job


def main() -> None:
    run_job(job_args())


if __name__ == "__main__":
    run_main(main)
