"""FID Inception network against golden forward passes; weights resolution; classifier extractor."""

import json
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from guided_diffusion.evaluation import feature_extractors as fe

FIXTURES = Path(__file__).parent / "fixtures"
MANIFEST = json.loads((FIXTURES / "fid_inception_state_dict.json").read_text())


def synthetic_inception_state_dict() -> dict[str, torch.Tensor]:
    """The golden file's weight recipe (shared/conformance/README.md), seed 5 + key index."""
    state = {}
    for i, (key, shape) in enumerate(MANIFEST["state_dict"].items()):
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0, dtype=torch.int64)
            continue
        z = np.random.RandomState(5 + i).standard_normal(shape)
        if len(shape) == 4:
            value = z * np.sqrt(2 / np.prod(shape[1:]))
        elif key == "fc.weight":
            value = 8 * z / np.sqrt(2048)
        elif key == "fc.bias":
            value = z
        elif key.endswith("bn.weight"):
            value = 1 + 0.1 * z
        elif key.endswith("running_var"):
            value = 1 + 0.1 * np.abs(z)
        else:  # bn.bias, bn.running_mean
            value = 0.1 * z
        state[key] = torch.tensor(value, dtype=torch.float32)
    return state


@pytest.fixture(scope="module")
def golden_extractor():
    model = fe.InceptionV3TF()
    model.load_state_dict(synthetic_inception_state_dict(), strict=True)
    return fe.InceptionExtractor(model, "cpu")


@pytest.fixture(scope="module")
def golden():
    return torch.load(FIXTURES / "fid_inception_golden.pt", weights_only=True)


def test_random_network_has_reference_layer_names_and_shapes():
    state = fe.InceptionV3TF().state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == MANIFEST["state_dict"]
    assert list(state) == list(MANIFEST["state_dict"])
    assert sum(v.numel() for v in state.values()) == MANIFEST["num_params"]
    assert MANIFEST["weights_file"] == fe.INCEPTION_WEIGHTS_FILE and MANIFEST["url"] == fe.INCEPTION_WEIGHTS_URL


@pytest.mark.parametrize("case", ["x64", "x32"])
def test_inception_matches_golden(golden_extractor, golden, case):
    ref = golden[case]
    images = ref["images"].numpy()
    resized = fe.InceptionV3TF.preprocess(torch.from_numpy(images[:1]))
    np.testing.assert_allclose(resized.numpy(), ref["resized_first_image"].numpy(), rtol=0, atol=1e-5)
    out = golden_extractor.extract(images)
    assert {k: v.shape for k, v in out.items()} == {
        "pool": (len(images), 2048),
        "spatial": (len(images), 2023),
        "logits": (len(images), 1008),
        "softmax": (len(images), 1008),
    }
    for key, golden_key in [("pool", "pool3"), ("spatial", "spatial"), ("logits", "logits_unbiased"),
                            ("softmax", "softmax")]:  # fmt: skip
        np.testing.assert_allclose(out[key], ref[golden_key].numpy(), rtol=1e-5, atol=1e-5, err_msg=key)


def test_extract_rejects_wrong_images(golden_extractor):
    with pytest.raises(ValueError, match="uint8"):
        golden_extractor.extract(np.zeros((1, 8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        golden_extractor.extract(np.zeros((1, 3, 8, 8), dtype=np.uint8))


def test_fetch_weights_explicit_path_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GUIDED_DIFFUSION_CACHE", str(tmp_path / "cache"))
    given = tmp_path / "w.pth"
    given.write_bytes(b"x")
    assert fe.fetch_weights("a-12345678.pth", "http://x", given) == given
    with pytest.raises(fe.WeightsUnavailableError, match="does not exist"):
        fe.fetch_weights("a-12345678.pth", "http://x", tmp_path / "missing.pth")
    cached = tmp_path / "cache" / "a-12345678.pth"
    cached.parent.mkdir()
    cached.write_bytes(b"y")
    monkeypatch.setattr(fe, "download_file", lambda *a: pytest.fail("must not download a cached file"))
    assert fe.fetch_weights("a-12345678.pth", "http://x") == cached


def test_fetch_weights_downloads_once_with_hash_prefix(tmp_path, monkeypatch):
    monkeypatch.setenv("GUIDED_DIFFUSION_CACHE", str(tmp_path))
    calls = []

    def fake_download(url, dst, prefix):
        calls.append((url, prefix))
        dst.write_bytes(b"weights")

    monkeypatch.setattr(fe, "download_file", fake_download)
    path = fe.fetch_weights(fe.INCEPTION_WEIGHTS_FILE, fe.INCEPTION_WEIGHTS_URL)
    assert path == tmp_path / fe.INCEPTION_WEIGHTS_FILE and path.read_bytes() == b"weights"
    assert calls == [(fe.INCEPTION_WEIGHTS_URL, "6726825d")]
    fe.fetch_weights(fe.INCEPTION_WEIGHTS_FILE, fe.INCEPTION_WEIGHTS_URL)
    assert len(calls) == 1


def test_inception_offline_error_names_file_address_and_place(tmp_path, monkeypatch):
    monkeypatch.setenv("GUIDED_DIFFUSION_CACHE", str(tmp_path))

    def offline(*args):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(fe, "download_file", offline)
    with pytest.raises(fe.WeightsUnavailableError) as info:
        fe.load_inception()
    message = str(info.value)
    assert fe.INCEPTION_WEIGHTS_FILE in message and fe.INCEPTION_WEIGHTS_URL in message
    assert str(tmp_path / fe.INCEPTION_WEIGHTS_FILE) in message and "no network" in message
    with pytest.raises(ValueError, match="unknown feature extractor"):
        fe.create_extractor("nope")


def test_load_inception_from_path(tmp_path):
    path = tmp_path / "inception.pth"
    state = fe.InceptionV3TF().state_dict()
    torch.save(state, path)
    model = fe.create_extractor("inception", torch.device("cpu"), str(path)).model
    assert torch.equal(model.fc.weight, state["fc.weight"])


class TinyClassifier(nn.Module):
    """A classifier ``model(x, timesteps)``: conv, global average pool, linear head."""

    def __init__(self, num_classes: int = 4, width: int = 6):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.head = nn.Linear(width, num_classes)
        self.seen: list[torch.Tensor] = []

    def pooled(self, x):
        return torch.relu(self.conv(x)).mean(dim=(2, 3))

    def forward(self, x, timesteps):
        self.seen.append(x)
        assert timesteps.dtype == torch.long and (timesteps == 0).all()
        return self.head(self.pooled(x))


def test_classifier_extractor_features_and_input_range():
    torch.manual_seed(0)
    model = TinyClassifier()
    extractor = fe.ClassifierExtractor(model, image_size=8, device="cpu")
    images = np.random.RandomState(0).randint(0, 256, (5, 8, 8, 3)).astype(np.uint8)
    images[0] = 0
    images[1] = 255
    out = extractor.extract(images)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    assert model.seen[-1].min() == -1 and model.seen[-1].max() == 1
    with torch.no_grad():
        np.testing.assert_allclose(out["pool"], model.pooled(x).numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(out["logits"], model.head(model.pooled(x)).numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out["softmax"].sum(1), 1, rtol=1e-6)
    assert fe.ClassifierExtractor(model, image_size=4, device="cpu").extract(images)["pool"].shape == (5, 6)
    assert model.seen[-1].shape[-2:] == (4, 4)


CLASSIFIER_FLAGS = {
    "image_size": 16,
    "classifier_width": 32,
    "classifier_depth": 1,
    "classifier_attention_resolutions": "8",
    "classifier_channel_mult": "1,2",
    "num_classes": 5,
}


@pytest.mark.parametrize("pool", ["attention", "adaptive"])
def test_own_classifier_checkpoint_as_extractor(tmp_path, pool):
    """Needs guided_diffusion.script_util (create_classifier, classifier_defaults)."""
    from guided_diffusion import script_util

    flags = {**script_util.classifier_defaults(), **CLASSIFIER_FLAGS, "classifier_pool": pool}
    torch.manual_seed(1)
    model = script_util.create_classifier(**flags)
    torch.save(model.state_dict(), tmp_path / "clf.pt")
    (tmp_path / "clf.json").write_text(json.dumps({"flags": {**CLASSIFIER_FLAGS, "classifier_pool": pool}}))
    extractor = fe.create_extractor(f"classifier:{tmp_path / 'clf.pt'}", torch.device("cpu"))
    images = np.random.RandomState(1).randint(0, 256, (3, 16, 16, 3)).astype(np.uint8)
    out = extractor.extract(images)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        expected = model.eval()(x, torch.zeros(3, dtype=torch.long))
    np.testing.assert_allclose(out["logits"], expected.numpy(), rtol=1e-5, atol=1e-5)
    assert out["pool"].shape[0] == 3 and out["pool"].ndim == 2
    captured = []
    model.middle_block.register_forward_hook(lambda m, inp, o: captured.append(o))
    with torch.no_grad():
        model(x, torch.zeros(3, dtype=torch.long))
    channels = -(-out["pool"].shape[1] // 16)
    grid = torch.nn.functional.adaptive_avg_pool2d(captured[0], 4)[:, :channels]
    np.testing.assert_allclose(out["spatial"], grid.flatten(1).numpy(), rtol=1e-5, atol=1e-6)
    assert out["spatial"].shape == (3, 16 * channels)
    with pytest.raises(FileNotFoundError, match="flags file"):
        fe.load_classifier(tmp_path / "other.pt")
