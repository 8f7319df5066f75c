"""Seconds per guided sampling step for every guidance, as ratios to vanilla classifier guidance.

Same denoiser, classifier and batch for all; the variants are timed in turn
within each repeat (interleaved, in an order rotated every repeat, so drifts in
machine load and order effects hit all alike) and the median is reported.
ProG and its relatives should cost what vanilla costs (paper Table 7): one
classifier forward and backward per step. Classifier-free
guidance runs the denoiser on a doubled batch instead and needs no classifier.

    python benchmarks/bench_guidance.py                      # tiny and official 64x64 configs, random weights
    python benchmarks/bench_guidance.py --configs 64x64 --batch_size 32 --repeats 20   # on a GPU
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np
import torch

from guided_diffusion import script_util as su
from guided_diffusion.experiments.networks import CONFIGS, build
from guided_diffusion.progressive.guidance import (
    ClassifierFreeGuidance,
    ClassifierGuidance,
    EntropyDrivenGuidance,
    ProgressiveEntropyDrivenGuidance,
    ProgressiveGuidance,
)
from guided_diffusion.progressive.information_degree import InformationDegree, uniform_relevance
from guided_diffusion.progressive.relevance import load_relevance, shipped_relevance

VARIANTS = ("vanilla", "prog", "uniform_ls", "eds", "prog_eds", "cfg")


def step_functions(model, classifier, diffusion, x, y, scale: float, gamma: float) -> dict[str, Callable]:
    """One DDPM step at respaced step k, for each variant, including the information degree's s_k."""
    relevance = load_relevance(shipped_relevance("imagenet1k"), su.NUM_CLASSES)
    prog_degree = InformationDegree.from_relevance(relevance, y, gamma)
    ls_degree = InformationDegree.from_relevance(uniform_relevance(su.NUM_CLASSES, 0.1), y, gamma)
    k = 100
    t = torch.full((len(x),), diffusion.num_timesteps - 1 - k, device=x.device, dtype=torch.long)
    kwargs = {"y": y}

    def guided(cond_fn, degree=None):
        return lambda: diffusion.p_sample(model, x, t, cond_fn=cond_fn, model_kwargs=kwargs,
                                          information_degree=None if degree is None else degree.at(k))

    return {
        "vanilla": guided(ClassifierGuidance(classifier, scale)),
        "prog": guided(ProgressiveGuidance(classifier, scale), prog_degree),
        "uniform_ls": guided(ProgressiveGuidance(classifier, scale), ls_degree),
        "eds": guided(EntropyDrivenGuidance(classifier, scale)),
        "prog_eds": guided(ProgressiveEntropyDrivenGuidance(classifier, scale), prog_degree),
        "cfg": lambda: diffusion.p_sample(ClassifierFreeGuidance(model, scale), x, t, model_kwargs=kwargs),
    }


def interleaved_medians(fns: dict[str, Callable], device: torch.device, repeats: int) -> dict[str, float]:
    def once(fn):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.no_grad():
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for fn in fns.values():  # warm-up
        once(fn)
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotated: no variant always runs first
            times[name].append(once(fns[name]))
    return {name: float(np.median(values)) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="tiny,64x64")
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default="fp32")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device={device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.machine()})"
          f" torch={torch.__version__} threads={torch.get_num_threads()} batch={args.batch_size}"
          f" precision={args.precision} repeats={args.repeats} (median s per DDPM step, 250 respaced steps)")
    header = f"{'config':<7} " + " ".join(f"{v:>10}" for v in VARIANTS)
    torch.manual_seed(0)
    rows = []
    for name in args.configs.split(","):
        # a null class in the denoiser, so that classifier-free guidance runs too
        model, classifier, diffusion = build(CONFIGS[name], device, "250", label_dropout=0.1)
        if args.precision != "fp32":
            for net in (model, classifier):
                getattr(net, f"convert_to_{args.precision}")()
        size = CONFIGS[name]["model"]["image_size"]
        x = torch.randn(args.batch_size, 3, size, size, device=device)
        y = torch.randint(0, su.NUM_CLASSES, (args.batch_size,), device=device)
        fns = step_functions(model, classifier, diffusion, x, y, scale=1.0, gamma=0.04)
        rows.append((name, interleaved_medians(fns, device, args.repeats)))
    print("\nseconds per step")
    print(header)
    for name, medians in rows:
        print(f"{name:<7} " + " ".join(f"{medians[v]:>10.4f}" for v in VARIANTS))
    print("\nratio to vanilla")
    print(header)
    for name, medians in rows:
        print(f"{name:<7} " + " ".join(f"{medians[v] / medians['vanilla']:>10.3f}" for v in VARIANTS))


if __name__ == "__main__":
    main()
