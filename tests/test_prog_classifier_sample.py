"""The main job, scripts/prog_classifier_sample.py, on tiny random checkpoints made here."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from guided_diffusion import script_util as su
from guided_diffusion.progressive.information_degree import InformationDegree, gamma_per_step

from launch import ROOT, assert_one_line_error, mpiexec, run_python

MODEL = dict(image_size=8, num_channels=32, num_res_blocks=1, channel_mult="1,2", attention_resolutions="4",
             diffusion_steps=50, class_cond=True, num_classes=3, learn_sigma=True, noise_schedule="cosine",
             label_dropout=0.1)
CLASSIFIER = dict(image_size=8, classifier_width=32, classifier_depth=1, classifier_channel_mult="1,2",
                  classifier_attention_resolutions="4", num_classes=3)
RELEVANCE = np.array([[0.6, 0.3, 0.1], [0.25, 0.5, 0.25], [0.05, 0.15, 0.8]])


def flags(values: dict) -> list[str]:
    return [str(a) for k, v in values.items() for a in (f"--{k}", v)]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    model, _ = su.create_model_and_diffusion(**{**su.model_and_diffusion_defaults(), **MODEL})
    classifier = su.create_classifier(**{**su.classifier_defaults(), **CLASSIFIER})
    with torch.no_grad():
        for p in [*model.out.parameters(), *classifier.out.parameters()]:
            p.normal_(0, 0.2)
    torch.save(model.state_dict(), root / "model.pt")
    torch.save(classifier.state_dict(), root / "classifier.pt")
    np.savez(root / "relevance.npz", relevance=RELEVANCE)
    return root


def base_args(checkpoints, **overrides) -> list[str]:
    values = {**MODEL, **CLASSIFIER, "model_path": checkpoints / "model.pt",
              "classifier_path": checkpoints / "classifier.pt", "relevance": checkpoints / "relevance.npz",
              "timestep_respacing": 4, "num_samples": 5, "batch_size": 2, "classifier_scale": 3.0, "seed": 3,
              **overrides}
    return flags(values)


def sample(out_dir, args, nproc=1, check=True):
    return run_python(["scripts/prog_classifier_sample.py", *args], nproc=nproc, check=check,
                      env={"OPENAI_LOGDIR": str(out_dir)})


def load(path):
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("sampler", ["ddpm", "dpmpp_2m"])
def test_output_format_and_saved_information_degree(tmp_path, checkpoints, sampler):
    sample(tmp_path, base_args(checkpoints, save_trajectory=3, gamma=0.3, sampler=sampler, grid_labels=True,
                               save_png=tmp_path / "png"))
    out = load(tmp_path / "samples_5x8x8x3.npz")
    assert sorted(out) == ["arr_0", "arr_1", "information_degree", "trajectory_x0"]
    assert out["arr_0"].dtype == np.uint8 and out["arr_0"].shape == (5, 8, 8, 3) and out["arr_0"].std() > 0
    assert out["arr_1"].shape == (5,) and set(out["arr_1"].tolist()) <= {0, 1, 2}
    assert out["trajectory_x0"].dtype == np.uint8 and out["trajectory_x0"].shape == (4, 3, 8, 8, 3)
    assert out["information_degree"].dtype == np.float32 and out["information_degree"].shape == (4, 3, 3)
    gamma = gamma_per_step(0.3, 4, reference_steps=250)  # by default gamma is meant for 250 steps
    degree = InformationDegree.from_relevance(RELEVANCE, torch.as_tensor(out["arr_1"][:3]), gamma)
    for k in range(4):
        np.testing.assert_allclose(out["information_degree"][k], degree.at(k).numpy(), atol=1e-7)
    last_x0 = out["trajectory_x0"][-1].astype(int)
    assert np.abs(last_x0 - out["arr_0"][:3]).max() <= 3  # the last prediction of x_0 is (nearly) the sample
    for name in ("samples_5x8x8x3.png", "trajectory.png", "run_args.json"):
        assert (tmp_path / name).stat().st_size > 0
    run_args = json.loads((tmp_path / "run_args.json").read_text())
    assert run_args["gamma"] == 0.3 and "save_png" not in run_args  # output-only flags may change on a resume
    assert not (tmp_path / "progress.csv").exists()  # no empty log file
    pngs = sorted((tmp_path / "png").iterdir())  # without a label set the class names are the labels
    assert [p.name for p in pngs] == [f"{i:06d}_label{y}.png" for i, y in enumerate(out["arr_1"])]
    assert np.array_equal(np.asarray(Image.open(pngs[4])), out["arr_0"][4])
    grid = np.asarray(Image.open(tmp_path / "samples_5x8x8x3.png"))
    assert grid.shape[0] > 8 * 8 + 2  # a row of 64-pixel images with their captions under them

    sample(tmp_path / "per_step", base_args(checkpoints, save_trajectory=1, gamma=0.3, gamma_reference_steps=0))
    out = load(tmp_path / "per_step" / "samples_5x8x8x3.npz")
    degree = InformationDegree.from_relevance(RELEVANCE, torch.as_tensor(out["arr_1"][:1]), 0.3)
    np.testing.assert_allclose(out["information_degree"][3], degree.at(3).numpy(), atol=1e-7)


@pytest.mark.parametrize("guidance", ["vanilla", "uniform_ls", "ls", "eds", "prog_eds", "ramped", "cfg", "none"])
def test_every_guidance_runs(tmp_path, checkpoints, guidance):
    sample(tmp_path, base_args(checkpoints, guidance=guidance, num_samples=2, save_trajectory=1,
                               use_ddim=guidance == "eds"))
    out = load(tmp_path / "samples_2x8x8x3.npz")
    assert out["arr_0"].shape == (2, 8, 8, 3)
    s = out["information_degree"][:, 0]
    if guidance in ("vanilla", "eds", "cfg", "none"):
        assert (s == np.eye(3)[out["arr_1"][0]]).all()
    elif guidance == "ls":
        assert np.allclose(s, s[0]) and s[0].max() == pytest.approx(0.9)
    elif guidance == "ramped":  # ProG's information degree, which scales vanilla guidance
        degree = InformationDegree.from_relevance(RELEVANCE, torch.as_tensor(out["arr_1"][:1]), 0.04)
        assert not (s[0] == np.eye(3)[out["arr_1"][0]]).all() and np.allclose(s[0], degree.at(0).numpy()[0])


@pytest.mark.parametrize("sampler", ["ddpm", "dpmpp_2m", "dpmpp_2m_sde"])
def test_process_count_does_not_change_the_output(tmp_path, checkpoints, sampler):
    args = base_args(checkpoints, classes="balanced", save_trajectory=3, sampler=sampler)
    sample(tmp_path / "plain", args)
    sample(tmp_path / "two", args, nproc=2)
    files = [tmp_path / d / "samples_5x8x8x3.npz" for d in ("plain", "two")]
    assert len({digest(f) for f in files}) == 1
    assert load(files[0])["arr_1"].tolist() == [0, 1, 2, 0, 1]
    logs = (tmp_path / "two" / "log.txt").read_text()
    assert "rank 0: 2 of 3 batches" in logs


def test_the_rank_count_promise_on_the_shipped_digit_model(tmp_path):
    """Equal threads per process: the same bytes from python and mpiexec -n 2. Other thread counts: CPU kernels
    sum in another order, so a few pixels may differ, by at most 1/255 (what docs/sampling.md states)."""
    args = ["--num_samples", "8", "--batch_size", "4", "--classes", "balanced", "--timestep_respacing", "10",
            "--seed", "3"]
    sample(tmp_path / "plain", args)  # launch.run_python gives every process one thread
    sample(tmp_path / "two", args, nproc=2)
    run_python(["scripts/prog_classifier_sample.py", *args],
               env={"OPENAI_LOGDIR": str(tmp_path / "threads"), "OMP_NUM_THREADS": "2"})
    files = {d: tmp_path / d / "samples_8x16x16x3.npz" for d in ("plain", "two", "threads")}
    assert digest(files["plain"]) == digest(files["two"])
    a, b = (load(files[d])["arr_0"].astype(int) for d in ("plain", "threads"))
    assert np.abs(a - b).max() <= 1 and (a != b).mean() < 0.01
    assert "1 CPU thread(s) per process" in (tmp_path / "plain" / "log.txt").read_text()


@pytest.mark.parametrize("sampler", ["ddpm", "dpmpp_2m"])  # the SDE variant draws its noise as ddpm does
def test_killed_run_resumes_to_the_same_file(tmp_path, checkpoints, sampler):
    args = base_args(checkpoints, num_samples=8, batch_size=1, timestep_respacing=25, sampler=sampler)
    sample(tmp_path / "whole", args)

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENAI_LOGDIR": str(tmp_path / "cut")}
    proc = subprocess.Popen([sys.executable, "scripts/prog_classifier_sample.py", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shards = tmp_path / "cut" / "shards"
    deadline = time.time() + 120
    while time.time() < deadline and not (shards.is_dir() and len(list(shards.glob("batch_*.npz"))) >= 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {p.name: p.stat().st_mtime_ns for p in shards.glob("batch_*.npz")}
    assert 2 <= len(done) < 8, "the run was not killed mid-way"
    assert not (tmp_path / "cut" / "samples_8x8x8x3.npz").exists()

    sample(tmp_path / "cut", [*args, "--grid_labels", "True", "--progress", "False"])  # output flags may change
    assert digest(tmp_path / "cut" / "samples_8x8x8x3.npz") == digest(tmp_path / "whole" / "samples_8x8x8x3.npz")
    assert all((shards / name).stat().st_mtime_ns == mtime for name, mtime in done.items())  # not redone
    assert f"{len(done)} samples already on disk" in (tmp_path / "cut" / "log.txt").read_text()

    proc = sample(tmp_path / "cut", base_args(checkpoints, num_samples=8, batch_size=1, timestep_respacing=25,
                                              gamma=0.1, sampler=sampler), check=False)
    assert_one_line_error(proc, "--gamma 0.04 there, 0.1 now")


@pytest.mark.parametrize("overrides,message", [
    ({"classes": "1,3"}, "class indices must be in [0, 3)"),
    ({"gamma": 1.5}, "gamma must be in [0, 1]"),
    ({"save_trajectory": 6}, "--save_trajectory 6 must be in [0, --num_samples 5]"),
    ({"guidance": "cfg", "label_dropout": 0.0}, "--guidance cfg needs a class-conditional model trained with label"),
    ({"relevance": "{checkpoints}/wrong.npz"}, "the relevance matrix is for 4 classes but the classifier has 3"),
    ({"relevance": "{checkpoints}/none.npz"}, "relevance matrix not found"),
    ({"model_path": "{checkpoints}/256x256_diffusion.pt"}, "256x256_diffusion.pt"),
    ({"classifier_path": "{checkpoints}/model.pt"}, "model.pt is a diffusion model's checkpoint, not a classifier"),
    ({"label_dropout": 0.0}, "--label_dropout should be > 0"),
    ({"label_set": "digits"}, "--label_set digits has 10 classes but the classifier has 3"),
    ({"sampler": "euler"}, "argument --sampler: invalid choice: 'euler' (choose from 'ddpm', 'ddim', "),
    ({"sampler": "dpmpp_2m", "use_ddim": True}, "--use_ddim True and --sampler dpmpp_2m disagree"),
    ({"precision": "fp16"}, "--precision fp16 needs a CUDA device"),
    ({"precision": "bf16", "use_fp16": True}, "do not combine"),
])
def test_bad_input_is_one_line_before_sampling(tmp_path, checkpoints, overrides, message):
    np.savez(checkpoints / "wrong.npz", relevance=np.full((4, 4), 0.1) + np.eye(4) * 0.6)
    overrides = {k: str(v).format(checkpoints=checkpoints) for k, v in overrides.items()}
    proc = sample(tmp_path, base_args(checkpoints, **overrides), check=False)
    assert_one_line_error(proc, message)
    assert not (tmp_path / "shards").exists()


@pytest.fixture(scope="module")
def broken_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("broken")
    adm = (ROOT / "guided_diffusion/models/digits/adm.pt").read_bytes()
    (root / "cut.pt").write_bytes(adm[: len(adm) // 3])  # a partly downloaded checkpoint
    (root / "text.pt").write_text("not a checkpoint\n")
    (root / "adm_copy.pt").write_bytes(adm)
    return root


SHIPPED_JOB = ["--num_samples", "2", "--batch_size", "2", "--timestep_respacing", "3"]


@pytest.mark.parametrize("nproc", [1, 2])
@pytest.mark.parametrize("args,message", [
    (["--model_path", "{broken}/cut.pt"], "cut.pt (%s bytes) cannot be read as a PyTorch checkpoint"),
    (["--model_path", "{broken}/text.pt"], "text.pt (17 bytes) cannot be read as a PyTorch checkpoint"),
    (["--classifier_path", "digits/adm"], "--classifier_path digits/adm is a diffusion model, not a classifier"),
    (["--classifier_path", "{broken}/adm_copy.pt"], "adm_copy.pt is a diffusion model's checkpoint, not a classifier"),
    (["--model_path", "digits/classifier"], "--model_path digits/classifier is a classifier model, not a diffusion"),
    (["--timestep_respacing", "abc"], "--timestep_respacing 'abc' is not a step count"),
    (["--image_size", "32"], "--model_path digits/adm is the shipped digits/adm, made with --image_size 16 (not 32)"),
])
def test_bad_files_and_flags_for_the_shipped_job_are_one_line(tmp_path, broken_files, nproc, args, message):
    args = [a.format(broken=broken_files) for a in args]
    message = message.replace("%s", f"{(broken_files / 'cut.pt').stat().st_size:,}")
    proc = sample(tmp_path, SHIPPED_JOB + args, nproc=nproc, check=False)
    assert_one_line_error(proc, message)
    assert not (tmp_path / "shards").exists()


@pytest.mark.parametrize("nproc", [1, 2])
def test_a_damaged_shard_is_sampled_again_to_the_same_file(tmp_path, checkpoints, nproc):
    args = base_args(checkpoints, num_samples=6, batch_size=2, save_trajectory=3)
    sample(tmp_path / "hurt", args, nproc=nproc)
    final = tmp_path / "hurt" / "samples_6x8x8x3.npz"
    whole = digest(final)
    shard = tmp_path / "hurt" / "shards" / "batch_000001.npz"
    shard.write_bytes(shard.read_bytes()[:-100])  # cut short by a full disk
    final.unlink()
    sample(tmp_path / "hurt", args, nproc=nproc)
    assert digest(final) == whole
    log = (tmp_path / "hurt" / "log.txt").read_text()
    assert "batch 1 (samples 2..3) will be sampled again" in log and shard.with_name(shard.name + ".damaged").exists()


def test_a_damaged_run_args_file_is_one_line_naming_it(tmp_path, checkpoints):
    args = base_args(checkpoints, num_samples=2)
    sample(tmp_path, args)
    (tmp_path / "run_args.json").write_text('{"gamma": 0.04,')
    proc = sample(tmp_path, args, check=False)
    assert_one_line_error(proc, f"{tmp_path / 'run_args.json'} is damaged", "delete it")


def test_robustness_of_labels_outside_the_bank_is_one_line(tmp_path):
    np.savez(tmp_path / "s.npz", np.zeros((2, 16, 16, 3), np.uint8), np.array([3, 50]))
    proc = run_python(["evaluations/robustness.py", str(tmp_path / "s.npz"), "--bank", "digits/bank1"], check=False)
    assert_one_line_error(proc, "labels 50 are outside the 10 classes of digits/bank1")


def test_adm_style_client_code_runs_under_plain_python(tmp_path):
    """Calls torch.distributed directly after setup_dist, as ADM's image_sample.py does."""
    client = tmp_path / "client.py"
    client.write_text(
        "import sys, torch, torch.distributed as dist\n"
        "from guided_diffusion import dist_util\n"
        "dist_util.setup_dist()\n"
        "sample = torch.arange(6).view(2, 3)\n"
        "gathered = [torch.zeros_like(sample) for _ in range(dist.get_world_size())]\n"
        "dist.all_gather(gathered, sample)\n"
        "dist.barrier()\n"
        "open(sys.argv[1], 'w').write(f'{dist.get_world_size()} {dist.get_rank()} {gathered[0].sum().item()} '\n"
        "                             f'{\"mpi4py\" in sys.modules}')\n"
    )
    run_python([str(client), str(tmp_path / "plain")])
    assert (tmp_path / "plain").read_text() == "1 0 15 False"
    subprocess.run([mpiexec(), "-n", "1", sys.executable, str(client), str(tmp_path / "mpi")], check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert (tmp_path / "mpi").read_text().startswith("1 0 15")


def test_evaluator_rejects_a_file_that_is_not_an_npz_in_one_line(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, np.zeros((4, 8, 8, 3), np.uint8))
    (tmp_path / "text.npz").write_text("hello")
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[:300])
    for bad in ("text.npz", "cut.npz"):
        proc = run_python(["evaluations/evaluator.py", str(good), str(tmp_path / bad)], check=False)
        assert_one_line_error(proc, bad)
