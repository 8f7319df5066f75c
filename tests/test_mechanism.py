"""benchmarks/mechanism.py: its controls, and the whole run at a toy size (the real run is in results/mechanism/)."""

import json

from benchmarks.compare_mechanism import differences
from benchmarks.mechanism import ARMS

from launch import run_python


def test_a_toy_run_writes_every_output(tmp_path):
    run_python(["benchmarks/mechanism.py", "--num_samples", "60", "--scales", "1,8", "--spurious", "0,4",
                "--settings", "ddpm-4", "--variants", "default", "--levels", "30", "--draws", "20", "--out",
                str(tmp_path)])
    report = (tmp_path / "README.md").read_text()
    for text in ("| default | ddpm-4 | mis-specified (4) | 30 | (a) vanilla guidance | spread |",
                 "(d) ramped vanilla scale"):
        assert text in report, text
    raw = json.loads((tmp_path / "results.json").read_text())
    assert {r["arm"] for r in raw["runs"]} == set(ARMS) and len(raw["runs"]) == len(ARMS) * 2 * 2
    assert all(r["from_vanilla"] == 0 for r in raw["runs"] if r["arm"] == "vanilla")
    assert len(raw["comparisons"]) == 4 * 3 * 2
    for figure in ("frontier_default_ddpm-4.png", "information_degree.png"):
        assert (tmp_path / figure).stat().st_size > 0
    assert differences(raw, raw, 1e-6) == ([], 0.0)  # the rerun check
    changed = json.loads(json.dumps(raw))
    changed["runs"][3]["gap"] += 0.01
    del changed["comparisons"][0]
    problems, largest = differences(raw, changed, 1e-6)
    assert len(problems) == 2 and largest > 1e-6
