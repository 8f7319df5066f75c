"""benchmarks/digits_solvers.py end to end at a toy size (the real run is in results/digits/solvers/)."""

import json
import sys

from fixtures_background import background

RUN = background(__file__, "test_quality_against_cost_is_written",
                 [sys.executable, "benchmarks/digits_solvers.py", "--num_samples", "40", "--seeds", "1", "--steps",
                  "2,3", "--reference_per_class", "10", "--out", "{out}"], seconds=30, timeout=900)


def test_quality_against_cost_is_written(request):
    _, tmp_path = RUN.result(request)
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
