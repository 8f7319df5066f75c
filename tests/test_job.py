"""guided_diffusion.sampling.job: the main job, once in the library, for the script, the harness and the checks.

The fixtures ``main_job_*.npz`` were written by ``scripts/prog_classifier_sample.py`` before the job moved into
the library (commit ce3e584, one CPU thread); the same commands must still write the same bytes.
"""

import numpy as np
import pytest
import torch

from guided_diffusion.sampling.job import MainJob, job_args

from golden import FIXTURES
from launch import run_python

COMMANDS = {
    "main_job_prog_trajectory.npz": ["--timestep_respacing", "8", "--num_samples", "5", "--batch_size", "3",
                                     "--save_trajectory", "2", "--seed", "7"],
    "main_job_cfg_sde.npz": ["--model_path", "digits/cadm", "--guidance", "cfg", "--cfg_scale", "2", "--sampler",
                             "dpmpp_2m_sde", "--timestep_respacing", "6", "--num_samples", "4", "--batch_size", "4",
                             "--classes", "1,8"],
}


@pytest.mark.parametrize("fixture", sorted(COMMANDS))
def test_the_same_command_writes_the_same_bytes(tmp_path, fixture):
    run_python(["scripts/prog_classifier_sample.py", *COMMANDS[fixture]], env={"OPENAI_LOGDIR": str(tmp_path)})
    written = next(tmp_path.glob("samples_*.npz"))
    assert written.read_bytes() == (FIXTURES / fixture).read_bytes()


def test_the_library_job_samples_what_the_script_writes(one_thread):
    """MainJob.sample (in memory, as the harness calls it) gives the script's arrays, trajectory included;
    a job started at a later index gives those samples alone. (One thread, as the fixtures were written:
    other thread counts may differ by 1/255.)"""
    expected = np.load(FIXTURES / "main_job_prog_trajectory.npz")
    job = MainJob(job_args(COMMANDS["main_job_prog_trajectory.npz"]), device=torch.device("cpu")).load()
    out = job.sample(trajectory=2)
    np.testing.assert_array_equal(out["images"], expected["arr_0"])
    np.testing.assert_array_equal(out["labels"], expected["arr_1"])
    np.testing.assert_array_equal(out["trajectory_x0"], expected["trajectory_x0"])
    np.testing.assert_array_equal(out["information_degree"], expected["information_degree"])
    part = job.sample(range(3, 5))
    np.testing.assert_array_equal(part["images"], expected["arr_0"][3:5])


def test_job_args_take_flags_as_given_on_the_command_line():
    args = job_args([], model_path="digits/cadm", classifier_scale=2.5)
    assert args.classifier_scale == 2.5 and args.timestep_respacing == "100"  # the rest from the manifest
    assert args.class_cond is True and args.num_classes == 10
    assert job_args(["--classifier_scale", "2.5"]).classifier_path == "digits/classifier"
    with pytest.raises(ValueError, match="no flag --scale"):
        job_args([], scale=2.0)


def test_given_networks_are_copied_before_a_precision_casts_them():
    args = job_args(["--timestep_respacing", "2", "--num_samples", "1", "--precision", "bf16"])
    from_disk = MainJob(job_args(["--num_samples", "1"]), device=torch.device("cpu")).load()
    model = from_disk.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cast = MainJob(args, device=torch.device("cpu"), model=model, classifier=from_disk.classifier).load()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert any(v.dtype == torch.bfloat16 for v in cast.model.state_dict().values())
