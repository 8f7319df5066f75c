"""The scripts' command line: --help in groups with every flag explained and its default shown, and a bad flag as
one ``error:`` line and a usage hint."""

import argparse
import importlib.util
import sys

import pytest

from guided_diffusion.flags import FLAG_HELP, SAMPLERS
from guided_diffusion.sampling import job
from guided_diffusion.sampling.precision import PRECISIONS

from launch import ROOT

SAMPLING_SCRIPTS = ["prog_classifier_sample", "classifier_sample", "image_sample", "super_res_sample"]
GROUPS = {"prog_classifier_sample": ["guidance", "sampling", "output", "model", "classifier", "diffusion"],
          "classifier_sample": ["guidance", "sampling", "output", "model", "classifier", "diffusion"],
          "image_sample": ["sampling", "output", "model", "diffusion"],
          "super_res_sample": ["sampling", "output", "model", "diffusion"]}


@pytest.fixture(autouse=True)
def _command_line(monkeypatch):
    """Wide help lines, a script's name as the program's, rank 0."""
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(sys, "argv", ["scripts/prog_classifier_sample.py"])
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "RANK"):
        monkeypatch.delenv(var, raising=False)


def parser_of(script: str) -> argparse.ArgumentParser:
    """The script's parser, built in this process (the main job's is the library's)."""
    if script == "prog_classifier_sample":
        return job.create_argparser()
    spec = importlib.util.spec_from_file_location(script, ROOT / "scripts" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.create_argparser()


@pytest.mark.parametrize("script", SAMPLING_SCRIPTS)
def test_help_groups_every_flag_with_its_help_and_default(script, monkeypatch):
    monkeypatch.setattr(sys, "argv", [f"scripts/{script}.py"])
    parser = parser_of(script)
    text = parser.format_help()
    assert text.startswith(f"usage: {script}.py [options]\n")
    groups = [g.title for g in parser._action_groups if g._group_actions and g.title != "options"]
    assert groups == GROUPS[script]
    flags = [a for a in parser._actions if a.option_strings != ["-h", "--help"]]
    assert all(a.help for a in flags), [a.dest for a in flags if not a.help]
    assert text.count("(default: ") == len(flags)
    assert "--sampler {ddpm,ddim,dpmpp_2m,dpmpp_2m_sde}" in text or script == "super_res_sample"
    assert "--noise_schedule {linear,cosine}" in text


def test_the_main_jobs_help_names_the_defaults_of_the_shipped_model():
    text = job.create_argparser().format_help()
    words = " ".join(text.split())  # as one line
    assert "'digits/adm: V, else W'" in words
    assert "(default: digits/adm: 16, else 64)" in words  # --image_size
    assert "(default: digits/adm: 100, else empty)" in words  # --timestep_respacing, a sampling default
    assert "(default: digits/adm: digits/classifier, else empty)" in words
    assert "(default: digits/adm)" in words  # --model_path
    order = ["\nguidance:", "  --gamma FLOAT", "\nmodel:", "  --num_channels INT"]  # ProG's flags first
    assert [text.index(line) for line in order] == sorted(text.index(line) for line in order)


@pytest.mark.parametrize("argv,message", [
    (["--sampler", "x"], "error: argument --sampler: invalid choice: 'x' (choose from 'ddpm', 'ddim', "),
    (["--num_samples", "-5", "--save_trajectory", "0"], "error: argument --num_samples: must be at least 1, got -5"),
    (["--class_cond", "maybe"], "error: argument --class_cond: boolean value expected, got 'maybe'"),
    (["--nm_samples", "5"], "error: unrecognized arguments: --nm_samples 5 (did you mean --num_samples?)"),
])
def test_a_bad_flag_is_one_error_line_and_a_usage_hint(argv, message, capsys, monkeypatch):
    with pytest.raises(SystemExit) as exit_:
        job.job_args(argv)
    assert exit_.value.code == 2
    first, hint = capsys.readouterr().err.splitlines()
    assert first.startswith(message)
    assert hint == "usage: prog_classifier_sample.py [options] (--help for all options)"
    monkeypatch.setenv("PMI_RANK", "1")  # the other ranks say nothing
    with pytest.raises(SystemExit):
        job.job_args(argv)
    assert capsys.readouterr().err == ""


def test_counts_given_as_library_flags_are_checked_first():
    with pytest.raises(ValueError, match="--num_samples must be at least 1, got -5"):
        job.MainJob(job.job_args([], num_samples=-5, save_trajectory=1))


def test_the_table_matches_what_the_code_accepts():
    assert FLAG_HELP["sampler"].choices == SAMPLERS
    assert FLAG_HELP["precision"].choices == tuple(PRECISIONS)
