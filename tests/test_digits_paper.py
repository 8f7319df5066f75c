"""benchmarks/digits_paper.py end to end at a toy size (the real runs are in results/digits/)."""

import json
import sys

from benchmarks.compare_digits import differences, setting, summarise

from fixtures_background import background
from launch import ROOT, run_python

# 40 samples: the fewest with 4 per class (per-class recall); 10 references per class: the confusion relevance of
# Table 6 in seconds; Table 5's gammas: both ends and one between (the others take the same path); 20 bootstrap
# draws: the intervals' code path, not their precision
RUN = background(__file__, "test_every_table_is_written",
                 [sys.executable, "benchmarks/digits_paper.py", "--num_samples", "40", "--steps", "2", "--seeds", "2",
                  "--scales", "1,2", "--gammas", "0,0.2,1", "--reference_per_class", "10", "--draws", "20",
                  "--out", "{out}"], seconds=45)


def test_every_table_is_written(request):
    _, tmp_path = RUN.result(request)
    report = (tmp_path / "README.md").read_text()
    for heading in ("## Table 1", "## Table 2", "## Figure 4", "## Table 5", "## Table 6"):
        assert heading in report
    for row in ("ADM-G + ProG (s=2)", "CADM + classifier-free", "CADM-G + EDS + ProG", "gamma = 0.2 for 250 steps",
                "classifier confusion", "LS without schedule"):
        assert row in report, row
    for heading in ("### Figure 4: ProG minus vanilla", "### Table 5: each gamma minus", "### Table 6: each initial"):
        assert heading in report, heading
    assert (tmp_path / "figure4.png").stat().st_size > 0
    raw = json.loads((tmp_path / "results.json").read_text())
    assert raw["steps"] == 2 and raw["num_samples"] == 40 and raw["seeds"] == [0, 1]
    runs = raw["runs"]
    assert {r["seed"] for r in runs} == {0, 1}
    assert all(0 <= r["robustness"] <= 100 and r["fid"] >= 0 for r in runs)
    configs = {json.dumps(r["config"], sort_keys=True) for r in runs}
    assert len(runs) == 2 * len(configs)  # every setting once per seed, shared between tables
    found = raw["intervals"]
    assert set(found) == {"table1", "figure4", "table2", "table5", "table6"}
    assert all("recall" in r for r in found["table1"].values()) and set(found["figure4"]["adm"]) == {"1", "2"}
    assert "gamma = 0.2 for 250 steps" in found["table5"] and "vanilla (one-hot)" in found["table6"]


def test_compare_digits_flags_a_rerun_outside_the_spread(tmp_path):
    shipped = ROOT / "results" / "digits" / "results.json"
    assert differences(summarise(shipped), summarise(shipped)) == []
    raw = json.loads(shipped.read_text())
    moved = next(r for r in raw["runs"] if r["config"]["guidance"] == "prog" and r["seed"] == 0)
    moved["fid"] += 100.0
    rerun = tmp_path / "results.json"
    rerun.write_text(json.dumps(raw))
    proc = run_python(["benchmarks/compare_digits.py", str(shipped), str(rerun)], check=False)
    assert proc.returncode == 1
    assert setting(moved["config"]) + " fid:" in proc.stdout and "1 outside the spread" in proc.stdout
    older = json.loads(shipped.read_text())
    for run in older["runs"]:
        run["config"].pop("samples", None)  # a file written before the field existed: the same settings
    rerun.write_text(json.dumps(older))
    assert summarise(rerun).keys() == summarise(shipped).keys()
    assert differences(summarise(shipped), summarise(rerun)) == []
