"""benchmarks/fashion_sampler.py: the rule that picks the fast sampler's step count, and the benchmark end to end
at a toy size on the shipped digit models (--testbed digits: the same code)."""

import json
import sys

from benchmarks.fashion_sampler import choice, chosen_steps, contains_zero

from fixtures_background import background

RUN = background(__file__, "test_the_comparisons_and_the_choice_are_written",
                 [sys.executable, "benchmarks/fashion_sampler.py", "--testbed", "digits", "--num_samples", "40",
                  "--scales", "1,2", "--candidates", "2", "--reference_steps", "3", "--reference_per_class", "10",
                  "--draws", "10", "--out", "{out}"], seconds=30)


def test_the_smallest_count_passing_with_every_larger_one_is_chosen():
    assert chosen_steps({10: False, 15: True, 20: True, 25: True}) == 15
    assert chosen_steps({10: True, 15: False, 20: True, 25: True}) == 20  # a lone pass below a failure is chance
    assert chosen_steps({10: True, 15: True, 20: True, 25: False}) is None
    assert chosen_steps({10: True}) == 10


def test_the_count_must_pass_at_every_scale_and_says_how_far_it_holds():
    assert choice({"2": {"10": False, "15": True, "20": True},
                   "8": {"10": True, "15": False, "20": True}}) == (20, 8.0)
    assert choice({"2": {"10": True, "15": True}, "8": {"10": False, "15": False}}) == (10, 2.0)
    assert choice({"2": {"10": False, "15": False}, "8": {"10": True, "15": True}}) == (None, None)


def test_a_candidate_passes_only_when_every_interval_contains_zero():
    inside = {"fid": {"low": -0.1, "high": 0.2}, "recall": {"low": -0.01, "high": 0.0}, "mcnemar": {"p_value": 0.01}}
    assert contains_zero(inside)
    assert not contains_zero({**inside, "robustness": {"low": 0.5, "high": 2.0}})


def test_the_comparisons_and_the_choice_are_written(request):
    _, out = RUN.result(request)
    report = (out / "README.md").read_text()
    for text in ("### vanilla guidance, s=1", "### ProG, s=2", "| ddpm-3, fp32 |", "| dpmpp_2m_sde-2, bf16 |",
                 "Each candidate minus DDPM-3, paired:", "Chosen: **"):
        assert text in report, text
    raw = json.loads((out / "results.json").read_text())
    configs = {(r["config"]["guidance"], r["config"]["scale"], r["config"]["sampler"], r["config"]["steps"],
                r["config"]["precision"]) for r in raw["runs"]}
    assert configs == {(g, s, *run) for g in ("vanilla", "prog") for s in (1.0, 2.0)
                       for run in (("ddpm", 0, "fp32"), ("dpmpp_2m_sde", 2, "bf16"))}
    found = raw["intervals"]
    assert set(found) == {f"{g}, s={s}" for g in ("vanilla guidance", "ProG") for s in (1, 2)}
    assert set(found["ProG, s=2"]["2"]) >= {"fid", "precision", "recall", "robustness", "gap", "mcnemar"}
    assert raw["passes"] == {f"{s}": {"2": all(contains_zero(found[f"{g}, s={s}"]["2"])
                                               for g in ("vanilla guidance", "ProG"))} for s in (1, 2)}
    assert [raw["chosen_steps"], raw["holds_to"]] == list(choice(raw["passes"]))
