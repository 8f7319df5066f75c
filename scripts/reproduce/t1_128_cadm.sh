#!/usr/bin/env bash
# Table 1, ImageNet 128x128, CADM (paper: 92.53 6.14 4.96 0.69 0.65).
# The checkpoints' names set their flags (the ADM README's); 250 respaced steps and the classifier scale
# are ADM's, since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t1_128_cadm
TITLE="Table 1, ImageNet 128x128, CADM"
RES=128
MODEL=128x128_diffusion.pt
CLASSIFIER=
GUIDANCE="--guidance none"
PAPER="92.53 6.14 4.96 0.69 0.65"
reproduce
