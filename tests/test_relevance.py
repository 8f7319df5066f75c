import json
import re
import zipfile

import numpy as np
import pytest
import torch

from guided_diffusion import script_util as su
from guided_diffusion.progressive import relevance as rel
from guided_diffusion.testbeds.gaussian_mixture import Structure, true_relevance

DIGITS = rel.load_descriptions(rel.CLASS_DESCRIPTIONS_DIR / "digits.json")


@pytest.fixture(scope="module")
def minilm():
    return rel.create_encoder("minilm")


@pytest.fixture(scope="module")
def random_clip():
    """The paper's encoder family, built by open_clip itself with random weights (no download)."""
    open_clip = pytest.importorskip("open_clip")
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    return rel.OpenClipEncoder(model, open_clip.get_tokenizer("ViT-B-32"), "open_clip:ViT-B-32/random")


def assert_valid(matrix, num_classes):
    assert matrix.shape == (num_classes, num_classes)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-9)
    off_diagonal = matrix - np.diag(np.full(num_classes, np.inf))
    assert (np.diag(matrix) > off_diagonal.max(axis=1)).all()


def test_stop_words_are_removed_but_the_class_name_kept():
    assert rel.remove_stop_words("The five is drawn with a flat top and a round belly") == "drawn flat round belly"
    assert rel.remove_stop_words("The five is drawn", keep=["five"]) == "five drawn"
    texts = rel.description_texts(DIGITS)
    assert texts[5].startswith("five handwritten five") and " the " not in texts[5]


def test_paper_shaping_clips_negatives_and_normalises():
    sim = np.array([[1.0, 0.5, -0.2], [0.5, 1.0, 0.25], [-0.2, 0.25, 1.0]])
    matrix = rel.shape_relevance(sim)
    np.testing.assert_allclose(matrix[0], [1 / 1.5, 0.5 / 1.5, 0.0])
    np.testing.assert_allclose(matrix[1], np.array([0.5, 1.0, 0.25]) / 1.75)


def test_top_k_and_temperature_shaping():
    sim = np.array([[1.0, 0.8, 0.3, 0.1], [0.8, 1.0, 0.2, 0.6], [0.3, 0.2, 1.0, 0.5], [0.1, 0.6, 0.5, 1.0]])
    top2 = rel.shape_relevance(sim, top_k=2)
    assert (np.count_nonzero(top2, axis=1) == 2).all()
    np.testing.assert_allclose(top2[0], [1 / 1.8, 0.8 / 1.8, 0, 0])
    sharp = rel.shape_relevance(sim, temperature=0.1)
    expected = np.exp(sim[2] / 0.1) / np.exp(sim[2] / 0.1).sum()
    np.testing.assert_allclose(sharp[2], expected)
    flat = rel.shape_relevance(sim, temperature=10.0)
    assert np.diag(sharp).min() > np.diag(rel.shape_relevance(sim)).max() > np.diag(flat).max()
    both = rel.shape_relevance(sim, top_k=3, temperature=0.5)
    assert (np.count_nonzero(both, axis=1) == 3).all()
    assert rel.shaping_name(3, 0.5) == "temperature=0.5,top_k=3" and rel.shaping_name() == "paper"
    with pytest.raises(ValueError, match="top_k"):
        rel.shape_relevance(sim, top_k=5)
    with pytest.raises(ValueError, match="temperature"):
        rel.shape_relevance(sim, temperature=0.0)


def test_duplicate_descriptions_are_an_error():
    with pytest.raises(ValueError, match="largest"):
        rel.shape_relevance(np.ones((3, 3)))


def test_minilm_relevance_is_deterministic_and_valid(minilm):
    first = rel.relevance_from_descriptions(DIGITS, minilm)
    second = rel.relevance_from_descriptions(DIGITS, minilm)
    assert np.array_equal(first, second)
    assert_valid(first, 10)
    assert first[1, 7] > np.median(first[1])  # a one is described as close to a seven


def test_open_clip_relevance_with_random_weights(random_clip):
    cifar = rel.load_descriptions(rel.CLASS_DESCRIPTIONS_DIR / "cifar10.json")
    first = rel.relevance_from_descriptions(cifar, random_clip, top_k=4)
    assert np.array_equal(first, rel.relevance_from_descriptions(cifar, random_clip, top_k=4))
    assert_valid(first, 10)
    assert (np.count_nonzero(first, axis=1) == 4).all()


def test_open_clip_weights_that_are_missing_are_named(tmp_path):
    pytest.importorskip("open_clip")
    with pytest.raises(rel.EncoderUnavailable, match="not found: .*nothing.bin"):
        rel.create_encoder("open_clip:ViT-B-32", str(tmp_path / "nothing.bin"))
    with pytest.raises(rel.EncoderUnavailable, match="--encoder_weights PATH"):
        rel.create_encoder("open_clip:ViT-B-32", "no-such-tag")
    with pytest.raises(ValueError, match="unknown encoder"):
        rel.create_encoder("word2vec")


def test_confusion_profiles():
    class BrightnessClassifier(torch.nn.Module):
        """Knows the class from the image's mean brightness, at t = 0 only."""

        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.linspace(-0.8, 0.8, 3))

        def forward(self, x, t):
            return -200 * (x.mean(dim=(1, 2, 3))[:, None] - self.anchor) ** 2

    diffusion = su.create_gaussian_diffusion(steps=50)
    labels = torch.tensor([0, 1, 2, 2, 1, 0])
    images = torch.linspace(-0.8, 0.8, 3)[labels].view(-1, 1, 1, 1).expand(-1, 3, 4, 4).contiguous()
    clean = rel.classifier_confusion(BrightnessClassifier(), diffusion, images, labels, 3, [0], batch_size=4)
    np.testing.assert_allclose(clean.sum(axis=1), 1.0, atol=1e-6)
    assert (np.diag(clean) > 0.9).all()
    noisy = rel.classifier_confusion(BrightnessClassifier(), diffusion, images, labels, 3, [0, 49])
    assert np.diag(noisy).mean() < np.diag(clean).mean()
    matrix = rel.relevance_from_confusion(noisy)
    assert_valid(matrix, 3)
    assert matrix[0, 1] > matrix[0, 2]  # dark is closer to middle than to bright
    with pytest.raises(ValueError, match=r"no images of classes \[2\]"):
        rel.classifier_confusion(BrightnessClassifier(), diffusion, images[:2], labels[:2], 3, [0])


def test_save_and_load(tmp_path):
    matrix = rel.shape_relevance(np.array([[1.0, 0.2], [0.2, 1.0]]))
    rel.save_relevance(tmp_path / "r.npz", matrix, ["a", "b"], "enc", "paper", "abc")
    with np.load(tmp_path / "r.npz", allow_pickle=False) as npz:
        assert npz["relevance"].dtype == np.float32 and list(npz["class_names"]) == ["a", "b"]
        assert str(npz["encoder"]) == "enc" and str(npz["source_sha256"]) == "abc"
    np.testing.assert_allclose(rel.load_relevance(tmp_path / "r.npz", 2), matrix, atol=1e-7)
    np.savez(tmp_path / "own.npz", relevance=np.eye(2) * 0.5 + 0.25)  # only the key is needed
    assert rel.load_relevance(tmp_path / "own.npz").shape == (2, 2)


def test_load_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        rel.load_relevance(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", weights=np.eye(2))
    with pytest.raises(ValueError, match="no 'relevance' key"):
        rel.load_relevance(tmp_path / "other.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        rel.load_relevance(tmp_path / "text.npz")
    np.savez(tmp_path / "good.npz", relevance=np.eye(3) * 0.7 + 0.1)
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable .npz"):
        rel.load_relevance(tmp_path / "cut.npz")
    with pytest.raises(ValueError, match="good.npz: the relevance matrix is for 3 classes but the classifier has 10"):
        rel.load_relevance(tmp_path / "good.npz", 10)
    assert zipfile.is_zipfile(tmp_path / "good.npz")


# ------------------------------------------------------------ shipped data


@pytest.mark.parametrize("label_set,size", [("imagenet1k", 1000), ("cifar10", 10), ("digits", 10),
                                            ("fashion", 10)])
def test_shipped_matrix_was_built_from_the_descriptions_beside_it(label_set, size):
    entries = rel.load_descriptions(rel.CLASS_DESCRIPTIONS_DIR / f"{label_set}.json")
    assert len(entries) == size
    path = rel.shipped_relevance(label_set)
    assert rel.load_relevance(path, size).shape == (size, size)
    with np.load(path, allow_pickle=False) as npz:
        assert str(npz["source_sha256"]) == rel.descriptions_hash(entries)
        assert list(npz["class_names"]) == [e["name"] for e in entries]
        assert str(npz["encoder"]) == "sentence-transformers:all-MiniLM-L6-v2" and str(npz["shaping"]) == "paper"


@pytest.mark.parametrize("label_set", ["cifar10", "digits", "fashion"])
def test_shipped_small_matrices_rebuild_exactly(minilm, label_set):
    entries = rel.load_descriptions(rel.CLASS_DESCRIPTIONS_DIR / f"{label_set}.json")
    rebuilt = rel.relevance_from_descriptions(entries, minilm).astype(np.float32)
    np.testing.assert_allclose(rebuilt, rel.load_relevance(rel.shipped_relevance(label_set)), atol=1e-6)


def test_imagenet_descriptions_follow_torchvision_order():
    from torchvision.models import ResNet50_Weights

    entries = rel.load_descriptions(rel.CLASS_DESCRIPTIONS_DIR / "imagenet1k.json")
    assert [e["name"] for e in entries] == ResNet50_Weights.IMAGENET1K_V1.meta["categories"]
    wnids = [e["wnid"] for e in entries]
    assert wnids == sorted(wnids) and len(set(wnids)) == 1000 and all(re.fullmatch(r"n\d{8}", w) for w in wnids)
    assert wnids[0] == "n01440764" and wnids[999] == "n15075141"


@pytest.mark.parametrize("label_set", ["imagenet1k", "cifar10", "digits", "fashion"])
def test_every_description_is_two_or_three_sentences(label_set):
    entries = json.loads((rel.CLASS_DESCRIPTIONS_DIR / f"{label_set}.json").read_text())
    for e in entries:
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", e["description"].strip()) if s]
        assert 2 <= len(sentences) <= 3, (e["name"], sentences)
        assert len(e["description"].split()) >= 20
    assert len({e["description"] for e in entries}) == len(entries)


def test_the_controls_keep_the_rows_entropy_and_lose_their_content():
    true = true_relevance(Structure(), 0.5)
    smoothing = rel.entropy_matched_smoothing(true)
    assert abs(rel.entropy(smoothing[3]) - rel.entropy(true[3])) < 1e-9
    assert np.allclose(np.diag(smoothing), smoothing[0, 0]) and smoothing[0, 0] > 0.5  # spread over 11, not 3
    mixed = rel.shuffled_relevance(true)
    assert np.allclose(np.diag(mixed), 0.5) and np.allclose(mixed.sum(1), 1)
    assert all(abs(rel.entropy(mixed[c]) - rel.entropy(true[c])) < 1e-12 for c in range(12))
    assert (mixed != true).any()
    fashion = rel.load_relevance(rel.shipped_relevance("fashion"))  # rows of different entropies: each matched
    matched = rel.entropy_matched_smoothing(fashion)
    assert np.allclose([rel.entropy(r) for r in matched], [rel.entropy(r) for r in fashion], atol=1e-9)
    assert np.allclose(matched.sum(1), 1) and len(set(np.round(np.diag(matched), 6))) > 1
