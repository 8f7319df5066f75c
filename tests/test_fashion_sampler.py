"""benchmarks/fashion_sampler.py: the rule that picks the fast sampler's step count, and the benchmark end to end
at a toy size on the shipped digit models (--testbed digits: the same code)."""

import json
import sys

from benchmarks.fashion_sampler import chosen_steps, contains_zero

from fixtures_background import background

RUN = background(__file__, "test_the_comparison_and_the_choice_are_written",
                 [sys.executable, "benchmarks/fashion_sampler.py", "--testbed", "digits", "--num_samples", "40",
                  "--candidates", "2,3", "--reference_steps", "3", "--reference_per_class", "10", "--draws", "10",
                  "--out", "{out}"], seconds=30)


def test_the_smallest_count_passing_with_every_larger_one_is_chosen():
    assert chosen_steps({10: False, 15: True, 20: True, 25: True}) == 15
    assert chosen_steps({10: True, 15: False, 20: True, 25: True}) == 20  # a lone pass below a failure is chance
    assert chosen_steps({10: True, 15: True, 20: True, 25: False}) is None
    assert chosen_steps({10: True}) == 10


def test_a_candidate_passes_only_when_every_interval_contains_zero():
    inside = {"fid": {"low": -0.1, "high": 0.2}, "recall": {"low": -0.01, "high": 0.0}, "mcnemar": {"p_value": 0.01}}
    assert contains_zero(inside)
    assert not contains_zero({**inside, "robustness": {"low": 0.5, "high": 2.0}})


def test_the_comparison_and_the_choice_are_written(request):
    _, out = RUN.result(request)
    report = (out / "README.md").read_text()
    for text in ("### vanilla guidance", "### ProG", "| ddpm-3, fp32 |", "| dpmpp_2m_sde-2, bf16 |",
                 "Each candidate minus DDPM-3, paired:", "Chosen: **"):
        assert text in report, text
    raw = json.loads((out / "results.json").read_text())
    configs = {(r["config"]["guidance"], r["config"]["sampler"], r["config"]["steps"], r["config"]["precision"])
               for r in raw["runs"]}
    assert configs == {(g, s, n, p) for g in ("vanilla", "prog")
                       for s, n, p in (("ddpm", 0, "fp32"), ("dpmpp_2m_sde", 2, "bf16"), ("dpmpp_2m_sde", 3, "bf16"))}
    assert set(raw["intervals"]) == {"vanilla", "prog"} and set(raw["intervals"]["prog"]) == {"2", "3"}
    assert set(raw["intervals"]["prog"]["3"]) >= {"fid", "precision", "recall", "robustness", "gap", "mcnemar"}
    assert raw["passes"] == {n: all(contains_zero(raw["intervals"][g][n]) for g in ("vanilla", "prog"))
                             for n in ("2", "3")}
    assert raw["chosen_steps"] == chosen_steps({int(n): p for n, p in raw["passes"].items()})
