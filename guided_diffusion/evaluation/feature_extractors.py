"""Feature extractors for the evaluation suite: uint8 NHWC images in, features out.

Every extractor implements :class:`FeatureExtractor`: ``extract(images)``
takes a ``[N, H, W, 3]`` uint8 array and returns a dict of float arrays with
some of the keys

* ``"pool"``: pooled features (FID, precision/recall, density/coverage),
* ``"spatial"``: spatial features (sFID),
* ``"logits"`` and ``"softmax"``: class scores (Inception Score, accuracy).

Extractors available by name through :func:`create_extractor`:

* ``inception``: the TF ``inception-2015-12-05`` graph of FID and of the ADM
  evaluator (PyTorch port, TF1 bilinear resize to 299x299, ``(x-128)/128``).
  ``pool`` is ``pool_3`` (2048-d), ``spatial`` the first 7 channels of
  ``mixed_6/conv`` flattened in NHWC order (7x17x17 = 2023-d), ``logits``
  ``pool_3 @ fc.weight.T`` without bias (1008-way) and ``softmax`` its softmax.
* ``classifier:PATH``: one of our own classifier checkpoints (see
  :func:`load_classifier`); ``pool`` is the input of its last linear layer,
  ``logits`` its output, evaluated at timestep 0 on images in [-1, 1].
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import script_util
from ..checkpoints import load_checkpoint, resolve
from ..sampling.samplers import from_uint8_nhwc
from .clean_classifiers import build_classifier

INCEPTION_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + INCEPTION_WEIGHTS_FILE
)
INCEPTION_SIZE = 299
SPATIAL_CHANNELS = 7


class WeightsUnavailableError(FileNotFoundError):
    """Raised when a weights file is neither given, cached nor downloadable."""


def cache_dir() -> Path:
    """``$GUIDED_DIFFUSION_CACHE``, else ``~/.cache/guided_diffusion``."""
    env = os.environ.get("GUIDED_DIFFUSION_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "guided_diffusion"


def download_file(url: str, dst: Path, hash_prefix: str | None) -> None:
    """Download ``url`` to ``dst``, checking the sha256 prefix (torch.hub's convention)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(dst), hash_prefix=hash_prefix, progress=True)


def fetch_weights(
    file_name: str,
    url: str,
    path: str | os.PathLike | None = None,
    directory: Path | None = None,
    download: bool = True,
) -> Path:
    """Local path of a weights file: ``path``, else ``directory/file_name``
    (default :func:`cache_dir`), else downloaded there once.

    The downloaded file's sha256 must start with the hex digits after the last
    ``-`` of ``file_name`` (``name-<sha256 prefix>.pth``). Raises
    :class:`WeightsUnavailableError` naming the file, the address and where to
    put it when all of these fail.
    """
    if path is not None:
        if Path(path).is_file():
            return Path(path)
        raise WeightsUnavailableError(f"weights file {path} does not exist (expected {file_name})")
    target = (directory or cache_dir()) / file_name
    if target.is_file():
        return target
    reason = "downloads disabled"
    if download:
        match = re.search(r"-([0-9a-f]{6,})\.", file_name)
        try:
            download_file(url, target, match.group(1) if match else None)
            return target
        except (OSError, RuntimeError) as exc:  # offline, HTTP error, bad checksum
            reason = f"download failed: {type(exc).__name__}: {exc}"
    raise WeightsUnavailableError(
        f"weights file {file_name} is not available ({reason}). Download it from {url} "
        f"and put it at {target}, or pass its path explicitly."
    )


class FeatureExtractor(ABC):
    """Maps uint8 ``[N, H, W, 3]`` images to a dict of ``[N, ...]`` float arrays."""

    def __init__(self, model: nn.Module, device: torch.device | str | None = None):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval().requires_grad_(False)

    @abstractmethod
    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of a uint8 NHWC tensor already on :attr:`device`."""

    def options(self) -> dict:
        """What besides the class and the weights sets the features (input size, layers): part of :meth:`identity`."""
        return {}

    def identity(self) -> str:
        """sha256 of the class, :meth:`options` and every weight and buffer: equal for extractors that give the
        same features (up to the device's rounding), the key of cached features."""
        digest = hashlib.sha256(json.dumps({"class": f"{type(self).__module__}.{type(self).__qualname__}",
                                            "options": self.options()}, sort_keys=True).encode())
        for name, tensor in self.model.state_dict().items():
            digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
        return digest.hexdigest()

    @torch.no_grad()
    def extract(self, images: np.ndarray | torch.Tensor) -> dict[str, np.ndarray]:
        """Features of one batch of uint8 NHWC images, as float32/int64 numpy arrays."""
        images = torch.as_tensor(images)
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(
                f"expected uint8 images of shape [N, H, W, 3], got {images.dtype} {tuple(images.shape)}"
            )
        out = self.features(images.to(self.device))
        return {k: v.cpu().numpy() for k, v in out.items()}

    def extract_in_batches(self, images: np.ndarray, batch_size: int = 500) -> dict[str, np.ndarray]:
        """:meth:`extract` of ``batch_size`` images at a time, concatenated (a reference set at once)."""
        parts = [self.extract(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _softmax(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits.double(), dim=1).float()


class InceptionV3TF(nn.Module):
    """The TF ``inception-2015-12-05`` graph as a torch module (FID Inception).

    Layer names and shapes are those of the public port
    (``pt_inception-2015-12-05-6726825d.pth``); the blocks come from
    ``torch-fidelity``'s TF-exact port. Built with random weights: load a
    state dict with :func:`load_inception`.
    """

    def __init__(self) -> None:
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import (
            BasicConv2d,
            InceptionA,
            InceptionB,
            InceptionC,
            InceptionD,
            InceptionE_1,
            InceptionE_2,
        )

        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.MaxPool_1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.MaxPool_2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE_1(1280)
        self.Mixed_7c = InceptionE_2(2048)
        self.fc = nn.Linear(2048, 1008)

    @staticmethod
    def preprocess(images: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC -> NCHW, TF1 legacy bilinear resize to 299x299, ``(x - 128) / 128``."""
        from torch_fidelity.interpolate_compat_tensorflow import (
            interpolate_bilinear_2d_like_tensorflow1x,
        )

        x = images.permute(0, 3, 1, 2).float()
        if x.shape[-2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
            x = interpolate_bilinear_2d_like_tensorflow1x(
                x, size=(INCEPTION_SIZE, INCEPTION_SIZE), align_corners=False
            )
        return (x - 128) / 128

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``pool``, ``spatial``, ``logits``, ``softmax`` of preprocessed NCHW input."""
        for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1",
                     "Conv2d_3b_1x1", "Conv2d_4a_3x3", "MaxPool_2", "Mixed_5b", "Mixed_5c",
                     "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c"):  # fmt: skip
            x = getattr(self, name)(x)
        # mixed_6/conv of the TF graph: ReLU output of Mixed_6d's 1x1 branch.
        spatial = self.Mixed_6d.branch1x1(x)[:, :SPATIAL_CHANNELS]
        for block in (self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        pool = x.mean(dim=(2, 3))
        logits = pool @ self.fc.weight.T  # the reference's softmax ignores the bias
        return {
            "pool": pool,
            "spatial": spatial.permute(0, 2, 3, 1).flatten(1),  # TF's NHWC order
            "logits": logits,
            "softmax": _softmax(logits),
        }


def load_inception(
    weights: str | os.PathLike | None = None, download: bool = True
) -> InceptionV3TF:
    """:class:`InceptionV3TF` with the public FID weights (see :func:`fetch_weights`)."""
    path = fetch_weights(INCEPTION_WEIGHTS_FILE, INCEPTION_WEIGHTS_URL, weights, download=download)
    model = InceptionV3TF()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return model


class InceptionExtractor(FeatureExtractor):
    """``pool``/``spatial``/``logits``/``softmax`` of :class:`InceptionV3TF`."""

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(InceptionV3TF.preprocess(images))

    def options(self) -> dict:
        return {"size": INCEPTION_SIZE, "spatial_channels": SPATIAL_CHANNELS}


def _last_linear(model: nn.Module) -> nn.Module:
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    if not layers:
        raise ValueError("classifier has no Linear/Conv layer to take features from")
    return layers[-1]


class ClassifierExtractor(FeatureExtractor):
    """A classifier ``model(x, timesteps)`` as an extractor (timestep 0, x in [-1, 1]).

    ``pool`` is the input of the model's last Linear/Conv layer (its head):
    flattened when ``[N, C, 1, 1]``, token 0 when ``[N, C, T]`` (attention
    pooling). ``spatial`` (for sFID, as ADM's first channels of a mid-level
    Inception map) is the middle block's map, average-pooled to 4x4, its first
    ``ceil(D / 16)`` channels flattened, D the size of ``pool``; only for models
    with a ``middle_block``. Images are resized (bilinear, antialiased) to ``image_size``.
    """

    SPATIAL_GRID = 4

    def __init__(self, model: nn.Module, image_size: int, device: torch.device | str | None = None):
        super().__init__(model, device)
        self.image_size = image_size
        self.head = _last_linear(self.model)
        self._middle = getattr(self.model, "middle_block", None)

    def options(self) -> dict:
        return {"image_size": self.image_size, "spatial_grid": self.SPATIAL_GRID}

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = from_uint8_nhwc(images)
        if x.shape[-2:] != (self.image_size, self.image_size):
            size = (self.image_size, self.image_size)
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        captured: list[torch.Tensor] = []
        middle: list[torch.Tensor] = []
        handles = [self.head.register_forward_hook(lambda m, inp, out: captured.append(inp[0]))]
        if self._middle is not None:
            handles.append(self._middle.register_forward_hook(lambda m, inp, out: middle.append(out)))
        try:
            dtype = next(self.model.parameters()).dtype
            t = torch.zeros(len(x), dtype=torch.long, device=x.device)
            logits = self.model(x.to(dtype), t).float()
        finally:
            for handle in handles:
                handle.remove()
        pool = captured[-1].float()
        pool = pool[..., 0] if pool.ndim == 3 else pool.flatten(1)
        features = {"pool": pool, "logits": logits, "softmax": _softmax(logits)}
        if middle:
            grid = F.adaptive_avg_pool2d(middle[-1].float(), self.SPATIAL_GRID)
            channels = -(-pool.shape[1] // self.SPATIAL_GRID**2)
            features["spatial"] = grid[:, :channels].flatten(1)
        return features


def load_classifier(path: str | os.PathLike) -> tuple[nn.Module, int]:
    """Our classifier checkpoint ``X.pt`` and its flags file ``X.json``.

    ``X.json`` holds ``{"flags": {...}}`` with ``classifier_defaults()``-style
    keys (``image_size``, ``classifier_width``, ...; also ``num_classes``,
    ``classifier_channel_mult`` where supported); missing keys take the
    defaults; a shipped model's name (``digits/features``) works too. A
    ``classifier_arch`` flag names a torchvision architecture of
    :mod:`.clean_classifiers` instead of ADM's encoder. The model
    runs in float32 (``classifier_use_fp16`` is ignored).
    The weights are loaded with :func:`guided_diffusion.checkpoints.load_checkpoint`
    (``weights_only``; a :class:`~guided_diffusion.checkpoints.CheckpointError`
    for a missing ``X.pt`` or one that does not fit the flags). Returns the
    model and its image size.
    """
    path = Path(resolve(str(path)))
    flags_path = path.with_suffix(".json")
    if not flags_path.is_file():
        raise FileNotFoundError(f"need classifier checkpoint {path} and its flags file {flags_path}")
    info = json.loads(flags_path.read_text())
    if info.get("kind", "classifier") != "classifier":
        raise ValueError(f"{info.get('name', path)} is a {info['kind']} model, not a classifier")
    flags = {**script_util.classifier_defaults(), **info["flags"], "classifier_use_fp16": False}
    model = build_classifier(flags)
    load_checkpoint(model, str(path), "classifier checkpoint")
    return model, int(flags["image_size"])


ExtractorFactory = Callable[[str, torch.device | None, str | None], FeatureExtractor]
EXTRACTORS: dict[str, ExtractorFactory] = {}


def register_extractor(name: str, factory: ExtractorFactory) -> None:
    """Make ``factory(arg, device, weights)`` available as ``name[:arg]``."""
    EXTRACTORS[name] = factory


def create_extractor(
    spec: str, device: torch.device | None = None, weights: str | None = None
) -> FeatureExtractor:
    """Extractor from a spec ``name`` or ``name:arg`` (e.g. ``classifier:model.pt``).

    ``weights`` is an explicit weights path for extractors that take one
    (``inception``).
    """
    name, _, arg = spec.partition(":")
    if name not in EXTRACTORS:
        raise ValueError(f"unknown feature extractor {name!r}; known: {sorted(EXTRACTORS)}")
    return EXTRACTORS[name](arg, device, weights)


register_extractor("inception", lambda arg, device, weights: InceptionExtractor(load_inception(weights), device))
register_extractor("classifier", lambda arg, device, weights: ClassifierExtractor(*load_classifier(arg), device))
