"""Build a class-relevance matrix R (the initial information degree s_T = R[c] of ProG) and write it as .npz.

From class descriptions (the paper's Sec. 3.1), with a text encoder:

    python scripts/build_relevance.py --label_set digits --out digits_relevance.npz            # offline MiniLM
    python scripts/build_relevance.py --label_set imagenet1k --encoder open_clip:ViT-B-32 \\
        --encoder_weights openai --out imagenet1k_clip_relevance.npz                          # the paper's CLIP

From a noise-aware classifier's confusion on real images (no descriptions needed):

    python scripts/build_relevance.py --source confusion --data train.npz --classifier_path model.pt \\
        --image_size 16 --num_classes 10 ... --out confusion_relevance.npz

Shaping: the paper's normalisation by default; --top_k and --temperature sharpen s_T
(see guided_diffusion/progressive/relevance.py).
"""

import argparse
import hashlib
from pathlib import Path

import numpy as np

from guided_diffusion.cli import INPUT_ERRORS, ScriptParser, run_main
from guided_diffusion.image_datasets import load_labelled_images
from guided_diffusion.progressive import relevance as rel
from guided_diffusion.sampling.samplers import prepare
from guided_diffusion.script_util import (
    add_dict_to_argparser,
    args_to_dict,
    classifier_and_diffusion_defaults,
    create_classifier_and_diffusion,
)


def main() -> None:
    args = create_argparser().parse_args()
    shaping = dict(top_k=args.top_k, temperature=args.temperature)
    entries = rel.load_descriptions(descriptions_path(args)) if (args.label_set or args.descriptions) else None
    if args.source == "descriptions":
        if entries is None:
            raise ValueError("--source descriptions needs --label_set or --descriptions")
        encoder = rel.create_encoder(args.encoder, args.encoder_weights, args.device)
        matrix = rel.relevance_from_descriptions(entries, encoder, **shaping)
        encoder_name, source_hash = encoder.name, rel.descriptions_hash(entries)
    else:
        matrix, encoder_name, source_hash = confusion(args, shaping)
    names = [e["name"] for e in entries] if entries else [str(i) for i in range(len(matrix))]
    rel.save_relevance(args.out, matrix, names, encoder_name, rel.shaping_name(**shaping), source_hash)
    diagonal = np.diag(matrix)
    print(f"wrote {args.out}: {len(matrix)} classes, encoder {encoder_name}, shaping {rel.shaping_name(**shaping)}, "
          f"s_c mean {diagonal.mean():.4f} (min {diagonal.min():.4f}, max {diagonal.max():.4f})")


def descriptions_path(args: argparse.Namespace) -> Path:
    if args.descriptions:
        return Path(args.descriptions)
    return rel.CLASS_DESCRIPTIONS_DIR / f"{args.label_set}.json"


def confusion(args: argparse.Namespace, shaping: dict) -> tuple[np.ndarray, str, str]:
    if not args.data:
        raise ValueError("--source confusion needs --data (an .npz or an image folder of real, labelled images)")
    classifier, diffusion = create_classifier_and_diffusion(
        **args_to_dict(args, classifier_and_diffusion_defaults().keys()))
    prepare(classifier, args.classifier_path, args.classifier_use_fp16, what="classifier checkpoint")
    images, labels = load_labelled_images(args.data, args.image_size, args.max_images)
    steps = [int(t) for t in args.timesteps.split(",")] if args.timesteps else \
        np.linspace(0, diffusion.num_timesteps - 1, 10).round().astype(int).tolist()
    scores = rel.classifier_confusion(classifier, diffusion, images, labels, args.num_classes, steps,
                                      args.batch_size, args.seed)
    digest = hashlib.sha256(Path(args.classifier_path).read_bytes()).hexdigest()
    source = f"confusion:{Path(args.classifier_path).name}@t={steps}"
    return rel.relevance_from_confusion(scores, **shaping), source, digest


def create_argparser() -> argparse.ArgumentParser:
    parser = ScriptParser(description=__doc__)
    parser.add_argument("--out", required=True, help="the .npz to write")
    parser.add_argument("--source", choices=("descriptions", "confusion"), default="descriptions")
    parser.add_argument("--label_set", choices=("imagenet1k", "cifar10", "digits", "fashion"), default=None,
                        help="use class_descriptions/<label_set>.json")
    parser.add_argument("--descriptions", default=None, help="a descriptions JSON of your own")
    parser.add_argument("--encoder", default=rel.DEFAULT_ENCODER,
                        help="minilm (offline), sentence-transformers:NAME_OR_FOLDER or open_clip:ARCH")
    parser.add_argument("--encoder_weights", default=None, help="open_clip pretrained tag or weights file")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--top_k", type=int, default=None, help="keep the k most relevant classes per row")
    parser.add_argument("--temperature", type=float, default=None, help="s_i proportional to exp(sim_ci / T)")
    parser.add_argument("--data", default=None, help="confusion: real labelled images (.npz or folder)")
    parser.add_argument("--timesteps", default="", help="confusion: comma-separated t (default: 10 evenly spaced)")
    parser.add_argument("--max_images", type=int, default=0, help="confusion: use at most this many (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    defaults = dict(classifier_path="", batch_size=256)
    defaults.update(classifier_and_diffusion_defaults())
    add_dict_to_argparser(parser, defaults)
    return parser


if __name__ == "__main__":
    run_main(main, (*INPUT_ERRORS, rel.EncoderUnavailable))
