"""Quality against cost on the digits: DDPM, DDIM, DPM-Solver++(2M) and its SDE variant at 5 to 250 model
evaluations.

    python benchmarks/digits_solvers.py            # 2 CPU cores, about 40 minutes
    python benchmarks/digits_solvers.py --out /tmp/rerun && \\
      python benchmarks/compare_digits.py results/digits/solvers/results.json /tmp/rerun/results.json

The no-flag main job's setting (digits/adm guided by digits/classifier at scale 4; vanilla guidance
and ProG with gamma 0.04 stated for 250 steps), sampled with each sampler at each step count (one
model and one classifier evaluation per step) over 3 seeds, scored with FID, recall and robustness
(guided_diffusion.experiments.harness). Also: DPM-Solver++ with steps uniform in log-SNR instead of in time,
and bf16 autocast against fp32 at the same settings. For each sampler and guidance, the smallest
step count whose means are all within the 3-seed spread of DDPM at 250 steps is reported, and the
cheapest such setting over all samplers. Writes
results/digits/solvers/README.md, results.json and quality_vs_cost.png.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from guided_diffusion.experiments.harness import Config, Lab, summary
from guided_diffusion.experiments.report import fmt, lab_parser, provenance, save_figure, subplots, table, write_json
from guided_diffusion.testbeds.digits import DIGITS

STEPS = {"ddpm": (25, 100, 250), "ddim": (10, 20, 50, 100), "dpmpp_2m": (5, 10, 15, 20, 25, 50),
         "dpmpp_2m_sde": (10, 15, 20, 25)}
STYLES = {"ddpm": "o-", "ddim": "s-", "dpmpp_2m": "^-", "dpmpp_2m_sde": "v--"}
MATCHED = ("fid", "recall", "robustness")
COLUMNS = [("FID", "fid", 2), ("Rec", "recall", 3), ("Prec", "precision", 3), ("Robustness", "robustness", 1)]

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "digits"


def within_reference(values: dict, reference: dict) -> bool:
    """Every metric of MATCHED within the reference's spread: |mean - ref mean| <= ref std + own std."""
    return all(abs(values[m][0] - reference[m][0]) <= reference[m][1] + values[m][1] for m in MATCHED)


def plot(results: dict, path: Path) -> None:
    fig, axes = subplots(2, 3, (12, 6.5))
    for row, guidance in enumerate(("vanilla", "prog")):
        for col, (key, name) in enumerate((("fid", "FID"), ("recall", "Recall"), ("robustness", "Robustness (%)"))):
            ax = axes[row, col]
            for sampler, style in STYLES.items():
                steps = sorted(results[guidance][sampler])
                mean = [results[guidance][sampler][n][key][0] for n in steps]
                std = [results[guidance][sampler][n][key][1] for n in steps]
                ax.errorbar(steps, mean, yerr=std, fmt=style, capsize=3, label=sampler)
            ax.set_xscale("log")
            ax.set_xlabel("model evaluations (steps)")
            ax.set_title(f"{'ProG' if guidance == 'prog' else 'vanilla'}: {name}")
            ax.legend(fontsize=8)
    save_figure(fig, path, dpi=100)


def main() -> None:
    parser = lab_parser(__doc__, RESULTS / "solvers", batch_size=100)
    parser.add_argument("--num_samples", type=int, default=100)
    parser.add_argument("--scale", type=float, default=4.0, help="the main job's default with digits/adm")
    parser.add_argument("--steps", default=None, help="override every sampler's step counts, e.g. 2,4 (tests)")
    parser.add_argument("--reuse", default=None, help="take this earlier results.json's runs of --reuse_samplers "
                        "instead of sampling them again (a rerun after a change that leaves their code alone; the "
                        "report says so)")
    parser.add_argument("--reuse_samplers", default="ddpm", help="comma-separated: the samplers --reuse takes")
    parser.add_argument("--reuse_precisions", default="fp32,bf16", help="comma-separated: the precisions --reuse "
                        "takes")
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    steps = ({s: tuple(int(n) for n in args.steps.split(",")) for s in STEPS} if args.steps else STEPS)
    reference_steps = max(steps["ddpm"])
    started = time.perf_counter()
    torch.manual_seed(0)
    lab = Lab(DIGITS.first_of_each_class(args.reference_per_class), args.num_samples, reference_steps,
              args.batch_size, torch.device(args.device), args.store)
    reuse_samplers, reuse_precisions = tuple(args.reuse_samplers.split(",")), tuple(args.reuse_precisions.split(","))
    reused = lab.reuse(Path(args.reuse), reuse_samplers, reuse_precisions) if args.reuse else 0
    base = {g: Config("adm", g, args.scale) for g in ("vanilla", "prog")}
    # DDIM with ADM's ddimN spacing (from T - T/N, as ADM's README samples DDIM): a plain N starts at T - 1
    spacing = {"ddim": "ddim"}
    results = {g: {s: {n: summary(lab, replace(base[g], sampler=s, steps=n, spacing=spacing.get(s, "")), seeds)
                       for n in counts}
                   for s, counts in steps.items()} for g in base}
    solver_steps = steps["dpmpp_2m"]
    spaced = sorted({min(solver_steps, key=lambda n: abs(n - 10)), min(solver_steps, key=lambda n: abs(n - 20))})
    logsnr = {g: {n: summary(lab, replace(base[g], sampler="dpmpp_2m", steps=n, spacing="logsnr"), seeds)
                  for n in spaced} for g in base}
    # bf16 against fp32: the main job's DDPM step count (100) and both solvers at 20 steps
    precisions = [("ddpm", min(steps["ddpm"], key=lambda n: abs(n - 100))),
                  ("dpmpp_2m", min(solver_steps, key=lambda n: abs(n - 20))),
                  ("dpmpp_2m_sde", min(steps["dpmpp_2m_sde"], key=lambda n: abs(n - 20)))]
    if args.device == "cpu" or torch.cuda.is_bf16_supported():
        bf16 = {g: {(s, n): summary(lab, replace(base[g], sampler=s, steps=n, precision="bf16"), seeds)
                    for s, n in precisions} for g in base}
    else:
        bf16 = {g: {} for g in base}
    elapsed = time.perf_counter() - started

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(results, out / "quality_vs_cost.png")
    command = "python benchmarks/digits_solvers.py " + " ".join(sys.argv[1:])
    raw = lab.raw(command, elapsed, seeds=seeds)
    write_json(out / "results.json", raw)

    sections, findings = [], []
    for g in base:
        reference = results[g]["ddpm"][reference_steps]
        rows = [(f"{s}, {n} steps" + (f" (ddim{n})" if s == "ddim" else ""), results[g][s][n])
                for s in steps for n in steps[s]]
        rows += [(f"dpmpp_2m, {n} steps uniform in log-SNR", logsnr[g][n]) for n in spaced]
        rows += [(f"{s}, {n} steps, bf16", values) for (s, n), values in bf16[g].items()]
        name = "ProG (gamma 0.04 for 250 steps)" if g == "prog" else "vanilla guidance"
        sections.append(f"### {name}, scale {args.scale:g}\n\n{table(rows, COLUMNS)}\n")
        cheapest = []
        for s in steps:
            matched = [n for n in steps[s] if within_reference(results[g][s][n], reference)]
            cheapest += [(min(matched), s)] if matched else []
            findings.append(f"- {name}, {s}: " + (f"the fewest steps within DDPM-{reference_steps}'s spread on FID, "
                                                  f"recall and robustness: **{min(matched)}**" if matched else
                                                  f"no step count tried ({', '.join(map(str, steps[s]))}) is within "
                                                  f"DDPM-{reference_steps}'s spread"))
        if cheapest:
            n, s = min(cheapest)
            values = results[g][s][n]
            findings.append(f"- {name}: the cheapest matched setting is **{s} at {n} steps** "
                            f"({reference_steps / n:g}x fewer evaluations): FID {fmt(values['fid'])}, recall "
                            f"{fmt(values['recall'], 3)}, robustness {fmt(values['robustness'], 1)} against DDPM-"
                            f"{reference_steps}'s {fmt(reference['fid'])}, {fmt(reference['recall'], 3)}, "
                            f"{fmt(reference['robustness'], 1)}")
        for (s, n), values in bf16[g].items():
            fp32 = results[g][s][n]
            findings.append(f"- {name}, {s}-{n} in bf16: FID {fmt(values['fid'])} vs {fmt(fp32['fid'])} in fp32, "
                            f"recall {fmt(values['recall'], 3)} vs {fmt(fp32['recall'], 3)}, robustness "
                            f"{fmt(values['robustness'], 1)} vs {fmt(fp32['robustness'], 1)}: "
                            f"{'within' if within_reference(values, fp32) else 'outside'} fp32's spread")
        for n in spaced:
            time_uniform, log_uniform = results[g]["dpmpp_2m"][n], logsnr[g][n]
            findings.append(f"- {name}, DPM-Solver++ at {n} steps: FID {fmt(time_uniform['fid'])} with steps uniform "
                            f"in time, {fmt(log_uniform['fid'])} uniform in log-SNR")
    reuse_note = (f"\n{reused} runs of {', '.join(reuse_samplers)} in {', '.join(reuse_precisions)} (their code "
                  f"unchanged) are taken from "
                  f"`{args.reuse}` of an earlier run (`--reuse`); the rest were sampled in this one." if reused else "")
    report = f"""# Fast guided sampling on the digits: quality against cost

Generated by `{command}` {provenance(raw)}.
{args.num_samples} samples per run (class i mod 10), {len(seeds)} seeds, mean ± standard deviation over the
seeds. The no-flag main job's setting: `digits/adm` guided by `digits/classifier` at scale {args.scale:g}.
Every step of every sampler is one model and one classifier evaluation, so the step count is the cost.{reuse_note}
Scores as in [the paper's experiments](../README.md): FID, precision and recall on `digits/features`
against the training images, robustness on `digits/bank1`-`bank5`. Raw numbers: [results.json](results.json).
To check a rerun (`--out DIR`): `python benchmarks/compare_digits.py results/digits/solvers/results.json
DIR/results.json`.

![quality against cost](quality_vs_cost.png)

## Findings

"Within the spread" means |mean - reference mean| <= the sum of the two standard deviations over seeds, for
FID, recall and robustness each; the reference is DDPM at {reference_steps} steps in fp32.

{chr(10).join(findings)}

## Tables

{chr(10).join(sections)}
"""
    (out / "README.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
