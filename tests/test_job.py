"""guided_diffusion.sampling.job: the main job, once in the library, for the script, the harness and the checks.

The fixtures ``main_job_*.npz`` were written by ``scripts/prog_classifier_sample.py`` before the job moved into
the library (commit ce3e584, one CPU thread); the same commands must still write the same bytes.
"""

import io
import sys

import numpy as np
import pytest
import torch

from guided_diffusion import dist_util
from guided_diffusion.flags import SAMPLERS
from guided_diffusion.sampling.figures import image_grid, png_name
from guided_diffusion.sampling.job import MainJob, job_args
from guided_diffusion.sampling.samplers import from_uint8_nhwc, progress_bar, respacing_for, sample_loop, to_uint8_nhwc

from golden import FIXTURES
from launch import run_python
from tiny import tiny_model_and_diffusion

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


class CountingBar:
    """Stands in for a tqdm bar: its updates."""

    def __init__(self):
        self.updates = []

    def update(self, n=1):
        self.updates.append(n)


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_progress_bar_moves_every_step(one_thread, monkeypatch):
    bar = CountingBar()
    for sampler in SAMPLERS:  # the loops the ADM scripts call, with the scripts' bar
        model, diffusion = tiny_model_and_diffusion(timestep_respacing=respacing_for(sampler, "3"))
        sample_loop(diffusion, sampler)(model, (1, 3, 8, 8), progress=bar)
    assert bar.updates == [1] * 3 * len(SAMPLERS)

    monkeypatch.setattr(sys, "stderr", Terminal())
    job = MainJob(job_args(["--timestep_respacing", "3", "--num_samples", "2", "--batch_size", "1"]),
                  device=torch.device("cpu")).load()
    with progress_bar(2 * job.diffusion.num_timesteps) as bar:  # the main job's: batches x steps
        done = [(job.batch(range(i, i + 1), progress=bar), bar.n)[1] for i in range(2)]
    assert done == [3, 6] and "6/6" in sys.stderr.getvalue()
    assert progress_bar(6, enabled=False).disable  # --progress False
    monkeypatch.setattr(dist_util, "get_rank", lambda: 1)
    assert progress_bar(6).disable  # ranks other than 0
    monkeypatch.setattr(dist_util, "get_rank", lambda: 0)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress_bar(6).disable  # stderr not a terminal


def test_png_names_and_grid_captions():
    names = ["zero", "T-shirt/top", "2", "Sneaker"]
    assert png_name(12, 3, names) == "000012_label3_sneaker.png"
    assert png_name(12, 1, names) == "000012_label1_t_shirt_top.png"
    assert png_name(12, 2, names) == "000012_label2.png"  # a name that is the label adds nothing
    assert png_name(12) == "000012.png"
    images = np.full((3, 16, 16, 3), 128, np.uint8)
    plain, captioned = image_grid(images, 2), image_grid(images, 2, captions=["zero", "one", "two"])
    assert captioned.shape[1] == plain.shape[1] and captioned.shape[0] > plain.shape[0]
    line = captioned.shape[0] // 2 - 16 - 1  # the height of a caption
    assert (captioned[17: 17 + line, 1:17] < 128).any()  # ink under the first image
    assert (captioned[-line - 1:, 18:34] == 255).all()  # none under the empty fourth cell
    with pytest.raises(ValueError, match="2 captions for 3 images"):
        image_grid(images, 2, captions=["a", "b"])


def test_uint8_images_convert_to_the_models_range_and_back():
    every_value = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=3)
    x = from_uint8_nhwc(every_value)
    assert x.shape == (1, 3, 16, 16) and x.dtype == torch.float32
    assert x.min() == -1 and x.max() == 1
    assert torch.equal(from_uint8_nhwc(torch.from_numpy(every_value)), x)
    back = to_uint8_nhwc(x).numpy().astype(int) - every_value
    assert back.min() >= -1 and back.max() == 0  # to_uint8_nhwc truncates, as ADM's scripts do
