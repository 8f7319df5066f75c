"""Throughput of the ADM networks: forward passes and classifier-guided sampling steps.

For each configuration (the official 64x64 ImageNet model and classifier with
random weights, and a tiny model) and each precision (fp32 and bf16; also fp16
on CUDA), it times the denoiser's forward pass and one guided DDPM step
(denoiser forward + classifier forward/backward), with SDPA attention and with
the matmul-softmax form, all in one run, and prints images/s and the SDPA
speed-up (the evidence for the "auto" attention backend: SDPA except bf16 on CPU).

    python benchmarks/bench_unet.py                 # both configurations, batch 4
    python benchmarks/bench_unet.py --configs tiny --batch_size 16
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from guided_diffusion import script_util as su
from guided_diffusion.experiments.networks import CONFIGS, build
from guided_diffusion.progressive.guidance import ClassifierGuidance
from guided_diffusion.unet import set_attention_backend


def timed(fn, device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


@torch.no_grad()
def throughput(model, diffusion, cond_fn, x, y, device: torch.device, repeats: int) -> tuple[float, float]:
    """Images/s of the denoiser's forward pass and of one guided DDPM step (respaced step 10)."""
    t = torch.full((len(x),), 10, device=device, dtype=torch.long)
    original_t = torch.full_like(t, diffusion.timestep_map[10])
    forward = timed(lambda: model(x, original_t, y=y), device, repeats)
    step = timed(lambda: diffusion.p_sample(model, x, t, cond_fn=cond_fn, model_kwargs={"y": y}), device, repeats)
    return len(x) / forward, len(x) / step


def set_precision(model, classifier, precision: str) -> None:
    for net in (model, classifier):
        {"fp32": net.convert_to_fp32, "fp16": net.convert_to_fp16, "bf16": net.convert_to_bf16}[precision]()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="tiny,64x64")
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    precisions = ["fp32", "fp16", "bf16"] if device.type == "cuda" else ["fp32", "bf16"]
    print(f"device={device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.machine()})"
          f" torch={torch.__version__} threads={torch.get_num_threads()} batch={args.batch_size}"
          f" repeats={args.repeats}")
    header = (f"{'config':<7} {'prec':<5} {'forward img/s sdpa':>19} {'matmul':>8} {'ratio':>6}"
              f" {'guided img/s sdpa':>18} {'matmul':>8} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    torch.manual_seed(0)
    for name in args.configs.split(","):
        model, classifier, diffusion = build(CONFIGS[name], device)
        size = CONFIGS[name]["model"]["image_size"]
        x = torch.randn(args.batch_size, 3, size, size, device=device)
        y = torch.randint(0, su.NUM_CLASSES, (args.batch_size,), device=device)
        cond_fn = ClassifierGuidance(classifier)
        for precision in precisions:
            set_precision(model, classifier, precision)
            row = {}
            for backend in ("sdpa", "matmul"):
                set_attention_backend(model, backend)
                set_attention_backend(classifier, backend)
                row[backend] = throughput(model, diffusion, cond_fn, x, y, device, args.repeats)
            (f_s, g_s), (f_m, g_m) = row["sdpa"], row["matmul"]
            print(f"{name:<7} {precision:<5} {f_s:>19.2f} {f_m:>8.2f} {f_s / f_m:>6.2f}"
                  f" {g_s:>18.2f} {g_m:>8.2f} {g_s / g_m:>6.2f}")


if __name__ == "__main__":
    main()
