"""Time one training step of a testbed's model specs, and of candidate variants (docs/fashion.md).

    OMP_NUM_THREADS=1 python scripts/time_training.py --testbed fashion            # the specs
    OMP_NUM_THREADS=1 python scripts/time_training.py --testbed fashion --candidates --out times.json

Each line: the spec (or variant), its precision, and the process CPU seconds and wall seconds of one step
(the training loop's own step on random data of the spec's shape; mean of --steps after --warmup). CPU
seconds are what the budget uses: other processes on the other core barely change them, while they
stretch the wall time of a niced run.
"""

import json
import platform

import torch

from guided_diffusion.cli import ScriptParser, run_main
from guided_diffusion.testbeds import digits, fashion
from guided_diffusion.testbeds.training import seconds_per_step

TESTBEDS = {"digits": digits, "fashion": fashion}


def candidates(models: dict) -> dict[str, tuple[dict, str]]:
    """Variants of the fashion specs measured when choosing them: name -> (spec, precision)."""
    adm, guide = models["adm"], models["classifier"]

    def unet(batch=64, precision="fp32", **arch):
        return {**adm, "flags": {**adm["flags"], **arch, "batch_size": batch}}, precision

    out = {}
    for ch, blocks, attn in ((32, 1, ""), (32, 1, "7"), (32, 2, "7"), (32, 2, "14,7"), (64, 1, "7"), (64, 2, "7")):
        out[f"unet c{ch} r{blocks} attn[{attn}] b64"] = unet(num_channels=ch, num_res_blocks=blocks,
                                                             attention_resolutions=attn)
    out["unet c32 r2 attn[7] b128"] = unet(128, num_channels=32, num_res_blocks=2, attention_resolutions="7")
    for precision in ("bf16", "autocast"):
        for ch in (32, 64):
            out[f"unet c{ch} r2 attn[7] b64 {precision}"] = unet(64, precision, num_channels=ch, num_res_blocks=2,
                                                                 attention_resolutions="7")
    out["guide b64"] = {**guide, "flags": {**guide["flags"], "batch_size": 64}}, "fp32"
    out["guide b128 autocast"] = guide, "autocast"
    out["bank1 resnet18 autocast"] = models["bank1"], "autocast"
    return out


def main() -> None:
    parser = ScriptParser(description=__doc__)
    parser.add_argument("--testbed", default="fashion", choices=sorted(TESTBEDS))
    parser.add_argument("--only", default="", help="comma-separated specs or candidates (default: all specs, and "
                        "the candidates with --candidates)")
    parser.add_argument("--candidates", action="store_true", help="also the variants measured to choose the specs")
    parser.add_argument("--sampling", type=int, default=0, help="also time a forward pass of each diffusion model "
                        "on a batch of this size (sampling's cost per step)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--out", default="", help="also write the table as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = TESTBEDS[args.testbed].MODELS
    todo = {name: (spec, "fp32") for name, spec in models.items()}
    if args.candidates:
        todo.update(candidates(models))
    if args.only:
        todo = {name: todo[name] for name in args.only.split(",") if name}
    table = {}
    for name, (spec, precision) in todo.items():
        cost = seconds_per_step(spec, args.steps, args.warmup, precision)
        table[name] = {"precision": precision, "batch_size": spec["flags"]["batch_size"], **cost}
        print(f"{name:40s} {precision:8s} batch {spec['flags']['batch_size']:4d}  cpu {cost['cpu']:7.3f} s/step  "
              f"wall {cost['wall']:7.3f} s/step", flush=True)
    if args.sampling:  # the manifests' unguided samples: one forward pass of each diffusion model, no gradient
        for name in (n for n, spec in models.items() if spec["kind"] == "diffusion"):
            spec = models[name]
            spec = {**spec, "flags": {**spec["flags"], "batch_size": args.sampling}}
            cost = seconds_per_step(spec, args.steps, args.warmup, "forward")
            table[f"{name} forward"] = {"precision": "fp32", "batch_size": args.sampling, **cost}
            print(f"{name + ' forward':40s} fp32     batch {args.sampling:4d}  cpu {cost['cpu']:7.3f} s/step  "
                  f"wall {cost['wall']:7.3f} s/step", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": f"{platform.machine()} CPU, torch {torch.__version__}, 1 thread",
                       "steps": args.steps, "warmup": args.warmup, "seconds_per_step": table}, f, indent=1)


if __name__ == "__main__":
    run_main(main)
