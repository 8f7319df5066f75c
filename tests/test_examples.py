"""The scripts of examples/ run as written, with small flags, and write what they say they write. The three run
side by side once for the module (each is a fresh interpreter: imports are most of their cost)."""

from __future__ import annotations

import math
import subprocess

import numpy as np
import pytest

from guided_diffusion.progressive.information_degree import gamma_per_step
from guided_diffusion.progressive.relevance import load_relevance

from launch import ROOT, run_python, together

STEPS = 5


def example(name: str, *args: object) -> subprocess.CompletedProcess:
    return run_python([f"examples/{name}.py", *map(str, args)])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("examples")
    custom, evaluate, prog = together(  # the longest first
        lambda: example("custom_relevance", "--out", out / "paper.npz", "--out_sharp", out / "sharp.npz"),
        lambda: example("evaluate_samples", "--num_samples", 8, "--steps", STEPS, "--per_class", 20),
        lambda: example("prog_sampling", "--steps", STEPS, "--num_samples", 4, "--out", out / "prog.npz"))
    return {"out": out, "prog_sampling": prog, "evaluate_samples": evaluate, "custom_relevance": custom}


def test_every_example_is_run_here(runs):
    assert {p.stem for p in (ROOT / "examples").glob("*.py")} == set(runs) - {"out"}


def test_prog_sampling_writes_the_adm_format_with_gamma_read_for_250_steps(runs):
    with np.load(runs["out"] / "prog.npz") as npz:
        images, labels = npz["arr_0"], npz["arr_1"]
    assert images.shape == (4, 16, 16, 3) and images.dtype == np.uint8 and images.std() > 0
    assert labels.shape == (4,) and ((0 <= labels) & (labels < 10)).all()
    stdout = runs["prog_sampling"].stdout
    assert f"gamma per step {gamma_per_step(0.04, STEPS, 250):.4f}" in stdout and str(runs["out"]) in stdout


def test_evaluate_samples_prints_finite_scores(runs):
    lines = [line.split(": ") for line in runs["evaluate_samples"].stdout.splitlines() if ": " in line]
    scores = {name: float(value) for name, value in lines}
    assert set(scores) == {"inception_score", "fid", "sfid", "precision", "recall", "robustness"}
    assert all(math.isfinite(v) for v in scores.values())
    assert 0 <= scores["precision"] <= 1 and 0 <= scores["recall"] <= 1 and 0 <= scores["robustness"] <= 100


def test_custom_relevance_writes_the_paper_and_a_sharper_matrix(runs):
    paper, sharp = (load_relevance(runs["out"] / name, num_classes=10) for name in ("paper.npz", "sharp.npz"))
    for matrix in (paper, sharp):
        np.testing.assert_allclose(matrix.sum(axis=1), 1, atol=1e-5)
    assert ((sharp > 0).sum(axis=1) == 3).all()  # --top_k 3
    assert (np.diag(sharp) > np.diag(paper)).all()
    assert f"--relevance {runs['out'] / 'paper.npz'}" in runs["custom_relevance"].stdout


def test_the_api_page_quotes_prog_sampling_as_it_is():
    """docs/api.md's Python block is an excerpt of examples/prog_sampling.py, word for word."""
    page = (ROOT / "docs" / "api.md").read_text()
    block = next(b.split("```", 1)[0] for b in page.split("```python\n")[1:] if "InformationDegree" in b)
    assert "reference_steps=250" in block and block in (ROOT / "examples" / "prog_sampling.py").read_text()
