"""ADM's released checkpoints by name: the package's table holds the official flags (checked against the
reference manifests), a name builds the right networks in every sampling script, a contradicting flag is one
error, a renamed file is still caught by the strict load, and docs/compatibility.md shows the same table."""

import importlib.util
import json

import pytest
import torch

from guided_diffusion import checkpoints, logger
from guided_diffusion import script_util as su
from guided_diffusion.models.released import RELEASED, command_line, released
from guided_diffusion.sampling.samplers import create_for_sampling

from golden import FIXTURES
from launch import ROOT

MANIFESTS = {m["checkpoint"]: m for m in (json.loads(p.read_text()) for p in FIXTURES.glob("manifest_*.json"))}


def script(name: str):
    spec = importlib.util.spec_from_file_location(f"_script_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shapes(model: torch.nn.Module) -> list[list]:
    return [[k, list(v.shape)] for k, v in model.state_dict().items()]


def manifest_shapes(file: str) -> list[list]:
    expected = MANIFESTS[file]["state_dict"]
    return [[k, list(v)] for k, v in (expected.items() if isinstance(expected, dict) else expected)]


def test_the_table_holds_the_official_flags():
    assert set(MANIFESTS) <= set(RELEASED)
    for file, manifest in MANIFESTS.items():
        entry = RELEASED[file]
        assert (entry.kind, entry.flags) == (manifest["kind"], manifest["flags"]), file
        assert entry.url == f"https://openaipublic.blob.core.windows.net/diffusion/jul-2021/{file}"
        if entry.classifier:
            assert RELEASED[entry.classifier].flags["image_size"] == entry.flags["image_size"]
    # the LSUN models without a manifest: lsun_bedroom.pt's network (the ADM README), one without dropout
    bedroom = RELEASED["lsun_bedroom.pt"].flags
    assert RELEASED["lsun_cat.pt"].flags == RELEASED["lsun_horse.pt"].flags == bedroom
    assert RELEASED["lsun_horse_nodropout.pt"].flags == {**bedroom, "dropout": 0.0}
    assert released("adm/64x64_diffusion") is released("/any/folder/64x64_diffusion.pt") is RELEASED[
        "64x64_diffusion.pt"]
    assert released("digits/adm") is None and released("64x64_diffusion") is None


def test_the_docs_table_is_the_package_table():
    def row(r) -> str:
        guide = f"`{r.classifier}`, scale {r.classifier_scale}" if r.classifier else ""
        return f"| [`{r.file}`]({r.url}) | {r.kind} | `{command_line(r.flags)}` | {guide} |"

    expected = "\n".join(["| checkpoint | kind | flags | guided by (ADM's README) |", "| --- | --- | --- | --- |",
                          *map(row, RELEASED.values())])
    assert f"\n{expected}\n\n" in (ROOT / "docs" / "compatibility.md").read_text(), expected


# ADM's README commands without their flag blocks: (script, flags), the networks each builds
COMMANDS = [("classifier_sample", f"--model_path models/{d.file} --classifier_path models/{d.classifier} "
             f"--classifier_scale {d.classifier_scale} --timestep_respacing 250")
            for d in RELEASED.values() if d.classifier]
COMMANDS += [("image_sample", "--model_path models/lsun_bedroom.pt --timestep_respacing 250"),
             ("super_res_sample", "--model_path models/64_256_upsampler.pt --base_samples 64_samples.npz"),
             ("super_res_sample", "--model_path models/128_512_upsampler.pt --base_samples 128_samples.npz")]


@pytest.mark.parametrize("name,command", COMMANDS, ids=[c.split()[1].split("/")[1] for _, c in COMMANDS])
def test_a_released_name_builds_its_network(name, command):
    args = script(name).parse_args(command.split())
    model_file = command.split()[1].split("/")[1]
    with torch.device("meta"):
        if name == "super_res_sample":
            model = su.sr_create_model_and_diffusion(**su.args_to_dict(args, su.sr_model_and_diffusion_defaults()))[0]
        else:
            model = create_for_sampling(args, "ddpm")[0]
        assert shapes(model) == manifest_shapes(model_file)
        if name == "classifier_sample":
            classifier = su.create_classifier(**su.args_to_dict(args, su.classifier_defaults()))
            assert shapes(classifier) == manifest_shapes(args.classifier_path.split("/")[1])


def test_a_contradicting_flag_is_one_error_naming_both_values():
    parse = script("classifier_sample").parse_args
    base = ["--model_path", "models/64x64_diffusion.pt", "--classifier_path", "adm/64x64_classifier"]
    with pytest.raises(ValueError, match=r"64x64_diffusion.pt, made with --num_channels 192 \(not 128\); its name"):
        parse([*base, "--num_channels", "128"])
    with pytest.raises(ValueError, match=r"--classifier_depth 4 \(not 2\)"):
        parse([*base, "--classifier_depth", "2"])
    with pytest.raises(ValueError, match=r"256x256_classifier.pt, made with --image_size 256 \(not 64\)"):
        parse([base[0], base[1], "--classifier_path", "models/256x256_classifier.pt"])
    with pytest.raises(ValueError, match="is a superres model, not a diffusion model"):
        parse(["--model_path", "models/64_256_upsampler.pt"])
    with pytest.raises(ValueError, match=r"the shipped digits/cadm, made with --image_size 16 \(not 32\)"):
        parse(["--model_path", "digits/cadm", "--image_size", "32"])
    # how a checkpoint is run is the user's; an unconditional model has no number of classes to contradict
    args = parse([*base, "--use_fp16", "False", "--dropout", "0.0", "--classifier_use_fp16", "True"])
    assert (args.use_fp16, args.dropout, args.classifier_use_fp16, args.classifier_depth) == (False, 0.0, True, 4)
    assert parse(["--model_path", "adm/256x256_diffusion_uncond", "--num_classes", "10"]).num_classes == 10
    assert checkpoints.resolve("adm/64x64_classifier") == "models/64x64_classifier.pt"


def test_a_renamed_file_is_caught_by_the_strict_load_and_a_fit_says_so_in_the_log(tmp_path):
    flags = {**su.model_and_diffusion_defaults(), "image_size": 8, "num_channels": 32, "channel_mult": "1,2",
             "attention_resolutions": "4", "num_res_blocks": 1}
    tiny = su.create_model_and_diffusion(**flags)[0]
    path = tmp_path / "64x64_diffusion.pt"
    torch.save(tiny.state_dict(), path)
    args = script("image_sample").parse_args(["--model_path", str(path)])
    with torch.device("meta"):
        model = create_for_sampling(args, "ddpm")[0]
    with pytest.raises(checkpoints.CheckpointError) as err:
        checkpoints.load_checkpoint(model, str(path))
    message = str(err.value)
    assert "is the name of ADM's released diffusion checkpoint" in message and "renamed" in message
    assert "likely wrong flags: " in message
    with logger.scoped_configure(str(tmp_path / "log"), ["log"]):
        checkpoints.load_checkpoint(tiny, str(path))  # the same network fits: loaded, and named in the log
    line = [s for s in (tmp_path / "log" / "log.txt").read_text().splitlines() if "released" in s]
    assert line == [f"checkpoint {path}: ADM's released 64x64_diffusion.pt, its flags set by its name "
                    f"({command_line(RELEASED['64x64_diffusion.pt'].flags)})"]
