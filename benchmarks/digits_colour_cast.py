"""Why were the shipped digit models' samples tinted? The channel gap of checkpoints along a training run.

    python scripts/image_train.py ... --ema_rate 0.999,0.9995,0.9999 --save_interval 2000 (see --help)
    python benchmarks/digits_colour_cast.py runs/cast/adm --kind adm
    python benchmarks/digits_colour_cast.py runs/fashion_models/adm --testbed fashion --kind adm

The training digits are grey (R = G = B). For every checkpoint of a training run (the raw weights
``model{N}.pt`` and each EMA ``ema_{rate}_{N}.pt``), samples the main job's default setting (ProG
guided by digits/classifier, the shipped sampling flags of digits/adm or digits/cadm: 64 samples,
100 DDPM steps, seed 0) and prints the mean channel gap ((|R-G| + |G-B| + |R-B|) / 3 per pixel, in
1/255) and the share of samples above 5 / 255, with the held-out noise-prediction MSE. Writes a
markdown table (``--out``). Beside them, at a few timesteps, the relative error of the model's
prediction of each image's mean colour noise (the noise's RGB minus their mean, averaged over the
pixels): for grey data that part of the noise is read exactly off x_t, and a network that cannot
see it leaves a tint (``--no_sampling``: this and the MSE only, in seconds).
``--testbed fashion``: the same for the Fashion-MNIST models (guided by fashion/classifier, the MSE on the
shipped 2,000-image test subset, as their manifests record it). The job runs without --grey_data, which the
Fashion models' manifests set: the gap is the network's own.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch

from guided_diffusion import script_util as su
from guided_diffusion.evaluation.feature_extractors import load_classifier
from guided_diffusion.evaluation.held_out import default_job_channel_gap, denoising_mse, noise_predictions
from guided_diffusion.models import manifest
from guided_diffusion.sampling.grey import colour
from guided_diffusion.sampling.samplers import from_uint8_nhwc
from guided_diffusion.testbeds.digits import load_digits_split
from guided_diffusion.testbeds.fashion import load_subset

MEAN_COLOUR_T = (0, 20, 100, 500)


@torch.no_grad()
def mean_colour_error(model: torch.nn.Module, diffusion, x: torch.Tensor, y: torch.Tensor | None,
                      timesteps: tuple[int, ...] = MEAN_COLOUR_T, seed: int = 0, batch_size: int = 100) -> list[float]:
    """Per timestep, sum |predicted - true mean colour noise|^2 / sum |true|^2 over the images ``x`` (NCHW)."""
    generator = torch.Generator().manual_seed(seed)
    errors = []
    for t in timesteps:
        wrong = total = 0.0
        for eps, noise in noise_predictions(model, diffusion, x, y, t, generator, batch_size):
            predicted, true = (colour(e).mean((2, 3)) for e in (eps, noise))
            wrong += ((predicted - true) ** 2).sum().item()
            total += (true ** 2).sum().item()
        errors.append(wrong / total)
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="a training run's log folder with model*.pt and ema_*.pt")
    parser.add_argument("--kind", choices=("adm", "cadm"), default="adm", help="whose flags and sampling defaults")
    parser.add_argument("--testbed", choices=("digits", "fashion"), default="digits", help="whose models and data")
    parser.add_argument("--out", type=Path, default=None, help="write the table here (markdown)")
    parser.add_argument("--no_sampling", action="store_true", help="skip the channel gap (the no-flag job)")
    args = parser.parse_args()
    info = manifest(f"{args.testbed}/{args.kind}")
    info = {**info, "sample_flags": {**info["sample_flags"], "grey_data": False}}  # the network's own colour
    flags = {**su.model_and_diffusion_defaults(), **info["flags"]}
    guide = load_classifier(info["sample_flags"]["classifier_path"])[0].eval()
    images, labels = load_digits_split()["test"] if args.testbed == "digits" else load_subset()[:2]
    x = from_uint8_nhwc(images)
    y = torch.from_numpy(labels).long() if flags["class_cond"] else None
    columns = " | ".join(f"mean-colour noise error t={t}" for t in MEAN_COLOUR_T)
    rows = [f"| checkpoint | step | held-out MSE | mean channel gap (/255) | share of samples > 5/255 | {columns} |",
            "|---" * (5 + len(MEAN_COLOUR_T)) + "|"]
    found = sorted(args.run_dir.glob("*.pt"), key=lambda p: (int(re.findall(r"(\d+)\.pt$", p.name)[0]), p.name))
    for path in found:
        if path.name.startswith("opt"):
            continue
        model, diffusion = su.create_model_and_diffusion(**flags)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        model.eval()
        mse = denoising_mse(model, diffusion, x, y)
        errors = " | ".join(f"{e:.3f}" for e in mean_colour_error(model, diffusion, x, y))
        step = int(re.findall(r"(\d+)\.pt$", path.name)[0])
        gap = None if args.no_sampling else default_job_channel_gap(model, info, guide)
        cells = "| |" if gap is None else f"{gap.mean():.2f} | {(gap > 5).mean():.2f} |"
        rows.append(f"| {path.name} | {step} | {mse:.4f} | {cells} {errors} |")
        print(rows[-1], flush=True)
    table = "\n".join(rows)
    if args.out:
        command = "python benchmarks/digits_colour_cast.py " + " ".join(sys.argv[1:])
        args.out.write_text(f"Generated by `{command}`.\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
