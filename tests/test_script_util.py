import argparse
import json

import pytest
import torch

from guided_diffusion import script_util as su

from golden import FIXTURES

MANIFESTS = sorted(p.name for p in FIXTURES.glob("manifest_*.json"))


def build_from_flags(kind: str, flags: dict) -> torch.nn.Module:
    """Build what a manifest's flags describe, as the sampling scripts do, on the meta device."""
    defaults = {"diffusion": su.model_and_diffusion_defaults, "classifier": su.classifier_defaults,
                "superres": su.sr_model_and_diffusion_defaults}[kind]()
    parser = argparse.ArgumentParser()
    su.add_dict_to_argparser(parser, defaults)
    args = parser.parse_args([f"--{k}={v}" for k, v in flags.items()])
    with torch.device("meta"):
        if kind == "diffusion":
            return su.create_model_and_diffusion(**su.args_to_dict(args, defaults))[0]
        if kind == "classifier":
            return su.create_classifier(**su.args_to_dict(args, defaults))
        return su.sr_create_model_and_diffusion(**su.args_to_dict(args, defaults))[0]


def test_all_official_checkpoints_are_covered():
    assert len(MANIFESTS) == 12


@pytest.mark.parametrize("name", MANIFESTS)
def test_official_state_dicts_reproduced(name):
    manifest = json.loads((FIXTURES / name).read_text())
    model = build_from_flags(manifest["kind"], manifest["flags"])
    shapes = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    expected = manifest["state_dict"]
    expected = [[k, list(v)] for k, v in (expected.items() if isinstance(expected, dict) else expected)]
    assert shapes == expected
    assert sum(v.numel() for v in model.state_dict().values()) == manifest["num_params"]


@pytest.mark.parametrize("name", MANIFESTS)
def test_resolved_flags_are_our_defaults_plus_readme_flags(name):
    manifest = json.loads((FIXTURES / name).read_text())
    defaults = {"diffusion": su.model_and_diffusion_defaults, "classifier": su.classifier_defaults,
                "superres": su.sr_model_and_diffusion_defaults}[manifest["kind"]]()
    merged = {**defaults, **manifest["flags"]}
    assert {k: merged[k] for k in manifest["resolved_flags"]} == manifest["resolved_flags"]
    added = {"num_classes", "classifier_channel_mult", "label_dropout"}
    assert set(defaults) - set(manifest["resolved_flags"]) <= added


def test_small_images_with_explicit_channel_mult():
    flags = {**su.model_and_diffusion_defaults(), "image_size": 8, "num_channels": 32, "channel_mult": "1,2",
             "attention_resolutions": "4", "class_cond": True, "num_classes": 10, "learn_sigma": True}
    model, diffusion = su.create_model_and_diffusion(**flags)
    x = torch.randn(2, 3, 8, 8)
    assert model(x, torch.tensor([0, 999]), y=torch.tensor([1, 9])).shape == (2, 6, 8, 8)
    assert model.label_emb.num_embeddings == 10
    assert diffusion.num_timesteps == 1000
    clf = su.create_classifier(**{**su.classifier_defaults(), "image_size": 8, "classifier_width": 32,
                                  "classifier_channel_mult": "1,2", "classifier_attention_resolutions": "4",
                                  "num_classes": 10, "classifier_depth": 1})
    assert clf(x, torch.tensor([0, 1])).shape == (2, 10)


def test_unknown_image_size_without_channel_mult_names_the_flag():
    with pytest.raises(ValueError, match="channel_mult"):
        su.create_model(32, 32, 1)


def test_channel_mult_parsing():
    assert su.parse_channel_mult("1,2,2", 32) == (1, 2, 2)
    assert su.parse_channel_mult("0.5,1", 32) == (0.5, 1)
    assert su.parse_channel_mult("", 256) == (1, 1, 2, 2, 4, 4)


def test_argparser_bools_and_types():
    parser = argparse.ArgumentParser()
    su.add_dict_to_argparser(parser, {"flag": False, "n": 3, "s": "a", "none": None})
    args = parser.parse_args(["--flag", "True", "--n", "5"])
    assert args.flag is True and args.n == 5 and args.s == "a" and args.none is None
    assert parser.parse_args(["--flag", "no"]).flag is False
    with pytest.raises(SystemExit):
        parser.parse_args(["--flag", "maybe"])
    assert su.args_to_dict(args, ["n", "s"]) == {"n": 5, "s": "a"}


def test_diffusion_options_select_types():
    from guided_diffusion import gaussian_diffusion as gd

    d = su.create_gaussian_diffusion(steps=100, learn_sigma=True, use_kl=True, predict_xstart=True)
    assert d.model_var_type == gd.ModelVarType.LEARNED_RANGE
    assert d.loss_type == gd.LossType.RESCALED_KL and d.model_mean_type == gd.ModelMeanType.START_X
    d = su.create_gaussian_diffusion(steps=100, sigma_small=True, rescale_learned_sigmas=True,
                                     timestep_respacing="10")
    assert d.model_var_type == gd.ModelVarType.FIXED_SMALL and d.loss_type == gd.LossType.RESCALED_MSE
    assert d.num_timesteps == 10


def test_label_dropout_adds_a_null_class_used_only_in_training():
    flags = {**su.model_and_diffusion_defaults(), "image_size": 8, "num_channels": 32, "channel_mult": "1,2",
             "num_res_blocks": 1, "attention_resolutions": "4", "class_cond": True, "num_classes": 3,
             "label_dropout": 0.5}
    model = su.create_model_and_diffusion(**flags)[0]
    assert model.label_emb.num_embeddings == 4 and model.null_class == 3
    seen = []
    model.label_emb.register_forward_hook(lambda m, args, out: seen.append(args[0].clone()))
    y = torch.zeros(4000, dtype=torch.long)
    with torch.no_grad():
        model.label_emb(y)  # direct call: no dropout outside forward
        model(torch.zeros(1, 3, 8, 8), torch.tensor([5]), y=torch.tensor([1]))
        model.eval()
        model(torch.zeros(2, 3, 8, 8), torch.tensor([5, 5]), y=torch.tensor([0, 2]))
    assert seen[0].tolist() == [0] * 4000 and seen[2].tolist() == [0, 2]
    model.train()
    torch.manual_seed(0)
    # 200 labels in 4 training forwards of 50: each label dropped on its own, with fresh draws every call
    calls = [(model(torch.zeros(50, 3, 8, 8), torch.full((50,), 5), y=torch.ones(50, dtype=torch.long)),
              seen[-1].tolist())[1] for _ in range(4)]
    dropped = [label for call in calls for label in call]
    assert set(dropped) == {1, 3} and 0.35 < dropped.count(3) / 200 < 0.65
    assert len({tuple(call) for call in calls}) == 4
    plain = su.create_model_and_diffusion(**{**flags, "label_dropout": 0.0})[0]
    assert plain.label_emb.num_embeddings == 3 and plain.null_class is None
    with pytest.raises(ValueError, match="class-conditional"):
        su.create_model_and_diffusion(**{**flags, "class_cond": False})
