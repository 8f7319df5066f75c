#!/usr/bin/env bash
# Table 1, ImageNet 256x256, ADM (paper: 39.7 26.21 6.35 0.61 0.63).
# The checkpoints' names set their flags (the ADM README's); 250 respaced steps and the classifier scale
# are ADM's, since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t1_256_adm
TITLE="Table 1, ImageNet 256x256, ADM"
RES=256
MODEL=256x256_diffusion_uncond.pt
CLASSIFIER=
GUIDANCE="--guidance none"
PAPER="39.7 26.21 6.35 0.61 0.63"
reproduce
