"""The paper's experiments on Fashion-MNIST, whose classes share features (Tables 1, 2, 3, 5, 6, Figures 3 and 4,
and the adversarial gap), on the shipped fashion/* models.

    python benchmarks/fashion_paper.py --quick     # 2 CPU cores
    python benchmarks/fashion_paper.py             # the full run: DDPM-250 throughout, more samples (a GPU)
    python benchmarks/fashion_paper.py --quick --out /tmp/rerun && \\
      python benchmarks/compare_digits.py results/fashion/results.json /tmp/rerun/results.json

Samples with the main job through the experiment harness (guided_diffusion.experiments; sample i of a seed is
class i mod 10, with its own noise) and scores against the 10,000 test images: FID, sFID, IS, precision and
recall on the fashion/features classifier, FID, precision and recall again on fashion/autoencoder (a feature
space learned without labels), robustness on the bank fashion/bank1-6 (six architectures), and the guide's own
top-1 and its gap to the bank; Table 1 opens with the same scores of real training images (the data's own).
Every setting samples --num_samples per seed (1,000 by default, one seed: the sample count gives the power);
ProG's comparisons are paired differences with 95 % intervals over the samples (guided_diffusion.experiments.paired).
--quick samples with DPM-Solver++(2M) SDE in bf16 at the step count that benchmarks/fashion_sampler.py found to
match DDPM-250 on these models; the full run with DDPM-250 in fp32.
Tables 1, 3, 5 and 6 sample at each model's scale chosen by a rule fixed before the run: the scale of the
vanilla sweep with the lowest FID (--scale_adm, --scale_cadm override it). Writes results/fashion/README.md
(tables, figures, command, machine, time) and results/fashion/results.json; findings.md is written from them.
--testbed digits runs the same code on the shipped digit models (toy runs in the tests).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from guided_diffusion.evaluation import metrics
from guided_diffusion.evaluation.held_out import accuracy
from guided_diffusion.evaluation.robustness import fooled_ranked
from guided_diffusion.experiments import paired
from guided_diffusion.experiments.harness import LABEL_FREE_METRICS, Config, Lab, summary
from guided_diffusion.experiments.report import (
    COLUMNS,
    fmt,
    lab_parser,
    provenance,
    save_figure,
    subplots,
    sweep_lab,
    table,
    write_json,
)
from guided_diffusion.progressive.information_degree import InformationDegree
from guided_diffusion.sampling.figures import trajectory_figure
from guided_diffusion.sampling.job import class_names
from guided_diffusion.sampling.samplers import from_uint8_nhwc
from guided_diffusion.testbeds.digits import DIGITS
from guided_diffusion.testbeds.fashion import FASHION
from guided_diffusion.testbeds.testbed import first_of_each

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "fashion"
TESTBEDS = {"fashion": FASHION, "digits": DIGITS}
LABEL_FREE_COLUMNS = [("FID (label-free)", "fid_label_free", 2), ("Prec (label-free)", "precision_label_free", 3),
                      ("Rec (label-free)", "recall_label_free", 3)]
GUIDE_COLUMNS = [("Guide top-1", "guide_top1", 1), ("Gap", "gap", 1), ("Fooled %", "fooled_fraction", 1)]
TABLE6 = (("text, MiniLM (paper's shaping)", {}), ("text, top-3", {"relevance": "text_top3"}),
          ("text, temperature 0.05", {"relevance": "text_T0.05"}), ("classifier confusion", {"relevance": "confusion"}),
          ("uniform LS (eps 0.1)", {"guidance": "uniform_ls"}),
          ("control: shuffled relevance", {"relevance": "shuffled"}),
          ("control: entropy-matched LS", {"relevance": "ls_matched"}),
          ("control: ramped vanilla scale", {"guidance": "ramped"}))
FIGURE3_CLASS = 6  # Shirt, whose family (T-shirt, pullover, coat, dress) shares its features
Setting = Callable[..., Config]  # (model, guidance, scale, **fields) -> a Config on the bulk sampler


def family_scores(lab: Lab, config: Config, seeds: list[int]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per class family: precision and recall of its samples against its reference images (mean and standard
    deviation over seeds)."""
    families = lab.testbed.families or {"all classes": tuple(range(lab.testbed.num_classes))}
    out = {}
    for name, classes in families.items():
        reference = lab.reference["pool"][np.isin(lab.train_labels, classes)]
        values = []
        for seed in seeds:
            run = lab.outcomes[(lab.resolved(config), seed)]
            values.append(metrics.precision_recall(reference, run["pool"][np.isin(run["labels"], classes)], 3))
        out[name] = {k: (float(np.mean(v)), float(np.std(v))) for k, v in zip(("precision", "recall"),
                                                                                 np.array(values).T, strict=True)}
    return out


GUIDE_TIMESTEPS = (999, 950, 900, 850, 800, 750, 600, 500, 250)
DDPM250_COST = "about 45 minutes a run of 1,000 samples on 2 CPU cores"  # docs/fashion.md, measured


def guide_along_t(lab: Lab, gamma: float = 0.04, steps: int = 250, per_class: int = 200) -> list[dict]:
    """When ProG spreads its guidance and what the guide knows then: at each of :data:`GUIDE_TIMESTEPS`, the
    condition's share of s_t with the text s_T (Eq. 5 over ``steps`` evenly spaced steps, mean over the classes)
    and the guide's top-1 on ``per_class`` reference images per class noised to t (a fixed draw), with its 95 %
    Wilson interval over the images."""
    classes = lab.testbed.num_classes
    own = torch.arange(classes)
    degree = InformationDegree.from_relevance(lab.relevance("text"), own, gamma)  # one row per class
    per_class = min(per_class, int(np.bincount(lab.train_labels, minlength=classes).min()))
    chosen = first_of_each(lab.train_labels, classes, per_class)
    x = from_uint8_nhwc(lab.train_images[chosen])
    y = torch.from_numpy(lab.train_labels[chosen]).long()
    guide = lab.classifier(lab.testbed.classifier)
    rows = []
    with torch.no_grad():
        for t in GUIDE_TIMESTEPS:
            step = round((lab.noise_process.num_timesteps - 1 - t) * steps / lab.noise_process.num_timesteps)
            top1 = accuracy(guide, lab.noise_process, x, y, t)
            interval = stats.binomtest(round(top1 * len(y)), len(y)).proportion_ci(0.95, method="wilson")
            rows.append({"t": t, "step": step, "condition_share": float(degree.at(step)[own, own].mean()),
                         "guide_top1": 100.0 * top1, "guide_top1_ci": [100.0 * interval.low, 100.0 * interval.high]})
    return rows


def family_intervals(lab: Lab, seeds: list[int], setting: Setting, scales: list[float], draws: int) -> dict:
    """Per class family and scale: ADM-G + ProG minus vanilla ADM-G on that family's samples, recall (against the
    family's reference images) and robustness, with 95 % paired intervals."""
    families = lab.testbed.families or {"all classes": tuple(range(lab.testbed.num_classes))}
    chosen = {name: {"recall": paired.recall(lab.reference["pool"][np.isin(lab.train_labels, classes)]),
                     "robustness": paired.robustness} for name, classes in families.items()}
    found = {name: {} for name in families}
    for s in scales:
        prog, vanilla = (lab.pooled(setting("adm", g, s), seeds) for g in ("prog", "vanilla"))  # once per scale
        for name, classes in families.items():
            keep = np.isin(prog["labels"], classes)
            found[name][f"{s:g}"] = paired.compare({k: v[keep] for k, v in prog.items()},
                                                   {k: v[keep] for k, v in vanilla.items()}, chosen[name], draws)
    return found


def intervals(lab: Lab, seeds: list[int], setting: Setting, pairs: list[tuple[Config, Config]], scales: list[float],
              rows5: list[tuple[str, Config]], rows6: list[tuple[str, Config]], baseline: Config, vanilla: Config,
              headline: list[tuple[Config, Config]], draws: int) -> dict:
    """Paired differences with 95 % intervals: Table 1's and 3's pairs (ProG minus its baseline), ProG minus
    vanilla at each scale (Figure 4; per class family too), ProG at each vanilla run's FID (Table 2), Table 5's
    rows minus ``baseline`` and minus ``vanilla``, Table 6's minus ``baseline``, and for each (fast, DDPM-250)
    pair of ``headline`` the fast run minus DDPM-250 and, per model, ProG minus vanilla at DDPM-250."""
    chosen = paired.scores(lab, guided=True)

    def compare(a: Config, b: Config) -> dict:
        return paired.compare(lab.pooled(a, seeds), lab.pooled(b, seeds), chosen, draws)

    per_sample = {k: chosen[k] for k in ("robustness", "precision", "recall", "gap", *LABEL_FREE_METRICS)
                  if k in chosen}
    return {
        "table1": {f"{b.label()} - {a.label()}": compare(b, a) for a, b in pairs},
        "figure4": {m: {f"{s:g}": compare(setting(m, "prog", s), setting(m, "vanilla", s)) for s in scales}
                    for m in ("adm", "cadm")},
        "table2": {m: {f"{s:g}": paired.at_matched([lab.pooled(setting(m, "prog", t), seeds) for t in scales],
                                                   lab.pooled(setting(m, "vanilla", s), seeds), chosen["fid"],
                                                   per_sample, draws) for s in scales} for m in ("adm", "cadm")},
        "families": family_intervals(lab, seeds, setting, scales, draws),
        "table5": {name: compare(c, baseline) for name, c in rows5 if c != baseline},
        "table5_vs_vanilla": {name: compare(c, vanilla) for name, c in rows5},
        "table6": {name: compare(c, baseline) for name, c in rows6 if c != baseline},
        "headline": {f"{b.label()} - {a.label()}, DDPM-{lab.steps_of(a)}": compare(b, a)
                     for (_, a), (_, b) in zip(headline[::2], headline[1::2], strict=True)},
        "sampler_check": {f"{fast.label()}: {fast.sampler}-{lab.steps_of(fast)} - DDPM-{lab.steps_of(ddpm)}":
                          compare(fast, ddpm) for fast, ddpm in headline},
    }


def figure4(lab: Lab, seeds: list[int], scales: list[float], setting: Setting, path: Path) -> dict:
    """Precision and recall against the scale, per class family, vanilla and ProG (ADM-G); returns the numbers."""
    found = {g: {s: family_scores(lab, setting("adm", g, s), seeds) for s in scales} for g in ("vanilla", "prog")}
    families = list(found["vanilla"][scales[0]])
    fig, axes = subplots(2, len(families), (4 * len(families), 6))
    for col, family in enumerate(families):
        for row, key in enumerate(("precision", "recall")):
            ax = axes[row, col]
            for guidance, style in (("vanilla", "o-"), ("prog", "s-")):
                values = [found[guidance][s][family][key] for s in scales]
                ax.errorbar(scales, [v[0] for v in values], yerr=[v[1] for v in values], fmt=style, capsize=3,
                            label="ProG" if guidance == "prog" else "vanilla")
            ax.set_xscale("log", base=2)
            ax.set_xlabel("guidance scale")
            ax.set_ylabel(key)
            ax.set_title(f"ADM-G, {family}: {key}")
            ax.legend(fontsize=8)
    save_figure(fig, path, dpi=100)
    return {g: {f"{s:g}": v for s, v in by_scale.items()} for g, by_scale in found.items()}


def gap_figure(sweeps: dict, scales: list[float], path: Path) -> None:
    """The guide's top-1 minus the bank's against the scale, vanilla and ProG, each model."""
    fig, axes = subplots(1, 2, (10, 4))
    for ax, (model, sweep) in zip(axes[0], sweeps.items(), strict=True):
        for guidance, style in (("vanilla", "o-"), ("prog", "s-")):
            ax.errorbar(scales, [sweep[guidance][s]["gap"][0] for s in scales],
                        yerr=[sweep[guidance][s]["gap"][1] for s in scales], fmt=style, capsize=3,
                        label="ProG" if guidance == "prog" else "vanilla")
        ax.axhline(0, color="gray", lw=0.8, ls="--")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("guidance scale")
        ax.set_ylabel("gap: guide top-1 - bank top-1 (points)")
        ax.set_title(f"{model.upper()}-G, noise-aware guide")
        ax.legend(fontsize=8)
    save_figure(fig, path, dpi=100)


def figure3(lab: Lab, vanilla: Config, names: list[str], out: Path) -> str:
    """``vanilla`` guidance and ProG from the same noise on a Shirt, with the information degree (the paper's
    Fig. 3); returns a table row per arm of what the guide and the bank read."""
    rows = ""
    index = FIGURE3_CLASS % lab.testbed.num_classes  # balanced classes: sample i is class i mod C
    for guidance in ("vanilla", "prog"):
        run = lab.sample(replace(vanilla, guidance=guidance), 0, trajectory=1, indices=range(index, index + 1))
        trajectory_figure(run["trajectory_x0"], run["information_degree"], run["labels"], names,
                          out / f"figure3_{guidance}.png")
        read = lab.verdicts(run["images"], lab.testbed.classifier)
        bank = ", ".join(names[v] for v in read["bank_top1"][:, 0])
        rows += f"| {guidance} | {names[read['guide_top1'][0]]} | {bank} |\n"
    return rows


def relevance_figure(lab: Lab, names: list[str], path: Path) -> None:
    """The text relevance (the paper's shaping) beside the guide's confusion relevance, classes ordered by family."""
    families = lab.testbed.families or {"all classes": tuple(range(lab.testbed.num_classes))}
    order = [c for family in families.values() for c in family]
    fig, axes = subplots(1, 2, (11, 5))
    for ax, (title, source) in zip(axes[0], (("text (MiniLM, paper's shaping)", "text"),
                                             ("the guide's confusion", "confusion")), strict=True):
        matrix = lab.relevance(source)[np.ix_(order, order)]
        image = ax.imshow(matrix, cmap="viridis")
        ax.set_xticks(range(len(order)), [names[c] for c in order], rotation=90, fontsize=7)
        ax.set_yticks(range(len(order)), [names[c] for c in order], fontsize=7)
        ax.set_title(f"s_T: {title}")
        fig.colorbar(image, ax=ax, fraction=0.046)
    save_figure(fig, path, dpi=100)


def adversarial_grid(lab: Lab, config: Config, names: list[str], path: Path) -> int:
    """The samples of ``config`` (seed 0) the guide reads as their label while most of the bank does not, most
    rejected first (at most 32); returns how many there are."""
    lab.run(config, 0, keep=True)
    kept = lab.kept[(lab.resolved(config), 0)]
    ranked = fooled_ranked(kept["guide_top1"], kept["bank_top1"], kept["labels"])
    chosen = ranked[:32]
    columns = 8
    fig, axes = subplots(max(1, -(-len(chosen) // columns)), columns, (1.6 * columns, 1.8 * max(1, len(chosen) // 8)))
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, chosen, strict=False):
        ax.imshow(kept["images"][i], interpolation="nearest")
        others = kept["bank_top1"][:, i][kept["bank_top1"][:, i] != kept["labels"][i]]
        ax.set_title(f"{names[kept['labels'][i]]} / bank: {names[np.bincount(others).argmax()]}", fontsize=6)
    fig.suptitle(f"{config.label()}: label / the bank's commonest other reading", fontsize=9)
    save_figure(fig, path, dpi=110)
    return len(ranked)


def checked_sampler(args, lab: Lab, scales: list[float]) -> str:
    """What results/fashion/sampler says of this run's sampler, step count and precision: the checked scales at
    which it matched DDPM-250 and those at which it did not, whether the rule chose it, and the run's scales above
    the largest matched one; or that it was not checked."""
    if args.sampler == "ddpm":
        return ""
    path = RESULTS / "sampler" / "results.json"
    check = json.loads(path.read_text()) if path.is_file() and args.testbed == "fashion" else {}
    by_scale = {float(s): counts.get(str(lab.steps)) for s, counts in check.get("passes", {}).items()}
    if [check.get(k) for k in ("sampler", "precision")] != [args.sampler, args.precision] or not by_scale \
            or None in by_scale.values():
        return (", a step count not checked against DDPM-250 on these models (`benchmarks/fashion_sampler.py` "
                "checks one)")
    passed = [s for s, ok in by_scale.items() if ok]
    failed = [s for s, ok in by_scale.items() if not ok]
    chosen = check["chosen_steps"]
    text = (", a step count that `benchmarks/fashion_sampler.py` ([sampler/](sampler/README.md)) found matched to "
            f"DDPM-250 at s={', '.join(f'{s:g}' for s in passed) or 'none of'}"
            + (f" and not at s={', '.join(f'{s:g}' for s in failed)}" if failed else "")
            + ("; the count its rule chose" if chosen == lab.steps else
               f"; not the count its rule chose ({chosen if chosen is not None else 'none'}: see its README)"))
    beyond = [s for s in scales if not passed or s > max(passed)]
    return text + (f"; s={', '.join(f'{s:g}' for s in beyond)} lie outside the matched range" if beyond else "")


def best_scale(sweep: dict[float, dict]) -> float:
    """The scale of a vanilla sweep with the lowest FID (Tables 1, 3, 5 and 6's rule, fixed before the run)."""
    return min(sweep, key=lambda s: sweep[s]["fid"][0])


def main() -> None:
    parser = lab_parser(__doc__, RESULTS, batch_size=500, quick=(1000, 35, "1,2,4,8"),
                        full=(3000, 250, "0.25,0.5,1,2,4,8,16"))
    parser.set_defaults(seeds=1)
    parser.add_argument("--testbed", choices=tuple(TESTBEDS), default="fashion")
    parser.add_argument("--sampler", default=None, help="the runs' sampler (quick dpmpp_2m_sde, full ddpm)")
    parser.add_argument("--precision", default=None, help="the runs' autocast (quick bf16, full fp32)")
    parser.add_argument("--scale_adm", type=float, default=None,
                        help="ADM-G's scale in Tables 1, 3, 5, 6 (default: its vanilla sweep's lowest FID)")
    parser.add_argument("--scale_cadm", type=float, default=None,
                        help="CADM-G's scale in Tables 1 and 3 (default: its vanilla sweep's lowest FID)")
    parser.add_argument("--cfg_scale", type=float, default=1.0, help="w of classifier-free guidance")
    parser.add_argument("--gammas", default="0,0.04,0.1,0.2,1", help="Table 5's gammas (stated for 250 steps)")
    parser.add_argument("--headline", type=int, default=0, metavar="STEPS",
                        help="also Table 1's guided rows with DDPM at STEPS (250: the reference) in fp32, each paired "
                        "with the same setting on the run's sampler (DDPM-250: " + DDPM250_COST + "); 0: not")
    args = parser.parse_args()
    args.sampler = args.sampler or ("dpmpp_2m_sde" if args.quick else "ddpm")
    args.precision = args.precision or ("bf16" if args.quick else "fp32")
    started = time.perf_counter()
    lab, seeds, scales = sweep_lab(args, TESTBEDS[args.testbed])

    def setting(model: str, guidance: str, scale: float = 1.0, **extra) -> Config:
        return Config(model, guidance, scale, sampler=args.sampler, precision=args.precision, **extra)

    names = class_names(lab.testbed.label_set, lab.testbed.num_classes)
    print("Figure 4, Table 2 and the gap: guidance scale", flush=True)
    for scale in scales:  # ADM-G's images kept: the grid of the most adversarial samples is drawn from one of them
        lab.run(setting("adm", "vanilla", scale), seeds[0], keep=True)
    sweeps = {m: {g: {s: summary(lab, setting(m, g, s), seeds) for s in scales} for g in ("vanilla", "prog")}
              for m in ("adm", "cadm")}
    given = [name for name, scale in (("ADM-G's", args.scale_adm), ("CADM-G's", args.scale_cadm)) if scale is not None]
    args.scale_rule = f"{' and '.join(given)} given; " * bool(given) + "the vanilla sweep's lowest FID"
    args.scale_adm = best_scale(sweeps["adm"]["vanilla"]) if args.scale_adm is None else args.scale_adm
    args.scale_cadm = best_scale(sweeps["cadm"]["vanilla"]) if args.scale_cadm is None else args.scale_cadm
    adm_g, cadm_g = setting("adm", "vanilla", args.scale_adm), setting("cadm", "vanilla", args.scale_cadm)
    adm_prog, cadm_prog = replace(adm_g, guidance="prog"), replace(cadm_g, guidance="prog")
    eds = replace(cadm_g, guidance="eds")
    table1 = [setting("adm", "none"), adm_g, adm_prog, setting("cadm", "none"), cadm_g, cadm_prog]
    table3 = [setting("cadm", "cfg", args.cfg_scale), eds, replace(eds, guidance="prog_eds")]
    print(f"Table 1 and 3 (ADM-G at s={args.scale_adm:g}, CADM-G at s={args.scale_cadm:g})", flush=True)
    held_in = lab.held_in_scores()
    t1 = [(c.label(), summary(lab, c, seeds)) for c in table1 + table3]
    if held_in:
        t1.insert(0, (f"data ({held_in['images']:.0f} real images)", {k: (v, 0.0) for k, v in held_in.items()}))
    headline = [(c, replace(c, sampler="ddpm", steps=args.headline, precision="fp32"))
                for c in (adm_g, adm_prog, cadm_g, cadm_prog)] if args.headline else []
    if headline:
        print(f"Table 1's guided rows with DDPM-{args.headline}", flush=True)
    th = [(f"{ddpm.label()}, DDPM-{args.headline}", summary(lab, ddpm, seeds)) for _, ddpm in headline]
    print("Table 5: gamma", flush=True)
    rows5 = [(f"gamma = {g:g}", replace(adm_prog, gamma=g, reference_steps=250 if 0 < g < 1 else None))
             for g in (float(x) for x in args.gammas.split(","))]
    t5 = [(name, summary(lab, c, seeds)) for name, c in rows5]
    print("Table 6: the initial information degree and the controls", flush=True)
    rows6 = [(name, replace(adm_prog, **change)) for name, change in TABLE6] + [("vanilla (one-hot)", adm_g)]
    t6 = [(name, summary(lab, c, seeds)) for name, c in rows6]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("Figures", flush=True)
    families = figure4(lab, seeds, scales, setting, out / "figure4.png")
    gap_figure(sweeps, scales, out / "gap_vs_scale.png")
    fig3 = figure3(lab, adm_g, names, out)
    relevance_figure(lab, names, out / "relevance.png")
    worst = max(scales, key=lambda s: sweeps["adm"]["vanilla"][s]["gap"][0])
    fooled_count = adversarial_grid(lab, setting("adm", "vanilla", worst), names, out / "adversarial_grid.png")
    along_t = guide_along_t(lab)
    print("Paired intervals", flush=True)
    found = intervals(lab, seeds, setting, [(adm_g, adm_prog), (cadm_g, cadm_prog), (eds, table3[2])], scales,
                      rows5, rows6, adm_prog, adm_g, headline, args.draws)
    elapsed = time.perf_counter() - started

    command = "python benchmarks/fashion_paper.py " + " ".join(sys.argv[1:])
    raw = lab.raw(command, elapsed, seeds=seeds, draws=args.draws, sampler=args.sampler, precision=args.precision,
                  scale_adm=args.scale_adm, scale_cadm=args.scale_cadm, intervals=found, families=families,
                  fooled_at_worst=fooled_count, worst_gap_scale=worst, held_in=held_in,
                  guide_along_t=along_t)
    write_json(out / "results.json", raw)
    columns = COLUMNS + (LABEL_FREE_COLUMNS if lab.label_free is not None else [])
    (out / "README.md").write_text(report(args, lab, seeds, scales, raw, columns, t1, th, sweeps, t5, t6,
                                          families, fig3, worst, fooled_count, adm_prog.label()))
    print(f"wrote {out / 'README.md'} ({elapsed / 60:.1f} minutes)")


def report(args, lab: Lab, seeds, scales, raw, columns, t1, th, sweeps, t5, t6, families, fig3, worst,
           fooled_count, baseline: str) -> str:
    found, text = raw["intervals"], paired.interval_text
    shown = paired.INTERVAL_COLUMNS + (("Gap (points)", "gap", 1),) + (
        paired.LABEL_FREE_COLUMNS if lab.label_free is not None else ())
    by_family = (("Rec", "recall", 3), ("Robustness (points)", "robustness", 1))

    def rows(found_rows: dict) -> str:
        return paired.interval_rows(found_rows, shown)

    def head(first: str) -> str:
        return paired.interval_head(first, shown)
    sweep_rows = [(f"{m.upper()}-G{' + ProG' if g == 'prog' else ''}, s={s:g}", sweeps[m][g][s])
                  for m in sweeps for g in ("vanilla", "prog") for s in scales]
    table2 = "\n".join(
        f"| {m.upper()}-G, s={s} | {text(r['robustness'], 1)} | {text(r['precision'], 3)} | {text(r['recall'], 3)} | "
        f"{text(r['gap'], 1)} | {100 * r['reached']:.0f} % |" for m, rows in found["table2"].items()
        for s, r in rows.items())
    family_rows = "\n".join(
        f"| {g} | {s} | {family} | {fmt(v['precision'], 3)} | {fmt(v['recall'], 3)} |"
        for g, by_scale in families.items() for s, by_family in by_scale.items() for family, v in by_family.items())
    label_free = ", and in the label-free space of `fashion/autoencoder` (FID, precision, recall)" \
        if lab.label_free is not None else ""
    sampler_note = checked_sampler(args, lab, scales)
    along_t = "\n".join(f"| {r['t']} | {r['step']} | {r['condition_share']:.2f} | {r['guide_top1']:.1f} "
                         f"[{r['guide_top1_ci'][0]:.1f}, {r['guide_top1_ci'][1]:.1f}] |" for r in raw["guide_along_t"])
    data_note = (" The data row scores real images of the testbed's other split, which the reference does not hold "
                 "(as many per class as a run's samples), the guide's column included: what a model that reproduces "
                 "the data reaches, each score's floor or ceiling." if raw.get("held_in") else "")
    headline = (f"""{table(th, columns + GUIDE_COLUMNS)}

ProG minus vanilla guidance at DDPM-{args.headline}, paired:

{head('comparison')}
{rows(found["headline"])}

The run's sampler ({args.sampler}, {lab.steps} steps, {args.precision}) minus DDPM-{args.headline} in fp32 on the same
settings, paired over the same {lab.num_samples} samples:

{head('setting')}
{rows(found["sampler_check"])}""" if th else "Not run: `--headline 250` adds ADM-G and CADM-G with and without ProG "
                f"at Table 1's scales, sampled with DDPM-250 in fp32, {DDPM250_COST}.")
    return f"""# The paper's experiments on {lab.testbed.name}

Generated by `{raw['command']}` {provenance(raw)}.
{lab.num_samples} samples per run and seed (class i mod 10), {len(seeds)} seed(s), sampled with {args.sampler} at
{lab.steps} steps in {args.precision}{sampler_note}. Scores against the {len(lab.train_labels):,} reference
images: the classifier feature network's FID, sFID, IS, precision, recall (k = 3){label_free}; robustness: the mean
top-1 (%) of the bank; the guide's own top-1 on the final samples and the gap (guide - bank, points). ProG: gamma 0.04
stated for 250 steps, s_T from the text relevance (the paper's shaping). Raw numbers: [results.json](results.json);
what we make of them: [findings.md](findings.md). Rerun check: `python benchmarks/compare_digits.py
results/fashion/results.json DIR/results.json`.

## Table 1 (and Table 3: classifier-free guidance, EDS)

ADM-G at s={args.scale_adm:g}, CADM-G at s={args.scale_cadm:g} ({args.scale_rule}), classifier-free
w={args.cfg_scale:g}.{data_note}

{table(t1, columns + GUIDE_COLUMNS)}

### Table 1's guided rows with the reference sampler

{headline}

## Figure 4: precision and recall against the scale, per class family

![Figure 4](figure4.png)

| guidance | scale | family | Prec | Rec |
|---|---|---|---|---|
{family_rows}

## The guidance sweep (Table 2 and the gap)

![gap](gap_vs_scale.png)

{table(sweep_rows, columns + GUIDE_COLUMNS)}

## Table 5: gamma (ADM-G + ProG, s={args.scale_adm:g})

{table(t5, columns)}

## Table 6: the initial information degree and the controls (ADM-G + ProG, s={args.scale_adm:g})

The text relevance and the guide's confusion relevance, classes ordered by family:

![relevance](relevance.png)

{table(t6, columns + GUIDE_COLUMNS)}

## When ProG spreads its guidance, and what the guide knows then

The condition's share of s_t (gamma 0.04 over 250 steps, the text s_T, mean over the classes; the step counts
from x_T) and the guide's top-1 on reference images noised to t (`guided_diffusion.evaluation.held_out.accuracy`,
up to 200 per class, a fixed draw of the noise; 95 % Wilson interval over the images):

| t | step of 250 | condition's share of s_t | guide top-1 (%) [95 %] |
|---|---|---|---|
{along_t}

## Figure 3: vanilla guidance and ProG from the same noise (a Shirt, ADM-G at s={args.scale_adm:g})

![vanilla](figure3_vanilla.png) ![ProG](figure3_prog.png)

| guidance | the guide reads | the bank reads |
|---|---|---|
{fig3}
## The most adversarial samples

Vanilla ADM-G at s={worst:g} (its largest mean gap), seed 0: {fooled_count} samples the guide reads as their label
while most of the bank does not. ![adversarial](adversarial_grid.png)

## Paired 95 % intervals

Sample i of every setting of a seed starts from the same noise and label, so two settings are compared sample by
sample over the {len(seeds)} x {lab.num_samples} samples: percentile bootstrap, {args.draws} resamples within each
seed (recall: {args.draws} half-samples without replacement), the same indices for both arms
(`guided_diffusion.experiments.paired`). An interval that contains 0 means no difference was measured.

### Tables 1 and 3: ProG minus its baseline at the same scale

{head('comparison')}
{rows(found["table1"])}

### Figure 4: ProG minus vanilla guidance at the same scale

{head('scale')}
{rows({f"{m.upper()}-G, s={s}": r for m, by_scale in found["figure4"].items() for s, r in by_scale.items()})}

### Figure 4 per class family: ADM-G + ProG minus vanilla ADM-G at the same scale

Each family's samples only, recall against that family's reference images.

{paired.interval_head('family, scale', by_family)}
{paired.interval_rows({f"{family}, s={s}": r for family, by_scale in found["families"].items()
                       for s, r in by_scale.items()}, by_family)}

### Table 2: ProG at vanilla's FID minus vanilla

ProG's sweep interpolated linearly to each vanilla run's FID where it first reaches it; reached: the share of
bootstrap resamples in which it does.

| vanilla run | Robustness (points) | Prec | Rec | Gap (points) | reached |
|---|---|---|---|---|---|
{table2}

### Table 5: each gamma minus {baseline}

{head('gamma')}
{rows(found["table5"])}

### Table 5: each gamma minus vanilla ADM-G (s={args.scale_adm:g})

gamma = 1 moves s_t to one-hot in one step, after the first step's guidance with s_T.

{head('gamma')}
{rows(found["table5_vs_vanilla"])}

### Table 6: each s_T and control minus {baseline}

{head('s_T')}
{rows(found["table6"])}
"""


if __name__ == "__main__":
    main()
