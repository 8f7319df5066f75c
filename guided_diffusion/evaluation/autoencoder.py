"""A feature space learned without labels: a convolutional autoencoder, its training loop and its extractor.

A classifier's feature space rewards class-typical images, so FID in it favours guidance that makes samples
more typical of their class. The autoencoder's code is trained only to reconstruct the training images (mean
squared error), so FID, precision and recall in its space (:class:`AutoencoderExtractor`: ``pool`` is the code,
``spatial`` the encoder's last map) measure what samples look like without asking which class they show.
``scripts/autoencoder_train.py`` trains one (:func:`train`, resumable like ADM's loops); the shipped
``fashion/autoencoder`` loads by name (:func:`load_autoencoder`).
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .. import logger
from ..checkpoints import load_checkpoint, resolve
from ..sampling.samplers import from_uint8_nhwc
from ..train_util import StopRequest, log_stop
from .feature_extractors import ClassifierExtractor, FeatureExtractor

DEFAULTS = dict(image_size=28, autoencoder_channels=32, code_size=64)  # the network's flags (a manifest's)
TRAINING = dict(batch_size=128, lr=1e-3, iterations=3000, save_interval=500, log_interval=100, seed=0)


class Autoencoder(nn.Module):
    """Encoder: three convolutions (the last two halve the size) and a linear map to a ``code_size`` code;
    decoder: the mirror image. Images in [-1, 1], ``image_size`` divisible by 4."""

    def __init__(self, image_size: int = 28, autoencoder_channels: int = 32, code_size: int = 64):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"the autoencoder needs an image size divisible by 4, got {image_size}")
        c, side = autoencoder_channels, image_size // 4
        self.map_shape = (2 * c, side, side)
        self.encoder = nn.Sequential(
            nn.Conv2d(3, c, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(2 * c, 2 * c, 4, stride=2, padding=1), nn.SiLU())
        self.to_code = nn.Linear(2 * c * side * side, code_size)
        self.from_code = nn.Linear(code_size, 2 * c * side * side)
        self.decoder = nn.Sequential(
            nn.SiLU(),
            nn.ConvTranspose2d(2 * c, 2 * c, 4, stride=2, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(c, 3, 3, padding=1))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The code and the encoder's last map of images ``x``."""
        feature_map = self.encoder(x)
        return self.to_code(feature_map.flatten(1)), feature_map

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.from_code(code).unflatten(1, self.map_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)[0])


class AutoencoderExtractor(FeatureExtractor):
    """``pool``: the code; ``spatial``: the encoder's last map average-pooled to 4x4, its first
    ``ceil(code_size / 16)`` channels flattened (as :class:`ClassifierExtractor` takes a classifier's)."""

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = from_uint8_nhwc(images)
        code, feature_map = self.model.encode(x)
        grid = F.adaptive_avg_pool2d(feature_map, ClassifierExtractor.SPATIAL_GRID)
        channels = -(-code.shape[1] // ClassifierExtractor.SPATIAL_GRID**2)
        return {"pool": code, "spatial": grid[:, :channels].flatten(1)}


def build(flags: dict) -> Autoencoder:
    """The network of a manifest's (or the training script's) flags."""
    return Autoencoder(**{k: flags.get(k, v) for k, v in DEFAULTS.items()})


def load_autoencoder(path: str) -> Autoencoder:
    """A shipped autoencoder by name (``fashion/autoencoder``) or ``X.pt`` with its manifest ``X.json``; float32."""
    flags_path = Path(resolve(path)).with_suffix(".json")
    if not flags_path.is_file():
        raise FileNotFoundError(f"need autoencoder checkpoint {path} and its flags file {flags_path}")
    info = json.loads(flags_path.read_text())
    if info.get("kind") != "autoencoder":
        raise ValueError(f"{info.get('name', path)} is a {info.get('kind', 'classifier')} model, not an autoencoder")
    model = build(info["flags"])
    load_checkpoint(model, path, "autoencoder checkpoint")
    return model.float().eval()


@torch.no_grad()
def reconstruction_mse(model: Autoencoder, images: torch.Tensor, batch_size: int = 500) -> float:
    """Mean squared reconstruction error on ``images`` (NCHW in [-1, 1])."""
    total = sum(F.mse_loss(model(images[i:i + batch_size]), images[i:i + batch_size], reduction="sum").item()
                for i in range(0, len(images), batch_size))
    return total / images.numel()


def _step_of(checkpoint: str) -> int:
    found = re.search(r"(\d+)\.pt$", checkpoint)
    if not found:
        raise ValueError(f"--resume_checkpoint {checkpoint} is not a modelNNNNNN.pt file")
    return int(found.group(1))


def train_step(model: Autoencoder, optimizer: torch.optim.Optimizer, x: torch.Tensor) -> float:
    """One step on the reconstruction error of the batch ``x``; returns its loss."""
    loss = F.mse_loss(model(x), x)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def train(model: Autoencoder, data: Iterator[tuple[torch.Tensor, dict]], args: argparse.Namespace) -> None:
    """Minimise the reconstruction error with Adam for ``args.iterations`` steps, writing ``model{step}.pt`` and
    ``opt{step}.pt`` to the log folder every ``args.save_interval`` steps, at the end and when a stop signal
    comes (:class:`~guided_diffusion.train_util.StopRequest`); with
    ``args.resume_checkpoint`` (a ``model{step}.pt``) it continues from that step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    step = 0
    if args.resume_checkpoint:
        step = _step_of(args.resume_checkpoint)
        load_checkpoint(model, args.resume_checkpoint, "autoencoder checkpoint")
        opt_path = Path(args.resume_checkpoint).with_name(f"opt{step:06d}.pt")
        optimizer.load_state_dict(torch.load(opt_path, map_location="cpu", weights_only=True))
        logger.log(f"resumed from step {step}")
    out = Path(logger.get_dir())
    with StopRequest() as stop:
        while step < args.iterations:
            x, _ = next(data)
            loss = train_step(model, optimizer, x)
            step += 1
            logger.logkv_mean("loss", loss)
            if step % args.log_interval == 0:
                logger.logkv("step", step)
                logger.dumpkvs()
            stopping = stop()
            if step % args.save_interval == 0 or step == args.iterations or stopping:
                torch.save(model.state_dict(), out / f"model{step:06d}.pt")
                torch.save(optimizer.state_dict(), out / f"opt{step:06d}.pt")
            if stopping:
                log_stop(step)
                break
