#!/usr/bin/env bash
# Table 1, ImageNet 64x64, CADM (paper: 53.79 2.07 4.35 0.73 0.63).
# The checkpoints' names set their flags (the ADM README's); 250 respaced steps and the classifier scale
# are ADM's, since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t1_64_cadm
TITLE="Table 1, ImageNet 64x64, CADM"
RES=64
MODEL=64x64_diffusion.pt
CLASSIFIER=
GUIDANCE="--guidance none"
PAPER="53.79 2.07 4.35 0.73 0.63"
reproduce
