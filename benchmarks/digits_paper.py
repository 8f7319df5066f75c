"""The paper's experiments in miniature, on the shipped digit models (Tables 1, 2, 3, 5, 6 and Figure 4).

    python benchmarks/digits_paper.py --quick      # 1 core beside other work: 69 minutes (2 cores, no intervals: 24)
    python benchmarks/digits_paper.py              # the full run (a GPU)

Samples with the main job through the experiment harness (guided_diffusion.experiments; sample i of a
seed is class i mod 10, with its own noise), scores with the evaluator's code on the digit
feature network (digits/features: FID, sFID, IS, precision, recall, density, coverage,
per-class recall, against the 1,497 training images) and the robustness bank (digits/bank1-5:
mean top-1 accuracy against the conditioning labels), and reports mean and standard deviation
over the seeds; ProG's comparisons (Tables 1, 2, 5, 6 and Figure 4) also as paired differences with 95 %
intervals over the seeds' pooled samples (guided_diffusion.experiments.paired). Writes results/digits/README.md (tables,
plots, command, machine, time) and results/digits/results.json (every run's numbers and the intervals).
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from guided_diffusion.experiments import paired
from guided_diffusion.experiments.harness import Config, Lab, summary
from guided_diffusion.experiments.report import (
    lab_parser,
    provenance,
    save_figure,
    subplots,
    sweep_lab,
    table,
    write_json,
)
from guided_diffusion.testbeds.digits import DIGITS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "digits"


def matched_pairs(sweep: dict[str, dict[float, dict]]) -> list[dict]:
    """For each vanilla scale, the ProG scale whose mean FID is closest."""
    pairs = []
    for scale, vanilla in sweep["vanilla"].items():
        prog_scale = min(sweep["prog"], key=lambda s: abs(sweep["prog"][s]["fid"][0] - vanilla["fid"][0]))
        pairs.append({"vanilla_scale": scale, "prog_scale": prog_scale, "vanilla": vanilla,
                      "prog": sweep["prog"][prog_scale]})
    return pairs


def intervals(lab: Lab, seeds: list[int], table1: list[tuple[Config, Config]], scales: list[float],
              table5: list[tuple[str, Config]], table6: list[tuple[str, Config]], baseline: Config, draws: int) -> dict:
    """Paired differences with 95 % intervals: Table 1's pairs (ProG minus its baseline); ProG minus vanilla at
    each scale of Figure 4's sweep; for each model, ProG's sweep at each vanilla scale's FID minus that vanilla run
    (Table 2); Table 5's and Table 6's rows minus ``baseline`` (ProG with the main job's defaults)."""
    chosen = paired.scores(lab)

    def against(rows: list[tuple[str, Config]]) -> dict:
        return {name: paired.compare(lab.pooled(c, seeds), lab.pooled(baseline, seeds), chosen, draws)
                for name, c in rows if c != baseline}

    rows = {f"{b.label()} - {a.label()}": paired.compare(lab.pooled(b, seeds), lab.pooled(a, seeds), chosen, draws)
            for a, b in table1}
    figure4 = {model: {f"{s:g}": paired.compare(lab.pooled(Config(model, "prog", s), seeds),
                                                lab.pooled(Config(model, "vanilla", s), seeds), chosen, draws)
                       for s in scales} for model in ("adm", "cadm")}
    per_sample = {k: chosen[k] for k in ("robustness", "precision", "recall")}
    matched = {model: {f"{s:g}": paired.at_matched([lab.pooled(Config(model, "prog", t), seeds) for t in scales],
                                                   lab.pooled(Config(model, "vanilla", s), seeds), chosen["fid"],
                                                   per_sample, draws)
                       for s in scales} for model in ("adm", "cadm")}
    return {"table1": rows, "figure4": figure4, "table2": matched, "table5": against(table5),
            "table6": against(table6)}


def intervals_section(found: dict, draws: int, samples: str, scales: list[float], baseline: str) -> str:
    text = paired.interval_text
    table2 = "\n".join(
        f"| {model.upper()}-G, s={scale} | {text(r['robustness'], 1)} | {text(r['precision'], 3)} | "
        f"{text(r['recall'], 3)} | {100 * r['reached']:.0f} % |"
        for model, rows in found["table2"].items() for scale, r in rows.items())
    figure4 = paired.interval_rows({f"{model.upper()}-G, s={scale}": r for model, rows in found["figure4"].items()
                             for scale, r in rows.items()})
    sweep = ", ".join(f"{s:g}" for s in scales)
    return f"""## Paired 95 % intervals

The same runs, compared sample by sample: every setting of a seed starts sample i from the same noise and
label, so the seeds' {samples} samples of two settings are paired. Intervals: percentile bootstrap, {draws}
resamples of the sample indices within each seed, the same indices for both arms
(`guided_diffusion.experiments.paired`). FID: the mean over seeds of each seed's FID, as above; precision and
robustness: means of per-sample terms. Recall (the mean over seeds of each seed's recall) reads k-NN radii among
the samples, which a resample's duplicates collapse: its interval comes from {draws} half-samples drawn without
replacement (half of each seed's samples, the same for both arms), whose spread is the full sample's. An interval
that contains 0 means no difference was measured. McNemar: the samples most of the bank reads as their label only
in the first arm / only in the second, and the exact two-sided p-value.

### Table 1: ProG minus its baseline at the same scale

{paired.interval_head('comparison')}
{paired.interval_rows(found["table1"])}

### Figure 4: ProG minus vanilla guidance at the same scale

{paired.interval_head('scale')}
{figure4}

### Table 2: ProG at vanilla's FID minus vanilla

For each vanilla scale, ProG's sweep ({sweep}) interpolated linearly to that run's FID where it first
reaches it (in scale order), minus the vanilla run; reached: the share of bootstrap resamples in which ProG's
sweep reaches that FID (the others are left out; "not reached": the samples themselves do not reach it).

| vanilla run | Robustness (points) | Prec | Rec | reached |
|---|---|---|---|---|
{table2}

### Table 5: each gamma minus {baseline}

{paired.interval_head('gamma')}
{paired.interval_rows(found["table5"])}

### Table 6: each initial information degree minus {baseline}

{paired.interval_head('s_T')}
{paired.interval_rows(found["table6"])}
"""


def figure4(sweeps: dict[str, dict[str, dict[float, dict]]], path: Path) -> None:
    fig, axes = subplots(2, 2, (8, 6))
    for col, (model, sweep) in enumerate(sweeps.items()):
        for row, (key, name) in enumerate((("fid", "FID"), ("recall", "Recall"))):
            ax = axes[row, col]
            for guidance, style in (("vanilla", "o-"), ("prog", "s-")):
                scales = sorted(sweep[guidance])
                mean = np.array([sweep[guidance][s][key][0] for s in scales])
                std = np.array([sweep[guidance][s][key][1] for s in scales])
                ax.errorbar(scales, mean, yerr=std, fmt=style, capsize=3,
                            label="ProG" if guidance == "prog" else "vanilla")
            ax.set_xscale("log", base=2)
            ax.set_xlabel("guidance scale")
            ax.set_ylabel(name)
            ax.set_title(f"{model.upper()}-G: {name}")
            ax.legend()
    save_figure(fig, path, dpi=110)


def main() -> None:
    # --scales: the sweep of Figure 4 and Table 2
    parser = lab_parser(__doc__, RESULTS, batch_size=250, quick=(200, 25, "0.5,1,2,4,8"),
                        full=(1000, 250, "0.25,0.5,1,2,4,8,16"))
    parser.add_argument("--scale_adm", type=float, default=2.0, help="ADM-G's guidance scale in Tables 1, 3, 5, 6")
    parser.add_argument("--scale_cadm", type=float, default=1.0, help="CADM-G's guidance scale in Tables 1-3")
    parser.add_argument("--cfg_scale", type=float, default=1.0, help="w of classifier-free guidance")
    parser.add_argument("--gammas", default="0,0.04,0.06,0.1,0.2,1", help="Table 5's gammas (the ends: 0 keeps s_T, 1 "
                        "is vanilla guidance from the second step on)")
    args = parser.parse_args()
    started = time.perf_counter()
    lab, seeds, scales = sweep_lab(args, DIGITS)
    num_samples, steps = lab.num_samples, lab.steps

    adm_g = Config("adm", "vanilla", args.scale_adm)
    adm_prog = replace(adm_g, guidance="prog")
    cadm_g = Config("cadm", "vanilla", args.scale_cadm)
    cadm_prog = replace(cadm_g, guidance="prog")
    table1 = [Config("adm", "none"), adm_g, adm_prog, Config("cadm", "none"), cadm_g, cadm_prog,
              Config("cadm", "cfg", args.cfg_scale), replace(cadm_g, guidance="eds"),
              replace(cadm_g, guidance="prog_eds")]
    print("Table 1 and 3", flush=True)
    t1 = [(c.label(), summary(lab, c, seeds)) for c in table1]

    print("Figure 4 and Table 2: guidance scale", flush=True)
    sweeps = {model: {g: {s: summary(lab, Config(model, g, s), seeds) for s in scales} for g in ("vanilla", "prog")}
              for model in ("adm", "cadm")}
    pairs = matched_pairs(sweeps["cadm"])
    main_pair = min(pairs, key=lambda p: abs(p["vanilla_scale"] - args.scale_cadm))

    print("Table 5: gamma", flush=True)
    gammas = [float(g) for g in args.gammas.split(",")]
    t5_configs = {(g, ref): replace(adm_prog, gamma=g, reference_steps=ref if 0 < g < 1 else None)
                  for g in gammas for ref in (None, 250)}  # gamma 0 and 1 mean the same in both conventions
    t5 = {key: summary(lab, c, seeds) for key, c in t5_configs.items()}
    t5_names = {key: f"gamma = {key[0]:g} {'per step' if key[1] is None else f'for {key[1]} steps'}"
                for key in t5_configs}

    print("Table 6: the initial information degree", flush=True)
    t6_configs = [("text, MiniLM (paper's shaping)", adm_prog),
                  ("text, MiniLM, top-3", replace(adm_prog, relevance="text_top3")),
                  ("text, MiniLM, temperature 0.05", replace(adm_prog, relevance="text_T0.05")),
                  ("classifier confusion", replace(adm_prog, relevance="confusion")),
                  ("uniform LS (eps 0.1)", replace(adm_prog, guidance="uniform_ls")),
                  ("LS without schedule (eps 0.1, gamma 0)", replace(adm_prog, guidance="ls")),
                  ("vanilla (one-hot)", adm_g)]
    t6 = [(name, summary(lab, c, seeds)) for name, c in t6_configs]

    print("Paired intervals", flush=True)
    eds = replace(cadm_g, guidance="eds")
    table5 = [(t5_names[key], c) for key, c in t5_configs.items() if key[0] in (0, 1) and key[1] is None
              or 0 < key[0] < 1]  # gamma 0 and 1: one row each
    found = intervals(lab, seeds, [(adm_g, adm_prog), (cadm_g, cadm_prog), (eds, replace(eds, guidance="prog_eds"))],
                      scales, table5, t6_configs, adm_prog, args.draws)
    elapsed = time.perf_counter() - started

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figure4(sweeps, out / "figure4.png")
    command = "python benchmarks/digits_paper.py " + " ".join(sys.argv[1:])
    raw = lab.raw(command, elapsed, seeds=seeds, draws=args.draws, intervals=found)
    write_json(out / "results.json", raw)
    t2_rows = [(f"CADM-G, s={main_pair['vanilla_scale']:g}", main_pair["vanilla"]),
               (f"CADM-G + ProG, s={main_pair['prog_scale']:g} (closest FID)", main_pair["prog"])]
    t5_rows = [(t5_names[key], t5[key]) for key in t5_configs]
    scale_rows = [(f"{m.upper()}-G{' + ProG' if g == 'prog' else ''}, s={s:g}", sweeps[m][g][s])
                  for m in sweeps for g in ("vanilla", "prog") for s in scales]
    report = f"""# The paper's experiments on the 8x8 digits

Generated by `{command}` {provenance(raw)}.
{num_samples} samples per run (class i mod 10), {steps} respaced DDPM
steps, {len(seeds)} seeds; mean ± standard deviation over the seeds. Models: the shipped
`digits/adm`, `digits/cadm` (label dropout 0.1) and `digits/classifier`. Metrics: the evaluator's
code on the `digits/features` network against the {len(lab.train_labels):,} training images (FID on its 64-d pooled
features, sFID on its 4x4 middle-block map, IS on its softmax, precision/recall/density/coverage with
k = 3 and 5, per-class recall), and robustness: the mean top-1 accuracy (%) of `digits/bank1`-`bank5`
against the conditioning label. Raw numbers: [results.json](results.json). What we make of them:
[findings.md](findings.md). To check a rerun (`--out DIR`) against these numbers:
`python benchmarks/compare_digits.py results/digits/results.json DIR/results.json`.

## Table 1 (and Table 3: EDS, classifier-free)

ADM-G scale {args.scale_adm:g}, CADM-G scale {args.scale_cadm:g}; ProG: gamma 0.04 stated for 250 steps (the
paper's setting: at {steps} steps the schedule ends where 250 steps of 0.04 end), s_T from the MiniLM relevance
of the digits' descriptions (paper's shaping), as the main job's defaults.

{table(t1)}

## Table 2: robustness at matched FID

For CADM-G at scale {main_pair['vanilla_scale']:g}, the ProG scale of the sweep below whose FID is closest.

{table(t2_rows)}

All pairs: {", ".join(f"vanilla s={p['vanilla_scale']:g} (FID {p['vanilla']['fid'][0]:.2f}, robustness "
                      f"{p['vanilla']['robustness'][0]:.1f}) vs ProG s={p['prog_scale']:g} (FID "
                      f"{p['prog']['fid'][0]:.2f}, robustness {p['prog']['robustness'][0]:.1f})" for p in pairs)}.

{intervals_section(found, args.draws, f"{len(seeds)} x {num_samples}", scales, adm_prog.label())}
## Figure 4: FID and recall against the guidance scale

![Figure 4](figure4.png)

{table(scale_rows)}

## Table 5: gamma (ADM-G + ProG, scale {args.scale_adm:g})

"per step" is Eq. 5 applied with this gamma at each of the {steps} steps; "for 250 steps" converts it
to 1 - (1 - gamma)^(250 / {steps}) per step, so that the schedule ends where 250 steps of gamma end.

{table(t5_rows)}

## Table 6: the initial information degree (ADM-G + ProG, scale {args.scale_adm:g}, gamma 0.04 for 250 steps)

{table(t6)}
"""
    (out / "README.md").write_text(report)
    print(f"wrote {out / 'README.md'} ({elapsed / 60:.1f} minutes)")


if __name__ == "__main__":
    main()
