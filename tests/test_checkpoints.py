import pickle

import pytest
import torch

from guided_diffusion import checkpoints
from guided_diffusion import script_util as su


def _model(**overrides):
    flags = {**su.model_and_diffusion_defaults(), "image_size": 8, "num_channels": 32, "channel_mult": "1,2",
             "attention_resolutions": "4", "num_res_blocks": 1, **overrides}
    return su.create_model_and_diffusion(**flags)[0]


def test_missing_released_checkpoint_names_file_and_url(tmp_path):
    path = tmp_path / "256x256_classifier.pt"
    with pytest.raises(checkpoints.CheckpointError) as err:
        checkpoints.load_checkpoint(_model(), str(path))
    message = str(err.value)
    assert str(path) in message
    assert checkpoints.RELEASE_URL + "256x256_classifier.pt" in message


def test_missing_unknown_checkpoint_still_named(tmp_path):
    with pytest.raises(checkpoints.CheckpointError, match="mine.pt"):
        checkpoints.load_checkpoint(_model(), str(tmp_path / "mine.pt"))
    with pytest.raises(checkpoints.CheckpointError, match="no checkpoint path"):
        checkpoints.load_checkpoint(_model(), "")


def test_round_trip(tmp_path):
    source = _model(class_cond=True)
    torch.save(source.state_dict(), tmp_path / "m.pt")
    target = _model(class_cond=True)
    checkpoints.load_checkpoint(target, str(tmp_path / "m.pt"))
    for (k, a), b in zip(source.state_dict().items(), target.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("saved,loaded,hint", [
    ({"class_cond": True}, {}, "--class_cond should be True"),
    ({}, {"class_cond": True}, "--class_cond should be False"),
    ({"learn_sigma": True}, {}, "--learn_sigma should be True"),
    ({"num_channels": 64}, {}, "--num_channels / --classifier_width should be 64"),
    ({"num_res_blocks": 2}, {}, "--num_res_blocks"),
    ({"attention_resolutions": "8"}, {}, "--attention_resolutions"),
    ({"use_scale_shift_norm": False}, {}, "--use_scale_shift_norm should be False"),
    ({"resblock_updown": True}, {}, "--resblock_updown should be True"),
    ({"class_cond": True, "label_dropout": 0.1}, {"class_cond": True}, "--label_dropout should be > 0"),
    ({"class_cond": True}, {"class_cond": True, "label_dropout": 0.1}, "--label_dropout should be 0"),
    ({"class_cond": True, "num_classes": 7}, {"class_cond": True}, "--num_classes should be 7"),
])
def test_mismatched_flags_name_keys_and_flag(tmp_path, saved, loaded, hint):
    torch.save(_model(**saved).state_dict(), tmp_path / "m.pt")
    with pytest.raises(checkpoints.CheckpointError) as err:
        checkpoints.load_checkpoint(_model(**loaded), str(tmp_path / "m.pt"))
    message = str(err.value)
    assert hint in message
    assert "keys" in message or "shape" in message
    assert message.count("should be") + message.count("differ") == 1, message  # no spurious hints


def test_classifier_mismatch(tmp_path):
    torch.save(_classifier(num_classes=10).state_dict(), tmp_path / "c.pt")
    with pytest.raises(checkpoints.CheckpointError, match="--num_classes should be 10"):
        checkpoints.load_checkpoint(_classifier(), str(tmp_path / "c.pt"))


class _Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickled_code_is_refused(tmp_path, capsys):
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"x": _Payload()}, f, protocol=2)
    with pytest.raises(checkpoints.CheckpointError, match="weights_only=True"):
        checkpoints.load_checkpoint(_model(), str(tmp_path / "evil.pt"))
    assert "code ran" not in capsys.readouterr().out


def test_unreadable_files_are_named_with_the_reason(tmp_path):
    good = tmp_path / "good.pt"
    torch.save(_model().state_dict(), good)
    (tmp_path / "cut.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (tmp_path / "text.pt").write_text("hello\n")
    (tmp_path / "empty.pt").write_bytes(b"")
    torch.save([1, 2], tmp_path / "list.pt")
    torch.save({"state_dict": _model().state_dict(), "step": 3}, tmp_path / "wrapped.pt")
    for name, reason in [("cut.pt", "truncated"), ("text.pt", "not a checkpoint"), ("empty.pt", "truncated"),
                         ("list.pt", "holds a list, not a state dict"), ("wrapped.pt", "under the key 'state_dict'")]:
        with pytest.raises(checkpoints.CheckpointError) as err:
            checkpoints.load_checkpoint(_model(), str(tmp_path / name))
        assert str(tmp_path / name) in str(err.value) and reason in str(err.value), str(err.value)
    (tmp_path / "64x64_diffusion.pt").write_bytes(good.read_bytes()[:1000])
    with pytest.raises(checkpoints.CheckpointError, match=checkpoints.RELEASE_URL + "64x64_diffusion.pt"):
        checkpoints.load_checkpoint(_model(), str(tmp_path / "64x64_diffusion.pt"))


def _classifier(**kw):
    return su.create_classifier(**{**su.classifier_defaults(), "image_size": 8, "classifier_width": 32,
                                   "classifier_channel_mult": "1,2", "classifier_attention_resolutions": "4",
                                   "classifier_depth": 1, **kw})


def test_diffusion_model_given_as_classifier_and_back(tmp_path):
    torch.save(_model().state_dict(), tmp_path / "diffusion.pt")
    torch.save(_classifier().state_dict(), tmp_path / "classifier.pt")
    with pytest.raises(checkpoints.CheckpointError, match="is a diffusion model's checkpoint, not a classifier"):
        checkpoints.load_checkpoint(_classifier(), str(tmp_path / "diffusion.pt"))
    with pytest.raises(checkpoints.CheckpointError, match="is a classifier model's checkpoint, not a diffusion"):
        checkpoints.load_checkpoint(_model(), str(tmp_path / "classifier.pt"))
    assert checkpoints.checkpoint_kind(str(tmp_path / "diffusion.pt")) == "diffusion"
    assert checkpoints.checkpoint_kind("digits/classifier") == "unknown"  # names resolve in require_kind
    with pytest.raises(checkpoints.CheckpointError, match="--classifier_path .*adm.pt is a diffusion model"):
        checkpoints.require_kind("digits/adm", "classifier", "--classifier_path")
    checkpoints.require_kind("digits/classifier", "classifier", "--classifier_path")


def test_image_size_is_named_before_the_flags_derived_from_it(tmp_path):
    torch.save(_model(image_size=16, attention_resolutions="8").state_dict(), tmp_path / "m.pt")
    with pytest.raises(checkpoints.CheckpointError) as err:
        checkpoints.load_checkpoint(_model(image_size=32, attention_resolutions="8"), str(tmp_path / "m.pt"))
    hints = str(err.value).split("likely wrong flags: ")[1]
    assert hints.startswith("--image_size should be 16 (is 32)"), hints
    with pytest.raises(checkpoints.CheckpointError) as err:  # a shipped model knows its own flags
        checkpoints.load_checkpoint(_model(image_size=32, num_channels=32, num_res_blocks=2, channel_mult="1,2,2",
                                           attention_resolutions="8,4", num_head_channels=32, learn_sigma=True,
                                           use_scale_shift_norm=True, resblock_updown=True), "digits/adm")
    hints = str(err.value).split("likely wrong flags: ")[1]
    assert hints.startswith("--image_size should be 16 (is 32); digits/adm sets these itself"), hints
