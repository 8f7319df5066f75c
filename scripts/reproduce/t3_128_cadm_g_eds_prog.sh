#!/usr/bin/env bash
# Table 3, ImageNet 128x128, CADM-G + EDS + ProG (paper: 175.31 2.47 4.92 0.80 0.58).
# The checkpoints' names set their flags (the ADM README's); 250 respaced steps and the classifier scale
# are ADM's, since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t3_128_cadm_g_eds_prog
TITLE="Table 3, ImageNet 128x128, CADM-G + EDS + ProG"
RES=128
MODEL=128x128_diffusion.pt
CLASSIFIER=128x128_classifier.pt
GUIDANCE="--guidance prog_eds --gamma 0.04 --classifier_scale ${SCALE:-0.5}"
PAPER="175.31 2.47 4.92 0.80 0.58"
reproduce
