"""Progressive Guidance (ProG) from your own sampling code: networks built from a checkpoint's name, a relevance
matrix, an information degree and one guided ``p_sample_loop``.

    python examples/prog_sampling.py      # the shipped digits models: 16 samples on a CPU in seconds
    python examples/prog_sampling.py --model_path models/64x64_diffusion.pt \\
        --classifier_path models/64x64_classifier.pt --steps 250   # ADM's released 64x64 pair (downloaded)

A shipped model's name (digits/adm) or a released ADM checkpoint's file name gives the network's flags; the
main job, scripts/prog_classifier_sample.py, does all this with every option (batches, processes, resuming).
"""

import argparse

import numpy as np
import torch

from guided_diffusion.checkpoints import load_checkpoint
from guided_diffusion.cli import checkpoint_manifest
from guided_diffusion.progressive.guidance import ProgressiveGuidance
from guided_diffusion.progressive.information_degree import InformationDegree, gamma_per_step
from guided_diffusion.progressive.relevance import load_relevance, shipped_relevance
from guided_diffusion.sampling.job import LABEL_SETS
from guided_diffusion.sampling.samplers import to_uint8_nhwc
from guided_diffusion.script_util import (
    classifier_defaults,
    create_classifier,
    create_model_and_diffusion,
    model_and_diffusion_defaults,
)

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--model_path", default="digits/adm", help="a shipped model's name or a released ADM file")
parser.add_argument("--classifier_path", default="digits/classifier", help="likewise, for the classifier")
parser.add_argument("--steps", type=int, default=25, help="sampling steps (the diffusion respaced to them)")
parser.add_argument("--gamma", type=float, default=0.04, help="ProG's rate (Eq. 5), stated for the paper's 250 steps")
parser.add_argument("--classifier_scale", type=float, default=None, help="default: the model's own (digits/adm: 4), "
                    "else 1")
parser.add_argument("--relevance", default="", help=".npz of your own (custom_relevance.py); default: the label "
                    "set's shipped matrix")
parser.add_argument("--num_samples", type=int, default=16, help="sampled as one batch")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--out", default="prog_samples.npz")
args = parser.parse_args()
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
torch.manual_seed(args.seed)


def manifest_of(path: str) -> dict:
    """What a shipped model or a released ADM checkpoint says of itself: its kind and its network's flags."""
    manifest = checkpoint_manifest(path)
    if manifest is None:
        raise SystemExit(f"{path} is neither a shipped model nor a released ADM checkpoint: give its flags to "
                         "scripts/prog_classifier_sample.py instead")
    return manifest


# The networks, from their names' flags; float32 (use_fp16 is how to run them, not what they are).
model_manifest = manifest_of(args.model_path)
flags = {k: v for k, v in model_manifest["flags"].items() if k in model_and_diffusion_defaults()}
model, diffusion = create_model_and_diffusion(**{**flags, "use_fp16": False, "timestep_respacing": str(args.steps)})
load_checkpoint(model, args.model_path)
model.to(device).eval()
classifier_flags = {k: v for k, v in manifest_of(args.classifier_path)["flags"].items() if k in classifier_defaults()}
classifier = create_classifier(**{**classifier_flags, "classifier_use_fp16": False})
load_checkpoint(classifier, args.classifier_path)
classifier.to(device).eval()
num_classes = classifier_flags["num_classes"]
scale = args.classifier_scale
if scale is None:
    scale = model_manifest.get("sample_flags", {}).get("classifier_scale", 1.0)


def model_fn(x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return model(x, t, y if flags["class_cond"] else None)  # an unconditional model: only the classifier sees y


# ProG: s_T = R[y], moved toward one-hot by gamma at every step. 0.04 is meant for the paper's 250 steps: read
# per step at 25 steps, it would leave 0.96**25 = 36% of the off-target mass at the end (at 250: 0.004%).
R = load_relevance(args.relevance or shipped_relevance(LABEL_SETS[num_classes]), num_classes)
y = torch.randint(0, num_classes, (args.num_samples,), device=device)
gamma = gamma_per_step(args.gamma, diffusion.num_timesteps, reference_steps=250)
degree = InformationDegree.from_relevance(R, y, gamma)
shape = (args.num_samples, 3, flags["image_size"], flags["image_size"])
sample = diffusion.p_sample_loop(model_fn, shape, model_kwargs={"y": y}, device=device,
                                 cond_fn=ProgressiveGuidance(classifier, scale), information_degree=degree)

# The ADM format, which evaluations/evaluator.py and examples/evaluate_samples.py read.
np.savez(args.out, arr_0=to_uint8_nhwc(sample).cpu().numpy(), arr_1=y.cpu().numpy())
print(f"{args.num_samples} samples ({args.steps} steps, gamma per step {gamma:.4f}, scale {scale:g}) "
      f"saved to {args.out}")
