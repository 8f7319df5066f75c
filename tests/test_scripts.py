"""Round trip through the command-line scripts: train, resume, train a classifier, sample."""

import csv

import numpy as np
import pytest
import torch

from guided_diffusion import script_util as su

from launch import assert_one_line_error, run_python, together

MODEL = ["--image_size", "8", "--num_channels", "32", "--num_res_blocks", "1", "--channel_mult", "1,2",
         "--attention_resolutions", "4", "--diffusion_steps", "50", "--class_cond", "True", "--num_classes", "2"]
CLASSIFIER = ["--classifier_width", "32", "--classifier_depth", "1", "--classifier_channel_mult", "1,2",
              "--classifier_attention_resolutions", "4"]


def script(name, logdir, *args, nproc=1, check=True):
    env = {"OPENAI_LOGDIR": str(logdir), "OPENAI_LOG_FORMAT": "log,csv"}
    return run_python([f"scripts/{name}.py", *map(str, args)], nproc=nproc, env=env, check=check)



def pt_files(logdir):
    return sorted(p.name for p in logdir.iterdir() if p.suffix == ".pt")


def csv_column(path, key):
    with open(path, newline="") as f:
        return [row[key] for row in csv.DictReader(f)]


def load_samples(path):
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


@pytest.mark.parametrize("nproc", [1, 2])
def test_train_resume_classifier_and_sample(tmp_path, image_folder, nproc):
    train = ["--data_dir", image_folder, *MODEL, "--batch_size", 2, "--log_interval", 1, "--save_interval", 2]

    def train_and_resume():
        script("image_train", tmp_path / "train", *train, "--lr_anneal_steps", 3, nproc=nproc)
        script("image_train", tmp_path / "resume", *train, "--lr_anneal_steps", 4,
               "--resume_checkpoint", tmp_path / "train" / "model000002.pt", nproc=nproc)

    # the classifier's training needs nothing of the diffusion model's: side by side (when on one rank each)
    together(train_and_resume,
             lambda: script("classifier_train", tmp_path / "classifier", "--data_dir", image_folder, "--val_data_dir",
                            image_folder, "--image_size", 8, "--diffusion_steps", 50, "--num_classes", 2, *CLASSIFIER,
                            "--iterations", 2, "--batch_size", 2, "--save_interval", 10, nproc=nproc),
             side_by_side=nproc == 1)
    assert pt_files(tmp_path / "train") == [
        "ema_0.9999_000002.pt", "ema_0.9999_000003.pt", "model000002.pt", "model000003.pt",
        "opt000002.pt", "opt000003.pt"]
    assert csv_column(tmp_path / "train" / "progress.csv", "samples") == [str(2 * nproc * k) for k in (1, 2, 3)]

    assert csv_column(tmp_path / "resume" / "progress.csv", "step") == ["2", "3"]
    assert pt_files(tmp_path / "resume") == ["ema_0.9999_000004.pt", "model000004.pt", "opt000004.pt"]
    assert "loading model from checkpoint" in (tmp_path / "resume" / "log.txt").read_text()

    assert pt_files(tmp_path / "classifier") == ["model000002.pt", "opt000002.pt"]

    sample = [*MODEL, "--timestep_respacing", 4, "--num_samples", 5, "--batch_size", 2]
    together(lambda: script("image_sample", tmp_path / "samples", *sample,
                            "--model_path", tmp_path / "resume" / "ema_0.9999_000004.pt", nproc=nproc),
             lambda: script("classifier_sample", tmp_path / "guided", *sample, *CLASSIFIER, "--classifier_scale", 5,
                            "--model_path", tmp_path / "resume" / "model000004.pt",
                            "--classifier_path", tmp_path / "classifier" / "model000002.pt", nproc=nproc),
             lambda: script("classifier_sample", tmp_path / "fast", *sample, *CLASSIFIER, "--classifier_scale", 5,
                            "--model_path", tmp_path / "resume" / "model000004.pt", "--sampler", "dpmpp_2m",
                            "--precision", "bf16", "--classifier_path", tmp_path / "classifier" / "model000002.pt",
                            nproc=nproc),
             side_by_side=nproc == 1)
    for folder in ("samples", "guided", "fast"):
        out = load_samples(tmp_path / folder / "samples_5x8x8x3.npz")
        assert sorted(out) == ["arr_0", "arr_1"]
        assert out["arr_0"].dtype == np.uint8 and out["arr_0"].shape == (5, 8, 8, 3)
        assert out["arr_1"].shape == (5,) and set(out["arr_1"].tolist()) <= {0, 1}
        assert out["arr_0"].std() > 0


def test_sampling_is_reproducible_and_feeds_super_resolution(tmp_path, image_folder):
    sr = ["--large_size", 64, "--small_size", 8, "--num_channels", 32, "--num_res_blocks", 1,
          "--attention_resolutions", 4, "--diffusion_steps", 50, "--class_cond", "True", "--num_classes", 2]
    # the two trainings side by side, then the samplings
    together(lambda: script("image_train", tmp_path / "train", "--data_dir", image_folder, *MODEL, "--batch_size", 2,
                            "--max_steps", 1),
             lambda: script("super_res_train", tmp_path / "sr", "--data_dir", image_folder, *sr, "--batch_size", 2,
                            "--lr_anneal_steps", 1))
    plain = [*MODEL, "--timestep_respacing", 3, "--num_samples", 3, "--batch_size", 3,
             "--model_path", tmp_path / "train" / "model000001.pt"]
    sample = [*plain, "--use_ddim", "True"]
    *_, proc = together(
        lambda: script("image_sample", tmp_path / "a", *sample, "--seed", 7, "--save_png", tmp_path / "png"),
        lambda: script("image_sample", tmp_path / "b", *sample, "--seed", 7),
        lambda: script("image_sample", tmp_path / "fast", *plain, "--seed", 7, "--sampler", "dpmpp_2m", "--precision",
                       "bf16"),
        lambda: script("image_sample", tmp_path / "bad", *sample, "--sampler", "dpmpp_2m", check=False))
    a = load_samples(tmp_path / "a" / "samples_3x8x8x3.npz")
    b = load_samples(tmp_path / "b" / "samples_3x8x8x3.npz")
    assert np.array_equal(a["arr_0"], b["arr_0"]) and np.array_equal(a["arr_1"], b["arr_1"])
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == [f"{i:06d}_label{y}.png"
                                                                     for i, y in enumerate(a["arr_1"])]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["log.txt", "samples_3x8x8x3.npz"]  # no empty csv
    assert load_samples(tmp_path / "fast" / "samples_3x8x8x3.npz")["arr_0"].shape == (3, 8, 8, 3)
    assert_one_line_error(proc, "--use_ddim True and --sampler dpmpp_2m disagree")

    assert pt_files(tmp_path / "sr") == ["ema_0.9999_000001.pt", "model000001.pt", "opt000001.pt"]
    script("super_res_sample", tmp_path / "sr_samples", *sr, "--timestep_respacing", 2, "--num_samples", 3,
           "--batch_size", 3, "--base_samples", tmp_path / "a" / "samples_3x8x8x3.npz",
           "--model_path", tmp_path / "sr" / "model000001.pt")
    out = load_samples(tmp_path / "sr_samples" / "samples_3x64x64x3.npz")
    assert out["arr_0"].dtype == np.uint8 and out["arr_0"].shape == (3, 64, 64, 3)
    assert np.array_equal(out["arr_1"], a["arr_1"])  # labels follow the base samples


def test_label_dropout_trains_a_null_class_that_sampling_flags_must_match(tmp_path, image_folder):
    script("image_train", tmp_path / "cfg", "--data_dir", image_folder, *MODEL, "--batch_size", 2,
           "--max_steps", 1, "--label_dropout", 0.2)
    state = torch.load(tmp_path / "cfg" / "model000001.pt", weights_only=True)
    assert state["label_emb.weight"].shape[0] == 3  # 2 classes + the null class
    sample = [*MODEL, "--timestep_respacing", 2, "--num_samples", 2, "--batch_size", 2,
              "--model_path", tmp_path / "cfg" / "model000001.pt"]
    _, proc = together(lambda: script("image_sample", tmp_path / "s", *sample, "--label_dropout", 0.2),
                       lambda: script("image_sample", tmp_path / "s2", *sample, check=False))
    assert_one_line_error(proc, "--label_dropout should be > 0")


def test_build_relevance_from_descriptions_and_confusion(tmp_path, image_folder):
    torch.manual_seed(0)
    classifier = su.create_classifier(**{**su.classifier_defaults(), "image_size": 8, "num_classes": 2,
                                         "classifier_width": 32, "classifier_depth": 1,
                                         "classifier_channel_mult": "1,2", "classifier_attention_resolutions": "4"})
    torch.save(classifier.state_dict(), tmp_path / "clf.pt")
    # three independent runs, side by side
    *_, proc = together(
        lambda: run_python(["scripts/build_relevance.py", "--label_set", "digits", "--out", str(tmp_path / "d.npz")]),
        lambda: run_python(["scripts/build_relevance.py", "--source", "confusion", "--data", str(image_folder),
                            "--classifier_path", str(tmp_path / "clf.pt"), "--image_size", "8", "--num_classes", "2",
                            *CLASSIFIER, "--diffusion_steps", "50", "--timesteps", "0,25", "--top_k", "2",
                            "--out", str(tmp_path / "c.npz")]),
        lambda: run_python(["scripts/build_relevance.py", "--label_set", "digits", "--encoder", "open_clip:ViT-B-32",
                            "--encoder_weights", str(tmp_path / "missing.bin"), "--out", str(tmp_path / "x.npz")],
                           check=False))
    with np.load(tmp_path / "d.npz") as built, np.load("class_descriptions/digits_relevance.npz") as shipped:
        np.testing.assert_allclose(built["relevance"], shipped["relevance"], atol=1e-6)
        assert str(built["source_sha256"]) == str(shipped["source_sha256"])

    with np.load(tmp_path / "c.npz") as npz:
        assert npz["relevance"].shape == (2, 2) and str(npz["encoder"]).startswith("confusion:clf.pt@t=[0, 25]")
        assert list(npz["class_names"]) == ["0", "1"]

    assert_one_line_error(proc, "missing.bin")
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize("name,args", [
    ("image_train", ["--data_dir", "{images}", *MODEL, "--resume_checkpoint", "{tmp}/model000005.pt"]),
    ("classifier_train", ["--data_dir", "{images}", "--image_size", 8, "--num_classes", 2, *CLASSIFIER,
                          "--resume_checkpoint", "{tmp}/model000005.pt"]),
    ("classifier_sample", [*MODEL, *CLASSIFIER, "--model_path", "{tmp}/model000005.pt"]),
    ("super_res_sample", ["--model_path", "{tmp}/model000005.pt", "--base_samples", "{tmp}/none.npz"]),
])
def test_missing_checkpoint_is_one_line_in_every_script(tmp_path, image_folder, name, args):
    args = [str(a).format(images=image_folder, tmp=tmp_path) for a in args]
    proc = script(name, tmp_path / "out", *args, check=False)
    assert_one_line_error(proc, f"{tmp_path}/")
