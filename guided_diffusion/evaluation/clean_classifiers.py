"""Clean-image classifiers of torchvision architectures, adapted to small images (Fashion-MNIST's 28x28).

A robustness bank (:mod:`.robustness`) asks whether samples that the guide (ADM's noise-aware encoder) accepts
are also recognised by classifiers that share none of its design; the paper's bank is torchvision's ImageNet
models. These are the same families, built by torchvision at its own code and adapted to 28x28 by their stems
only (a stride-1 3x3 first convolution instead of ImageNet's downsampling stem; VGG with a small head): ResNet-18,
a DenseNet-BC, SqueezeNet 1.1, MobileNetV2 (width 0.5) and a VGG-11-like stack with batch norm. Trained on clean
images with ``scripts/classifier_train.py --classifier_arch NAME --noised False``; a manifest's
``classifier_arch`` says which (absent or ``adm``: ADM's encoder from the ``classifier_*`` flags).

Each is called as the project calls classifiers, ``model(x, timesteps) -> logits`` with ``x`` NCHW in [-1, 1];
the timesteps are ignored (they see clean images, t = 0).
"""

from __future__ import annotations

import inspect

import torch
import torchvision
from torch import nn

from .. import script_util

ADM = "adm"  # ADM's encoder (script_util.create_classifier), built from the classifier_* flags
ARCHITECTURES = ("resnet18", "densenet", "squeezenet", "mobilenet_v2", "vgg")


class CleanClassifier(nn.Module):
    """A torchvision network called as ``model(x, timesteps)`` (the timesteps ignored)."""

    def __init__(self, arch: str, net: nn.Module):
        super().__init__()
        self.arch = arch
        self.net = net

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x)


def _stem(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A 3x3 stride-1 convolution: the first layer for 28x28 inputs (ImageNet's stems downsample 4x at once)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)


def _resnet18(num_classes: int) -> nn.Module:
    net = torchvision.models.resnet18(num_classes=num_classes)
    net.conv1 = _stem(3, 64)  # the max-pool kept: stages at 14, 7, 4, 2
    return net


def _densenet(num_classes: int) -> nn.Module:
    net = torchvision.models.DenseNet(growth_rate=12, block_config=(6, 12, 8), num_init_features=32, bn_size=4,
                                      num_classes=num_classes)  # DenseNet-BC, small: blocks at 14, 7, 3
    net.features.conv0 = _stem(3, 32)
    return net


def _squeezenet(num_classes: int) -> nn.Module:
    net = torchvision.models.squeezenet1_1(num_classes=num_classes)
    net.features[0] = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1)  # fire modules at 14, 7, 3
    return net


def _mobilenet_v2(num_classes: int) -> nn.Module:
    net = torchvision.models.mobilenet_v2(num_classes=num_classes, width_mult=0.5)
    net.features[0][0] = _stem(3, net.features[0][0].out_channels)  # blocks at 28, 14, 7, 4, 2
    return net


def _vgg(num_classes: int) -> nn.Module:
    layers = torchvision.models.vgg.make_layers([32, "M", 64, "M", 128, 128, "M", 256, 256], batch_norm=True)
    with torch.device("meta"):  # ImageNet's 120 M-weight head, replaced below: not allocated
        net = torchvision.models.VGG(layers, num_classes=num_classes, init_weights=False)
    net.avgpool = nn.AdaptiveAvgPool2d(1)  # 256 features instead of ImageNet's 512 x 7 x 7
    net.classifier = nn.Sequential(nn.Linear(256, 256), nn.ReLU(True), nn.Dropout(0.5), nn.Linear(256, num_classes))
    for m in net.modules():  # torchvision's VGG initialisation, on the small head
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
    return net


_BUILDERS = {"resnet18": _resnet18, "densenet": _densenet, "squeezenet": _squeezenet,
             "mobilenet_v2": _mobilenet_v2, "vgg": _vgg}


def create_clean_classifier(arch: str, num_classes: int) -> CleanClassifier:
    """One of :data:`ARCHITECTURES` with ``num_classes`` outputs (torchvision's initialisation)."""
    if arch not in _BUILDERS:
        raise ValueError(f"unknown classifier architecture {arch!r}; known: {ADM}, {', '.join(ARCHITECTURES)}")
    return CleanClassifier(arch, _BUILDERS[arch](num_classes))


def build_classifier(flags: dict) -> nn.Module:
    """A classifier from a manifest's or the training script's flags: ``classifier_arch`` one of
    :data:`ARCHITECTURES`, else (absent or ``adm``) ADM's encoder from the ``classifier_*`` flags (missing ones
    take :func:`~guided_diffusion.script_util.classifier_defaults`)."""
    flags = {**script_util.classifier_defaults(), **flags}
    arch = flags.get("classifier_arch") or ADM
    if arch != ADM:
        return create_clean_classifier(arch, int(flags["num_classes"]))
    accepted = inspect.signature(script_util.create_classifier).parameters
    return script_util.create_classifier(**{k: v for k, v in flags.items() if k in accepted})
