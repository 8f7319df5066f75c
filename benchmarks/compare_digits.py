"""Does a rerun of a digits experiment reproduce the shipped numbers within the reported spread?

    python benchmarks/digits_paper.py --quick --out /tmp/rerun
    python benchmarks/compare_digits.py results/digits/results.json /tmp/rerun/results.json

Works on the results.json of digits_paper.py, digits_adversarial.py, digits_solvers.py and fashion_paper.py alike: every
numeric score of the runs (FID, ..., robustness, guide accuracy and gap) is compared.

For every setting present in both files and every metric, the means over seeds must differ by at
most the shipped standard deviation over seeds, the spread the results report (plus 1e-6
relative, for settings whose spread is 0). Prints one line per setting and metric that does not
and exits 1 if any; settings in only one of the files are listed and not counted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import numpy as np

from guided_diffusion.experiments.harness import Config

NOT_SCORES = ("config", "seed", "seconds")


def setting(config: dict) -> str:
    """A run's setting as a key: its config with the fields an older file lacks at their defaults."""
    return json.dumps(asdict(Config(**config)), sort_keys=True)


def summarise(path: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """``{setting: {metric: (mean, std over seeds)}}`` of a digits experiment's results.json."""
    runs = defaultdict(list)
    for run in json.loads(path.read_text())["runs"]:
        runs[setting(run["config"])].append(run)
    return {setting: {m: (float(np.mean([r[m] for r in rs])), float(np.std([r[m] for r in rs])))
                      for m in rs[0] if m not in NOT_SCORES}
            for setting, rs in runs.items()}


def differences(shipped: dict, rerun: dict) -> list[str]:
    """One line per (setting, metric) of both whose means differ by more than the spread."""
    lines = []
    for setting in sorted(shipped.keys() & rerun.keys()):
        for metric in sorted(shipped[setting].keys() & rerun[setting].keys()):
            (old, old_std), (new, new_std) = shipped[setting][metric], rerun[setting][metric]
            spread = old_std + 1e-6 * max(1.0, abs(old))
            if abs(new - old) > spread:
                lines.append(f"{setting} {metric}: shipped {old:.4f} ± {old_std:.4f}, rerun {new:.4f} ± {new_std:.4f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shipped", type=Path)
    parser.add_argument("rerun", type=Path)
    args = parser.parse_args()
    shipped, rerun = summarise(args.shipped), summarise(args.rerun)
    for only, name in ((shipped.keys() - rerun.keys(), args.shipped), (rerun.keys() - shipped.keys(), args.rerun)):
        for setting in sorted(only):
            print(f"only in {name}: {setting}")
    common = shipped.keys() & rerun.keys()
    if not common:
        sys.exit("error: the two files share no setting")
    lines = differences(shipped, rerun)
    print("\n".join(lines))
    compared = sum(len(shipped[s].keys() & rerun[s].keys()) for s in common)
    print(f"{len(common)} settings, {compared} scores compared: "
          f"{'all within the spread' if not lines else f'{len(lines)} outside the spread'}")
    sys.exit(1 if lines else 0)


if __name__ == "__main__":
    main()
