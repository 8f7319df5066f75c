"""How the Fashion-MNIST models are trained (issue #27): the specs parse with their scripts' flags, the bank's
architectures differ, the budget fits, the torchvision bank networks load as classifiers do, and a run resumes."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from guided_diffusion.evaluation.autoencoder import load_autoencoder
from guided_diffusion.evaluation.clean_classifiers import ADM, ARCHITECTURES, create_clean_classifier
from guided_diffusion.evaluation.feature_extractors import ClassifierExtractor, load_classifier
from guided_diffusion.evaluation.held_out import unguided_quality
from guided_diffusion.evaluation.robustness import member_classes
from guided_diffusion.testbeds import fashion, training
from guided_diffusion.testbeds.training import ModelSet, Stopper, command, latest_checkpoint, schedule, train

ROOT = Path(__file__).resolve().parents[1]
BUDGET_HOURS = 8.0  # all the Fashion models together, two at a time on a 2-core CPU


def script(name: str):
    spec = importlib.util.spec_from_file_location(f"_script_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", list(fashion.MODELS))
def test_each_command_parses_with_its_script(name):
    spec = fashion.MODELS[name]
    argv = command(spec, Path("data/fashion"))
    assert argv[1] == f"scripts/{spec['script']}.py"
    args = script(spec["script"]).create_argparser().parse_args(argv[2:])
    for key, value in spec["flags"].items():
        assert str(getattr(args, key)) == str(value), key
    assert args.data_dir == "data/fashion/train.npz" and args.image_size == 28
    steps = args.max_steps if spec["kind"] == "diffusion" else args.iterations
    assert steps == spec["steps"] and spec["steps"] % args.save_interval == 0  # resumable, and ends on a checkpoint


def test_the_named_roles_are_there():
    assert {"adm", "cadm", "classifier", "features", *(f"bank{i}" for i in range(1, 6))} <= set(fashion.MODELS)
    cadm = fashion.MODELS["cadm"]["flags"]
    assert cadm["class_cond"] and cadm["label_dropout"] > 0 and not fashion.MODELS["adm"]["flags"]["class_cond"]
    assert fashion.MODELS["classifier"]["flags"]["noised"]
    assert not any(fashion.MODELS[n]["flags"]["noised"] for n in fashion.MODELS if n.startswith(("bank", "feat")))
    assert not any(spec["flags"].get("random_flip", False) for spec in fashion.MODELS.values())  # shoes face left
    assert fashion.MODELS["autoencoder"]["script"] == "autoencoder_train"  # the autoencoder never flips
    seeds = [spec["flags"]["seed"] for name, spec in fashion.MODELS.items() if spec["kind"] == "classifier"]
    assert len(seeds) == len(set(seeds))


def test_the_testbed_names_every_model_once_by_its_role():
    testbed = fashion.FASHION
    roles = [*testbed.models.values(), testbed.classifier, testbed.features, testbed.label_free, *testbed.bank]
    assert sorted(roles) == sorted(f"fashion/{name}" for name in fashion.MODELS)
    assert fashion.MODELS["autoencoder"]["kind"] == "autoencoder" and testbed.label_set == "fashion"
    assert sorted(c for family in testbed.families.values() for c in family) == list(range(10))


def test_the_bank_has_five_torchvision_architectures_beside_adms_encoder():
    bank = {name: spec for name, spec in fashion.MODELS.items() if name.startswith("bank")}
    archs = [spec["flags"].get("classifier_arch", ADM) for spec in bank.values()]
    assert len(set(archs)) == len(archs) >= 6
    assert set(ARCHITECTURES) <= set(archs) and ADM in archs


def test_the_budget_fits_by_the_measured_step_times():
    """Each spec's steps times its measured seconds per step, trained in the listed order two at a time."""
    assert set(fashion.SECONDS_PER_STEP) == set(fashion.MODELS)
    durations = {n: spec["steps"] * fashion.SECONDS_PER_STEP[n] for n, spec in fashion.MODELS.items()}
    makespan, finish = schedule(durations, jobs=2)
    assert makespan + fashion.PACKAGING_SECONDS <= BUDGET_HOURS * 3600, (makespan / 3600, finish)
    assert schedule(durations, jobs=1)[0] == pytest.approx(sum(durations.values()))


def test_schedule_gives_each_free_lane_the_next_model():
    makespan, finish = schedule({"a": 5, "b": 3, "c": 1, "d": 4}, jobs=2)
    assert finish == {"a": 5, "b": 3, "c": 4, "d": 8} and makespan == 8


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_clean_classifiers_take_28x28_and_load_as_classifiers(tmp_path, arch, one_thread):
    torch.manual_seed(0)
    net = create_clean_classifier(arch, 10).eval()
    x = torch.rand(2, 3, 28, 28) * 2 - 1
    logits = net(x, torch.zeros(2, dtype=torch.long))
    assert logits.shape == (2, 10)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}, tmp_path / "m.pt")
    (tmp_path / "m.json").write_text(json.dumps({"kind": "classifier", "flags": {
        "image_size": 28, "num_classes": 10, "classifier_arch": arch}}))
    loaded, size = load_classifier(tmp_path / "m.pt")
    assert size == 28 and type(loaded.net) is type(net.net)
    extractor = ClassifierExtractor(loaded, size, device="cpu")
    features = extractor.extract(np.zeros((2, 28, 28, 3), np.uint8))
    assert features["logits"].shape == (2, 10) and features["pool"].shape[0] == 2
    assert member_classes(extractor) == 10


def test_an_unknown_architecture_is_named():
    with pytest.raises(ValueError, match="unknown classifier architecture 'lenet'.*resnet18"):
        create_clean_classifier("lenet", 10)


def test_classifier_train_trains_a_torchvision_architecture(tmp_path, image_folder, monkeypatch, one_thread):
    monkeypatch.setenv("OPENAI_LOGDIR", str(tmp_path / "run"))
    monkeypatch.setattr(sys, "argv", ["classifier_train.py", "--data_dir", str(image_folder), "--image_size", "12",
                                      "--classifier_arch", "squeezenet", "--num_classes", "2", "--noised", "False",
                                      "--batch_size", "4", "--iterations", "2", "--save_interval", "2",
                                      "--log_interval", "1"])
    script("classifier_train").main()
    state = torch.load(tmp_path / "run" / "model000002.pt", weights_only=True)
    assert set(state) == set(create_clean_classifier("squeezenet", 2).state_dict())


# ------------------------------------------------------------------------------------------------ resuming

SPEC = {"script": "classifier_train", "kind": "classifier", "steps": 6, "flags": {"iterations": 6, "seed": 0}}
DIFFUSION_SPEC = {"script": "image_train", "kind": "diffusion", "steps": 4, "weights": "ema_0.9",
                  "flags": {"max_steps": 4, "ema_rate": "0.9,0.99"}}


class FakeTraining:
    """Stands in for the training script: writes a checkpoint every 2 steps from the resumed step, and stops
    (as if interrupted) after ``stop_after`` steps of this session."""

    def __init__(self, spec: dict, stop_after: int = 10**9):
        self.spec, self.stop_after, self.calls = spec, stop_after, []

    pid = os.getpid()  # alive while the run's lock is checked

    def __call__(self, argv, cwd, env, stdout, stderr):  # as subprocess.Popen
        self.calls.append(argv)
        self.run_dir = Path(env["OPENAI_LOGDIR"])
        step = int(argv[argv.index("--resume_checkpoint") + 1][-9:-3]) if "--resume_checkpoint" in argv else 0
        self.end = min(self.spec["steps"], step + self.stop_after)
        for done in range(step + 2, self.end + 1, 2):
            for name in training.checkpoint_files(self.spec, done):
                torch.save({"w": torch.tensor(float(done))}, self.run_dir / name)
        return self

    def wait(self) -> int:
        assert (self.run_dir / training.LOCK).read_text() == str(self.pid)  # locked while it trains
        return 0 if self.end == self.spec["steps"] else 1


@pytest.mark.parametrize("spec", [SPEC, DIFFUSION_SPEC], ids=["classifier", "diffusion"])
def test_an_interrupted_run_resumes_and_a_finished_one_is_skipped(tmp_path, monkeypatch, spec):
    first = FakeTraining(spec, stop_after=2)
    monkeypatch.setattr(training.subprocess, "Popen", first)
    with pytest.raises(RuntimeError, match="stopped at step 2 of .*run again to resume"):
        train("m", spec, tmp_path, tmp_path / "data", threads=1)
    assert "--resume_checkpoint" not in first.calls[0] and latest_checkpoint(spec, tmp_path / "m") == 2

    second = FakeTraining(spec)
    monkeypatch.setattr(training.subprocess, "Popen", second)
    seconds = train("m", spec, tmp_path, tmp_path / "data", threads=1)
    argv = second.calls[0]
    assert argv[argv.index("--resume_checkpoint") + 1] == str(tmp_path / "m" / "model000002.pt")
    assert (tmp_path / "m" / training.final_checkpoint(spec)).is_file()
    runs = training.sessions(tmp_path / "m")
    assert [(r["from_step"], r["to_step"]) for r in runs] == [(0, 2), (2, spec["steps"])]
    assert seconds == pytest.approx(sum(r["seconds"] for r in runs))

    third = FakeTraining(spec)
    monkeypatch.setattr(training.subprocess, "Popen", third)
    assert train("m", spec, tmp_path, tmp_path / "data", threads=1) == pytest.approx(seconds)
    assert third.calls == []  # finished: not run again


class TrainsUntilStopped(FakeTraining):
    """Stands in for a training script that trains until sent SIGTERM, then saves the step it is on (3)."""

    def __call__(self, argv, cwd, env, stdout, stderr):
        self.calls.append(argv)
        self.run_dir, self.signalled = Path(env["OPENAI_LOGDIR"]), threading.Event()
        if self.spec.get("signal_the_run"):
            os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler stops the whole run
        return self

    def send_signal(self, signum: int) -> None:
        assert signum == signal.SIGTERM
        self.signalled.set()

    def wait(self) -> int:
        assert self.signalled.wait(30)
        for name in training.checkpoint_files(self.spec, 3):
            torch.save({"w": torch.zeros(1)}, self.run_dir / name)
        return 0


@pytest.mark.parametrize("how", ["hours", "signal"])
def test_a_stopped_run_saves_each_model_where_it_is_and_starts_no_other(tmp_path, monkeypatch, capsys, how):
    spec = {**SPEC, "signal_the_run": how == "signal"}
    fake = TrainsUntilStopped(spec)
    monkeypatch.setattr(training.subprocess, "Popen", fake)
    models = ModelSet(testbed="t", models={"a": spec, "b": spec}, sample_flags={}, write_data=lambda d: {},
                      data="", held_out=lambda d: None)
    before = signal.getsignal(signal.SIGTERM)
    hours = ["--hours", str(0.5 / 3600)] if how == "hours" else []
    training.run(models, ["--work_dir", str(tmp_path), "--out_dir", str(tmp_path / "out"), "--jobs", "1", *hours])
    assert "stopped; steps trained: a 3/6, b 0/6; nothing packaged" in capsys.readouterr().out
    assert len(fake.calls) == 1 and not (tmp_path / "out").exists()  # b never started, nothing packaged
    assert [(r["from_step"], r["to_step"]) for r in training.sessions(tmp_path / "a")] == [(0, 3)]
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_run_already_stopping_starts_nothing(tmp_path, monkeypatch):
    fake = FakeTraining(SPEC)
    monkeypatch.setattr(training.subprocess, "Popen", fake)
    stopper = Stopper()
    stopper.stop()
    assert train("m", SPEC, tmp_path, tmp_path / "data", threads=1, stopper=stopper) == 0
    assert fake.calls == [] and training.sessions(tmp_path / "m") == []


def test_a_model_being_trained_is_not_trained_twice(tmp_path, monkeypatch):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / training.LOCK).write_text(str(os.getpid()))  # a live process
    monkeypatch.setattr(training.subprocess, "Popen", FakeTraining(SPEC))
    with pytest.raises(RuntimeError, match=f"m is being trained by process {os.getpid()}"):
        train("m", SPEC, tmp_path, tmp_path / "data", threads=1)
    (tmp_path / "m" / training.LOCK).write_text("999999999")  # left by a process that is gone
    assert train("m", SPEC, tmp_path, tmp_path / "data", threads=1) >= 0
    assert not (tmp_path / "m" / training.LOCK).exists()


def test_resume_skips_a_torn_or_incomplete_checkpoint(tmp_path):
    run_dir = tmp_path / "m"
    run_dir.mkdir()
    for step in (2, 4):
        for name in training.checkpoint_files(DIFFUSION_SPEC, step):
            torch.save({"w": torch.zeros(1)}, run_dir / name)
    (run_dir / "ema_0.99_000004.pt").write_bytes(b"torn")  # killed while writing step 4
    assert latest_checkpoint(DIFFUSION_SPEC, run_dir) == 2
    (run_dir / "ema_0.99_000002.pt").unlink()  # and step 2 lacks an EMA
    assert latest_checkpoint(DIFFUSION_SPEC, run_dir) == 0


def test_package_writes_a_manifest_that_loads(tmp_path, one_thread):
    """A bank member packaged as the real run does (float16 weights, manifest with the digits' keys), loadable
    by path as the registry loads it by name."""
    spec = fashion.clean("mobilenet_v2", 4, 3)
    spec["flags"] = {**spec["flags"], "image_size": 12}
    _, net, _ = training.build(spec)
    (tmp_path / "bank4").mkdir()
    torch.save(net.state_dict(), tmp_path / "bank4" / training.final_checkpoint(spec))
    rng = np.random.default_rng(0)
    models = ModelSet(testbed="fashion", models={"bank4": spec}, sample_flags={}, write_data=lambda d: {},
                      data="test data", held_out=lambda d: (rng.integers(0, 256, (6, 12, 12, 3), dtype=np.uint8),
                                                            np.arange(6) % 10))
    out = tmp_path / "out"
    manifest = training.package(models, "bank4", tmp_path, tmp_path / "data", 12.0, {"train": "abc"}, out)
    digits = json.loads((ROOT / "guided_diffusion/models/digits/bank1.json").read_text())
    assert set(manifest) == set(digits) and set(manifest["training"]) == set(digits["training"])
    assert manifest["name"] == "fashion/bank4" and manifest["flags"]["classifier_arch"] == "mobilenet_v2"
    assert manifest["training"]["command"].startswith("scripts/classifier_train.py --data_dir "
                                                      "data/fashion/train.npz")
    assert manifest["training"]["made_by"] == "python scripts/train_fashion_models.py"
    assert set(manifest["held_out"]) == {"accuracy"}
    loaded, size = load_classifier(out / "bank4.pt")
    assert size == 12 and isinstance(loaded.net, type(net.net))


def test_an_autoencoder_packages_with_its_reconstruction_error_and_loads_by_path(tmp_path, one_thread):
    spec = fashion.MODELS["autoencoder"]
    spec = {**spec, "flags": {**spec["flags"], "image_size": 12, "autoencoder_channels": 4, "code_size": 8}}
    _, net, _ = training.build(spec)
    (tmp_path / "autoencoder").mkdir()
    torch.save(net.state_dict(), tmp_path / "autoencoder" / training.final_checkpoint(spec))
    images = np.random.default_rng(0).integers(0, 256, (6, 12, 12, 3), dtype=np.uint8)
    models = ModelSet(testbed="fashion", models={"autoencoder": spec}, sample_flags={}, write_data=lambda d: {},
                      data="test data", held_out=lambda d: (images, np.arange(6) % 10))
    out = tmp_path / "out"
    manifest = training.package(models, "autoencoder", tmp_path, tmp_path / "data", 5.0, {"train": "abc"}, out)
    assert manifest["kind"] == "autoencoder" and manifest["flags"] == {"image_size": 12, "autoencoder_channels": 4,
                                                                       "code_size": 8}
    assert manifest["training"]["command"].startswith("scripts/autoencoder_train.py --data_dir data/fashion/train.npz")
    assert set(manifest["held_out"]) == {"reconstruction_mse"} and manifest["held_out"]["reconstruction_mse"] > 0
    loaded = load_autoencoder(str(out / "autoencoder.pt"))
    assert loaded.encode(torch.zeros(1, 3, 12, 12))[0].shape == (1, 8)


@pytest.mark.parametrize("name", ["adm", "bank3", "autoencoder"])
def test_seconds_per_step_times_the_training_step(name, one_thread):
    spec = fashion.MODELS[name]
    tiny = {**spec, "flags": {**spec["flags"], "batch_size": 2, "image_size": 8}}
    if spec["kind"] == "diffusion":
        tiny["flags"].update(num_res_blocks=1, attention_resolutions="", channel_mult="1,2")
    if spec["kind"] == "autoencoder":
        tiny["flags"].update(autoencoder_channels=4)
    cost = training.seconds_per_step(tiny, steps=1, warmup=1)
    assert cost["cpu"] > 0 and cost["wall"] > 0


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # 20 samples of 256 features
def test_unguided_quality_scores_samples_against_the_test_set(one_thread):
    """FID of unguided samples and its train-vs-test floor in a feature network's space, and the per-class grid,
    on a tiny class-conditional model and a few steps."""
    flags = {**fashion.MODELS["cadm"]["flags"], "image_size": 8, "num_res_blocks": 1, "attention_resolutions": "",
             "channel_mult": "1,2"}
    torch.manual_seed(0)
    built, net, _ = training.build({"kind": "diffusion", "flags": flags})
    sample_flags = {k: v for k, v in fashion.SAMPLE_FLAGS["cadm"].items() if k != "classifier_path"}
    info = {"name": "tiny/cadm", "kind": "diffusion", "flags": {k: v for k, v in built.items()
                                                                if k != "timestep_respacing"},
            "sample_flags": {**sample_flags, "timestep_respacing": "2"}}  # not the shipped 28x28 models
    features = ClassifierExtractor(create_clean_classifier("vgg", 10), 8, device="cpu")
    rng = np.random.default_rng(0)
    test, train_images = (rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8) for n in (30, 40))
    metrics, grid = unguided_quality(net, info, features, test, train_images, num_samples=20, batch_size=20,
                                     per_class=2)
    assert metrics["fid_vs_test"] > 0 and metrics["fid_floor_train_vs_test"] > 0
    assert metrics["samples"] == 20 and metrics["grid_rows"] == "labels"
    assert grid.shape == (10 * 9 + 1, 2 * 9 + 1, 3)  # 10 classes x 2 samples of 8x8, 1-pixel gaps
