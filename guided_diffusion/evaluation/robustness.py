"""Robustness score of the Progressive Guidance paper (Sec. 6, Tables 2 and 4).

The mean, over a bank of independently trained classifiers, of each
classifier's Top-1 accuracy on samples against their conditioning labels;
Top-5 is reported too. With a guidance classifier (the "guide"), its own
Top-1 agreement with the labels on the same samples and the *adversarial gap*
(guide minus bank) are reported as well, overall and per class: samples the
guide accepts and independent classifiers reject are what the paper calls
adversarial features of guidance. :data:`PAPER_BANK` is the paper's bank of torchvision
ImageNet classifiers (``IMAGENET1K_V1`` weights with their standard
preprocessing); a bank entry that is a path is one of our own classifier
checkpoints (``X.pt`` with flags in ``X.json``, see
:func:`guided_diffusion.evaluation.feature_extractors.load_classifier`) or a shipped one's
name (``digits/bank1``); a testbed's name (``digits``, ``fashion``) stands for its shipped bank.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..models import is_shipped, shipped_names
from .feature_extractors import ClassifierExtractor, FeatureExtractor, fetch_weights, load_classifier

PAPER_BANK = ("resnet34", "resnet50", "resnet152", "densenet169", "densenet201", "squeezenet1_0", "squeezenet1_1")
TOP_K = 5


class TorchvisionClassifier(FeatureExtractor):
    """A torchvision ImageNet classifier with its weights' own preprocessing; ``logits`` only."""

    num_classes = 1000

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

    def num_classes(self) -> dict[str, int]:
        """Each member's number of classes."""
        return {name: member_classes(member) for name, member in self.members.items()}

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for name, member in self.members.items():
            logits = member.features(images.to(member.device))["logits"]
            out[name] = logits.topk(min(TOP_K, logits.shape[1]), dim=1).indices
        return out


def member_classes(member: FeatureExtractor) -> int:
    """A bank member's number of classes: a torchvision model's 1000, or our classifier's outputs."""
    if isinstance(member, TorchvisionClassifier):
        return member.num_classes
    head = member.head  # the last Linear / Conv layer
    return int(getattr(head, "out_features", None) or head.out_channels)


def build_member(entry: str, pretrained: bool = True, device: torch.device | None = None) -> FeatureExtractor:
    """A torchvision model name, or one of our classifier checkpoints (a path or a shipped name)."""
    if Path(entry).suffix in (".pt", ".pth") or is_shipped(entry):
        return ClassifierExtractor(*load_classifier(entry), device)
    return TorchvisionClassifier(entry, pretrained, device)


def bank_members(entries: list[str]) -> list[str]:
    """``entries`` with each testbed's name (``fashion``) replaced by its shipped bank (``fashion/bank1``, ...)."""
    shipped = shipped_names()
    return [member for entry in entries
            for member in ([n for n in shipped if n.startswith(f"{entry}/bank")] or [entry])]


def build_bank(entries: list[str], pretrained: bool = True, device: torch.device | None = None) -> BankExtractor:
    """Bank from torchvision model names, paths of our classifier checkpoints, shipped names and testbeds' names
    (:func:`bank_members`)."""
    return BankExtractor({entry: build_member(entry, pretrained, device) for entry in bank_members(entries)})


def check_labels(labels: np.ndarray, num_classes: dict[str, int]) -> None:
    """ValueError naming the labels that some classifier (``name -> classes``) cannot predict."""
    for name, classes in num_classes.items():
        outside = np.unique(labels[(labels < 0) | (labels >= classes)])
        if outside.size:
            shown = ", ".join(str(v) for v in outside[:10]) + (" ..." if outside.size > 10 else "")
            raise ValueError(f"labels {shown} are outside the {classes} classes of {name}: the samples were made for "
                             f"another label set, or the bank is the wrong one")


def topk_accuracy(topk_indices: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Top-1 and Top-k accuracy (in percent) of ``[N, k]`` ranked predictions."""
    hits = topk_indices == np.asarray(labels)[:, None]
    return {"top1": 100.0 * float(hits[:, 0].mean()), f"top{TOP_K}": 100.0 * float(hits.any(axis=1).mean())}


def robustness(predictions: dict[str, np.ndarray], labels: np.ndarray) -> dict:
    """Per-classifier accuracies and their means; ``robustness`` is the mean Top-1."""
    per_model = {name: topk_accuracy(top, labels) for name, top in predictions.items()}
    mean = {k: float(np.mean([acc[k] for acc in per_model.values()])) for k in ("top1", f"top{TOP_K}")}
    return {"per_classifier": per_model, "robustness": mean["top1"], f"robustness_top{TOP_K}": mean[f"top{TOP_K}"]}


def per_class_top1(top1: np.ndarray, labels: np.ndarray) -> dict[int, float]:
    """Top-1 accuracy in percent per label present, from ``[N]`` predicted classes."""
    return {int(c): 100.0 * float((top1[labels == c] == c).mean()) for c in np.unique(labels)}


def bank_top1(predictions: dict[str, np.ndarray]) -> np.ndarray:
    """Each bank member's top-1 class per sample: ``[members, N]``."""
    return np.stack([top[:, 0] for top in predictions.values()])


def fooled(guide_top1: np.ndarray, bank_top1: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per sample: the guide reads the label while most of the bank (``[members, N]`` top-1) does not."""
    return (guide_top1 == labels) & ((bank_top1 == labels).mean(axis=0) < 0.5)


def fooled_ranked(guide_top1: np.ndarray, bank_top1: np.ndarray, labels: np.ndarray) -> list[int]:
    """The :func:`fooled` samples' indices, those most of the bank rejects first (then by index)."""
    rejected = (bank_top1 != labels).sum(axis=0)
    return sorted(np.flatnonzero(fooled(guide_top1, bank_top1, labels)).tolist(), key=lambda i: (-rejected[i], i))


def adversarial_gap(predictions: dict[str, np.ndarray], guide: np.ndarray, labels: np.ndarray) -> dict:
    """The guide's Top-1 agreement with the labels beside the bank's (robustness), and their gap
    (guide minus bank, in points), overall and per class. ``guide`` is ``[N, k]`` ranked predictions."""
    guide_top1 = 100.0 * float((guide[:, 0] == labels).mean())
    bank = robustness(predictions, labels)["robustness"]
    guide_per_class = per_class_top1(guide[:, 0], labels)
    members = [per_class_top1(top[:, 0], labels) for top in predictions.values()]
    bank_per_class = {c: float(np.mean([m[c] for m in members])) for c in guide_per_class}
    return {"guide_top1": guide_top1, "bank_top1": bank, "gap": guide_top1 - bank,
            "fooled_fraction": 100.0 * float(fooled(guide[:, 0], bank_top1(predictions), labels).mean()),
            "per_class": {str(c): {"guide_top1": guide_per_class[c], "bank_top1": bank_per_class[c],
                                   "gap": guide_per_class[c] - bank_per_class[c]} for c in guide_per_class}}


def read_labels(path: str, num_images: int) -> np.ndarray:
    """``arr_1`` of a sample file, one integer label per image."""
    with np.load(path) as npz:
        if "arr_1" not in npz.files:
            raise ValueError(f"{path}: no arr_1 (conditioning labels); robustness needs them")
        labels = npz["arr_1"]
    if labels.shape != (num_images,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: arr_1 must be {num_images} integer labels, got {labels.dtype} {labels.shape}")
    return labels
