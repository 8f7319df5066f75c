"""What every experiment's report shares: tables of mean +- standard deviation, figures, results.json,
and the command-line flags of a sweep."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..testbeds.testbed import Testbed
from .harness import Lab


def fmt(value: tuple[float, float], digits: int = 2) -> str:
    return f"{value[0]:.{digits}f} ± {value[1]:.{digits}f}"


COLUMNS = [("FID", "fid", 2), ("sFID", "sfid", 2), ("IS", "inception_score", 2), ("Prec", "precision", 3),
           ("Rec", "recall", 3), ("Density", "density", 3), ("Coverage", "coverage", 3),
           ("Per-class rec.", "per_class_recall", 3), ("Robustness", "robustness", 1)]


def table(rows: list[tuple[str, dict]], columns=COLUMNS) -> str:
    lines = ["| setting | " + " | ".join(c[0] for c in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, values in rows:
        lines.append(f"| {name} | " + " | ".join(fmt(values[key], d) if key in values else "-"
                                                   for _, key, d in columns) + " |")
    return "\n".join(lines)


def provenance(raw: dict) -> str:
    """How long a results.json's command took, and (when it resumed from --store) how many runs it took from an
    earlier invocation and how long the runs themselves took."""
    text = f"in {raw['seconds'] / 60:.1f} minutes on {raw['machine']} (torch {torch.__version__})"
    if raw.get("taken_from_store"):
        spent = sum(r["seconds"] for r in raw["runs"]) / 60
        text += (f"; {raw['taken_from_store']} of its {len(raw['runs'])} runs were taken from `--store`, sampled by "
                 f"an earlier invocation that stopped (sampling and scoring every run took {spent:.1f} minutes)")
    return text


def write_json(path: Path, raw: dict) -> None:
    path.write_text(json.dumps(raw, indent=1) + "\n")


def subplots(rows: int, cols: int, figsize: tuple[float, float]):
    """``(fig, axes)`` on matplotlib's file backend, ``axes`` always 2-d."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(rows, cols, figsize=figsize, squeeze=False)


def save_figure(fig, path: Path, dpi: int = 100) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def lab_parser(description: str, out: Path, batch_size: int, quick: tuple[int, int, str] | None = None,
               full: tuple[int, int, str] | None = None) -> argparse.ArgumentParser:
    """The flags every experiment takes: --seeds, --batch_size, --out (default ``out``), --device,
    --reference_per_class, --draws, --store;
    given the (samples, steps, scales) of a quick and a full sweep, also --quick, --num_samples, --steps and
    --scales, whose defaults depend on --quick (:func:`sweep_lab` reads them)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=batch_size)
    parser.add_argument("--out", default=str(out))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--reference_per_class", type=int, default=0, help="score against, and build the confusion "
                        "relevance from, only the first N reference images of each class (toy runs); 0: all")
    parser.add_argument("--draws", type=int, default=1000, help="bootstrap resamples of each paired interval")
    parser.add_argument("--store", default=None, help="keep each run (scores, per-sample outcomes, images) in this "
                        "folder and take the runs already there instead of sampling them again: a stopped run "
                        "resumes (a rerun check needs a new folder, or none)")
    if quick and full:
        parser.add_argument("--quick", action="store_true", help=f"{quick[0]} samples, {quick[1]} steps, scales "
                            f"{quick[2]}: 2 CPU cores")
        parser.add_argument("--num_samples", type=int, default=None, help=f"per run (quick {quick[0]}, full {full[0]})")
        parser.add_argument("--steps", type=int, default=None,
                            help=f"respaced DDPM steps (quick {quick[1]}, full {full[1]})")
        parser.add_argument("--scales", default=None, help=f"guidance scales (quick {quick[2]}, full {full[2]})")
        parser.set_defaults(sweep_defaults=(quick, full))
    return parser


def sweep_lab(args: argparse.Namespace, testbed: Testbed) -> tuple[Lab, list[int], list[float]]:
    """The :class:`Lab` on ``testbed``, seeds and scales of the flags of :func:`lab_parser` with a sweep."""
    samples, steps, scales = args.sweep_defaults[0 if args.quick else 1]
    torch.manual_seed(0)
    lab = Lab(testbed.first_of_each_class(args.reference_per_class), args.num_samples or samples, args.steps or steps,
              args.batch_size, torch.device(args.device), args.store)
    return lab, list(range(args.seeds)), [float(s) for s in (args.scales or scales).split(",")]
