"""Robustness score (paper Sec. 6): Top-1/Top-5 arithmetic, the bank, the CLI, offline errors."""

import json
import urllib.error

import numpy as np
import pytest
import torch
from torch import nn

from evaluations import robustness as robustness_script
from guided_diffusion import robustness
from guided_diffusion.evaluation import feature_extractors as fe
from guided_diffusion.evaluation.robustness import bank_members


def test_topk_accuracy_arithmetic():
    top = np.array([[0, 1, 2, 3, 4], [5, 0, 1, 2, 3], [9, 8, 7, 6, 5], [1, 2, 3, 4, 0]])
    labels = np.array([0, 0, 0, 1])
    assert robustness.topk_accuracy(top, labels) == {"top1": 50.0, "top5": 75.0}


def test_robustness_is_mean_top1_over_bank():
    labels = np.array([0, 1, 2, 3])
    predictions = {
        "a": np.array([[0, 9], [1, 9], [2, 9], [3, 9]]),  # all right
        "b": np.array([[9, 0], [9, 1], [9, 9], [9, 9]]),  # none top-1, half top-2
    }
    result = robustness.robustness(predictions, labels)
    assert result["per_classifier"]["a"] == {"top1": 100.0, "top5": 100.0}
    assert result["per_classifier"]["b"] == {"top1": 0.0, "top5": 50.0}
    assert result["robustness"] == 50.0 and result["robustness_top5"] == 75.0


class MeanColourClassifier(nn.Module):
    """``model(x, t)`` voting for class = which third of [-1, 1] the mean red value falls in."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(1, 3)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[-10.0], [0.0], [10.0]]))
            self.head.bias.copy_(torch.tensor([-3.0, 0.0, -3.0]))

    def forward(self, x, timesteps):
        return self.head(x[:, :1].mean(dim=(2, 3)))


def test_bank_extractor_gives_ranked_predictions(tmp_path):
    red = np.array([0, 128, 255, 0, 255], dtype=np.uint8)
    images = np.zeros((5, 8, 8, 3), dtype=np.uint8)
    images[..., 0] = red[:, None, None]
    np.savez(tmp_path / "s.npz", images, np.array([0, 1, 2, 2, 2]))
    member = fe.ClassifierExtractor(MeanColourClassifier(), image_size=8, device="cpu")
    bank = robustness.BankExtractor({"colour": member, "same": member})
    top = bank.extract(images)
    np.testing.assert_array_equal(top["colour"][:, 0], [0, 1, 2, 0, 2])
    assert top["colour"].shape == (5, 3)  # top-k capped at the number of classes
    result = robustness.robustness(top, np.array([0, 1, 2, 2, 2]))
    assert result["robustness"] == pytest.approx(80.0) and result["robustness_top5"] == 100.0


def test_torchvision_member_with_random_weights():
    member = robustness.TorchvisionClassifier("squeezenet1_1", pretrained=False, device="cpu")
    seen = []
    member.model.register_forward_pre_hook(lambda m, inp: seen.append(inp[0]))
    logits = member.extract(np.random.RandomState(0).randint(0, 256, (2, 32, 32, 3)).astype(np.uint8))["logits"]
    assert logits.shape == (2, 1000)
    assert seen[0].shape == (2, 3, 224, 224) and seen[0].dtype == torch.float32
    assert seen[0].min() < -1.5 and seen[0].max() > 1.5  # ImageNet mean/std normalisation


def test_offline_bank_error_names_weights_file_and_url(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(*args):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(fe, "download_file", offline)
    with pytest.raises(fe.WeightsUnavailableError) as info:
        robustness.build_bank(["resnet34"])
    message = str(info.value)
    assert "resnet34-b627a593.pth" in message
    assert "https://download.pytorch.org/models/resnet34-b627a593.pth" in message
    assert str(tmp_path / "checkpoints") in message


def test_paper_bank_names_are_torchvision_models():
    import torchvision

    assert len(robustness.PAPER_BANK) == 7
    for name in robustness.PAPER_BANK:
        assert torchvision.models.get_model_weights(name)["IMAGENET1K_V1"].meta["num_params"] > 0


def test_cli_with_random_weights_and_json(tmp_path, capsys):
    images = np.random.RandomState(1).randint(0, 256, (6, 16, 16, 3)).astype(np.uint8)
    np.savez(tmp_path / "s.npz", images, np.array([1, 2, 3, 4, 5, 6]))
    result = robustness_script.main([str(tmp_path / "s.npz"), "--bank", "squeezenet1_1", "--random-weights",
                                     "--device", "cpu", "--json", str(tmp_path / "r.json")])  # fmt: skip
    out = capsys.readouterr().out
    assert "squeezenet1_1: Top-1" in out and "Robustness (mean Top-1):" in out
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["bank"] == ["squeezenet1_1"] and written["num_samples"] == 6
    assert written["robustness"] == result["robustness"] == result["per_classifier"]["squeezenet1_1"]["top1"]


def test_cli_requires_labels(tmp_path):
    np.savez(tmp_path / "s.npz", np.zeros((2, 8, 8, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="no arr_1"):
        robustness_script.main([str(tmp_path / "s.npz"), "--bank", "squeezenet1_1", "--random-weights"])
    np.savez(tmp_path / "s.npz", np.zeros((2, 8, 8, 3), dtype=np.uint8), np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="2 integer labels"):
        robustness_script.main([str(tmp_path / "s.npz"), "--bank", "squeezenet1_1", "--random-weights"])


def test_own_checkpoint_in_bank(tmp_path, capsys):
    """Needs guided_diffusion.script_util (create_classifier)."""
    from test_feature_extractors import CLASSIFIER_FLAGS

    from guided_diffusion import script_util

    torch.manual_seed(2)
    model = script_util.create_classifier(**{**script_util.classifier_defaults(), **CLASSIFIER_FLAGS}).eval()
    torch.save(model.state_dict(), tmp_path / "clf.pt")
    (tmp_path / "clf.json").write_text(json.dumps({"flags": CLASSIFIER_FLAGS}))
    images = np.random.RandomState(3).randint(0, 256, (8, 16, 16, 3)).astype(np.uint8)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        predicted = model(x, torch.zeros(8, dtype=torch.long)).argmax(1).numpy()
    labels = predicted.copy()
    labels[:2] = (labels[:2] + 1) % CLASSIFIER_FLAGS["num_classes"]  # two wrong of eight
    np.savez(tmp_path / "s.npz", images, labels)
    result = robustness_script.main([str(tmp_path / "s.npz"), "--bank", str(tmp_path / "clf.pt"), "--device", "cpu"])
    assert result["robustness"] == pytest.approx(75.0)
    assert result["per_classifier"][str(tmp_path / "clf.pt")]["top5"] == 100.0


def test_labels_outside_the_bank_are_an_error_naming_them(tmp_path):
    np.savez(tmp_path / "s.npz", np.zeros((3, 16, 16, 3), dtype=np.uint8), np.array([1, 50, 1200]))
    with pytest.raises(ValueError, match="labels 1200 are outside the 1000 classes of squeezenet1_1"):
        robustness_script.main([str(tmp_path / "s.npz"), "--bank", "squeezenet1_1", "--random-weights"])
    np.savez(tmp_path / "d.npz", np.zeros((3, 16, 16, 3), dtype=np.uint8), np.array([1, 50, 12]))
    with pytest.raises(ValueError, match="labels 12, 50 are outside the 10 classes of digits/bank1"):
        robustness_script.main([str(tmp_path / "d.npz"), "--bank", "digits/bank1"])


def test_adversarial_gap_arithmetic():
    labels = np.array([0, 0, 1, 1])
    bank = {"a": np.array([[0], [1], [1], [0]]), "b": np.array([[0], [1], [0], [0]])}
    guide = np.array([[0], [0], [1], [1]])
    gap = robustness.adversarial_gap(bank, guide, labels)
    assert gap["guide_top1"] == 100.0 and gap["bank_top1"] == 37.5 and gap["gap"] == 62.5
    assert gap["per_class"]["0"] == {"guide_top1": 100.0, "bank_top1": 50.0, "gap": 50.0}
    assert gap["per_class"]["1"] == {"guide_top1": 100.0, "bank_top1": 25.0, "gap": 75.0}
    assert gap["fooled_fraction"] == 50.0  # samples 1 and 3: the guide accepts, most of the bank rejects (2: half)
    votes = robustness.bank_top1(bank)
    assert votes.tolist() == [[0, 1, 1, 0], [0, 1, 0, 0]]
    assert robustness.fooled(guide[:, 0], votes, labels).tolist() == [False, True, False, True]


def test_cli_reports_the_guide_and_the_gap(tmp_path, capsys):
    from guided_diffusion.testbeds.digits import load_digits_split

    images, labels = load_digits_split()["test"]
    np.savez(tmp_path / "s.npz", images[:40], labels[:40])
    result = robustness_script.main([str(tmp_path / "s.npz"), "--bank", "digits/bank1,digits/bank2",
                                     "--guide", "digits/classifier", "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert "Guide digits/classifier Top-1:" in out and "Adversarial gap (guide - bank):" in out
    guide = json.loads((tmp_path / "r.json").read_text())["guide"]
    assert guide == result["guide"] and guide["name"] == "digits/classifier"
    assert guide["gap"] == pytest.approx(guide["guide_top1"] - result["robustness"])
    assert set(guide["per_class"]) == {str(c) for c in np.unique(labels[:40])}
    assert guide["guide_top1"] > 90  # held-out digits: the guide reads them too


def test_a_testbeds_name_stands_for_its_shipped_bank():
    assert bank_members(["digits"]) == [f"digits/bank{i}" for i in range(1, 6)]
    assert bank_members(["resnet34", "digits/bank2", "x.pt"]) == ["resnet34", "digits/bank2", "x.pt"]
    assert list(robustness.build_bank(["digits"], device="cpu").members) == [f"digits/bank{i}" for i in range(1, 6)]
