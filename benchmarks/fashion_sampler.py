"""The fast sampler's step count that matches DDPM-250 on the Fashion-MNIST models, by a rule fixed before any
Fashion number was seen; benchmarks/fashion_paper.py --quick samples at the count found here.

    python benchmarks/fashion_sampler.py                 # 2 CPU cores
    python benchmarks/fashion_sampler.py --out /tmp/rerun && \\
      python benchmarks/compare_digits.py results/fashion/sampler/results.json /tmp/rerun/results.json

For vanilla guidance and ProG (ADM-G, gamma 0.04 stated for 250 steps) at each of --scales (the quick sweep's
middle and top: a few wide solver steps can overshoot under strong guidance where DDPM's many small ones do not,
results/mechanism/findings.md), DDPM at 250 steps in fp32 is the reference; each candidate (--sampler at each of
--candidates steps, in --precision) samples the same labels from the same noise and is compared with it sample
by sample: paired 95 % intervals of FID, precision, recall, robustness and the guide's gap (and FID, precision
and recall in the label-free space where the testbed has one; guided_diffusion.experiments.paired). The rule: a
candidate passes at a scale when every interval of both guidances contains 0; the chosen count is the smallest
that passes at every scale with every larger candidate passing too; if none does, the smallest chosen that way at
the lower scales is given with the largest scale it holds to (the quick run then marks the scales above it as
unchecked). Writes README.md and results.json to --out (results/fashion/sampler). --testbed digits runs the same
code on the shipped digit models.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from guided_diffusion.experiments import paired
from guided_diffusion.experiments.harness import Config, Lab, summary
from guided_diffusion.experiments.report import COLUMNS, lab_parser, provenance, table, write_json
from guided_diffusion.testbeds.digits import DIGITS
from guided_diffusion.testbeds.fashion import FASHION

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "fashion" / "sampler"
TESTBEDS = {"fashion": FASHION, "digits": DIGITS}
GUIDANCES = ("vanilla", "prog")


def contains_zero(found: dict) -> bool:
    """Every interval of a :func:`paired.compare` result contains 0 (no difference measured)."""
    return all(v["low"] <= 0.0 <= v["high"] for k, v in found.items() if k != "mcnemar")


def chosen_steps(passes: dict[int, bool]) -> int | None:
    """The smallest candidate that passes with every larger one passing too; None when the largest fails."""
    chosen = None
    for steps in sorted(passes, reverse=True):
        if not passes[steps]:
            break
        chosen = steps
    return chosen


def main() -> None:
    parser = lab_parser(__doc__, RESULTS, batch_size=200)
    parser.set_defaults(seeds=1)
    parser.add_argument("--testbed", choices=tuple(TESTBEDS), default="fashion")
    parser.add_argument("--num_samples", type=int, default=200, help="per setting and seed (class i mod 10)")
    parser.add_argument("--scales", default="2,8", help="ADM-G's guidance scales")
    parser.add_argument("--sampler", default="dpmpp_2m_sde", help="the fast sampler")
    parser.add_argument("--candidates", default="10,15,20,25", help="its step counts")
    parser.add_argument("--precision", default="bf16", help="its autocast (the reference is fp32)")
    parser.add_argument("--reference_steps", type=int, default=250, help="DDPM steps of the reference")
    args = parser.parse_args()
    started = time.perf_counter()
    testbed = TESTBEDS[args.testbed]
    torch.manual_seed(0)
    lab = Lab(testbed.first_of_each_class(args.reference_per_class), args.num_samples, args.reference_steps,
              args.batch_size, torch.device(args.device), args.store)
    seeds = list(range(args.seeds))
    scales = sorted(float(x) for x in args.scales.split(","))  # choice() reads them in ascending order
    candidates = [int(n) for n in args.candidates.split(",")]
    chosen = paired.scores(lab, guided=True)
    rows, found, passes = {}, {}, {}
    for scale in scales:
        passes[f"{scale:g}"] = {f"{n}": True for n in candidates}
        for guidance in GUIDANCES:
            reference = Config("adm", guidance, scale)
            fast = {n: Config("adm", guidance, scale, sampler=args.sampler, steps=n, precision=args.precision)
                    for n in candidates}
            name = f"{'ProG' if guidance == 'prog' else 'vanilla guidance'}, s={scale:g}"
            rows[name] = [(f"ddpm-{args.reference_steps}, fp32", summary(lab, reference, seeds))] + [
                (f"{args.sampler}-{n}, {args.precision}", summary(lab, c, seeds)) for n, c in fast.items()]
            found[name] = {f"{n}": paired.compare(lab.pooled(c, seeds), lab.pooled(reference, seeds), chosen,
                                                  args.draws) for n, c in fast.items()}
            for n, result in found[name].items():  # a count passes at a scale for both guidances or not at all
                passes[f"{scale:g}"][n] &= contains_zero(result)
    steps, holds_to = choice(passes)
    elapsed = time.perf_counter() - started

    command = "python benchmarks/fashion_sampler.py " + " ".join(sys.argv[1:])
    raw = lab.raw(command, elapsed, seeds=seeds, draws=args.draws, scales=scales, sampler=args.sampler,
                  precision=args.precision, intervals=found, passes=passes, chosen_steps=steps, holds_to=holds_to)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", raw)
    (out / "README.md").write_text(report(args, lab, seeds, rows, found, passes, steps, holds_to, raw))
    print(f"chosen: {steps} steps, up to s={holds_to}; wrote {out / 'README.md'} ({elapsed / 60:.1f} minutes)")


def choice(passes: dict[str, dict[str, bool]]) -> tuple[int | None, float | None]:
    """The chosen step count and the largest scale it holds to: the count chosen at every scale up to the largest
    scale where one is chosen (scales in ascending order); (None, None) when none is chosen at the first."""
    steps, holds_to = None, None
    for scale, by_count in passes.items():
        at_every = {int(n): p and all(passes[s][n] for s in passes if float(s) <= float(scale))
                    for n, p in by_count.items()}
        count = chosen_steps(at_every)
        if count is None:
            break
        steps, holds_to = count, float(scale)
    return steps, holds_to


def report(args, lab: Lab, seeds: list[int], rows: dict, found: dict, passes: dict, steps: int | None,
           holds_to: float | None, raw: dict) -> str:
    shown = (*paired.INTERVAL_COLUMNS, ("Gap (points)", "gap", 1)) + (
        paired.LABEL_FREE_COLUMNS if lab.label_free is not None else ())
    top = max(float(s) for s in passes)
    if steps is None:
        verdict = (f"**none of the candidates**: at s={min(float(s) for s in passes):g} no count passes with every "
                   f"larger one passing too, so the experiments must sample with DDPM")
    else:
        verdict = (f"**{args.sampler} at {steps} steps in {args.precision}** ({args.reference_steps / steps:.1f}x "
                   f"fewer network evaluations than the reference)" + (
                       "" if holds_to == top else f", checked up to s={holds_to:g} only: no candidate passes at "
                       f"s={top:g}, so results at scales above {holds_to:g} are outside the checked range"))
    listed = "; ".join(f"s={scale}: " + ", ".join(f"{n} {'passes' if p else 'fails'}" for n, p in by_count.items())
                       for scale, by_count in passes.items())
    sections = "\n\n".join(
        f"### {name}\n\n{table(rows[name], COLUMNS)}\n\nEach candidate minus DDPM-{args.reference_steps}, "
        f"paired:\n\n{paired.interval_head('steps', shown)}\n{paired.interval_rows(found[name], shown)}"
        for name in rows)
    return f"""# The fast sampler against DDPM-{args.reference_steps} on {lab.testbed.name}

Generated by `{raw['command']}` {provenance(raw)}.
ADM-G guided by `{lab.testbed.classifier}` at s={args.scales}, vanilla guidance and ProG (gamma 0.04 stated for
250 steps), {lab.num_samples} samples per setting and seed (class i mod 10), {len(seeds)} seed(s); the same labels
and initial noise in every setting. Scores as in the paper's experiments (the classifier features' FID, precision,
recall; the bank's robustness; the guide's gap{'; the label-free space' if lab.label_free is not None else ''}).
Raw numbers: [results.json](results.json).

The rule, fixed before the run: a candidate passes at a scale when every paired 95 % interval (each score of the
candidate minus DDPM-{args.reference_steps}, bootstrap over samples; recall by half-samples) of both guidances
contains 0; the chosen count is the smallest that passes at every scale with every larger candidate passing too.
An interval containing 0 at {lab.num_samples} samples means no difference was measured at that power, not
equality: the widths below say how large a difference could go unseen.

Candidates: {listed}. Chosen: {verdict}.

{sections}
"""


if __name__ == "__main__":
    main()
