#!/usr/bin/env bash
# Table 1, ImageNet 128x128, CADM-G (paper: 141.55 2.98 5.10 0.77 0.59).
# The checkpoints' names set their flags (the ADM README's); 250 respaced steps and the classifier scale
# are ADM's, since the paper does not state them.
source "$(dirname "$0")/common.sh"
ROW=t1_128_cadm_g
TITLE="Table 1, ImageNet 128x128, CADM-G"
RES=128
MODEL=128x128_diffusion.pt
CLASSIFIER=128x128_classifier.pt
GUIDANCE="--guidance vanilla --classifier_scale ${SCALE:-0.5}"
PAPER="141.55 2.98 5.10 0.77 0.59"
reproduce
