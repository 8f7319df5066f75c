"""benchmarks/digits_solvers.py end to end at a toy size (the real run is in results/digits/solvers/)."""

import json
import sys
from dataclasses import asdict

from launch import ROOT, run_python


def test_quality_against_cost_is_written(tmp_path):
    run_python(["benchmarks/digits_solvers.py", "--num_samples", "40", "--seeds", "2", "--steps", "2,3",
                "--out", str(tmp_path)], timeout=900)
    report = (tmp_path / "README.md").read_text()
    for text in ("## Findings", "### vanilla guidance", "### ProG", "dpmpp_2m, 3 steps uniform in log-SNR",
                 "dpmpp_2m, 3 steps, bf16", "ddpm, 3 steps, bf16", "dpmpp_2m_sde, 3 steps, bf16",
                 "the reference is DDPM at 3 steps", "the cheapest matched setting is **"):
        assert text in report, text
    assert (tmp_path / "quality_vs_cost.png").stat().st_size > 0
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    samplers = {(r["config"]["sampler"], r["config"]["steps"], r["config"]["precision"]) for r in runs}
    assert {("ddpm", 3, "fp32"), ("ddim", 2, "fp32"), ("dpmpp_2m", 3, "fp32"), ("dpmpp_2m", 3, "bf16"),
            ("dpmpp_2m_sde", 2, "fp32")} <= samplers
    assert all("gap" in r and 0 <= r["robustness"] <= 100 for r in runs)


def test_reuse_takes_only_the_named_samplers_and_precisions_runs(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from digits_lab import Config, Lab

    ddpm, solver = Config("adm", "vanilla", 4.0, sampler="ddpm", steps=3), Config("adm", "vanilla", 4.0,
                                                                                   sampler="dpmpp_2m", steps=3)
    ddpm_bf16 = Config("adm", "vanilla", 4.0, sampler="ddpm", steps=3, precision="bf16")
    earlier = tmp_path / "results.json"
    earlier.write_text(json.dumps({"runs": [{"config": asdict(c), "seed": 1, "fid": f, "seconds": 2.0}
                                            for c, f in ((ddpm, 0.5), (solver, 9.0), (ddpm_bf16, 0.6))]}))
    lab = Lab.__new__(Lab)  # reuse touches only the cache: no models needed
    lab.cache = {}
    assert lab.reuse(earlier, ("ddpm",)) == 2
    assert lab.cache == {(ddpm, 1): {"fid": 0.5, "seconds": 2.0}, (ddpm_bf16, 1): {"fid": 0.6, "seconds": 2.0}}
    lab.cache = {}
    assert lab.reuse(earlier, ("ddpm", "dpmpp_2m"), ("fp32",)) == 2
    assert set(lab.cache) == {(ddpm, 1), (solver, 1)}
