"""Print a reproduction's numbers beside the paper's (used by the scripts in scripts/reproduce/).

    python scripts/reproduce/compare.py runs/reproduce/t1_64_adm_g_prog --title "..." --paper 46.88 5.16 6.72 0.72 0.56
"""

import argparse
import json
from pathlib import Path

COLUMNS = [("IS", "inception_score"), ("FID", "fid"), ("sFID", "sfid"), ("Prec", "precision"), ("Rec", "recall")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("--title", default="")
    parser.add_argument("--paper", nargs="+", type=float, required=True)
    parser.add_argument("--robustness", action="store_true", help="paper numbers are: Robustness FID")
    args = parser.parse_args()
    run = Path(args.run_dir)
    metrics = json.loads((run / "metrics.json").read_text())
    columns = COLUMNS
    if (run / "robustness.json").is_file():
        metrics["robustness"] = json.loads((run / "robustness.json").read_text())["robustness"]
        columns = [("Robustness", "robustness"), ("FID", "fid")] if args.robustness else \
            [*COLUMNS, ("Robustness", "robustness")]
    elif args.robustness:
        raise SystemExit(f"error: {run / 'robustness.json'} is missing")
    if len(args.paper) > len(columns):
        raise SystemExit(f"error: --paper takes at most {len(columns)} numbers ({' '.join(c for c, _ in columns)})")
    paper = [f"{value:>12.2f}" for value in args.paper] + [f"{'-':>12}"] * (len(columns) - len(args.paper))
    print(args.title)
    print(f"{'':<6}" + "".join(f"{name:>12}" for name, _ in columns))
    print(f"{'paper':<6}" + "".join(paper))
    print(f"{'ours':<6}" + "".join(f"{metrics[key]:>12.2f}" for _, key in columns))


if __name__ == "__main__":
    main()
