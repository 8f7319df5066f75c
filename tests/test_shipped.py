"""The shipped models: they load by name, and their manifests' held-out metrics hold (the digits' exactly, the
Fashion-MNIST models' on a slice of the shipped test subset, within its sampling error)."""

import numpy as np
import pytest
import torch

from guided_diffusion import models as shipped
from guided_diffusion import script_util as su
from guided_diffusion.checkpoints import load_checkpoint, resolve
from guided_diffusion.evaluation.autoencoder import load_autoencoder
from guided_diffusion.evaluation.feature_extractors import load_classifier
from guided_diffusion.evaluation.held_out import default_job_channel_gap, held_out_metrics
from guided_diffusion.testbeds.digits import load_digits_split, write_digits
from guided_diffusion.testbeds.fashion import load_subset

from launch import run_python

NAMES = ["digits/adm", "digits/cadm", "digits/classifier", "digits/classifier_weak", "digits/features",
         *[f"digits/bank{i}" for i in range(1, 6)]]
SLICE = 10  # the Fashion test: every 10th image of the shipped subset
FASHION = ["fashion/adm", "fashion/cadm", "fashion/classifier", "fashion/features", "fashion/autoencoder",
           *[f"fashion/bank{i}" for i in range(1, 7)]]


@pytest.fixture(scope="module")
def held_out():
    return load_digits_split()["test"]


def build(name):
    info = shipped.manifest(name)
    if info["kind"] == "diffusion":
        return su.create_model_and_diffusion(**{**su.model_and_diffusion_defaults(), **info["flags"]})
    return su.create_classifier_and_diffusion(**{**su.classifier_and_diffusion_defaults(), **info["flags"]})


def test_every_model_is_shipped_with_a_manifest():
    assert sorted(shipped.shipped_names()) == sorted(NAMES + FASHION)
    for name in NAMES + FASHION:
        info = shipped.manifest(name)
        assert {"flags", "training", "held_out", "num_params"} <= set(info)
        assert info["training"]["command"].startswith("scripts/") and info["training"]["seconds"] > 0
        state = torch.load(shipped.checkpoint_path(name), weights_only=True)
        assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
        assert sum(v.numel() for v in state.values()) == info["num_params"]
    assert resolve("digits/cadm").endswith("models/digits/cadm.pt") and resolve("mine/cadm.pt") == "mine/cadm.pt"


def test_training_data_is_what_the_models_saw(tmp_path):
    hashes = write_digits(tmp_path)
    assert {shipped.manifest(n)["training"]["train_npz_sha256"] for n in NAMES} == {hashes["train"]}
    assert len({shipped.manifest(n)["training"]["train_npz_sha256"] for n in FASHION}) == 1


@pytest.mark.parametrize("name", FASHION)
def test_fashion_held_out_metrics_hold_on_a_slice(name):
    """Every 10th image of the shipped 2,000-image subset (the manifests' metrics are on all of it): accuracies
    within four binomial standard errors, mean squared errors within 10 %."""
    images, labels, _ = load_subset()
    images, labels = images[::SLICE], labels[::SLICE]
    info = shipped.manifest(name)
    recorded = info["held_out"]
    if info["kind"] == "diffusion":
        net, diffusion = build(name)
        load_checkpoint(net, name)
    elif info["kind"] == "autoencoder":
        net, diffusion = load_autoencoder(name), None
    else:  # ADM's encoders and the torchvision bank alike, with the guide's noise schedule
        net, diffusion = load_classifier(name)[0], su.create_gaussian_diffusion(
            **{k: info["flags"][k] for k in ("noise_schedule", "learn_sigma")}, steps=info["flags"]["diffusion_steps"])
    if info["kind"] == "diffusion":  # fewer images: one forward pass of the U-Net per image and timestep
        images, labels = images[::2], labels[::2]
    measured = held_out_metrics(info["kind"], net, diffusion, images, labels,
                                noised="accuracy_t100" in recorded)
    assert measured.keys() == recorded.keys()
    for key, value in recorded.items():
        if key.startswith("accuracy"):
            error = 4 * np.sqrt(value * (1 - value) / len(labels)) + 1 / len(labels)
            assert measured[key] == pytest.approx(value, abs=error), key
        else:
            assert measured[key] == pytest.approx(value, rel=0.1), key
    if info["kind"] == "classifier":  # far above chance (0.1); the weakest, SqueezeNet 1.1 (bank3), has 0.744
        assert recorded["accuracy"] > 0.7
    if info["kind"] == "diffusion":  # the unguided samples' FID, beside the train-vs-test floor
        assert info["unguided"]["fid_vs_test"] > info["unguided"]["fid_floor_train_vs_test"] > 0


@pytest.mark.parametrize("name", NAMES)
def test_held_out_metrics_hold(name, held_out):
    net, diffusion = build(name)
    load_checkpoint(net, name)
    info = shipped.manifest(name)
    measured = held_out_metrics(info["kind"], net, diffusion, *held_out,
                                        noised=info["flags"].get("noised", "accuracy_t100" in info["held_out"]))
    assert measured.keys() == info["held_out"].keys()
    for key, value in info["held_out"].items():  # to one image of 300, or 1 % of the error
        tolerance = 1.01 / len(held_out[1]) if key.startswith("accuracy") else 0.01 * value
        assert measured[key] == pytest.approx(value, abs=tolerance), key
    if info["kind"] == "classifier":
        assert info["held_out"]["accuracy"] > 0.9


def test_shipped_classifier_guides_toward_the_label(held_out):
    """Sanity: the guidance classifier is better than chance when the image is half noise."""
    info = shipped.manifest("digits/classifier")
    assert info["held_out"]["accuracy_t500"] > 0.5


def test_main_job_without_model_flags(tmp_path):
    run_python(["scripts/prog_classifier_sample.py", "--num_samples", "4", "--batch_size", "2",
                "--timestep_respacing", "20"], env={"OPENAI_LOGDIR": str(tmp_path / "one")})
    run_python(["scripts/prog_classifier_sample.py", "--num_samples", "4", "--batch_size", "2",
                "--timestep_respacing", "20"], nproc=2, env={"OPENAI_LOGDIR": str(tmp_path / "two")})
    one, two = (np.load(tmp_path / d / "samples_4x16x16x3.npz") for d in ("one", "two"))
    assert np.array_equal(one["arr_0"], two["arr_0"]) and np.array_equal(one["arr_1"], two["arr_1"])
    assert (tmp_path / "one" / "samples_4x16x16x3.png").is_file()
    args = (tmp_path / "one" / "run_args.json").read_text()
    assert '"model_path": "digits/adm"' in args and '"classifier_path": "digits/classifier"' in args


def test_shipped_name_sets_the_flags_of_adm_scripts(tmp_path):
    run_python(["scripts/image_sample.py", "--model_path", "digits/adm", "--num_samples", "2", "--batch_size", "2",
                "--timestep_respacing", "5"], env={"OPENAI_LOGDIR": str(tmp_path)})
    assert np.load(tmp_path / "samples_2x16x16x3.npz")["arr_0"].shape == (2, 16, 16, 3)


@pytest.mark.parametrize("name,rerun", [("digits/adm", 8), ("digits/cadm", 8), ("fashion/adm", 4),
                                        ("fashion/cadm", 4)])
def test_default_job_samples_are_grey_like_their_data(name, rerun):
    """The training images are grey: the main job's samples must be too (the Fashion models with --grey_data,
    which their manifests set). The manifest records each sample's gap, measured by the same library job that the
    script runs (tests/test_job.py holds them equal); the first few are measured again here (a sample's noise and
    label depend on its index alone)."""
    info = shipped.manifest(name)
    model = build(name)[0]
    load_checkpoint(model, name)
    classifier = load_classifier(info["sample_flags"]["classifier_path"])[0]
    recorded = info["default_job_channel_gap"]
    gaps = np.array(recorded["per_sample"])
    assert len(gaps) == recorded["samples"] == 64 and gaps.mean() == pytest.approx(recorded["mean"], abs=1e-3)
    assert gaps.mean() <= 2.0 and (gaps <= 5).mean() >= 0.95 and (gaps > 5).mean() == recorded["share_above_5"]
    # (recorded in another process, perhaps with other CPU threads: a few pixels may differ by 1/255)
    assert default_job_channel_gap(model, info, classifier, rerun) == pytest.approx(gaps[:rerun], abs=0.05)
    assert info["sample_flags"].get("grey_data", False) == name.startswith("fashion/")
