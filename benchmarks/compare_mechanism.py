"""Does a rerun of benchmarks/mechanism.py reproduce a results.json?

    python benchmarks/mechanism.py --quick --out /tmp/rerun
    python benchmarks/compare_mechanism.py results/mechanism/results.json /tmp/rerun/results.json

Runs are matched by (variant, setting, guide strength, arm, scale) and comparisons by (variant, setting,
strength, control, metric). Every score must agree within --tolerance (relative, and the same absolute for
scores near 0): the testbed is exact and every arm's noise is seeded, so a rerun on the same software gives
the same numbers. Prints each disagreement and the largest difference; exits 1 on any disagreement.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

RUN_KEY = ("variant", "setting", "spurious", "arm", "scale")
COMPARISON_KEY = ("variant", "setting", "spurious", "control", "metric")
RUN_SCORES = ("fidelity", "spread", "coverage", "gap", "log_density", "off_support", "diverged", "from_vanilla")
COMPARISON_SCORES = ("estimate", "low", "high")


def indexed(rows: list[dict], key: tuple[str, ...]) -> dict[tuple, dict]:
    return {tuple(row[k] for k in key): row for row in rows}


def differences(old: dict, new: dict, tolerance: float) -> tuple[list[str], float]:
    """The disagreements between two results.json files and the largest relative difference seen."""
    problems, largest = [], 0.0
    for section, key, scores in (("runs", RUN_KEY, RUN_SCORES), ("comparisons", COMPARISON_KEY, COMPARISON_SCORES)):
        a, b = indexed(old[section], key), indexed(new[section], key)
        for missing in sorted(set(a) ^ set(b), key=str):
            problems.append(f"{section} {missing}: only in {'the first' if missing in a else 'the second'} file")
        for k in sorted(set(a) & set(b), key=str):
            for score in scores:
                x, y = a[k].get(score), b[k].get(score)
                if x is None or y is None:
                    continue
                if math.isnan(x) and math.isnan(y):
                    continue
                relative = abs(x - y) / max(abs(x), abs(y), 1.0)
                largest = max(largest, relative if math.isfinite(relative) else math.inf)
                if not relative <= tolerance:
                    problems.append(f"{section} {k} {score}: {x!r} against {y!r}")
    return problems, largest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", help="a committed results.json")
    parser.add_argument("new", help="the rerun's results.json")
    parser.add_argument("--tolerance", type=float, default=1e-6, help="relative (absolute below 1)")
    args = parser.parse_args()
    problems, largest = differences(*(json.loads(Path(p).read_text()) for p in (args.old, args.new)),
                                    args.tolerance)
    for line in problems:
        print(line)
    print(f"{len(problems)} disagreements; largest relative difference {largest:.1e}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
