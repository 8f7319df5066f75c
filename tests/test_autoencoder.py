"""guided_diffusion.evaluation.autoencoder: the label-free feature network, its training script (resumable) and
its extractor."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_fashion_training import script
from test_train_util import signalled

from guided_diffusion import logger
from guided_diffusion.evaluation import autoencoder
from guided_diffusion.evaluation.autoencoder import Autoencoder, AutoencoderExtractor, build, load_autoencoder
from guided_diffusion.evaluation.held_out import held_out_metrics


def test_it_reconstructs_the_images_shape_and_needs_a_size_divisible_by_4():
    net = Autoencoder(image_size=12, autoencoder_channels=4, code_size=8)
    x = torch.rand(3, 3, 12, 12) * 2 - 1
    code, feature_map = net.encode(x)
    assert net(x).shape == x.shape and code.shape == (3, 8) and feature_map.shape == (3, 8, 3, 3)
    with pytest.raises(ValueError, match="divisible by 4, got 10"):
        Autoencoder(image_size=10)


def train(run_dir, image_folder, monkeypatch, *extra: str) -> None:
    monkeypatch.setenv("OPENAI_LOGDIR", str(run_dir))
    monkeypatch.setattr(sys, "argv", ["autoencoder_train.py", "--data_dir", str(image_folder), "--image_size", "12",
                                      "--autoencoder_channels", "4", "--code_size", "8", "--batch_size", "4",
                                      "--lr", "1e-2", "--save_interval", "4", "--log_interval", "2", *extra])
    script("autoencoder_train").main()


def test_training_lowers_the_error_checkpoints_and_resumes(tmp_path, image_folder, monkeypatch, one_thread):
    train(tmp_path / "run", image_folder, monkeypatch, "--iterations", "8")
    run = tmp_path / "run"
    assert sorted(p.name for p in run.glob("*.pt")) == ["model000004.pt", "model000008.pt", "opt000004.pt",
                                                       "opt000008.pt"]
    losses = [float(row["loss"]) for row in
              (dict(zip(lines[0].split(","), line.split(","), strict=True)) for lines in
               [(run / "progress.csv").read_text().splitlines()] for line in lines[1:])]
    assert losses[-1] < losses[0]
    train(tmp_path / "run", image_folder, monkeypatch, "--iterations", "12", "--resume_checkpoint",
          str(run / "model000008.pt"))
    assert (run / "model000012.pt").is_file() and "resumed from step 8" in (run / "log.txt").read_text()


def test_a_stop_signal_saves_the_step_it_is_on(tmp_path):
    net = build({"image_size": 12, "autoencoder_channels": 4, "code_size": 8})
    batches = signalled(((torch.rand(4, 3, 12, 12) * 2 - 1, {}) for _ in range(50)), at=3)
    args = SimpleNamespace(lr=1e-2, resume_checkpoint="", iterations=50, log_interval=100, save_interval=100)
    with logger.scoped_configure(dir=str(tmp_path), format_strs=[]):
        autoencoder.train(net, batches, args)
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["model000003.pt", "opt000003.pt"]


def test_a_shipped_style_autoencoder_loads_by_manifest_and_gives_code_features(tmp_path):
    flags = {"image_size": 12, "autoencoder_channels": 4, "code_size": 20}
    net = build(flags)
    torch.save({k: v.half() for k, v in net.state_dict().items()}, tmp_path / "ae.pt")
    (tmp_path / "ae.json").write_text(json.dumps({"kind": "autoencoder", "flags": flags}))
    loaded = load_autoencoder(str(tmp_path / "ae.pt"))
    features = AutoencoderExtractor(loaded, "cpu").extract(np.zeros((2, 12, 12, 3), np.uint8))
    assert features["pool"].shape == (2, 20) and features["spatial"].shape == (2, 2 * 16)
    (tmp_path / "ae.json").write_text(json.dumps({"kind": "classifier", "flags": flags}))
    with pytest.raises(ValueError, match="not an autoencoder"):
        load_autoencoder(str(tmp_path / "ae.pt"))


def test_its_held_out_metric_is_the_reconstruction_error():
    net = build({"image_size": 12, "autoencoder_channels": 4, "code_size": 8})
    images = np.random.default_rng(0).integers(0, 256, (5, 12, 12, 3), dtype=np.uint8)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        expected = float(((net(x) - x) ** 2).mean())
    assert held_out_metrics("autoencoder", net, None, images, np.zeros(5, np.int64)) == {
        "reconstruction_mse": pytest.approx(expected, rel=1e-5)}
