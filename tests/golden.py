"""Loading the reference fixtures in tests/fixtures (copied from shared/conformance)."""

from __future__ import annotations

from pathlib import Path

import torch

from guided_diffusion import unet

FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture(name: str) -> dict:
    return torch.load(FIXTURES / name, weights_only=True)


def build_golden_network(fixture: dict) -> torch.nn.Module:
    """The fixture's network with its (float16-stored) weights, in eval mode."""
    model = getattr(unet, fixture["class"])(**fixture["kwargs"])
    state = {k: v.float() if v.is_floating_point() else v for k, v in fixture["state_dict"].items()}
    model.load_state_dict(state, strict=True)
    return model.eval()


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual.float() - expected.float()).abs().max() / expected.float().abs().max().clamp_min(1e-12)).item()
