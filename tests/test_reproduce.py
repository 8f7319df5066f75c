"""scripts/reproduce/: every row's command builds the released networks (their names set their flags); a missing
file stops a row at once."""

import functools
import json
import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from guided_diffusion import script_util as su
from guided_diffusion.models.released import RELEASED
from guided_diffusion.sampling.job import job_args

from golden import FIXTURES
from launch import ROOT

SCRIPTS = sorted((ROOT / "scripts" / "reproduce").glob("t*.sh"))


def _dry_run(script: Path) -> list[str]:
    out = subprocess.run(["bash", str(script)], env={**os.environ, "DRY_RUN": "1"}, capture_output=True, text=True,
                         check=True).stdout
    return shlex.split(out)


@functools.cache
def dry_runs() -> dict[Path, list[str]]:
    """Every row's sampling command (DRY_RUN=1), the scripts run side by side."""
    with ThreadPoolExecutor(8) as pool:
        return dict(zip(SCRIPTS, pool.map(_dry_run, SCRIPTS), strict=True))


def shapes(state_dict) -> list[list]:
    return [[k, list(v.shape)] for k, v in state_dict.items()]


def manifest_shapes(checkpoint: str) -> list[list]:
    """The released manifest's state dict; our own (unreleased) variants are the released one with their
    label embedding removed (unconditional) or grown by the null class (classifier-free guidance)."""
    base = checkpoint.replace("_cfg", "").replace("64x64_diffusion_uncond", "64x64_diffusion")
    expected = json.loads((FIXTURES / f"manifest_{base.removesuffix('.pt')}.json").read_text())["state_dict"]
    expected = [[k, list(v)] for k, v in (expected.items() if isinstance(expected, dict) else expected)]
    if checkpoint == "64x64_diffusion_uncond.pt":
        expected = [e for e in expected if e[0] != "label_emb.weight"]
    if "_cfg" in checkpoint:
        expected = [[k, [v[0] + 1, *v[1:]] if k == "label_emb.weight" else v] for k, v in expected]
    return expected


def test_every_table_row_has_a_script():
    names = {s.stem for s in SCRIPTS}
    assert len(names) == 30
    assert {"t1_64_adm_g_prog", "t1_256_cadm_g_prog", "t2_256_cadm_g_prog", "t3_128_cadm_g_eds_prog",
            "t5_64_gamma_0.2"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.stem)
def test_flags_build_the_released_networks(script):
    command = dry_runs()[script]
    assert command[1].endswith("scripts/prog_classifier_sample.py")
    if Path(command[command.index("--model_path") + 1]).name in RELEASED:  # no flag block: the name sets them
        assert command[2] == "--model_path" and "--image_size" not in command, command
    args = job_args(command[2:])
    assert args.num_samples == 50000 and args.timestep_respacing == "250"
    with torch.device("meta"):
        model, _ = su.create_model_and_diffusion(**su.args_to_dict(args, su.model_and_diffusion_defaults()))
    assert shapes(model.state_dict()) == manifest_shapes(Path(args.model_path).name)
    if args.guidance not in ("none", "cfg"):
        with torch.device("meta"):
            classifier = su.create_classifier(**su.args_to_dict(args, su.classifier_defaults()))
        assert shapes(classifier.state_dict()) == manifest_shapes(Path(args.classifier_path).name)


@pytest.mark.parametrize("name", ["t1_256_cadm_g_prog", "t1_64_adm_g"])
def test_missing_checkpoint_stops_at_once_and_is_named(tmp_path, name):
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "reproduce" / f"{name}.sh")],
                          env={**os.environ, "MODELS": str(tmp_path), "REF_BATCHES": str(tmp_path),
                               "OUT": str(tmp_path / "out")}, capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and not (tmp_path / "out").exists()
    model = "256x256_diffusion.pt" if "256" in name else "64x64_diffusion_uncond.pt"
    assert f"{tmp_path}/{model}" in proc.stderr
    if "256" in name:
        assert "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/256x256_classifier.pt" in proc.stderr
    else:
        assert "not released by ADM" in proc.stderr
    assert "VIRTUAL_imagenet" in proc.stderr


def test_compare_prints_paper_beside_ours(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"inception_score": 40.0, "fid": 6.0, "sfid": 7.0,
                                                       "precision": 0.7, "recall": 0.5}))
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "reproduce" / "compare.py"), str(tmp_path), "--paper",
                          "46.88", "5.16", "6.72"], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[2].split() == ["paper", "46.88", "5.16", "6.72", "-", "-"]
    assert lines[3].split() == ["ours", "40.00", "6.00", "7.00", "0.70", "0.50"]


def test_compare_adds_robustness_when_measured(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"inception_score": 40.0, "fid": 6.0, "sfid": 7.0,
                                                       "precision": 0.7, "recall": 0.5}))
    (tmp_path / "robustness.json").write_text(json.dumps({"robustness": 81.5}))
    compare = [sys.executable, str(ROOT / "scripts" / "reproduce" / "compare.py"), str(tmp_path)]
    full = subprocess.run([*compare, "--paper", "1", "2"], capture_output=True, text=True, check=True).stdout
    assert full.splitlines()[3].split()[-1] == "81.50"
    table2 = subprocess.run([*compare, "--paper", "79.65", "4.58", "--robustness"], capture_output=True, text=True,
                            check=True).stdout
    assert table2.splitlines()[3].split() == ["ours", "81.50", "6.00"]
