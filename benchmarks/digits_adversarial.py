"""The paper's central claim, where it can show: guidance by a weak classifier builds adversarial samples
(the guide accepts them, independent classifiers do not); does ProG remove them? (Table 2, Figure 3)

    python benchmarks/digits_adversarial.py --quick      # 1 core: 27 minutes (2 cores, no intervals: 17)
    python benchmarks/digits_adversarial.py              # more samples, steps and scales: a GPU
    python benchmarks/digits_adversarial.py --quick --out /tmp/rerun && \\
      python benchmarks/compare_digits.py results/digits/adversarial/results.json /tmp/rerun/results.json

Guides the shipped digits/adm with digits/classifier_weak (and, for contrast, the shipped
digits/classifier) over a sweep of scales, with vanilla guidance, ProG (the paper's s_T), ProG with
the best s_T of Table 6 (results/digits), uniform label smoothing, EDS and ProG + EDS; 3 seeds,
balanced classes. Scores (guided_diffusion.experiments.harness): FID and recall on digits/features, robustness
(the mean top-1 of the independent bank digits/bank1-5), the guide's own top-1 on the final samples
and the gap (guide - bank, points). Writes results/digits/adversarial/: README.md (tables, Table 2
at matched FID, findings), results.json, gap_vs_scale.png, robustness_vs_fid.png,
adversarial_grid.png (the most adversarial samples, both labels shown) and, for one of them,
vanilla and ProG from the same noise as trajectory figures (Figure 3 in miniature).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from guided_diffusion.evaluation.robustness import fooled_ranked
from guided_diffusion.experiments import paired
from guided_diffusion.experiments.harness import Config, Lab, summary
from guided_diffusion.experiments.report import (
    fmt,
    lab_parser,
    provenance,
    save_figure,
    subplots,
    sweep_lab,
    table,
    write_json,
)
from guided_diffusion.sampling.figures import trajectory_figure
from guided_diffusion.testbeds.digits import DIGITS

SHIPPED = "digits/classifier"
WEAK = "digits/classifier_weak"
GUIDANCES = ("vanilla", "prog", "prog_best", "uniform_ls", "eds", "prog_eds")
NAMES = {"vanilla": "vanilla", "prog": "ProG", "prog_best": "ProG, best s_T", "uniform_ls": "uniform LS",
         "eds": "EDS", "prog_eds": "ProG + EDS"}
TABLE6_SOURCES = ("text", "text_top3", "text_T0.05", "confusion")
COLUMNS = [("FID", "fid", 2), ("Rec", "recall", 3), ("Robustness (bank)", "robustness", 1),
           ("Guide top-1", "guide_top1", 1), ("Gap", "gap", 1), ("Fooled %", "fooled_fraction", 1)]

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "digits"


def best_relevance(path: Path = RESULTS / "results.json", scale: float = 2.0) -> str:
    """The s_T source of Table 6 (ADM-G + ProG) with the lowest mean FID in the shipped digits results."""
    runs = json.loads(path.read_text())["runs"]
    fids = {}
    for source in TABLE6_SOURCES:
        values = [r["fid"] for r in runs if r["config"]["guidance"] == "prog" and r["config"]["model"] == "adm"
                  and r["config"]["relevance"] == source and r["config"]["scale"] == scale
                  and r["config"]["gamma"] == 0.04]
        if values:
            fids[source] = float(np.mean(values))
    return min(fids, key=fids.get) if fids else "text_T0.05"


def config(guidance: str, scale: float, classifier: str, best: str) -> Config:
    if guidance == "prog_best":
        return Config("adm", "prog", scale, relevance=best, classifier=classifier)
    return Config("adm", guidance, scale, classifier=classifier)


def matched(sweep: dict[float, dict], other: dict[float, dict]) -> list[tuple[float, float]]:
    """For each scale of ``sweep``, the scale of ``other`` whose mean FID is closest."""
    return [(s, min(other, key=lambda o: abs(other[o]["fid"][0] - sweep[s]["fid"][0]))) for s in sweep]


def intervals(lab: Lab, seeds: list[int], weak: str, best: str, scales: list[float], worst: float,
              draws: int) -> dict:
    """Guided by ``weak``: each guidance minus vanilla at scale ``worst``, and ProG's sweep at each vanilla
    scale's FID minus that vanilla run, as paired differences with 95 % intervals."""
    chosen = paired.scores(lab, guided=True)

    def pooled(guidance: str, scale: float) -> dict:
        return lab.pooled(config(guidance, scale, weak, best), seeds)

    same_scale = {g: paired.compare(pooled(g, worst), pooled("vanilla", worst), chosen, draws)
                  for g in GUIDANCES if g != "vanilla"}
    per_sample = {k: chosen[k] for k in ("robustness", "gap", "precision", "recall")}
    at_fid = {f"{s:g}": paired.at_matched([pooled("prog", t) for t in scales], pooled("vanilla", s), chosen["fid"],
                                           per_sample, draws) for s in scales}
    return {"same_scale": same_scale, "matched_fid": at_fid}


def plots(results: dict, out: Path) -> None:
    """gap_vs_scale.png and robustness_vs_fid.png: one panel per guidance classifier, one line per guidance."""

    def gap(ax, sweep, scales):
        return ax.errorbar(scales, [sweep[s]["gap"][0] for s in scales],
                           yerr=[sweep[s]["gap"][1] for s in scales], fmt="o-", capsize=3)

    def robustness(ax, sweep, scales):
        for s in scales:
            ax.annotate(f"{s:g}", (sweep[s]["fid"][0], sweep[s]["robustness"][0]), fontsize=6)
        return ax.errorbar([sweep[s]["fid"][0] for s in scales], [sweep[s]["robustness"][0] for s in scales],
                           xerr=[sweep[s]["fid"][1] for s in scales],
                           yerr=[sweep[s]["robustness"][1] for s in scales], fmt="o-", capsize=2)

    panels(results, out / "gap_vs_scale.png", gap, "guidance scale", "gap: guide top-1 - bank top-1 (points)", 2,
           hline=10)
    panels(results, out / "robustness_vs_fid.png", robustness, "FID (digits/features)",
           "robustness: bank top-1 (%)", 10, note=" (numbers: scale)")


def panels(results: dict, path: Path, draw, xlabel: str, ylabel: str, log_base: int, hline: float | None = None,
           note: str = "") -> None:
    fig, axes = subplots(1, len(results), (6 * len(results), 4))
    for ax, (classifier, by_guidance) in zip(axes[0], results.items(), strict=True):
        for guidance, sweep in by_guidance.items():
            draw(ax, sweep, sorted(sweep)).set_label(NAMES[guidance])
        if hline is not None:
            ax.axhline(hline, color="gray", lw=0.8, ls="--")
        ax.set_xscale("log", base=log_base)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(f"guided by {classifier}{note}")
        ax.legend(fontsize=8)
    save_figure(fig, path, dpi=100)


def adversarial_grid(kept: dict, indices: list[int], path: Path, title: str, columns: int = 8) -> None:
    shown = indices[:32] or [0]
    rows = -(-len(shown) // columns)
    fig, axes = subplots(rows, columns, (1.4 * columns, 1.6 * rows))
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, shown, strict=False):
        readings = kept["bank_top1"][:, i]
        votes = np.bincount(readings[readings != kept["labels"][i]], minlength=10)  # the members that reject
        ax.imshow(kept["images"][i], interpolation="nearest")
        bank = f"bank {votes.argmax()} ({votes.max()}/{len(readings)})" if votes.any() else "bank agrees"
        ax.set_title(f"guide {kept['guide_top1'][i]} / {bank}", fontsize=7, color="tab:red" if indices else "black")
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path, dpi=110)


def main() -> None:
    parser = lab_parser(__doc__, RESULTS / "adversarial", batch_size=250, quick=(100, 25, "1,4,16,64"),
                        full=(500, 100, "1,2,4,8,16,32,64"))
    parser.add_argument("--weak", default=WEAK, help="the weak guidance classifier (a shipped name or X.pt)")
    args = parser.parse_args()
    started = time.perf_counter()
    lab, seeds, scales = sweep_lab(args, DIGITS)
    num_samples, steps = lab.num_samples, lab.steps
    best = best_relevance()
    print(f"best s_T of Table 6: {best}", flush=True)
    guidances = {args.weak: GUIDANCES, SHIPPED: ("vanilla", "prog")}
    results = {c: {g: {s: summary(lab, config(g, s, c, best), seeds) for s in scales} for g in gs}
               for c, gs in guidances.items()}

    # the most adversarial samples: vanilla guidance by the weak classifier at the scale of its largest mean gap
    worst = max(scales, key=lambda s: results[args.weak]["vanilla"][s]["gap"][0])
    lab.run(config("vanilla", worst, args.weak, best), 0, keep=True)
    kept = lab.kept[(config("vanilla", worst, args.weak, best), 0)]
    indices = fooled_ranked(kept["guide_top1"], kept["bank_top1"], kept["labels"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    adversarial_grid(kept, indices, out / "adversarial_grid.png",
                     f"vanilla guidance by {args.weak}, s={worst:g}, seed 0: "
                     f"guide's label / the bank's commonest other digit")
    figure3 = ""
    if indices:
        i = indices[0]
        for guidance in ("vanilla", "prog"):
            run = lab.sample(config(guidance, worst, args.weak, best), 0, trajectory=1, indices=range(i, i + 1))
            trajectory_figure(run["trajectory_x0"], run["information_degree"], run["labels"],
                              [str(c) for c in range(10)], out / f"figure3_{guidance}.png")
            keep = lab.verdicts(run["images"], args.weak)
            figure3 += (f"| {NAMES[guidance]} | guide reads {keep['guide_top1'][0]}, bank members read "
                        f"{', '.join(str(v) for v in keep['bank_top1'][:, 0])} (label {run['labels'][0]}) |\n")
    print("Paired intervals", flush=True)
    found = intervals(lab, seeds, args.weak, best, scales, worst, args.draws)
    elapsed = time.perf_counter() - started

    plots(results, out)
    command = "python benchmarks/digits_adversarial.py " + " ".join(sys.argv[1:])
    raw = lab.raw(command, elapsed, seeds=seeds, best_relevance=best, scales=scales, draws=args.draws,
                  intervals=found)
    write_json(out / "results.json", raw)
    (out / "README.md").write_text(report(results, args.weak, scales, best, worst, indices, figure3, command, raw,
                                          num_samples, steps, seeds))
    print(f"wrote {out / 'README.md'} ({elapsed / 60:.1f} minutes)")


def report(results, weak_name, scales, best, worst, indices, figure3, command, raw, num_samples, steps, seeds) -> str:
    weak, shipped = results[weak_name], results[SHIPPED]
    sweep_rows = {c: [(f"{NAMES[g]}, s={s:g}", results[c][g][s]) for g in results[c] for s in scales]
                  for c in results}
    pairs = matched(weak["vanilla"], weak["prog"])
    pair_rows = []
    for vanilla_scale, prog_scale in pairs:
        pair_rows += [(f"vanilla, s={vanilla_scale:g}", weak["vanilla"][vanilla_scale]),
                      (f"ProG, s={prog_scale:g} (closest FID)", weak["prog"][prog_scale])]
    v, p = weak["vanilla"][worst], weak["prog"][worst]
    found, text = raw["intervals"], paired.interval_text
    prog = found["same_scale"]["prog"]
    matched_lines = [f"vanilla s={scale}: robustness {text(r['robustness'], 1)}, gap {text(r['gap'], 1)}"
                     + (f" (reached in {100 * r['reached']:.0f} % of resamples)" if r["reached"] < 1 else "")
                     if np.isfinite(r["robustness"]["estimate"]) else f"vanilla s={scale}: ProG's sweep does not reach "
                     "its FID" for scale, r in found["matched_fid"].items()]
    shipped_gap = max(shipped["vanilla"][s]["gap"][0] for s in scales)
    others = ", ".join(f"{NAMES[g]} {text(r['gap'], 1)}" for g, r in found["same_scale"].items() if g != "prog")
    regime = ("The adversarial regime exists here (a gap of 10 points or more)." if v["gap"][0] >= 10 else
              "No adversarial regime here (no gap of 10 points).")
    verdict = ("lower than vanilla's" if prog["gap"]["high"] < 0 else "higher than vanilla's" if prog["gap"]["low"] > 0
               else "not measurably different from vanilla's (the interval contains 0)")
    same_scale_rows = "\n".join(
        f"| {NAMES[g]} | {text(r['fid'])} | {text(r['precision'], 3)} | {text(r['recall'], 3)} | "
        f"{text(r['robustness'], 1)} | "
        f"{text(r['gap'], 1)} | {paired.mcnemar_text(r['mcnemar'])} |"
        for g, r in found["same_scale"].items())
    matched_rows = "\n".join(
        f"| vanilla, s={scale} | {text(r['robustness'], 1)} | {text(r['gap'], 1)} | {text(r['precision'], 3)} | "
        f"{text(r['recall'], 3)} | {100 * r['reached']:.0f} % |" for scale, r in found["matched_fid"].items())
    return f"""# Adversarial samples of guidance, in miniature: does ProG remove them?

Generated by `{command}` {provenance(raw)}.
`digits/adm` guided by `{weak_name}` (chosen by the [design search](designs.md)) and, for contrast,
by the shipped `{SHIPPED}`; {num_samples} balanced samples per run, {steps} respaced DDPM steps, {len(seeds)} seeds,
mean ± standard deviation over the seeds. ProG: gamma 0.04 stated for 250 steps, s_T from the text relevance
(the paper's); "best s_T" is Table 6's best on the digits ([results/digits](../README.md)): `{best}`.
Robustness: the mean top-1 (%) of the independent bank `digits/bank1`-`bank5`; guide top-1: the guidance
classifier's own top-1 on the final samples (t = 0, as `evaluations/robustness.py --guide`); gap = guide - bank
in points; fooled: samples the guide reads as their label while most of the bank does not. Raw numbers:
[results.json](results.json). To check a rerun (`--out DIR`): `python benchmarks/compare_digits.py
results/digits/adversarial/results.json DIR/results.json`.

## Findings

- **{regime}** Guided by `{weak_name}`, vanilla guidance's gap peaks at
  {fmt(v['gap'], 1)} points at s={worst:g} (guide {fmt(v['guide_top1'], 1)} %, bank {fmt(v['robustness'], 1)} %);
  guided by the shipped noise-aware `{SHIPPED}`, the largest mean gap over the same scales is {shipped_gap:.1f}.
- **ProG at the same scale** (s={worst:g}): gap {fmt(p['gap'], 1)}, robustness {fmt(p['robustness'], 1)} %, FID
  {fmt(p['fid'])} against vanilla's {fmt(v['fid'])}; paired, ProG minus vanilla: gap {text(prog['gap'], 1)},
  robustness {text(prog['robustness'], 1)}, FID {text(prog['fid'])}: ProG's gap is {verdict}. The other
  guidances' gap minus vanilla's at that scale: {others}.
- **At matched FID (Table 2's comparison, ProG minus vanilla, ProG's sweep interpolated to each vanilla run's
  FID):** {"; ".join(matched_lines)}.

## Paired 95 % intervals

The same runs compared sample by sample: every setting of a seed starts sample i from the same noise and label,
so the seeds' {len(seeds)} x {num_samples} samples of two settings are paired. Intervals: percentile bootstrap,
{raw['draws']} resamples of the sample indices within each seed, the same for both arms
(`guided_diffusion.experiments.paired`). FID: the mean over seeds of each seed's FID; precision, robustness and
gap: means of per-sample terms. Recall reads k-NN radii among the samples, which a resample's duplicates collapse:
its interval comes from {raw['draws']} half-samples drawn without replacement (half of each seed's samples, the same
for both arms). An interval that contains 0 means no difference was measured.

### Minus vanilla guidance at s={worst:g}, guided by `{weak_name}`

McNemar: the samples most of the bank reads as their label only with the guidance / only with vanilla, and the
exact two-sided p-value.

| guidance | FID | Prec | Rec | Robustness (points) | Gap (points) | McNemar (bank majority) |
|---|---|---|---|---|---|---|
{same_scale_rows}

### ProG at vanilla's FID minus vanilla, guided by `{weak_name}`

ProG's sweep ({", ".join(f"{s:g}" for s in scales)}) interpolated linearly to each vanilla run's FID where it
first reaches it (in scale order); reached: the share of resamples in which it does (the others are left out;
"not reached": the samples themselves do not reach it).

| vanilla run | Robustness (points) | Gap (points) | Prec | Rec | reached |
|---|---|---|---|---|---|
{matched_rows}

## Gap against scale, robustness against FID

![gap against scale](gap_vs_scale.png)

![robustness against FID](robustness_vs_fid.png)

## The most adversarial samples

Vanilla guidance by `{weak_name}` at s={worst:g}, seed 0: {len(indices)} of {num_samples} samples are read as
their label by the guide and as another digit by most of the bank (title: the guide's label / the other digit
the most bank members read, with how many of them).

![adversarial samples](adversarial_grid.png)

## Figure 3 in miniature: one of them, vanilla and ProG from the same noise

| vanilla guidance | ProG |
| --- | --- |
| ![vanilla](figure3_vanilla.png) | ![ProG](figure3_prog.png) |

| guidance | final sample |
| --- | --- |
{figure3}
## Table 2 at matched FID, guided by `{weak_name}`

Each vanilla scale beside the ProG scale whose mean FID is closest (the intervals above interpolate instead).

{table(pair_rows, COLUMNS)}

## Every setting

### Guided by `{weak_name}`

{table(sweep_rows[weak_name], COLUMNS)}

### Guided by `{SHIPPED}`

{table(sweep_rows[SHIPPED], COLUMNS)}
"""


if __name__ == "__main__":
    main()
