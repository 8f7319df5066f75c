"""benchmarks/fashion_paper.py end to end at a toy size, on the shipped digit models (--testbed digits: the same
code; the Fashion-MNIST models are not needed by the suite)."""

import json
import sys
from types import SimpleNamespace

from benchmarks import fashion_paper

from fixtures_background import background

# 40 samples: 4 per class (per-class recall); both ends of Table 5's gammas; 10 draws: the intervals' code path
RUN = background(__file__, "test_every_table_figure_and_interval_is_written",
                 [sys.executable, "benchmarks/fashion_paper.py", "--testbed", "digits", "--num_samples", "40",
                  "--steps", "2", "--scales", "1,2", "--gammas", "0,1", "--reference_per_class", "10", "--draws",
                  "10", "--headline", "3", "--out", "{out}"], seconds=35)


def test_every_table_figure_and_interval_is_written(request):
    _, out = RUN.result(request)
    report = (out / "README.md").read_text()
    for heading in ("## Table 1", "## Figure 4", "## Table 5", "## Table 6", "## Figure 3",
                    "## The most adversarial samples", "### Table 2: ProG at vanilla's FID"):
        assert heading in report, heading
    for row in ("control: shuffled relevance", "control: entropy-matched LS", "control: ramped vanilla scale",
                "CADM-G + EDS + ProG (s=1)", "gamma = 0", "| prog | 1 | all classes |", "### Table 1's guided rows"):
        assert row in report, row
    for figure in ("figure4.png", "gap_vs_scale.png", "figure3_vanilla.png", "figure3_prog.png",
                   "adversarial_grid.png", "relevance.png"):
        assert (out / figure).stat().st_size > 0, figure
    raw = json.loads((out / "results.json").read_text())
    assert raw["seeds"] == [0] and raw["sampler"] == "ddpm" and raw["precision"] == "fp32"  # not --quick
    runs = raw["runs"]
    vanilla = {r["config"]["scale"]: r["fid"] for r in runs if r["config"]["model"] == "adm"
               and r["config"]["guidance"] == "vanilla" and r["config"]["scale"] in (1, 2)}
    assert raw["scale_adm"] == min(vanilla, key=vanilla.get)  # the rule: the vanilla sweep's lowest FID
    assert f"ADM-G at s={raw['scale_adm']:g}, CADM-G at s={raw['scale_cadm']:g} (the vanilla sweep's lowest FID)" \
        in report
    held_in = raw["held_in"]  # the digits' held-out images, balanced like the samples, scored like them
    assert held_in["images"] == raw["num_samples"] and 0 <= held_in["robustness"] <= 100 and "gap" in held_in
    assert f"| data ({raw['num_samples']} real images) |" in report
    along_t = raw["guide_along_t"]  # s_t's condition share grows with the steps; the guide's top-1 is a share
    assert [r["t"] for r in along_t] == sorted((r["t"] for r in along_t), reverse=True)
    assert all(a["condition_share"] < b["condition_share"] for a, b in zip(along_t[:-1], along_t[1:], strict=True))
    assert all(0 <= r["guide_top1"] <= 100 for r in along_t) and "| t | step of 250 |" in report
    assert all(lo <= r["guide_top1"] <= hi for r in along_t for lo, hi in [r["guide_top1_ci"]])
    found = raw["intervals"]
    assert set(found) == {"table1", "figure4", "families", "table2", "table5", "table5_vs_vanilla", "table6",
                          "headline", "sampler_check"}
    assert set(found["families"]) == {"all classes"} and set(found["families"]["all classes"]) == {"1", "2"}
    assert set(found["table5_vs_vanilla"]) == {"gamma = 0", "gamma = 1"} and "| Gap (points) |" in report
    assert len(found["headline"]) == 2 and len(found["sampler_check"]) == 4  # --headline 3: each model's pair
    headline = [r for r in runs if r["config"]["steps"] == 3]
    assert len(headline) == 4 and {r["config"]["guidance"] for r in headline} == {"vanilla", "prog"}
    assert "control: ramped vanilla scale" in found["table6"] and "gap" in found["table1"][
        f"ADM-G + ProG (s={raw['scale_adm']:g}) - ADM-G (s={raw['scale_adm']:g})"]


def test_the_report_says_how_far_the_sampler_was_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_paper, "RESULTS", tmp_path)
    args, lab = SimpleNamespace(sampler="dpmpp_2m_sde", precision="bf16", testbed="fashion"), SimpleNamespace(steps=20)
    assert "not checked against DDPM-250" in fashion_paper.checked_sampler(args, lab, [1.0, 8.0])  # no check yet
    (tmp_path / "sampler").mkdir()
    check = {"sampler": "dpmpp_2m_sde", "precision": "bf16", "chosen_steps": 20, "holds_to": 2.0,
             "passes": {"2": {"20": True, "35": True}, "8": {"20": False, "35": False}}}
    (tmp_path / "sampler" / "results.json").write_text(json.dumps(check))
    note = fashion_paper.checked_sampler(args, lab, [0.5, 2.0, 4.0, 8.0])
    assert "matched to DDPM-250 at s=2 and not at s=8; the count its rule chose" in note
    assert "s=4, 8 lie outside the matched range" in note
    assert "outside" not in fashion_paper.checked_sampler(args, lab, [0.5, 2.0])
    note = fashion_paper.checked_sampler(args, SimpleNamespace(steps=35), [2.0])  # checked, but not the rule's choice
    assert "not the count its rule chose (20" in note
    assert "not checked" in fashion_paper.checked_sampler(args, SimpleNamespace(steps=25), [2.0])  # another count
    assert fashion_paper.checked_sampler(SimpleNamespace(**{**vars(args), "sampler": "ddpm"}), lab, [2.0]) == ""
