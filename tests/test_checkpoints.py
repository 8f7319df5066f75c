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
    def clf(**kw):
        return su.create_classifier(**{**su.classifier_defaults(), "image_size": 8, "classifier_width": 32,
                                       "classifier_channel_mult": "1,2", "classifier_attention_resolutions": "4",
                                       "classifier_depth": 1, **kw})
    torch.save(clf(num_classes=10).state_dict(), tmp_path / "c.pt")
    with pytest.raises(checkpoints.CheckpointError, match="--num_classes should be 10"):
        checkpoints.load_checkpoint(clf(), str(tmp_path / "c.pt"))


class _Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickled_code_is_refused(tmp_path):
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"x": _Payload()}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError):
        checkpoints.load_checkpoint(_model(), str(tmp_path / "evil.pt"))
