"""benchmarks/digits_adversarial.py end to end at a toy size (the real run is in results/digits/adversarial/)."""

import json
import sys

from fixtures_background import background

RUN = background(__file__, "test_every_output_is_written",
                 [sys.executable, "benchmarks/digits_adversarial.py", "--num_samples", "40", "--steps", "2", "--seeds",
                  "1", "--scales", "1,64", "--reference_per_class", "10", "--draws", "20", "--out", "{out}"],
                 seconds=25, timeout=900)


def test_every_output_is_written(request):
    _, tmp_path = RUN.result(request)
    report = (tmp_path / "README.md").read_text()
    for text in ("## Findings", "ProG at the same scale", "## Table 2 at matched FID", "ProG + EDS, s=64",
                 "uniform LS, s=1", "ProG, best s_T, s=64", "Guided by `digits/classifier`"):
        assert text in report, text
    for name in ("gap_vs_scale.png", "robustness_vs_fid.png", "adversarial_grid.png"):
        assert (tmp_path / name).stat().st_size > 0
    raw = json.loads((tmp_path / "results.json").read_text())
    assert raw["scales"] == [1.0, 64.0] and raw["best_relevance"] in ("text", "text_top3", "text_T0.05", "confusion")
    for run in raw["runs"]:
        assert abs(run["gap"] - (run["guide_top1"] - run["robustness"])) < 1e-9
