#!/usr/bin/env bash
# Table 1, ImageNet 256x256, CADM (paper: 100.98 10.94 6.02 0.69 0.63).
# The checkpoints' names set their flags (the ADM README's); 250 respaced steps and the classifier scale
# are ADM's, since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t1_256_cadm
TITLE="Table 1, ImageNet 256x256, CADM"
RES=256
MODEL=256x256_diffusion.pt
CLASSIFIER=
GUIDANCE="--guidance none"
PAPER="100.98 10.94 6.02 0.69 0.63"
reproduce
