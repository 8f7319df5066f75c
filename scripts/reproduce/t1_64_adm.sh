#!/usr/bin/env bash
# Table 1, ImageNet 64x64, ADM (paper: 25.64 9.95 6.58 0.60 0.65).
# The checkpoints' names set their flags (the ADM README's); 250 respaced steps and the classifier scale
# are ADM's, since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t1_64_adm
TITLE="Table 1, ImageNet 64x64, ADM"
RES=64
MODEL=64x64_diffusion_uncond.pt
# ADM released no such model: the flags of 64x64_diffusion.pt, unconditional
MODEL_FLAGS="$(released_flags 64x64_diffusion.pt class_cond False)"
CLASSIFIER=
GUIDANCE="--guidance none"
PAPER="25.64 9.95 6.58 0.60 0.65"
NOT_RELEASED="train one with scripts/image_train.py and these MODEL_FLAGS on ImageNet 64x64"
reproduce
