"""Robustness score of the Progressive Guidance paper (Sec. 6, Tables 2 and 4).

The mean, over a bank of independently trained classifiers, of each
classifier's Top-1 accuracy on samples against their conditioning labels;
Top-5 is reported too. :data:`PAPER_BANK` is the paper's bank of torchvision
ImageNet classifiers (``IMAGENET1K_V1`` weights with their standard
preprocessing); a bank entry that is a path is one of our own classifier
checkpoints (``X.pt`` with flags in ``X.json``, see
:func:`guided_diffusion.feature_extractors.load_classifier`) or a shipped one's
name (``digits/bank1``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .feature_extractors import ClassifierExtractor, FeatureExtractor, fetch_weights, load_classifier
from .shipped import is_shipped

PAPER_BANK = ("resnet34", "resnet50", "resnet152", "densenet169", "densenet201", "squeezenet1_0", "squeezenet1_1")
TOP_K = 5


class TorchvisionClassifier(FeatureExtractor):
    """A torchvision ImageNet classifier with its weights' own preprocessing; ``logits`` only."""

    def __init__(self, name: str, pretrained: bool = True, device: torch.device | None = None):
        import torchvision

        weights = torchvision.models.get_model_weights(name)["IMAGENET1K_V1"]
        if pretrained:  # make sure the file is there, with a clear error offline
            file_name = Path(weights.url).name
            fetch_weights(file_name, weights.url, directory=Path(torch.hub.get_dir()) / "checkpoints")
        model = torchvision.models.get_model(name, weights=weights if pretrained else None)
        super().__init__(model, device)
        self.transform = weights.transforms()

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.model(self.transform(images.permute(0, 3, 1, 2))).float()}


class BankExtractor(FeatureExtractor):
    """Runs every classifier of a bank on each batch; returns each one's top-5 class indices."""

    def __init__(self, members: dict[str, FeatureExtractor]):  # no single model: no super().__init__
        self.members = members
        self.device = next(iter(members.values())).device

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for name, member in self.members.items():
            logits = member.features(images.to(member.device))["logits"]
            out[name] = logits.topk(min(TOP_K, logits.shape[1]), dim=1).indices
        return out


def build_bank(entries: list[str], pretrained: bool = True, device: torch.device | None = None) -> BankExtractor:
    """Bank from torchvision model names and paths of our classifier checkpoints."""
    members: dict[str, FeatureExtractor] = {}
    for entry in entries:
        if Path(entry).suffix in (".pt", ".pth") or is_shipped(entry):
            members[entry] = ClassifierExtractor(*load_classifier(entry), device)
        else:
            members[entry] = TorchvisionClassifier(entry, pretrained, device)
    return BankExtractor(members)


def topk_accuracy(topk_indices: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Top-1 and Top-k accuracy (in percent) of ``[N, k]`` ranked predictions."""
    hits = topk_indices == np.asarray(labels)[:, None]
    return {"top1": 100.0 * float(hits[:, 0].mean()), f"top{TOP_K}": 100.0 * float(hits.any(axis=1).mean())}


def robustness(predictions: dict[str, np.ndarray], labels: np.ndarray) -> dict:
    """Per-classifier accuracies and their means; ``robustness`` is the mean Top-1."""
    per_model = {name: topk_accuracy(top, labels) for name, top in predictions.items()}
    mean = {k: float(np.mean([acc[k] for acc in per_model.values()])) for k in ("top1", f"top{TOP_K}")}
    return {"per_classifier": per_model, "robustness": mean["top1"], f"robustness_top{TOP_K}": mean[f"top{TOP_K}"]}


def read_labels(path: str, num_images: int) -> np.ndarray:
    """``arr_1`` of a sample file, one integer label per image."""
    with np.load(path) as npz:
        if "arr_1" not in npz.files:
            raise ValueError(f"{path}: no arr_1 (conditioning labels); robustness needs them")
        labels = npz["arr_1"]
    if labels.shape != (num_images,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: arr_1 must be {num_images} integer labels, got {labels.dtype} {labels.shape}")
    return labels
