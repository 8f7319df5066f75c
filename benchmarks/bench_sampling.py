"""Seconds per guided sample: ADM's way (DDPM, 250 steps, fp32) against the fast settings.

Every sampler step costs one denoiser forward and one classifier forward and backward, so a
setting's cost per sample is (its seconds per step) x (its steps) / (batch). The seconds per step
of each sampler (DDPM, DDIM, DPM-Solver++(2M), its SDE variant) in each precision (fp32; bf16 autocast; fp16
autocast on CUDA), with and without torch.compile (--compile) and channels_last (--channels_last),
are measured side by side in one run: a few real sampling steps of each, interleaved in an order
rotated every repeat, median over repeats. The table then prices each setting (sampler x steps x
precision x compile) per sample and as a speed-up over DDPM-250 fp32.

    python benchmarks/bench_sampling.py                                  # official 64x64 and digits, CPU
    python benchmarks/bench_sampling.py --configs 64x64,256x256 --batch_size 16 --compile   # a GPU
    python benchmarks/bench_sampling.py --configs 64x64 --samplers ddpm --profile   # where a step's time goes
                                                                                     # (and the convolutions' rate)
"""

from __future__ import annotations

import argparse
import copy
import itertools
import platform
import time

import numpy as np
import torch

from guided_diffusion import script_util as su
from guided_diffusion.checkpoints import load_checkpoint
from guided_diffusion.experiments.networks import OFFICIAL
from guided_diffusion.models import manifest
from guided_diffusion.progressive.guidance import ClassifierGuidance
from guided_diffusion.sampling.precision import PRECISIONS, accelerate
from guided_diffusion.sampling.samplers import SAMPLERS, respacing_for, sample_loop

BASELINE = ("ddpm", 250, "fp32", False, False)
SETTINGS = [("ddpm", 250), ("ddpm", 25), ("ddim", 50), ("ddim", 25), ("dpmpp_2m", 25), ("dpmpp_2m", 20),
            ("dpmpp_2m", 15), ("dpmpp_2m", 10), ("dpmpp_2m_sde", 25), ("dpmpp_2m_sde", 20), ("dpmpp_2m_sde", 10)]


def build(name: str, device: torch.device):
    """The config's denoiser and classifier: random weights at the official flags, or the shipped digit models."""
    if name == "digits":
        flags = {**su.model_and_diffusion_defaults(), **manifest("digits/adm")["flags"]}
        model, _ = su.create_model_and_diffusion(**flags)
        load_checkpoint(model, "digits/adm")
        classifier = su.create_classifier(**{**su.classifier_defaults(), **{
            k: v for k, v in manifest("digits/classifier")["flags"].items() if k in su.classifier_defaults()}})
        load_checkpoint(classifier, "digits/classifier")
    else:
        config = OFFICIAL[name]
        flags = {**su.model_and_diffusion_defaults(), **config["model"]}
        model, _ = su.create_model_and_diffusion(**flags)
        classifier = su.create_classifier(**{**su.classifier_defaults(), **config["classifier"]})
    return model.to(device).eval(), classifier.to(device).eval(), flags


def step_timer(model, classifier, flags: dict, sampler: str, precision: str, compile: bool, channels_last: bool,
               batch: int, steps: int, device: torch.device):
    """A function that runs ``steps`` guided steps of ``sampler`` on a 250-step schedule (after an untimed first
    step) and returns the seconds per step."""
    diffusion = su.create_gaussian_diffusion(steps=flags["diffusion_steps"], learn_sigma=flags["learn_sigma"],
                                             noise_schedule=flags["noise_schedule"],
                                             timestep_respacing=respacing_for(sampler, "250"))
    net = accelerate(copy.deepcopy(model), precision, compile, channels_last, cast_weights=True)  # as the scripts
    guide = ClassifierGuidance(accelerate(copy.deepcopy(classifier), precision, compile, channels_last,
                                          cast_weights=True), 1.0)
    size, classes = flags["image_size"], flags["num_classes"] if flags["class_cond"] else None
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, classes or 10, (batch,), device=device)
    kwargs = {"y": y} if classes else {}

    def denoiser(x_t, t, y=None):
        return net(x_t, t, **kwargs)

    def run() -> float:
        loop = sample_loop(diffusion, sampler, progressive=True)(denoiser, tuple(x.shape), noise=x, cond_fn=guide,
                                                                 model_kwargs={"y": y}, device=device)
        next(loop)  # the first step (a DPM-Solver++ run starts first order), untimed
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            next(loop)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / steps

    return run


def conv_gflop_per_step(model, classifier, flags: dict, batch: int, device: torch.device) -> float:
    """GFLOP of a guided step's convolutions: the model's forward, the classifier's forward, and its backward
    to the input (a transposed convolution per layer, as many FLOPs as the forward)."""
    from torch.utils.flop_counter import FlopCounterMode

    size = flags["image_size"]
    x, t = torch.randn(batch, 3, size, size, device=device), torch.full((batch,), 500, device=device)
    kwargs = {"y": torch.zeros(batch, dtype=torch.long, device=device)} if flags["class_cond"] else {}
    counts = []
    for net, extra in ((model, kwargs), (classifier, {})):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            net(x, t, **extra)
        counts.append(counter.get_flop_counts()["Global"].get(torch.ops.aten.convolution, 0))
    return (counts[0] + 2 * counts[1]) / 1e9


def matmul_gflops(dtype: torch.dtype, device: torch.device, n: int = 4096, repeats: int = 5) -> float:
    """This device's rate on a large square matmul (the best of ``repeats``), a yardstick for the convolutions'."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def profile_step(model, classifier, flags: dict, precision: str, batch: int, device: torch.device, rows: int = 8):
    """Where one guided step's time goes: torch.profiler's table of the costliest operators (self time); on a
    CPU also the convolutions' rate against a large matmul's in the same precision."""
    from torch.profiler import ProfilerActivity, profile

    run = step_timer(model, classifier, flags, "ddpm", precision, False, False, batch, 1, device)
    run()  # warm-up
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        run()
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(f"\nprofile of one guided DDPM step (plus the untimed first step), {precision}:")
    table = prof.key_averages()
    print(table.table(sort_by=key, row_limit=rows))
    if device.type == "cpu":  # two steps profiled
        conv = sum(e.self_cpu_time_total for e in table
                   if e.key in ("aten::mkldnn_convolution", "aten::convolution_backward")) / 1e6 / 2
        gflop = conv_gflop_per_step(model, classifier, flags, batch, device)
        print(f"convolutions: {gflop:.0f} GFLOP per step in {conv:.2f} s = {gflop / conv:.0f} GFLOP/s; "
              f"a 4096^2 {precision} matmul here: {matmul_gflops(PRECISIONS[precision], device):.0f} GFLOP/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="64x64,digits", help="64x64, 256x256 (official flags, random weights), "
                        "digits (the shipped models)")
    parser.add_argument("--batch_size", type=int, default=None, help="default: 2 for the official configs, 64 digits")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also with torch.compile")
    parser.add_argument("--channels_last", action="store_true", help="also in channels_last")
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--profile", action="store_true", help="also print where a guided step's time goes, per "
                        "precision (torch.profiler), and on a CPU the convolutions' GFLOP/s against a matmul's")
    args = parser.parse_args()
    device = torch.device(args.device)
    precisions = ["fp32", "bf16"] + (["fp16"] if device.type == "cuda" else [])
    compiles = [False, True] if args.compile else [False]
    layouts = [False, True] if args.channels_last else [False]
    samplers = args.samplers.split(",")
    name_of = {True: "yes", False: "no"}
    print(f"device={device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.machine()})"
          f" torch={torch.__version__} threads={torch.get_num_threads()} steps={args.steps} repeats={args.repeats}")
    torch.manual_seed(0)
    for config in args.configs.split(","):
        model, classifier, flags = build(config, device)
        batch = args.batch_size or (64 if config == "digits" else 2)
        combos = list(itertools.product(samplers, precisions, compiles, layouts))
        timers = {c: step_timer(model, classifier, flags, *c, batch, args.steps, device) for c in combos}
        for timer in timers.values():  # warm-up (and compilation)
            timer()
        times: dict[tuple, list[float]] = {c: [] for c in combos}
        for r in range(args.repeats):
            for c in combos[r % len(combos):] + combos[:r % len(combos)]:
                times[c].append(timers[c]())
        per_step = {c: float(np.median(v)) for c, v in times.items()}
        base = per_step[BASELINE[0], "fp32", False, False] * 250 / batch
        print(f"\n{config}: batch {batch}; seconds per guided step (median); speed over fp32 (ratio of the "
              f"medians, and its range over the repeats, each repeat's fp32 time over its own)")
        print(f"{'sampler':<12} {'precision':<9} {'compile':<7} {'ch.last':<7} {'s/step':>9} {'vs fp32':>8} "
              f"{'range':>13}")
        for c in combos:
            fp32 = (c[0], "fp32", c[2], c[3])
            paired = [a / b for a, b in zip(times[fp32], times[c], strict=True)]
            print(f"{c[0]:<12} {c[1]:<9} {name_of[c[2]]:<7} {name_of[c[3]]:<7} {per_step[c]:9.4f} "
                  f"{per_step[fp32] / per_step[c]:7.2f}x {min(paired):5.2f}-{max(paired):.2f}x")
        print(f"\n{config}: seconds per sample (s/step x steps / batch) and speed-up over DDPM-250 fp32 "
              f"({base:.3f} s/sample)")
        print(f"{'setting':<16} {'precision':<9} {'compile':<7} {'ch.last':<7} {'s/sample':>9} {'speed-up':>9}")
        for (sampler, n), precision, compiled, layout in itertools.product(SETTINGS, precisions, compiles, layouts):
            if sampler not in samplers:
                continue
            cost = per_step[sampler, precision, compiled, layout] * n / batch
            print(f"{f'{sampler}-{n}':<16} {precision:<9} {name_of[compiled]:<7} {name_of[layout]:<7} "
                  f"{cost:9.4f} {base / cost:8.1f}x")
        if args.profile:
            for precision in precisions:
                profile_step(model, classifier, flags, precision, batch, device)


if __name__ == "__main__":
    main()
